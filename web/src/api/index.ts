/** The console's side of the API: the generated typed client, the session, event streams, errors. */
export { api, call } from './client';
export { ApiError, apiErrorFrom, asApiError } from './errors';
export { logIn, logOut, restoreSession } from './session';
export { openStream, type StreamEvent, type StreamOptions } from './stream';
export type { LastTask, PoolChild, PoolDetail, PoolSpec, PoolSummary, Schemas, Session, TaskAccepted, TaskEvent, TaskView } from './types';

/** Shared pieces of the console's pages. */
export { DataTable } from './data-table';
export { ErrorAlert } from './error-alert';
export { bytes, counts, orDash, seconds, time } from './format';
export { Header } from './header';
export { LiveStatus } from './live-status';
export { Page } from './page';
export { ProgressBar } from './progress-bar';
export { ReloadButton } from './reload-button';
export { SpecEditor, useSpecCheck } from './spec-editor';
export { TaskNotice } from './task-notice';
export { useAction, useApi, type Loaded } from './use-api';
export { eventJson, useStream } from './use-stream';
export { whyClosed, wsUrl } from './vm-socket';

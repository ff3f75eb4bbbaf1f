import type { components } from '../../generated/schema';

/** The API's schemas, generated from its OpenAPI document (web/generated/schema.d.ts): never typed by hand. */
export type Schemas = components['schemas'];

export type PoolSpec = Schemas['PoolSpec'];
export type PoolSummary = Schemas['PoolList'][number];
export type PoolDetail = Schemas['PoolDetail'];
export type PoolChild = PoolDetail['vms'][number];
export type LastTask = NonNullable<PoolSummary['lastTask']>;
export type TaskView = Schemas['Task'];
export type TaskEvent = Schemas['TaskEvent'];
export type TaskAccepted = Schemas['TaskAccepted'];
export type Session = Schemas['Session'];

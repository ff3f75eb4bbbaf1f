/**
 * The state store: SQLite (Kysely over better-sqlite3), versioned migrations, one repo per table, and the one
 * function every state change goes through (`transition`). Frontends (CLI, API) open it; only the rooms of the
 * core read and write it.
 */
export { LOCAL_HOST_ID, isUniqueViolation, migrate, openStore, withWriteLock, type Db, type OpenStoreOptions } from './db.js';
export { dialectOf, type StoreDialect } from './dialect.js';
export { isPostgresUrl } from './postgres.js';
export type * from './schema.js';
export { NO_OWNER, ownerColumns, takeOver, transition, transitionalRows, type ExtraSet, type StatefulTable, type StateOf, type TransitionalRow } from './transition.js';
export * from './vms-repo.js';
export * from './templates-repo.js';
export * from './networks-repo.js';
export * from './images-repo.js';
export * from './processes-repo.js';
export * from './settings-repo.js';
export * from './tasks-repo.js';
export * from './datastores-repo.js';
export * from './pools-repo.js';
export * from './checkpoints-repo.js';
export * from './claims-repo.js';
export * from './reservations-repo.js';
export * from './hosts-repo.js';
export * from './sessions-repo.js';
export * from './metrics-repo.js';
export { sessionLockFree, tryHostLock, trySessionLock, type HostLock } from './host-lock.js';
export { listenTaskEvents, notifyTaskEvent, type StoreListener } from './notify.js';

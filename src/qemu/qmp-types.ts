/** Shapes of the QMP messages and command results the vmfork engine uses (QEMU 7.2's schema, trimmed). */

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  /** Distribution build string, e.g. `Debian 1:7.2+dfsg-7+deb12u18`. */
  package: string;
}

/** First message on every QMP connection. */
export interface QmpGreeting {
  QMP: { version: QmpVersion; capabilities: string[] };
}

/** An asynchronous event, e.g. `STOP`, `RESUME`, `SHUTDOWN`, `MIGRATION`. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** query-status, reduced to what is stable across QEMU versions. */
export interface StatusInfo {
  /** Run state: `running`, `paused`, `inmigrate`, `postmigrate`, `prelaunch`, `shutdown`, … */
  status: string;
  running: boolean;
}

export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

/** query-migrate. Empty (`{}`) when no migration ever started on this QEMU. */
export interface MigrationInfo {
  status?: MigrationStatus;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  /** RAM transfer counters; with x-ignore-shared, `transferred` is the device state and firmware blocks only. */
  ram?: { transferred?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** One entry of migrate-set-capabilities, e.g. `{ capability: 'x-ignore-shared', state: true }`. */
export interface MigrationCapability {
  capability: string;
  state: boolean;
}

/** query-rx-filter entry: `main-mac` is what the guest driver programmed, not the command line MAC. */
export interface RxFilterInfo {
  name: string;
  'main-mac': string;
  promiscuous: boolean;
  [key: string]: unknown;
}

export interface PollOptions {
  /** @default 60000 */
  timeoutMs?: number;
  /** Interval between two queries. @default 10 */
  pollMs?: number;
}

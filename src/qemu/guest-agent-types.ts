import { QemuCommandError } from './command-queue.js';
import type { ProtocolLogger } from './json-line-stream.js';
import type { JunkOptions } from './junk-guard.js';

export interface AgentConnectOptions extends JunkOptions {
  /** Connect timeout. @default 5000 */
  timeoutMs?: number;
  /** Per-command timeout when a call is given none. @default 10000 */
  commandTimeoutMs?: number;
  /** Junk lines and dropped replies are reported here (rate-limited). @default silent */
  logger?: ProtocolLogger;
  /** A longer line is junk. @default GUEST_AGENT_MAX_LINE_BYTES */
  maxLineBytes?: number;
}

export interface WaitReadyOptions extends Omit<AgentConnectOptions, 'timeoutMs'> {
  /** Overall deadline. */
  timeoutMs: number;
  /** How long the first connect or sync + ping attempt may take; each next one twice as long, up to 8×. @default 1000 */
  attemptTimeoutMs?: number;
  /** Ends the wait early (a cancelled task) with the signal's reason; the connection being tried is closed. */
  signal?: AbortSignal;
}

export interface AgentCallOptions {
  timeoutMs?: number;
}

/** guest-info, trimmed. */
export interface AgentInfo {
  version: string;
  supported_command: { name: string; enabled: boolean; 'success-response': boolean }[];
}

/** Thrown by GuestAgentClient calls when the agent answers `{"error": {"class", "desc"}}`. */
export class GuestAgentCommandError extends QemuCommandError {
  constructor(command: string, errorClass: string, desc: string) {
    super('VMFORK_AGENT_ERROR', command, errorClass, desc);
    this.name = 'GuestAgentCommandError';
  }
}

import { VmforkError } from '../errors.js';
import { VmforkAgentClient, type AgentClientOptions } from './client.js';
import type { AgentSession, AgentSessions } from './messages.js';
import { SESSIONS_CAPABILITY } from './protocol.js';

export interface SessionWatchOptions extends AgentClientOptions {
  /** Connecting, the handshake and the first SESSIONS together. @default 30_000 */
  timeoutMs?: number;
  /** Ends the watch (before or after it began) with the signal's reason. */
  signal?: AbortSignal;
}

export interface SessionWatch {
  /** The sessions when the watch began (`onSessions` got them too). */
  readonly initial: AgentSessions;
  /**
   * Resolves (never rejects) once the watch is over, with why: close(), the signal, the guest or its QEMU gone
   * (VMFORK_AGENT_UNAVAILABLE), or the agent breaking the protocol. A watcher that still cares opens a new one.
   */
  readonly ended: Promise<VmforkError>;
  close(): void;
}

/**
 * Watches a guest's login sessions through vmfork-guest (WATCH, guest/PROTOCOL.md): `onSessions` gets the
 * class=user sessions logind records when the watch begins, then the whole list again each time it changes, until
 * `close()`, the signal, or the connection ends. The watch holds the agent's socket: QEMU's chardev serves one host
 * connection at a time, so other clients of the same socket wait until it is closed.
 *
 * VMFORK_AGENT_ERROR (details.agentCode `unknown-type`) when the image's agent predates WATCH (no `sessions`
 * capability); the errors of VmforkAgentClient.waitReady when the agent cannot be reached.
 */
export async function watchSessions(socketPath: string, onSessions: (s: AgentSessions) => void, options: SessionWatchOptions = {}): Promise<SessionWatch> {
  const { signal } = options;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const client = await VmforkAgentClient.waitReady(socketPath, { ...options, timeoutMs: Math.max(1, deadline - Date.now()) });
  const onAbort = (): void => client.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  void client.ended.then(() => signal?.removeEventListener('abort', onAbort));
  try {
    signal?.throwIfAborted();
    const hello = client.lastHello;
    if (!hello?.capabilities.includes(SESSIONS_CAPABILITY)) {
      throw new VmforkError('VMFORK_AGENT_ERROR', `vmfork-guest ${hello?.agentVersion ?? '?'} (${socketPath}) cannot watch sessions: it has no "${SESSIONS_CAPABILITY}" capability (an image built before it)`, {
        details: { agentCode: 'unknown-type', agentVersion: hello?.agentVersion, socketPath },
      });
    }
    const initial = await client.watchSessions(onSessions, { timeoutMs: Math.max(1, deadline - Date.now()) });
    return { initial, ended: client.ended, close: () => client.close() };
  } catch (err) {
    client.close();
    throw signal?.aborted ? signal.reason : err;
  }
}

/** Sessions whose user is still logged in: `closing` ones were logged out (only processes they left behind run). */
export function openSessions(list: AgentSessions, user?: string): AgentSession[] {
  return list.sessions.filter((s) => s.state !== 'closing' && (user === undefined || s.user === user));
}

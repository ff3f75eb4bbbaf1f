import { VmforkError } from '../errors.js';
import { isObject } from './json-line-stream.js';

/**
 * Runs jobs strictly one after another, each with a deadline that counts from the moment it was queued (so a
 * caller's `timeoutMs` bounds its whole wait, queue included).
 *
 * At the deadline the caller's promise rejects with the error `onTimeout` builds, and the job's `signal` aborts
 * with that same error. Jobs must give up when their signal aborts (every reply wait in the clients listens to
 * it): that is what lets the queue move on past a command the peer never answers.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  run<T>(timeoutMs: number, onTimeout: (stillQueued: boolean) => Error, job: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let started = false;
    const timer = setTimeout(() => controller.abort(onTimeout(!started)), timeoutMs);
    return new Promise<T>((resolve, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      const step = async (): Promise<void> => {
        if (controller.signal.aborted) return; // timed out while queued: never sent
        started = true;
        try {
          resolve(await job(controller.signal));
        } catch (err) {
          reject(err);
        } finally {
          clearTimeout(timer);
        }
      };
      this.tail = this.tail.then(step);
    });
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A command's outcome as both QMP and qemu-ga write it: `{"return": …}` or `{"error": {"class", "desc"}}`. */
export type Reply = { ok: true; value: unknown } | { ok: false; errorClass: string; desc: string };

/** Reads a reply, or returns undefined when the message is not one (an event, a greeting, junk). */
export function parseReply(message: Record<string, unknown>): Reply | undefined {
  if ('return' in message) return { ok: true, value: message.return };
  if (!('error' in message)) return undefined;
  const error = isObject(message.error) ? message.error : {};
  return {
    ok: false,
    errorClass: typeof error.class === 'string' ? error.class : 'GenericError',
    desc: typeof error.desc === 'string' ? error.desc : JSON.stringify(message.error),
  };
}

/** A command the peer answered with `{"error": …}`; QmpCommandError and GuestAgentCommandError specialise it. */
export class QemuCommandError extends VmforkError {
  readonly command: string;
  /** The peer's error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`. */
  readonly errorClass: string;
  readonly desc: string;

  constructor(code: 'VMFORK_QMP_ERROR' | 'VMFORK_AGENT_ERROR', command: string, errorClass: string, desc: string) {
    super(code, `${command}: ${desc}`, { details: { command, class: errorClass, desc } });
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

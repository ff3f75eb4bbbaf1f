import { VmforkError, isVmforkError } from '../errors.js';
import { formatBytes, waitUntil } from '../util/index.js';
import { sleep } from './command-queue.js';

/**
 * Multi-command guest-agent operations (process execution, file transfer), written against the one method they
 * need so they stay independent of the transport in guest-agent-client.ts.
 */
export interface AgentExecutor {
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<T>;
}

export interface ExecOptions {
  /** Written to the process's stdin, which is then closed. */
  input?: string | Buffer;
  /** The process's WHOLE environment (qemu-ga does not merge it with its own): include PATH if needed. */
  env?: Record<string, string>;
  /** Deadline for the whole run, start to exit. The process keeps running in the guest after it. @default 60000 */
  timeoutMs?: number;
  /** Longest pause between two guest-exec-status polls; polling starts at 5 ms and doubles. @default 50 */
  pollMs?: number;
}

export interface ExecResult {
  /** The exit status, or 128 + signal number when a signal killed the process (as a shell reports it). */
  exitCode: number;
  signal?: number;
  stdout: Buffer;
  stderr: Buffer;
  /** qemu-ga keeps at most 16 MiB of each stream; true when some output was cut. */
  truncated: boolean;
}

export interface FileOptions {
  /**
   * Bytes per guest-file-read/-write (the base64 of a chunk travels as one JSON line). At most 16 MiB: a read's
   * reply then stays under GUEST_AGENT_MAX_LINE_BYTES. @default 1 MiB
   */
  chunkBytes?: number;
  /** Per agent command. @default the client's commandTimeoutMs */
  timeoutMs?: number;
  /** A read gives up past this many bytes (a guest file that keeps growing must not read for ever). @default 256 MiB */
  maxBytes?: number;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

const FIRST_POLL_MS = 5;
/**
 * Least time one guest-exec / guest-exec-status call is given, even when the exec's own deadline is nearly up: a
 * reply takes seconds on a busy host under TCG, and a call given what is left (a few ms) fails as "no reply" when
 * the guest was only slow. Bounded: an exec ends at most this much past its deadline.
 */
const CALL_FLOOR_MS = 5_000;
const DEFAULT_CHUNK = 1024 * 1024;
const DEFAULT_MAX_READ = 256 * 1024 * 1024;
/** 16 MiB of base64 is 21.3 MiB: well inside GUEST_AGENT_MAX_LINE_BYTES with the reply's JSON around it. */
const MAX_CHUNK = 16 * 1024 * 1024;

/** guest-exec with captured output, then guest-exec-status until the process has exited. */
export async function guestExec(agent: AgentExecutor, path: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const remaining = (): number => Math.max(1, deadline - Date.now());
  const callMs = (): number => Math.max(CALL_FLOOR_MS, deadline - Date.now());
  const request: Record<string, unknown> = { path, arg: [...args], 'capture-output': true };
  if (options.input !== undefined) request['input-data'] = Buffer.from(options.input).toString('base64');
  if (options.env) request.env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  const { pid } = await agent.execute<{ pid: number }>('guest-exec', request, { timeoutMs: callMs() });
  // Under TCG a whole round trip is a few ms: look fast first so short commands return quickly, then back off.
  // The check paces itself (waitUntil has one fixed pace); waitUntil keeps the deadline.
  let delay = 0;
  const status = await waitUntil(
    async () => {
      if (delay > 0) await sleep(Math.min(delay, remaining()));
      delay = Math.min(Math.max(FIRST_POLL_MS, delay * 2), options.pollMs ?? 50);
      const s = await agent.execute<ExecStatus>('guest-exec-status', { pid }, { timeoutMs: callMs() });
      return s.exited ? s : undefined;
    },
    { deadlineMs: remaining(), everyMs: 0, what: `${path} (guest pid ${pid}) to exit` },
  ).catch((err: unknown) => {
    if (!(isVmforkError(err) && err.code === 'VMFORK_TIMEOUT')) throw err;
    throw new VmforkError('VMFORK_AGENT_TIMEOUT', `${path} (guest pid ${pid}) still running after ${timeoutMs} ms`, {
      details: { path, pid, timeoutMs },
    });
  });
  return toResult(status);
}

function toResult(status: ExecStatus): ExecResult {
  const result: ExecResult = {
    exitCode: status.exitcode ?? (status.signal !== undefined ? 128 + status.signal : -1),
    stdout: Buffer.from(status['out-data'] ?? '', 'base64'),
    stderr: Buffer.from(status['err-data'] ?? '', 'base64'),
    truncated: Boolean(status['out-truncated'] || status['err-truncated']),
  };
  if (status.signal !== undefined) result.signal = status.signal;
  return result;
}

/** Reads a whole guest file through guest-file-open/-read/-close. */
export async function guestReadFile(agent: AgentExecutor, path: string, options: FileOptions = {}): Promise<Buffer> {
  const chunkBytes = Math.min(options.chunkBytes ?? DEFAULT_CHUNK, MAX_CHUNK);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_READ;
  return withHandle(agent, path, 'r', options, async (handle) => {
    const chunks: Buffer[] = [];
    // each read has its command timeout; the size bound ends a file that never reaches EOF (a pipe, /dev/zero)
    for (let total = 0; total <= maxBytes; ) {
      const r = await agent.execute<{ count: number; 'buf-b64': string; eof: boolean }>(
        'guest-file-read',
        { handle, count: chunkBytes },
        { timeoutMs: options.timeoutMs },
      );
      if (r.count > 0) chunks.push(Buffer.from(r['buf-b64'], 'base64'));
      total += r.count;
      if (r.eof || r.count === 0) return Buffer.concat(chunks);
    }
    throw new VmforkError('VMFORK_AGENT_ERROR', `${path}: more than ${formatBytes(maxBytes)} without reaching its end`, { details: { path, maxBytes } });
  });
}

/**
 * Writes (creating or truncating) a guest file. With `mode`, the file is first created empty with that mode
 * (one guest-exec), so the data is never readable under the agent's default permissions.
 */
export async function guestWriteFile(
  agent: AgentExecutor,
  path: string,
  data: string | Buffer,
  options: FileOptions & { mode?: number } = {},
): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK;
  if (options.mode !== undefined) {
    const mode = options.mode.toString(8).padStart(4, '0');
    const r = await guestExec(agent, '/bin/sh', ['-c', 'umask 077 && : > "$1" && chmod "$2" "$1"', 'sh', path, mode]);
    if (r.exitCode !== 0) {
      throw new VmforkError('VMFORK_AGENT_ERROR', `cannot create ${path} with mode ${mode}: ${r.stderr.toString().trim()}`, {
        details: { path, mode, exitCode: r.exitCode },
      });
    }
  }
  await withHandle(agent, path, 'w', options, async (handle) => {
    for (let offset = 0; offset < bytes.length; ) {
      const chunk = bytes.subarray(offset, offset + chunkBytes);
      const r = await agent.execute<{ count: number }>('guest-file-write', { handle, 'buf-b64': chunk.toString('base64') }, { timeoutMs: options.timeoutMs });
      if (!(r.count > 0)) throw new VmforkError('VMFORK_AGENT_ERROR', `guest-file-write on ${path} wrote nothing at offset ${offset}`, { details: { path, offset } });
      offset += r.count; // a short write resends the rest
    }
  });
}

/**
 * Opens a guest file, runs `fn`, and closes the handle whatever happens (qemu-ga keeps handles open until told,
 * and only has a few). A failed close is reported only when `fn` succeeded: for writes, close is the flush.
 */
async function withHandle<T>(agent: AgentExecutor, path: string, mode: 'r' | 'w', options: FileOptions, fn: (handle: number) => Promise<T>): Promise<T> {
  const timeout = { timeoutMs: options.timeoutMs };
  const handle = await agent.execute<number>('guest-file-open', { path, mode }, timeout);
  let result: T;
  try {
    result = await fn(handle);
  } catch (err) {
    await agent.execute('guest-file-close', { handle }, timeout).catch(() => undefined);
    throw err;
  }
  await agent.execute('guest-file-close', { handle }, timeout);
  return result;
}

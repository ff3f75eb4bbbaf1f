import { spawn } from 'node:child_process';
import { VmforkError, type ErrorCode } from '../errors.js';

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Error code used when the program exits non-zero. */
  errorCode?: ErrorCode;
  /** Do not throw on a non-zero exit; the caller inspects `code`. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program (never through a shell, so arguments are not re-parsed) and captures its output.
 * A missing program becomes VMFORK_DEPENDENCY_MISSING; a non-zero exit `errorCode` with the stderr tail.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    }
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === 'ENOENT') {
        reject(new VmforkError('VMFORK_DEPENDENCY_MISSING', `${cmd} not found on PATH`, { cause: e, details: { program: cmd } }));
      } else {
        reject(new VmforkError('VMFORK_INTERNAL', `cannot run ${cmd}: ${e.message}`, { cause: e }));
      }
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (result.code !== 0 && !options.allowFailure) {
        const tail = result.stderr.trim().split('\n').slice(-5).join('\n');
        reject(
          new VmforkError(options.errorCode ?? 'VMFORK_INTERNAL', `${cmd} ${args.join(' ')} exited ${result.code}${signal ? ` (${signal})` : ''}: ${tail}`, {
            details: { program: cmd, exitCode: result.code },
          }),
        );
        return;
      }
      resolve(result);
    });
    child.stdin.on('error', () => undefined); // the program may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** True when `cmd` can be found on PATH. */
export async function which(cmd: string): Promise<string | undefined> {
  const r = await run('sh', ['-c', 'command -v "$1"', 'sh', cmd], { allowFailure: true });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

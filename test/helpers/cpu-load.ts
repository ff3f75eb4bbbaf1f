/**
 * CPU load for the load test: N busy node processes (one per core by default) that keep every core of the host busy
 * while tests run, as another tenant or a fleet of children would. Started and stopped by PID; each one also ends
 * itself when its parent is gone (checked every few million iterations), so a runner killed with SIGKILL leaves
 * no spinner behind.
 *
 *   node dist/test/helpers/cpu-load.js [--procs N] -- COMMAND [ARGS...]
 *
 * runs COMMAND with the load on, stops the load whatever happens (exit, failure, SIGINT/SIGTERM forwarded to
 * COMMAND) and exits with COMMAND's code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';

/** Spins until its parent changes (the parent died: it was re-parented), checking every 2^24 iterations. */
const SPINNER = 'const p = process.ppid; let i = 0; while (p > 0) { if ((++i & 0xffffff) === 0 && process.ppid !== p) process.exit(0); }';

export interface CpuLoad {
  readonly pids: readonly number[];
  /** Kills every spinner by its PID and waits until each has exited. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Starts `procs` busy processes (default: one per core). */
export function startCpuLoad(procs = availableParallelism()): CpuLoad {
  const children: ChildProcess[] = [];
  for (let i = 0; i < procs; i++) children.push(spawn(process.execPath, ['-e', SPINNER], { stdio: 'ignore' }));
  const exited = children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()))));
  const killAll = (): void => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  };
  // this process exiting any way node sees must not leave a spinner (SIGKILL of it: the spinners notice themselves)
  process.once('exit', killAll);
  return {
    pids: children.map((c) => c.pid).filter((p): p is number => p !== undefined),
    async stop() {
      killAll();
      await Promise.all(exited);
      process.removeListener('exit', killAll);
    },
  };
}

/** Runs `command` with the host's cores kept busy; resolves with its exit code once the load is stopped. */
export async function runLoaded(command: string, args: readonly string[], procs?: number): Promise<number> {
  const load = startCpuLoad(procs);
  process.stderr.write(`cpu-load: ${load.pids.length} busy process(es) ${load.pids.join(' ')} for: ${[command, ...args].join(' ')}\n`);
  try {
    const child = spawn(command, args, { stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await new Promise<number>((resolve) => {
        child.once('error', (err) => (process.stderr.write(`cpu-load: ${err.message}\n`), resolve(127)));
        child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    } finally {
      process.removeListener('SIGINT', forward);
      process.removeListener('SIGTERM', forward);
    }
  } finally {
    await load.stop();
    process.stderr.write(`cpu-load: stopped ${load.pids.join(' ')}\n`);
  }
}

function parseArgs(argv: readonly string[]): { procs?: number; command: string[] } {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? [] : argv.slice(0, dash);
  const command = dash < 0 ? [...argv] : argv.slice(dash + 1);
  const i = own.indexOf('--procs');
  const procs = i < 0 ? undefined : Number(own[i + 1]);
  if (procs !== undefined && !(Number.isInteger(procs) && procs > 0 && procs <= 64)) throw new RangeError(`--procs wants 1..64, got ${own[i + 1]}`);
  return procs === undefined ? { command } : { procs, command };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { procs, command } = parseArgs(process.argv.slice(2));
  const [cmd, ...rest] = command;
  if (!cmd) {
    process.stderr.write('usage: cpu-load.js [--procs N] -- COMMAND [ARGS...]\n');
    process.exit(2);
  }
  process.exitCode = await runLoaded(cmd, rest, procs);
}

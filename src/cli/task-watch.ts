import cliProgress from 'cli-progress';
import { VmforkError } from '../errors.js';
import type { TaskEvent, TaskView } from '../task/index.js';
import { waitUntil } from '../util/index.js';
import type { ApiClient } from './client.js';

const ENDED = ['succeeded', 'failed', 'cancelled'];

/** How a watched task is shown: progress bars (TTY), plain lines, or one JSON event per line. */
export type WatchMode = 'bars' | 'lines' | 'json' | 'quiet';

interface Renderer {
  event(e: TaskEvent): void;
  stop(): void;
}

function lineRenderer(write: (s: string) => void): Renderer {
  return {
    event(e) {
      const time = e.at.slice(11, 19);
      const pct = typeof e.data?.percent === 'number' ? ` (${e.data.percent}%)` : '';
      const err = typeof e.data?.error === 'string' ? `: ${e.data.error}` : '';
      write(`${time} ${e.kind.padEnd(9)} ${e.message}${pct}${err}\n`);
    },
    stop: () => undefined,
  };
}

/** One bar for the task (its step and percent), one per child as children appear (N children, N bars). */
function barRenderer(): Renderer {
  const multi = new cliProgress.MultiBar(
    { format: '{label} [{bar}] {percentage}% {status}', barsize: 30, hideCursor: true, clearOnComplete: false, stopOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const task = multi.create(100, 0, { label: 'task'.padEnd(14), status: 'queued' });
  const children = new Map<string, cliProgress.SingleBar>();
  return {
    event(e) {
      if (e.kind === 'step') task.update(typeof e.data?.percent === 'number' ? e.data.percent : task.getProgress() * 100, { status: e.message });
      else if (e.kind === 'state') task.update(e.data?.state === 'succeeded' ? 100 : task.getProgress() * 100, { status: e.message });
      else if (e.kind === 'child' && typeof e.data?.name === 'string') {
        const name = e.data.name;
        const bar = children.get(name) ?? multi.create(100, 0, { label: name.slice(0, 14).padEnd(14), status: '' });
        children.set(name, bar);
        const status = `${String(e.data.state)}${typeof e.data.error === 'string' ? `: ${e.data.error}` : ''}`;
        bar.update(typeof e.data.percent === 'number' ? e.data.percent : 0, { status });
      } else multi.log(`${e.kind}: ${e.message}\n`);
    },
    stop: () => multi.stop(),
  };
}

function renderer(mode: WatchMode): Renderer {
  if (mode === 'bars') return barRenderer();
  if (mode === 'lines') return lineRenderer((s) => process.stdout.write(s));
  if (mode === 'json') return { event: (e) => process.stdout.write(`${JSON.stringify(e)}\n`), stop: () => undefined };
  return { event: () => undefined, stop: () => undefined };
}

/** Longer than any task vmfork runs (a day); past it the watch gives up, the task itself carries on. */
export const WATCH_DEADLINE_MS = 24 * 3_600_000;

/**
 * Follows a task until it ends: its event stream from the start, reconnecting from the last event seen when the
 * connection drops (a server restart resumes the task), and returns the task as it ended.
 */
export async function watchTask(client: ApiClient, id: string, mode: WatchMode, deadlineMs = WATCH_DEADLINE_MS): Promise<TaskView> {
  const r = renderer(mode);
  let last = 0;
  let failures = 0;
  const follow = async (): Promise<TaskView | undefined> => {
    try {
      await client.events(id, last, (e) => {
        last = e.seq;
        r.event(e);
      });
      const task = await client.request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
      failures = 0;
      return ENDED.includes(task.state) ? task : undefined;
    } catch (err) {
      // the server may be restarting: give it half a minute before giving up
      if (!(err instanceof VmforkError && err.code === 'VMFORK_SERVER_UNAVAILABLE') || ++failures > 30) throw err;
      return undefined;
    }
  };
  try {
    return await waitUntil(follow, { deadlineMs, everyMs: 1000, what: `task ${id} to end (it still runs: \`vmfork task watch ${id}\` follows it again)` });
  } finally {
    r.stop();
  }
}

/** The exit code for an ended task, after saying how it ended on stderr when it did not succeed. */
export function taskExitCode(task: TaskView): number {
  if (task.state === 'succeeded') return 0;
  const why = task.lastError ? `error ${task.lastError.code}: ${task.lastError.message}` : `task ${task.id} ${task.state}`;
  process.stderr.write(`${why}\n`);
  return 1;
}

/** Bars on a terminal, plain lines in a pipe or a log. */
export function defaultWatchMode(json: boolean | undefined): WatchMode {
  if (json) return 'json';
  return process.stdout.isTTY ? 'bars' : 'lines';
}

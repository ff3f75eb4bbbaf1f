import type { VmDeps } from '../vm/index.js';
import { applyActions } from './apply.js';
import { planGc } from './plan.js';
import type { GcReport } from './report.js';
import { scanDataDir } from './scan.js';

export interface GcOptions {
  /** List what would be done, change nothing. */
  dryRun?: boolean;
}

// one pass at a time in a process (the server's timer and its API may ask at once); across processes the re-check
// before each action keeps two passes from undoing each other's work
let last: Promise<unknown> = Promise.resolve();

/** One gc pass: scan → plan → apply (unless a dry run). Never throws for one action: each says done or why not. */
export function runGc(deps: VmDeps, options: GcOptions = {}): Promise<GcReport> {
  const pass = last.catch(() => undefined).then(async (): Promise<GcReport> => {
    const scan = await scanDataDir(deps);
    const actions = planGc(scan);
    const dryRun = options.dryRun === true;
    const outcomes = dryRun ? actions.map(() => ({ done: false })) : await applyActions(deps, actions, scan);
    return { dryRun, actions: actions.map((a, i) => ({ kind: a.kind, target: a.target, reason: a.reason, ...outcomes[i], done: outcomes[i]?.done ?? false })) };
  });
  last = pass;
  return pass;
}

export interface GcTimer {
  /** Stops the timer and waits for a pass in flight. */
  stop(): Promise<void>;
}

/** The server's gc: a pass now and one every `intervalMs`; each is logged. The timer never keeps the process alive. */
export function startGcTimer(deps: VmDeps, intervalMs: number): GcTimer {
  let inFlight: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = (): void => {
    if (stopped) return;
    inFlight = runGc(deps).then(
      (r) => {
        const done = r.actions.filter((a) => a.done);
        const failed = r.actions.filter((a) => a.error !== undefined);
        if (r.actions.length) deps.log.info({ actions: r.actions }, `gc: ${done.length} done, ${failed.length} failed, ${r.actions.length - done.length - failed.length} skipped`);
        else deps.log.info('gc: nothing left over');
      },
      (err: unknown) => deps.log.error({ err }, 'gc pass failed; the next one tries again'),
    );
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}

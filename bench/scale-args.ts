import { memoryOption, positiveInt, stringOptions, UsageError } from './bench-args.js';

export interface ScaleBenchOptions {
  /** Children of the pool at the last step. */
  children: number;
  /** Pool sizes at which everything is measured, ascending, the last one = children. */
  steps: number[];
  memory: string;
  /** Seconds the children idle after a step converged, before their CPU is read. */
  idleWaitSeconds: number;
  /** Seconds over which each child's QEMU CPU time is read (/proc/PID/stat). */
  cpuWindowSeconds: number;
  /** `GET /v1/vms` calls per step. */
  listCalls: number;
  /** Claims per step (each released again, its refresh waited for, before the next step). */
  claims: number;
  /** Minutes the run may take: a step whose forks would end past it (estimated from the last step's) is skipped. */
  deadlineMinutes?: number;
  outDir: string;
}

export const SCALE_USAGE = `usage: npm run bench -- scale [options]
  --children N      pool size at the last step (default 100)
  --steps A,B,…     pool sizes measured on the way (default 25,50,100; those above --children dropped, --children added)
  --memory SIZE     guest RAM of every child (default 384M)
  --idle-wait S     seconds the children idle before their CPU is read (default 30)
  --cpu-window S    seconds over which idle CPU is read from /proc/PID/stat (default 60)
  --list-calls N    GET /v1/vms calls per step, one at a time (default 50)
  --claims N        claims per step, each released again (default 10)
  --deadline MIN    skip the steps that would end past MIN minutes from the start (estimated from the last step)
  --out DIR         where scale-<date>.json and .md are written (default bench/results)`;

/** Pure: the steps to measure at, ascending and unique, each ≤ children, always ending at children. */
export function scaleSteps(requested: readonly number[], children: number): number[] {
  return [...new Set([...requested.filter((n) => n < children), children])].sort((a, b) => a - b);
}

function stepList(value: string | undefined): number[] {
  if (value === undefined) return [25, 50, 100];
  return value.split(',').map((v) => positiveInt('steps', v.trim(), 1));
}

/** Pure: argv after `scale` → options with every default applied; a bad flag throws a UsageError. */
export function parseScaleArgs(argv: readonly string[], defaultOutDir: string): ScaleBenchOptions {
  const values = stringOptions(argv, ['children', 'steps', 'memory', 'idle-wait', 'cpu-window', 'list-calls', 'claims', 'deadline', 'out']);
  const children = positiveInt('children', values.children, 100);
  const claims = positiveInt('claims', values.claims, 10);
  if (claims > children) throw new UsageError(`--claims (${claims}) cannot exceed --children (${children})`);
  return {
    children,
    steps: scaleSteps(stepList(values.steps), children),
    memory: memoryOption(values.memory, '384M'),
    idleWaitSeconds: positiveInt('idle-wait', values['idle-wait'], 30),
    cpuWindowSeconds: positiveInt('cpu-window', values['cpu-window'], 60),
    listCalls: positiveInt('list-calls', values['list-calls'], 50),
    claims,
    ...(values.deadline !== undefined ? { deadlineMinutes: positiveInt('deadline', values.deadline, 1) } : {}),
    outDir: values.out ?? defaultOutDir,
  };
}

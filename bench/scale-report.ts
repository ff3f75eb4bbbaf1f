import type { Latency, ScaleBenchResult, ScaleStep } from './scale-bench.js';

/**
 * Figures measured before this benchmark existed, the ones a scale step is read against. Each names where it was
 * measured; none is re-measured by this run.
 */
export const SCALE_BASELINE = {
  idleCpuPercent: { value: 1.87, source: 'old image 20361197d305280e, 3 idle children, 60 s window (docs/idle-cpu.md); the issue counted 2.4 %' },
  pssMiB: { value: 77.3, source: 'fork-2026-12-03-late: 20 idle children of 512 MiB, 10 s after ready' },
  claimMs: { value: 77.5, source: 'lifecycle-2026-12-03: claim of a spare in the service, p50 of 10, host under load' },
} as const;

/** The goal of issue 13: all idle children together use at most half of one core. */
export const IDLE_GOAL_TOTAL_PERCENT = 50;

const lat = (l: Latency | null): string => (l ? `${l.p50} / ${l.p99} ms (n ${l.n})` : '—');

function row(s: ScaleStep): string {
  const cpu = s.idleCpu.perChildPercent;
  return [
    `| ${s.children} (${s.running} running)`,
    `${(s.wallMs / 1000).toFixed(1)} s`,
    `${s.hostMemUsedMiB} MiB (${s.hostMemGrowthMiB >= 0 ? '+' : ''}${s.hostMemGrowthMiB})`,
    s.pssMiB ? `${s.pssMiB.mean} MiB (max ${s.pssMiB.max})` : '—',
    cpu ? `${cpu.mean.toFixed(3)} % (p50 ${cpu.p50.toFixed(3)}, max ${cpu.max.toFixed(3)})` : '—',
    `${s.idleCpu.totalPercent} %${s.idleCpu.totalPercent <= IDLE_GOAL_TOTAL_PERCENT ? '' : ' (over 50 %)'}`,
    s.idleCpu.serverPercent === null ? '—' : `${s.idleCpu.serverPercent} %`,
    lat(s.listVmsMs),
    lat(s.claimMs),
    `${s.load.one} (${s.load.otherQemu ?? '?'} other QEMUs) |`,
  ].join(' | ');
}

/** The result as markdown: one row per step, the baseline beside it. */
export function renderScaleMarkdown(r: ScaleBenchResult): string {
  const o = r.options;
  const lines = [
    `# scale benchmark, ${r.startedAt.slice(0, 10)}`,
    '',
    `- Host: ${r.machine.nproc} CPUs, ${Math.round(r.machine.memTotalKiB / 1024)} MiB, ${r.machine.accel} (${r.machine.accelReason}), QEMU ${r.machine.qemuVersion}, vmfork ${r.machine.revision}.`,
    `- One pool of ${o.memory} children grown ${o.steps.join(' → ')} through \`vmfork serve\` (HTTP); at each size: ${o.idleWaitSeconds} s idle, CPU over ${o.cpuWindowSeconds} s, ${o.listCalls} \`GET /v1/vms\`, ${o.claims} claims (released, refreshed).`,
    `- Load average at start ${r.load.start.one} (${r.load.start.otherQemu ?? '?'} QEMUs of others), at end ${r.load.end?.one ?? '?'}; host memory used before the pool ${r.hostMemUsedBeforeMiB ?? '?'} MiB.`,
    '',
    '| children | wall (create / resize) | host memory used (growth) | PSS per child | idle CPU per child (% of a core) | idle CPU, all children | server CPU | `GET /v1/vms` p50 / p99 | claim p50 / p99 | load (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...r.steps.map(row),
    '',
    '| baseline | value | where |',
    '|---|---|---|',
    `| idle CPU per child | ${SCALE_BASELINE.idleCpuPercent.value} % | ${SCALE_BASELINE.idleCpuPercent.source} |`,
    `| PSS per idle child | ${SCALE_BASELINE.pssMiB.value} MiB | ${SCALE_BASELINE.pssMiB.source} |`,
    `| claim | ${SCALE_BASELINE.claimMs.value} ms | ${SCALE_BASELINE.claimMs.source} |`,
    `| goal | all idle children ≤ ${IDLE_GOAL_TOTAL_PERCENT} % of one core | issue 13 |`,
    '',
  ];
  if (r.skipped) lines.push(`Not measured: ${r.skipped.steps.join(', ')} children (${r.skipped.reason}).`, '');
  if (r.error) lines.push('## Error', '', '```', r.error, '```', '');
  return `${lines.join('\n')}\n`;
}

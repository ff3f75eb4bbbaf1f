import type { ProvisionBenchResult } from './provision-result.js';

const s = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** The provision benchmark as a markdown table: both paths side by side, their totals, per-desktop costs and ratios. */
export function renderProvisionMarkdown(r: ProvisionBenchResult): string {
  const v = r.vmfork;
  const t = r.traditional;
  const verdict = (ratio: number | undefined, goal: number): string => (ratio === undefined ? '-' : ratio >= goal ? `**met** (≥ ${goal}×)` : `**not met** (goal ≥ ${goal}×)`);
  const lines = [
    `# Provision benchmark — ${r.startedAt.slice(0, 10)}`,
    '',
    `${r.machine.nproc} CPUs, ${r.machine.accel} (${r.machine.accelReason}); QEMU ${r.machine.qemuVersion}; load ${r.load.start.one} at start, ${r.load.end.one} at end.`,
    `Pool of ${r.options.count} persistent desktops (${r.options.memory}, user-data + disposable disks), the same phase 1 (disk layout, a common script asking for one reboot) and phase 2 (identity, a per-child hook with its args and a machine password) on both paths; the traditional desktops ${r.options.concurrency} at a time.`,
    '',
    '| figure | traditional (clone + boot + phase 1 + phase 2, per VM) | vmfork (phase 1 once + replica + forks) | ratio |',
    '| --- | --- | --- | --- |',
    `| pool of ${r.options.count}, wall | ${s(t?.poolMs)} | ${s(v?.poolMs)} | ${r.ratios ? `${r.ratios.pool}× ${verdict(r.ratios.pool, 10)}` : '-'} |`,
    `| each additional desktop | ${s(t?.additionalMs)} | ${s(v?.additionalMs)} | ${r.ratios ? `${r.ratios.additional}× ${verdict(r.ratios.additional, 100)}` : '-'} |`,
    `| per desktop to ready, p50 | ${s(t?.readyMs?.p50)} | ${s(v?.readyMs?.p50)} (from its fork) | - |`,
    `| reboots | ${t ? `${t.reboots.reduce((a, b) => a + b, 0)} (${t.reboots.length} VMs)` : '-'} | ${v ? `${v.phase1Reboots} (phase 1, once); 0 per child` : '-'} | - |`,
    '',
    v ? `vmfork steps: replica (phase 1 + copy) ${s(v.steps.replica)}, template ${s(v.steps.template)}, ${r.options.count} children ${s(v.steps.children)}.` : '',
    r.error ? `\n**Error:** ${r.error.split('\n')[0] ?? ''}` : '',
  ];
  return `${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`;
}

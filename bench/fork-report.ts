import type { ForkBenchResult, TargetVerdict } from './fork-result.js';
import type { LoadAvg } from './machine-facts.js';
import type { Stats } from '../src/util/index.js';

/** Renders the result as the markdown committed next to the JSON and printed at the end of a run. Pure. */

const NA = 'n/a';

function ms(x: number | undefined): string {
  return x === undefined ? NA : `${Math.round(x)} ms`;
}

function sec(x: number | undefined, digits = 1): string {
  return x === undefined ? NA : `${x.toFixed(digits)} s`;
}

function mib(x: number | undefined, digits = 1): string {
  return x === undefined ? NA : `${x.toFixed(digits)} MiB`;
}

function spread(s: Stats | undefined, fmt: (x: number) => string, keys: readonly (keyof Stats)[]): string {
  if (!s) return NA;
  return keys.map((k) => `${k} ${fmt(s[k])}`).join(', ');
}

function times(base: number | undefined, x: number | undefined): string {
  if (base === undefined || x === undefined || x <= 0) return NA;
  const r = base / x;
  return r >= 10 ? `${Math.round(r)}× faster` : `${r.toFixed(1)}× faster`;
}

function targetCells(t: TargetVerdict | undefined): [string, string] {
  if (!t) return ['—', '—'];
  const limit = t.unit ? `≤ ${t.limit} ${t.unit}` : `${t.limit}`;
  const met = t.met === undefined ? 'not measured' : t.met ? '**met**' : '**not met**';
  return [`${limit} (${t.statistic})`, met];
}

function row(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

function failedNote(n: number): string {
  return n ? ` — **${n} failed**` : '';
}

function header(r: ForkBenchResult): string[] {
  const m = r.machine;
  const t = r.raw.template;
  const seq = r.options.children;
  const at = (l: LoadAvg, when: string): string => `${l.one} ${when}${l.otherQemu !== undefined ? ` (${l.otherQemu} other QEMU)` : ''}`;
  const load = [at(r.load.start, 'at start'), ...(r.load.atMemory ? [at(r.load.atMemory, 'at the memory read, with this run\'s children up')] : []), at(r.load.end, 'at end')];
  return [
    `# Fork benchmark — ${r.startedAt.slice(0, 10)}`,
    '',
    `- Machine: ${m.nproc} CPUs, ${(m.memTotalKiB / 1024 ** 2).toFixed(1)} GiB RAM, kernel ${m.kernel}; accelerator **${m.accel}** (${m.accelReason}).`,
    `- QEMU ${m.qemuVersion} (\`${m.qemuBuild}\`); Node ${m.node}; data dir on ${m.dataDirFs}; vmfork ${m.revision}.`,
    `- Load average (1 min): ${load.join(', ')}. Other engineers share these 2 cores: judge the figures with it.`,
    `- Guest: ${t ? `${t.memoryMiB} MiB` : r.options.memory}, 1 vCPU${t?.tbSizeMiB !== undefined ? `, TCG translation cache ${t.tbSizeMiB} MiB` : ''}. ` +
      `${seq} children forked one at a time (latency), then rounds of ${r.options.parallel.join(' and ')} in parallel.`,
    '',
  ];
}

function figures(r: ForkBenchResult): string[] {
  const s = r.summary;
  const target = (id: string): TargetVerdict | undefined => r.targets.find((t) => t.id === id);
  const cold = s.coldBootSeconds;
  const coldMs = cold ? cold.p50 * 1000 : undefined;
  const seq = s.sequential;
  const mem = s.memory;
  const out = [
    '## Figures',
    '',
    row(['figure', 'result', 'next to the cold-boot baseline', 'target', 'verdict']),
    row(['---', '---', '---', '---', '---']),
    row([`cold boot → agent (baseline, n=${cold?.n ?? 0})`, cold ? `p50 ${sec(cold.p50)} (min ${sec(cold.min)}, max ${sec(cold.max)})` : NA, '1×', '—', '—']),
  ];
  if (s.template) {
    const t = s.template;
    out.push(
      row([
        'template creation (once)',
        `${sec(t.createSeconds)} = boot ${sec(t.coldBootSeconds)} + prepare ${ms(t.prepareMs)} + cut ${ms(t.cutMs)}; ${sec(t.wallSeconds)} with sealing`,
        cold ? `${(t.createSeconds / cold.p50).toFixed(2)}× one cold boot` : NA,
        '—',
        '—',
      ]),
    );
  }
  const [readyTarget, readyVerdict] = targetCells(target('ready'));
  out.push(
    row([`fork → running (sequential, n=${seq?.n ?? 0})`, spread(seq?.runningMs, ms, ['p50', 'p95']) + failedNote(seq?.failed ?? 0), times(coldMs, seq?.runningMs?.p50), '—', '—']),
    row([`fork → customized-ready (sequential, n=${seq?.n ?? 0})`, spread(seq?.readyMs, ms, ['p50', 'p95']), times(coldMs, seq?.readyMs?.p50), readyTarget, readyVerdict]),
  );
  for (const p of s.parallel) {
    const estimate = cold ? `${p.count} cold boots ≈ ${sec((p.count * cold.p50) / r.machine.nproc, 0)} on ${r.machine.nproc} cores (estimate)` : NA;
    out.push(row([`${p.count} children in parallel (concurrency ${p.concurrency})`, `wall ${sec(p.wallMs / 1000, 2)}; ready p50 ${ms(p.readyMs?.p50)}${failedNote(p.failed)}`, estimate, '—', '—']));
  }
  const [pssTarget, pssVerdict] = targetCells(target('pss'));
  const three = ['mean', 'p50', 'max'] as const;
  out.push(
    row([`idle child PSS (n=${mem?.n ?? 0}, ${(r.options.idleWaitMs / 1000).toFixed(0)} s after ready)`, spread(mem?.pssMiB, (x) => mib(x), three), `a cold-booted VM holds its whole RAM`, pssTarget, pssVerdict]),
    row(['↳ of which guest RAM (template file)', spread(mem?.guestRamPssMiB, (x) => mib(x), three), '—', '—', '—']),
    row(['guest RAM copy-on-write (Private_Dirty)', spread(mem?.guestRamCowMiB, (x) => mib(x), three), '—', '—', '—']),
    row([
      `sum PSS of ${mem?.n ?? 0} idle children`,
      mem ? `${mib(mem.sumPssMiB, 0)} vs nominal ${mib(mem.nominalMiB, 0)} (${((100 * mem.sumPssMiB) / (mem.nominalMiB || 1)).toFixed(1)}%)` : NA,
      mem ? `host MemAvailable dropped ${mib(mem.memAvailableDropMiB, 0)}` : NA,
      '—',
      '—',
    ]),
  );
  const [ovTarget, ovVerdict] = targetCells(target('overlay'));
  const [rbTarget, rbVerdict] = targetCells(target('reboots'));
  out.push(
    row([`overlay after identity (n=${s.overlayMiB?.n ?? 0})`, spread(s.overlayMiB, (x) => mib(x, 2), ['p50', 'max']), 'a cold boot writes its whole boot', ovTarget, ovVerdict]),
    row(['↳ of which guest data clusters in the overlay', spread(s.overlayDataMiB, (x) => mib(x, 2), ['p50', 'max']), '—', '—', '—']),
    row([
      'reboots per child (guest boot_id vs template)',
      `${s.reboots.rebooted} of ${s.reboots.checked} children${s.reboots.unreadable ? `; ${s.reboots.unreadable} unreadable` : ''}`,
      'a cold boot is one boot',
      rbTarget,
      rbVerdict,
    ]),
    '',
  );
  return out;
}

function breakdowns(r: ForkBenchResult): string[] {
  const seq = r.summary.sequential;
  const out: string[] = [];
  if (seq) {
    const p = seq.phases;
    out.push(
      '## Where the ready time goes (sequential children)',
      '',
      row(['phase', 'p50', 'p95']),
      row(['---', '---', '---']),
      row(['launch: record, lease + tap, overlay, QEMU until QMP greets', ms(p.launchMs?.p50), ms(p.launchMs?.p95)]),
      row(['load the template device state (migrate-incoming → paused)', ms(p.loadMs?.p50), ms(p.loadMs?.p95)]),
      row(['cont', ms(p.contMs?.p50), ms(p.contMs?.p95)]),
      row(['guest agent answers', ms(p.agentMs?.p50), ms(p.agentMs?.p95)]),
      row(['identity applied and verified (host side)', ms(p.identityMs?.p50), ms(p.identityMs?.p95)]),
      ...Object.entries(seq.identityStepsMs).map(([step, s]) => row([`↳ step ${step} (guest side, 10 ms resolution)`, ms(s.p50), ms(s.p95)])),
      '',
    );
  }
  const mem = r.summary.memory;
  if (mem) {
    const line = (label: string, s: Stats | undefined): string => row([label, mib(s?.mean), mib(s?.p50), mib(s?.max)]);
    out.push(
      '## Where an idle child\'s PSS goes',
      '',
      row(['part', 'mean', 'p50', 'max']),
      row(['---', '---', '---', '---']),
      line('guest RAM: its share of the template RAM file + its copy-on-write pages', mem.guestRamPssMiB),
      line('TCG translation cache (anonymous rwx mapping)', mem.tcgCachePssMiB),
      line('rest of QEMU (heap, libraries, device buffers)', mem.otherPssMiB),
      line('total (smaps_rollup Pss)', mem.pssMiB),
      '',
    );
  }
  return out;
}

export function renderForkMarkdown(r: ForkBenchResult): string {
  const lines = [...header(r), ...figures(r), ...breakdowns(r)];
  if (r.error) lines.push('## Run error', '', '```', r.error, '```', '');
  lines.push(`Raw samples: \`fork-${r.startedAt.slice(0, 10)}${r.error ? '-failed' : ''}.json\`. How to read this: bench/README.md.`, '');
  return lines.join('\n');
}

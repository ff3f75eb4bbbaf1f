import type { CliSummary, ForkBenchResult, PathSummary, RoundSummary, TargetVerdict } from './fork-result.js';
import type { LoadAvg } from './machine-facts.js';
import type { Stats } from '../src/util/index.js';

/** Renders the result as the markdown committed next to the JSON and printed at the end of a run. Pure. */

const NA = 'n/a';

const ms = (x: number | undefined): string => (x === undefined ? NA : `${Math.round(x)} ms`);
const sec = (x: number | undefined, digits = 1): string => (x === undefined ? NA : `${x.toFixed(digits)} s`);
const mib = (x: number | undefined, digits = 1): string => (x === undefined ? NA : `${x.toFixed(digits)} MiB`);

function spread(s: Stats | undefined, fmt: (x: number) => string, keys: readonly (keyof Stats)[] = ['p50', 'p95']): string {
  return s ? keys.map((k) => `${k} ${fmt(s[k])}`).join(', ') : NA;
}

function times(baseMs: number | undefined, x: number | undefined): string {
  if (baseMs === undefined || x === undefined || x <= 0) return '';
  const r = baseMs / x;
  return ` (${r >= 10 ? Math.round(r) : r.toFixed(1)}× a cold boot)`;
}

function row(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

const failedNote = (r: RoundSummary | undefined): string => (r?.failed ? ` — **${r.failed} failed**` : '');

function header(r: ForkBenchResult): string[] {
  const m = r.machine;
  const o = r.options;
  const t = r.raw.paths[0]?.template;
  const at = (l: LoadAvg, when: string): string => `${l.one} ${when}${l.otherQemu !== undefined ? ` (${l.otherQemu} other QEMU)` : ''}`;
  const load = [at(r.load.start, 'at start'), ...(r.load.atMemory ? [at(r.load.atMemory, 'after the agent path\'s memory read')] : []), at(r.load.end, 'at end')];
  return [
    `# Fork benchmark — ${r.startedAt.slice(0, 10)}`,
    '',
    `- Machine: ${m.nproc} CPUs, ${(m.memTotalKiB / 1024 ** 2).toFixed(1)} GiB RAM, kernel ${m.kernel}; accelerator **${m.accel}** (${m.accelReason}).`,
    `- QEMU ${m.qemuVersion} (\`${m.qemuBuild}\`); Node ${m.node}; data dir on ${m.dataDirFs}; vmfork ${m.revision}.`,
    `- Load average (1 min): ${load.join(', ')}. Other engineers share these 2 cores: judge the figures with it.`,
    `- Guests: ${t ? `${t.memoryMiB} MiB` : o.memory}, 1 vCPU${t?.tbSizeMiB !== undefined ? `, TCG translation cache ${t.tbSizeMiB} MiB` : ''}. Per path: ${o.children} children one at a time from fresh QEMUs, ${o.children} from warm ones, ${o.parallel} in parallel, ${o.idleChildren} idle for the memory read; ${o.cliRuns} \`vmfork fork --count 1\` calls with and without a warm process.`,
    '- Agent path: the template is cut on vmfork-guest\'s FORK_ME and each child is configured in-process (image `default`). Script path: the identity script through qemu-ga (image `noagent`, built without the agent). Both verified by the same checks.',
    '',
  ];
}

function targets(r: ForkBenchResult): string[] {
  const cell = (t: TargetVerdict): string[] => {
    const limit = t.unit === '×' ? `≥ ${t.limit}×` : t.unit ? `${t.direction === 'max' ? '≤' : '≥'} ${t.limit} ${t.unit}` : `${t.limit}`;
    const value = t.value === undefined ? NA : t.unit === '×' ? `${t.value}×` : `${t.value} ${t.unit}`.trim();
    return [t.label, `${value} (${t.statistic})`, limit, t.met === undefined ? 'not measured' : t.met ? '**met**' : '**not met**'];
  };
  return ['## Targets (agent path)', '', row(['target', 'measured', 'limit', 'verdict']), row(['---', '---', '---', '---']), ...r.targets.map((t) => row(cell(t))), ''];
}

function pathRows(r: ForkBenchResult): string[] {
  const s = r.summary;
  const coldMs = s.coldBootSeconds ? s.coldBootSeconds.p50 * 1000 : undefined;
  const [a, b] = ['agent', 'script'].map((p) => s.paths.find((x) => x.path === p));
  const both = (label: string, f: (p: PathSummary | undefined) => string): string => row([label, f(a), f(b)]);
  const three = ['mean', 'p50', 'max'] as const;
  const n = (f: (p: PathSummary) => RoundSummary | undefined): string => `n=${(a && f(a)?.n) ?? 0}/${(b && f(b)?.n) ?? 0}`;
  return [
    '## The agent path next to the script path',
    '',
    row(['figure', 'agent path (vmfork-guest)', 'script path (qemu-ga)']),
    row(['---', '---', '---']),
    row([`cold boot → agent (baseline, n=${s.coldBootSeconds?.n ?? 0})`, s.coldBootSeconds ? `p50 ${sec(s.coldBootSeconds.p50)} (min ${sec(s.coldBootSeconds.min)}, max ${sec(s.coldBootSeconds.max)})` : NA, '(same image build, without the agent)']),
    both('template creation (once)', (p) => (p?.template ? `boot ${sec(p.template.coldBootSeconds)} + prepare ${ms(p.template.prepareMs)} + cut ${ms(p.template.cutMs)}; ${sec(p.template.wallSeconds)} with sealing` : NA)),
    both(`fork → running, fresh QEMU (${n((p) => p.cold)})`, (p) => spread(p?.cold?.runningMs, ms)),
    both(`fork → customized-ready, fresh QEMU (${n((p) => p.cold)})`, (p) => spread(p?.cold?.readyMs, ms) + times(coldMs, p?.cold?.readyMs?.p50) + failedNote(p?.cold)),
    both(`fork → customized-ready, warm QEMU (${n((p) => p.warm)})`, (p) => spread(p?.warm?.readyMs, ms) + times(coldMs, p?.warm?.readyMs?.p50) + failedNote(p?.warm)),
    both(`${r.options.parallel} children in parallel (engine default concurrency)`, (p) => (p?.parallel ? `wall ${sec(p.parallel.wallMs / 1000, 2)}; ready p50 ${ms(p.parallel.readyMs?.p50)}` : NA) + failedNote(p?.parallel)),
    both(`idle child PSS (${r.options.idleChildren} children, ${(r.options.idleWaitMs / 1000).toFixed(0)} s after ready)`, (p) => spread(p?.memory?.pssMiB, (x) => mib(x), three)),
    both('↳ guest RAM (share of the template file + copy-on-write)', (p) => spread(p?.memory?.guestRamPssMiB, (x) => mib(x), three)),
    both('↳ ↳ of which copy-on-write (Private_Dirty)', (p) => spread(p?.memory?.guestRamCowMiB, (x) => mib(x), three)),
    both('↳ TCG translation cache', (p) => spread(p?.memory?.tcgCachePssMiB, (x) => mib(x), three)),
    both('↳ rest of QEMU (heap, libraries, device buffers)', (p) => spread(p?.memory?.otherPssMiB, (x) => mib(x), three)),
    both('sum PSS of the idle children', (p) => (p?.memory ? `${mib(p.memory.sumPssMiB, 0)} vs nominal ${mib(p.memory.nominalMiB, 0)}; host MemAvailable dropped ${mib(p.memory.memAvailableDropMiB, 0)}` : NA)),
    both('after KSM merged pages (--ksm)', (p) => (p?.memory?.ksm ? `PSS ${spread(p.memory.ksm.pssMiB, (x) => mib(x), ['mean'])}, copy-on-write ${spread(p.memory.ksm.guestRamCowMiB, (x) => mib(x), ['mean'])} (${p.memory.ksm.pagesSharing} pages sharing after ${(p.memory.ksm.waitMs / 1000).toFixed(0)} s)` : '—')),
    both('a warm process waiting (PSS)', (p) => spread(p?.warmProcessPssMiB, (x) => mib(x), three)),
    row(['vmfork-guest in an idle guest', s.agentInGuestMiB ? `RSS ${mib(s.agentInGuestMiB.rss)}, PSS ${mib(s.agentInGuestMiB.pss)}, private dirty ${mib(s.agentInGuestMiB.privateDirty)}` : NA, '—']),
    '',
  ];
}

function cli(r: ForkBenchResult): string[] {
  const c = r.summary.cli;
  const col = (x: CliSummary): string[] => [spread(x.wallMs, ms, ['p50', 'max']), spread(x.readyMs, ms, ['p50']), spread(x.overheadMs, ms, ['p50']), x.speedup === undefined ? NA : `${x.speedup}×`];
  const [cold, warm] = [col(c.cold), col(c.warm)];
  const labels = ['wall (timed from outside, bundled binary)', 'of which the child\'s fork → ready', 'the command around the fork (wall − ready)', 'cold boot p50 ÷ wall p50'];
  return [
    '## One `vmfork fork --count 1` (agent path)',
    '',
    row(['', 'fresh QEMU', 'warm QEMU']),
    row(['---', '---', '---']),
    ...labels.map((l, i) => row([l, cold[i] ?? NA, warm[i] ?? NA])),
    '',
    `Before the command forks anything: node alone ${spread(c.nodeMs, ms, ['p50'])}; \`vmfork fork --help\` (node + the fork command's modules) ${spread(c.bundledHelpMs, ms, ['p50'])} bundled, ${spread(c.unbundledHelpMs, ms, ['p50'])} from the plain compiled tree.`,
    '',
  ];
}

function breakdown(r: ForkBenchResult): string[] {
  const [a, b] = ['agent', 'script'].map((p) => r.summary.paths.find((x) => x.path === p));
  const ph = (label: string, f: (x: RoundSummary | undefined) => Stats | undefined): string => row([label, ms(f(a?.cold)?.p50), ms(f(b?.cold)?.p50), ms(f(a?.warm)?.p50)]);
  const steps = [...new Set([...Object.keys(a?.cold?.identityStepsMs ?? {}), ...Object.keys(b?.cold?.identityStepsMs ?? {})])];
  return [
    '## Where the ready time goes (p50; one at a time)',
    '',
    row(['phase', 'agent, fresh QEMU', 'script, fresh QEMU', 'agent, warm QEMU']),
    row(['---', '---', '---', '---']),
    ph('launch: record, lease + tap, overlay, QEMU until QMP greets', (x) => x?.phases.launchMs),
    ph('load the template device state (migrate-incoming → paused)', (x) => x?.phases.loadMs),
    ph('cont', (x) => x?.phases.contMs),
    ph('the guest answers (HELLO / guest-ping)', (x) => x?.phases.agentMs),
    ph('identity applied and verified (host side)', (x) => x?.phases.identityMs),
    ...steps.map((st) => ph(`↳ step ${st} (guest side)`, (x) => x?.identityStepsMs[st])),
    '',
  ];
}

function checks(r: ForkBenchResult): string[] {
  const s = r.summary;
  return [
    '## Disk and reboots (every probed child, both paths)',
    '',
    row(['figure', 'result']),
    row(['---', '---']),
    row([`overlay after identity (n=${s.overlayMiB?.n ?? 0})`, spread(s.overlayMiB, (x) => mib(x, 2), ['p50', 'max'])]),
    row(['↳ of which guest data clusters in the overlay', spread(s.overlayDataMiB, (x) => mib(x, 2), ['p50', 'max'])]),
    row(['reboots (guest boot_id vs its template\'s)', `${s.reboots.rebooted} of ${s.reboots.checked} children${s.reboots.unreadable ? `; ${s.reboots.unreadable} unreadable` : ''}`]),
    '',
  ];
}

export function renderForkMarkdown(r: ForkBenchResult): string {
  const lines = [...header(r), ...targets(r), ...pathRows(r), ...cli(r), ...breakdown(r), ...checks(r)];
  if (r.error) lines.push('## Run error', '', '```', r.error, '```', '');
  lines.push(`Raw samples: \`fork-${r.startedAt.slice(0, 10)}${r.error ? '-failed' : ''}.json\`. How to read this: bench/README.md.`, '');
  return lines.join('\n');
}

import type { HostsBenchResult, PoolRun } from './hosts-bench.js';

const s = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
const per = (p: PoolRun | undefined): string => (p ? Object.entries(p.perHost).map(([h, v]) => `${h} ${v.children} (ready p50 ${s(v.readyP50Ms)})`).join(', ') : '-');

/** The hosts benchmark as markdown: the one-host run and the three-host run side by side, with their ratios. */
export function renderHostsMarkdown(r: HostsBenchResult): string {
  const one = r.oneHost;
  const three = r.threeHosts;
  const copies = three ? Object.entries(three.copies).map(([h, sec]) => `${h} ${sec.toFixed(1)} s`).join(', ') : '';
  const lines = [
    `# Hosts benchmark — ${r.startedAt.slice(0, 10)}`,
    '',
    `${r.machine.nproc} CPUs, ${r.machine.accel} (${r.machine.accelReason}); QEMU ${r.machine.qemuVersion}; vmfork ${r.machine.revision}; load ${r.load.start.one} at start, ${r.load.end.one} at end.`,
    `A pool of ${r.options.children} children (${r.options.memory}) on one test host, then spread over three, on the test datacenter (real PostgreSQL, one namespace per host, real agents and QEMU under ${r.machine.accel}). **Every test host shares this machine's ${r.machine.nproc} cores**: read the three-host figures as ratios against the one-host run, not as a scale-out.`,
    '',
    '| figure | one host | three hosts | ratio (three / one) |',
    '| --- | --- | --- | --- |',
    `| pool of ${r.options.children}, wall (create → ready) | ${s(one?.wallMs)} | ${s(three?.wallMs)} | ${r.ratios?.wall ?? '-'}× |`,
    `| phase 1 + replica (first host) | ${s(one?.replicaMs)} | ${s(three?.replicaMs)} | - |`,
    `| replica copies (at once) | - | ${copies || '-'} | replica + copies: ${r.ratios?.replica ?? '-'}× |`,
    `| children step (templates + forks) | ${s(one?.childrenMs)} | ${s(three?.childrenMs)} | - |`,
    `| child fork → ready, p50 / p95 | ${s(one?.readyP50Ms)} / ${s(one?.readyP95Ms)} | ${s(three?.readyP50Ms)} / ${s(three?.readyP95Ms)} | ${r.ratios?.readyP50 ?? '-'}× |`,
    `| children per host | ${per(one)} | ${per(three)} | - |`,
    `| API \`GET /v1/pools\`, p50 / p95 | ${r.apiOneServer?.map((a) => `${a.server}: ${a.p50Ms} / ${a.p95Ms} ms`).join(', ') ?? '-'} (one server) | ${r.apiTwoServers?.map((a) => `${a.server}: ${a.p50Ms} / ${a.p95Ms} ms`).join(', ') ?? '-'} (two servers, at once) | ${r.ratios?.apiP50 ?? '-'}× |`,
    r.error ? `\n**Error:** ${r.error.split('\n')[0] ?? ''}` : '',
  ];
  return `${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`;
}

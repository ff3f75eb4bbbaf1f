import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupPrefix, detectCgroups, listVmCgroups, probeCgroups, vmCgroupLimits, type CgroupShape } from '../../src/host/index.js';
import { createTestHome, ensureImage, teardownHome, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';
import { useLeakCheck } from '../fixtures/leak-check.js';

let th: TestHome;
let tracker: VmTracker;

before(async () => {
  th = await createTestHome('cgroup');
  tracker = new VmTracker(th);
  await ensureImage(th);
});

useLeakCheck(() => th, () => tracker.teardown());

after(async () => {
  await tracker.teardown();
  assert.deepEqual(await teardownHome(th), [], 'the home left nothing behind');
});

const MiB = 1024 ** 2;
const read = (p: string): string => readFileSync(p, 'utf8').trim();

/** The cgroup (relative to its hierarchy's root) /proc/PID/cgroup names for a controller, v1 or v2. */
function cgroupOf(pid: number, controller: string, version: 1 | 2): string | undefined {
  for (const line of read(`/proc/${pid}/cgroup`).split('\n')) {
    const [, list, path] = line.split(':');
    if (version === 2 ? list === '' : (list ?? '').split(',').includes(controller)) return path;
  }
  return undefined;
}

/** kB of RSS in all of QEMU's mappings, and in its guest RAM mapping (the one mapping exactly `memoryMiB`). */
function rssKb(pid: number, memoryMiB: number): { total: number; guestRam: number } {
  let total = 0;
  let guestRam = 0;
  let size = 0;
  for (const line of read(`/proc/${pid}/smaps`).split('\n')) {
    const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (m?.[1] === 'Size') size = Number(m[2]);
    if (m?.[1] === 'Rss') {
      total += Number(m[2]);
      if (size === memoryMiB * 1024) guestRam += Number(m[2]);
    }
  }
  return { total, guestRam };
}

vmTest("a VM's QEMU sits in its own cgroup with its limits written; destroy removes it, gc a stray one", () => tracker, async (t) => {
  const probe = await probeCgroups();
  if (!probe.on) {
    t.skip(`cgroups unavailable here: ${probe.why}`);
    return;
  }
  const name = tracker.track('cg1');
  await th.cli(['vm', 'boot', '--image', 'default', '--name', name, '--json']);
  const show = JSON.parse((await th.cli(['vm', 'show', name, '--json'])).stdout) as { process: { pid: number }; spec: CgroupShape };
  const pid = show.process.pid;
  const limits = vmCgroupLimits(show.spec);
  const dirName = `${cgroupPrefix(th.root)}${name}`;

  const support = await detectCgroups();
  const paths = (await listVmCgroups(th.root)).get(name) ?? [];
  assert.equal(paths.length, support.hierarchies.length, 'one cgroup per hierarchy');
  for (const h of support.hierarchies) {
    const dir = join(h.mount, dirName);
    assert.ok(paths.includes(dir), `${dir} listed`);
    for (const c of h.controllers) assert.equal(cgroupOf(pid, c, h.version), `/${dirName}`, `QEMU ${pid} in its ${c} cgroup`);
    assert.ok(read(join(dir, 'cgroup.procs')).split('\n').includes(String(pid)));
    const v1 = h.version === 1;
    if (h.controllers.includes('memory')) assert.equal(Number(read(join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'))), limits.memoryBytes);
    if (h.controllers.includes('cpu')) assert.equal(Number(read(join(dir, v1 ? 'cpu.shares' : 'cpu.weight'))), v1 ? limits.cpuShares : limits.cpuWeight);
    if (h.controllers.includes('pids')) assert.equal(Number(read(join(dir, 'pids.max'))), limits.pidsMax);
  }
  // a cold boot gives TCG no tb-size: QEMU 7.2's default code cache (1 GiB) is budgeted
  const codeCache = show.spec.accel === 'tcg' ? (show.spec.tbSizeMiB ?? 1024) : 0;
  assert.equal(limits.memoryBytes, (show.spec.memoryMiB + codeCache + 96) * MiB);

  // the measure behind QEMU_OVERHEAD_MIB: what the VM's memory cgroup peaked at beyond the guest RAM it touched
  const rss = rssKb(pid, show.spec.memoryMiB);
  const threads = /Threads:\s+(\d+)/.exec(read(`/proc/${pid}/status`))?.[1];
  const mem = support.hierarchies.find((h) => h.controllers.includes('memory'));
  const peak = mem?.version === 1 ? Number(read(join(mem.mount, dirName, 'memory.max_usage_in_bytes'))) : mem ? Number(read(join(mem.mount, dirName, 'memory.peak')).split('\n')[0]) : NaN;
  t.diagnostic(
    `QEMU ${pid} after boot: RSS ${Math.round(rss.total / 1024)} MiB, guest RAM ${Math.round(rss.guestRam / 1024)} MiB of ${show.spec.memoryMiB}, ` +
      `outside guest RAM ${Math.round((rss.total - rss.guestRam) / 1024)} MiB (tb-size ${show.spec.tbSizeMiB ?? '-'}); cgroup peak ${Math.round(peak / MiB)} MiB, ` +
      `peak beyond guest RAM ${Math.round(peak / MiB - rss.guestRam / 1024)} MiB; threads ${threads}`,
  );
  assert.ok(peak < limits.memoryBytes, 'the boot stayed under its limit');

  await th.cli(['vm', 'destroy', name]);
  for (const p of paths) assert.ok(!existsSync(p), `destroy removed ${p}`);

  // a cgroup left by a teardown cut short (no VM record has its name): the next gc pass removes it
  const stray = support.hierarchies.map((h) => join(h.mount, `${cgroupPrefix(th.root)}ghost`));
  try {
    for (const p of stray) mkdirSync(p);
    const gc = JSON.parse((await th.cli(['gc', '--json'])).stdout) as { actions: { kind: string; done: boolean }[] };
    assert.deepEqual(gc.actions.filter((a) => a.kind === 'remove-cgroup').map((a) => a.done), [true]);
    for (const p of stray) assert.ok(!existsSync(p), `gc removed ${p}`);
  } finally {
    for (const p of stray) if (existsSync(p)) rmdirSync(p);
  }
});

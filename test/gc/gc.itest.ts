import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { waitForExit } from '../../src/host/index.js';
import { ip } from '../../src/network/index.js';
import { currentProcess, deleteVm, getNetwork, getVm, listLeases, type LeaseRow } from '../../src/store/index.js';
import { forkTracked, qemuProcessesMatching, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

// the shared template rung; each test forks its own child, makes it a crash's leftover, and lets `vmfork gc` find it
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;

interface GcJson {
  dryRun: boolean;
  actions: { kind: string; target: string; reason: string; done: boolean; error?: string }[];
}

async function gc(...flags: string[]): Promise<GcJson> {
  const t0 = performance.now();
  const r = await fx.th.cli(['gc', '--json', ...flags]);
  process.stderr.write(`vmfork gc ${flags.join(' ')}: ${Math.round(performance.now() - t0)} ms\n`);
  return JSON.parse(r.stdout) as GcJson;
}

async function forkOne(pattern: string): Promise<{ name: string; dir: string; pid: number; startTime: number; lease: LeaseRow }> {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: pattern });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const name = batch.children[0]?.name as string;
  const vm = await getVm(fx.th.db, name);
  const proc = await currentProcess(fx.th.db, name);
  const lease = (await listLeases(fx.th.db)).find((l) => l.vm_name === name);
  assert.ok(vm && proc && lease, `${name} runs with a record, a QEMU and a lease`);
  return { name, dir: vm.dir, pid: proc.pid, startTime: proc.start_time, lease };
}

async function tapExists(lease: LeaseRow): Promise<boolean> {
  const net = await getNetwork(fx.th.db, lease.network_name);
  assert.ok(net);
  return (await ip(['-n', net.netns, 'link', 'show', 'dev', lease.tap], { allowFailure: true })).code === 0;
}

/** Nothing of the child is left: no QEMU naming its directory, no tap, no overlay, no lease, no record. */
async function assertNothingLeft(c: { name: string; dir: string; lease: LeaseRow }): Promise<void> {
  assert.deepEqual(await qemuProcessesMatching(`${c.dir}/`), [], 'no QEMU');
  assert.equal(await tapExists(c.lease), false, 'no tap');
  assert.equal(existsSync(c.dir), false, 'no overlay or directory');
  assert.equal((await listLeases(fx.th.db)).some((l) => l.vm_name === c.name || (l.network_name === c.lease.network_name && l.tap === c.lease.tap)), false, 'no lease');
  assert.equal(await getVm(fx.th.db, c.name), undefined, 'no record');
}

vmTest('a child whose QEMU was killed -9: gc --dry-run lists it and changes nothing; gc leaves no QEMU, tap, overlay, lease or record', tracker, async () => {
  const c = await forkOne('gc-kill-{n}');
  process.kill(c.pid, 'SIGKILL');
  assert.ok(await waitForExit(c.pid, c.startTime, 60_000), 'its QEMU is gone');

  const dry = await gc('--dry-run');
  assert.equal(dry.dryRun, true);
  // the rung (a data dir with a template, its files and default network) holds nothing else gc would take but the
  // empty cgroups of other files' VMs torn down while their QEMU was still leaving (gc's by design: docs/cgroups.md)
  const others = (a: { kind: string; reason: string }): boolean => a.kind === 'remove-cgroup' && !a.reason.includes(c.name);
  assert.deepEqual(dry.actions.filter((a) => !others(a)).map((a) => a.target), [`VM ${c.name}`], JSON.stringify(dry.actions));
  const listed = dry.actions.find((a) => a.target === `VM ${c.name}`);
  assert.equal(listed?.kind, 'destroy-vm', JSON.stringify(dry.actions));
  assert.match(listed.reason, /QEMU is gone/);
  assert.ok(dry.actions.every((a) => !a.done), 'a dry run does nothing');
  assert.equal((await getVm(fx.th.db, c.name))?.state, 'running', 'the record is untouched');
  assert.ok(existsSync(c.dir) && (await tapExists(c.lease)), 'overlay and tap are still there');

  const pass = await gc();
  assert.equal(pass.dryRun, false);
  assert.deepEqual(pass.actions.filter((a) => a.target === `VM ${c.name}`).map((a) => [a.kind, a.done]), [['destroy-vm', true]], JSON.stringify(pass.actions));
  await assertNothingLeft(c);
  assert.equal((await gc('--dry-run')).actions.some((a) => a.target.includes(c.name) || a.target.includes(c.dir)), false, 'a second pass finds nothing of it');
});

vmTest('a running QEMU whose record is gone (a crash between its record and its end): gc kills it by pid + start time and frees its tap, lease and directory', tracker, async () => {
  const c = await forkOne('gc-orphan-{n}');
  // what a vmfork killed between two writes of a teardown leaves: the QEMU and its resources, no VM record
  await deleteVm(fx.th.db, c.name);

  const dry = await gc('--dry-run');
  // its cgroups are left out here: gc lists one only when it is empty, which races the QEMU's exit (cgroup.itest
  // checks gc's removal of a stray cgroup)
  const notCgroup = (a: { kind: string }): boolean => a.kind !== 'remove-cgroup';
  const kinds = dry.actions.filter((a) => notCgroup(a) && (a.target === `QEMU ${c.pid}` || a.target.includes(c.dir) || a.reason.includes(c.name))).map((a) => a.kind);
  assert.deepEqual(kinds.sort(), ['kill-qemu', 'release-lease', 'remove-dir'], JSON.stringify(dry.actions));
  assert.deepEqual(await qemuProcessesMatching(`${c.dir}/`), [c.pid], 'the dry run left the QEMU running');

  const pass = await gc();
  const ours = pass.actions.filter((a) => notCgroup(a) && (a.target === `QEMU ${c.pid}` || a.target.includes(c.dir) || a.reason.includes(c.name)));
  assert.deepEqual(ours.map((a) => [a.kind, a.done]), [['kill-qemu', true], ['release-lease', true], ['remove-dir', true]], JSON.stringify(pass.actions));
  await assertNothingLeft(c);
});

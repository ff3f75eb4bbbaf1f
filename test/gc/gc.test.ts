import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runGc } from '../../src/gc/index.js';
import { allocateLease, createNetwork, createTap, dataDirNetnsPrefix, deleteNetwork, ip, listNamespaces } from '../../src/network/index.js';
import { createImage } from '../../src/qemu/index.js';
import { parseVmSpec } from '../../src/spec/index.js';
import { LOCAL_HOST_ID, openStore } from '../../src/store/db.js';
import { listLeases } from '../../src/store/networks-repo.js';
import { recordProcess } from '../../src/store/processes-repo.js';
import { getVm, insertVm } from '../../src/store/vms-repo.js';
import type { Actor } from '../../src/state/index.js';
import { createLogger } from '../../src/util/log.js';
import { deadActor, testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { isRoot } from '../network/itest-helpers.js';
import { testHomeLayout } from '../helpers/store.js';

/** A pid that ran and exited (nothing has it now, unless the kernel reused it: then it is no QEMU of ours either). */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

async function tapsIn(netns: string): Promise<string[]> {
  const r = await ip(['-n', netns, '-o', 'link', 'show'], { allowFailure: true });
  return [...r.stdout.matchAll(/^\d+:\s+(vt\d+)[@:]/gm)].map((m) => m[1] ?? '');
}

// what a crash leaves, made by hand in a fresh data dir (no QEMU): gc lists it in a dry run without touching it,
// removes it in a real pass, and a pass after that finds nothing
test('gc on a data dir with fabricated leftovers: dry run lists them and changes nothing; the pass removes them; nothing is left', { skip: !isRoot() && 'needs root (network namespaces)' }, withTempDir('vmfork-gc-', async (root) => {
  const home = await testHomeLayout(root);
  const db = await openStore(home.db);
  const deps = { db, home, log: createLogger(undefined) };
  const prefix = await dataDirNetnsPrefix(db, {});
  const strayNs = `${prefix}ghost`;
  try {
    // an orphan VM directory holding an overlay, and one holding only a log
    const ghost = join(home.vms, 'ghost');
    mkdirSync(ghost, { recursive: true });
    await createImage(join(ghost, 'disk.qcow2'), { format: 'qcow2', sizeBytes: 1024 ** 2 });
    mkdirSync(join(home.vms, 'ghost-2'));
    writeFileSync(join(home.vms, 'ghost-2', 'serial.log'), 'boot\n');
    // a stopped cold-booted VM (kept: it starts again) whose QEMU left its sockets and a pidfile of a dead pid
    const cold = join(home.vms, 'cold');
    mkdirSync(cold);
    writeFileSync(join(cold, 'disk.qcow2'), 'overlay');
    writeFileSync(join(cold, 'qmp.sock'), '');
    writeFileSync(join(cold, 'qemu.pid'), `${deadPid()}\n`);
    const now = new Date().toISOString();
    await insertVm(db, { name: 'cold', host_id: LOCAL_HOST_ID, image_name: null, template_name: null, state: 'stopped', role: 'vm', dir: cold, spec_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor('boot'));
    // a network (the project's code: namespace, bridge), a tap no lease names, a lease no VM holds (with its tap)
    const { network: net } = await createNetwork(db, { name: 'gcnet', cidr: '10.237.5.0/24', netnsPrefix: prefix });
    await createTap(net, 'vt77');
    const lease = await allocateLease(db, { network: 'gcnet', vmName: 'nobody' });
    await createTap(net, lease.tap);
    // a namespace with this data dir's prefix and no network record
    await ip(['netns', 'add', strayNs]);

    const expected = [
      'release-lease 10.237.5.2 on gcnet (tap vt2)',
      'delete-tap ' + `${net.netns}/vt77`,
      `delete-netns netns ${strayNs}`,
      `remove-file ${join(cold, 'qmp.sock')}`,
      `remove-file ${join(cold, 'qemu.pid')}`,
      `remove-dir ${ghost}`,
      `remove-dir ${join(home.vms, 'ghost-2')}`,
    ];
    const dry = await runGc(deps, { dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.actions.map((a) => `${a.kind} ${a.target}`).sort(), [...expected].sort());
    assert.ok(dry.actions.every((a) => !a.done && a.reason.length > 0));
    assert.ok(existsSync(join(ghost, 'disk.qcow2')) && existsSync(join(cold, 'qemu.pid')), 'a dry run removes nothing');
    assert.deepEqual((await tapsIn(net.netns)).sort(), ['vt2', 'vt77']);
    assert.ok((await listNamespaces()).includes(strayNs));

    const pass = await runGc(deps);
    assert.deepEqual(pass.actions.filter((a) => !a.done), [], JSON.stringify(pass.actions));
    assert.ok(!existsSync(ghost) && !existsSync(join(home.vms, 'ghost-2')), 'orphan directories gone');
    assert.ok(existsSync(join(cold, 'disk.qcow2')) && !existsSync(join(cold, 'qmp.sock')) && !existsSync(join(cold, 'qemu.pid')), 'the stopped VM keeps its disk, loses its stale files');
    assert.deepEqual(await tapsIn(net.netns), [], 'both record-less taps deleted');
    assert.deepEqual(await listLeases(db), []);
    assert.ok(!(await listNamespaces()).includes(strayNs));
    assert.ok((await listNamespaces()).includes(net.netns), "the network's own namespace stays");
    assert.deepEqual((await runGc(deps, { dryRun: true })).actions, [], 'nothing left over');
  } finally {
    await deleteNetwork(db, 'gcnet').catch(() => undefined);
    await ip(['netns', 'del', strayNs], { allowFailure: true });
    await db.destroy();
  }
}));

// records whose QEMU died (recorded pid + start time of a process that has exited), and one a dead vmfork left
// forking: the pass hands each to its service (destroy, reconcile, heal) and says what it did
test('gc on dead records: a child outside a pool destroyed, a cold-booted VM marked stopped, a dead fork healed', withTempDir('vmfork-gc-rec-', async (root) => {
  const home = await testHomeLayout(root);
  const db = await openStore(home.db);
  const deps = { db, home, log: createLogger(undefined) };
  try {
    const gone = (await deadActor('boot')).owner;
    const now = new Date().toISOString();
    const vm = async (name: string, role: 'child' | 'vm', state: 'running' | 'forking', actor: Actor): Promise<string> => {
      const dir = join(home.vms, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'disk.qcow2'), 'overlay');
      await insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: null, template_name: role === 'child' ? 't' : null, state, role, dir, spec_json: JSON.stringify(parseVmSpec({ name, accel: 'tcg', memoryMiB: 256, qmpSocket: join(dir, 'qmp.sock') })), last_error: null, created_at: now, updated_at: now }, actor);
      await recordProcess(db, { vm_name: name, pid: gone.pid, start_time: gone.startTime, qmp_path: join(dir, 'qmp.sock'), agent_path: null, pidfile: join(dir, 'qemu.pid'), argv_json: '[]', started_at: now, exited_at: null });
      return dir;
    };
    const live = await testActor('boot');
    const child = await vm('crashed', 'child', 'running', live);
    const cold = await vm('cold', 'vm', 'running', live);
    const half = await vm('half', 'child', 'forking', await deadActor('fork'));

    const dry = await runGc(deps, { dryRun: true });
    assert.deepEqual(dry.actions.map((a) => `${a.kind} ${a.target}`), ['heal-record vm half', 'destroy-vm VM crashed', 'reconcile-vm VM cold']);
    assert.equal((await getVm(db, 'cold'))?.state, 'running', 'a dry run reconciles nothing');

    const pass = await runGc(deps);
    assert.deepEqual(pass.actions.map((a) => [a.kind, a.done]), [['heal-record', true], ['destroy-vm', true], ['reconcile-vm', true]], JSON.stringify(pass.actions));
    assert.equal(await getVm(db, 'crashed'), undefined);
    assert.equal(await getVm(db, 'half'), undefined);
    assert.ok(!existsSync(child) && !existsSync(half), 'their overlays are gone');
    assert.equal((await getVm(db, 'cold'))?.state, 'stopped');
    assert.ok(existsSync(join(cold, 'disk.qcow2')), 'a cold-booted VM keeps its disk');
    assert.deepEqual((await runGc(deps, { dryRun: true })).actions, []);
  } finally {
    await db.destroy();
  }
}));

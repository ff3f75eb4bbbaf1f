import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isVmforkError } from '../../src/errors.js';
import { actorFor } from '../../src/host/index.js';
import { deleteVm, insertCheckpoint, listCheckpoints, requireVm, updateVm } from '../../src/store/index.js';
import { checkLabel, defaultLabel, forgetCheckpoints, planCheckpoint, planRevert, type VmDeps } from '../../src/vm/index.js';
import { frozenDisks } from '../../src/vm/checkpoint-files.js';
import { addVmRow, recordsOnlyDeps } from './owner-fixtures.js';

let deps: VmDeps;
let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'vmfork-ckpt-'));
  deps = await recordsOnlyDeps(root);
});

after(async () => {
  await deps.db.destroy();
  rmSync(root, { recursive: true, force: true });
});

/** Asserts `p` rejects with `code` and returns the error's details. */
async function refused(p: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  let details: Record<string, unknown> = {};
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isVmforkError(err), String(err));
    assert.equal(err.code, code, err.message);
    details = err.details ?? {};
    return true;
  });
  return details;
}

test('labels: letters, digits, . _ -, starting with a letter or digit, at most 63', () => {
  for (const ok of ['c1', 'before-upgrade', 'v1.2_rc', 'A'.repeat(63)]) assert.equal(checkLabel(ok), ok);
  for (const bad of ['', '-x', '.hidden', '..', 'a/b', 'a b', 'x'.repeat(64), 'é']) {
    assert.throws(() => checkLabel(bad), (e: unknown) => isVmforkError(e) && e.code === 'VMFORK_INVALID_ARGUMENT', bad);
  }
});

test('the default label is the UTC second, with -2, -3 … when that second is taken', () => {
  const at = new Date('2026-12-03T16:55:01.789Z');
  assert.equal(defaultLabel(at, new Set()), 'ckpt-20261203-165501');
  assert.equal(defaultLabel(at, new Set(['ckpt-20261203-165501'])), 'ckpt-20261203-165501-2');
  assert.equal(defaultLabel(at, new Set(['ckpt-20261203-165501', 'ckpt-20261203-165501-2'])), 'ckpt-20261203-165501-3');
  assert.equal(checkLabel(defaultLabel(at, new Set())), 'ckpt-20261203-165501');
});

test('a checkpoint of a VM that is not running is refused with the states it needs; nothing is written', async () => {
  await addVmRow(deps, 'off1', 'stopped', await actorFor('boot'));
  const details = await refused(planCheckpoint(deps, 'off1', 'c1'), 'VMFORK_VM_STATE');
  assert.deepEqual(details.allowed, ['running']);
  assert.equal(details.state, 'stopped');
  assert.deepEqual(await listCheckpoints(deps.db, 'off1'), []);
  await refused(planCheckpoint(deps, 'ghost'), 'VMFORK_VM_NOT_FOUND');
  // a template's parent or a pool's internal clone belongs to the operation making it
  await addVmRow(deps, 'clone1', 'stopped', await actorFor('boot'));
  await updateVm(deps.db, 'clone1', { role: 'clone' });
  assert.deepEqual((await refused(planCheckpoint(deps, 'clone1'), 'VMFORK_VM_STATE')).roles, ['vm', 'child']);
  await refused(planCheckpoint(deps, 'off1', '../x'), 'VMFORK_INVALID_ARGUMENT');
});

test('a duplicate label is refused, by the plan and by the store\'s unique key', async () => {
  const dir = await addVmRow(deps, 'dup1', 'stopped', await actorFor('boot'));
  const row = { vm_name: 'dup1', label: 'c1', memory: 1, state_path: join(dir, 'state'), disks_json: '[]', created_at: new Date().toISOString() };
  await insertCheckpoint(deps.db, row);
  assert.deepEqual((await refused(planCheckpoint(deps, 'dup1', 'c1'), 'VMFORK_CHECKPOINT_EXISTS')).label, 'c1');
  await refused(insertCheckpoint(deps.db, row), 'VMFORK_CHECKPOINT_EXISTS');
  // the default label never collides
  await insertCheckpoint(deps.db, { ...row, label: defaultLabel(new Date(), new Set(['c1'])) });
  assert.equal((await listCheckpoints(deps.db, 'dup1')).length, 2);
});

test('a revert to an unknown label, to lost files, or of a VM in the wrong state is refused; destroy drops the rows', async () => {
  const dir = await addVmRow(deps, 'rv1', 'registered', await actorFor('boot'));
  const details = await refused(planRevert(deps, 'rv1', 'nope'), 'VMFORK_CHECKPOINT_NOT_FOUND');
  assert.deepEqual(details.labels, []);
  const statePath = join(dir, 'state');
  const disk = join(dir, 'disk.qcow2');
  await insertCheckpoint(deps.db, { vm_name: 'rv1', label: 'c1', memory: 1, state_path: statePath, disks_json: JSON.stringify([{ id: 'disk0', path: disk }]), created_at: new Date().toISOString() });
  assert.deepEqual((await refused(planRevert(deps, 'rv1', 'nope'), 'VMFORK_CHECKPOINT_NOT_FOUND')).labels, ['c1']);
  assert.equal((await refused(planRevert(deps, 'rv1', 'c1'), 'VMFORK_CHECKPOINT_NOT_FOUND')).file, statePath, 'the state file is gone');
  writeFileSync(statePath, 'state');
  const wrong = await refused(planRevert(deps, 'rv1', 'c1'), 'VMFORK_VM_STATE');
  assert.deepEqual(wrong.allowed, ['running', 'stopped', 'failed']);
  await deleteVm(deps.db, 'rv1');
  assert.deepEqual(await listCheckpoints(deps.db, 'rv1'), [], 'the rows went with the VM');
});

test('a disk layer made anew at its path since the cut refuses the revert: RAM never resumes over another disk', async () => {
  const dir = await addVmRow(deps, 'rm1', 'stopped', await actorFor('boot'));
  const statePath = join(dir, 'state');
  writeFileSync(statePath, 'state');
  const disk = join(dir, 'disk.qcow2');
  const disks = await frozenDisks([{ id: 'disk0', path: disk }]);
  await insertCheckpoint(deps.db, { vm_name: 'rm1', label: 'c1', memory: 1, state_path: statePath, disks_json: JSON.stringify(disks), created_at: new Date().toISOString() });
  await planRevert(deps, 'rm1', 'c1');
  // what a refresh does to a child's first overlay: removed and made again at the same path
  const keep = join(dir, 'keep');
  writeFileSync(keep, 'holds the old inode number taken');
  rmSync(disk);
  writeFileSync(disk, 'a new overlay');
  assert.match(String((await refused(planRevert(deps, 'rm1', 'c1'), 'VMFORK_CHECKPOINT_NOT_FOUND')).file), /disk\.qcow2$/);
});

test('forgetting checkpoints before a refresh: rows and state files gone, reset disks back on their first path, their layers removed', async () => {
  const dir = await addVmRow(deps, 'fg1', 'stopped', await actorFor('boot'));
  mkdirSync(join(dir, 'overlays'));
  mkdirSync(join(dir, 'checkpoints', 'c1'), { recursive: true });
  const layers = { disk0: join(dir, 'overlays', 'disk0-0123abcd.qcow2'), home: join(dir, 'overlays', 'home-89abcdef.qcow2') };
  for (const f of [...Object.values(layers), join(dir, 'checkpoints', 'c1', 'state')]) writeFileSync(f, 'x');
  const spec = { name: 'fg1', accel: 'tcg', memoryMiB: 512, qmpSocket: join(dir, 'qmp.sock'), disks: [{ id: 'disk0', path: layers.disk0, format: 'qcow2' }, { id: 'home', path: layers.home, format: 'qcow2' }] };
  await updateVm(deps.db, 'fg1', { spec_json: JSON.stringify(spec) });
  await insertCheckpoint(deps.db, { vm_name: 'fg1', label: 'c1', memory: 1, state_path: join(dir, 'checkpoints', 'c1', 'state'), disks_json: '[]', created_at: new Date().toISOString() });
  assert.deepEqual(await forgetCheckpoints(deps, 'fg1', { resetDisks: ['disk0'] }), ['c1']);
  assert.deepEqual(await listCheckpoints(deps.db, 'fg1'), []);
  assert.ok(!existsSync(join(dir, 'checkpoints')), 'the state files (the last user\'s RAM) are gone');
  assert.ok(!existsSync(layers.disk0), 'the reset disk\'s layers are gone');
  assert.ok(existsSync(layers.home), 'a disk not reset keeps its chain');
  const after = JSON.parse((await requireVm(deps.db, 'fg1')).spec_json) as { disks: { id: string; path: string }[] };
  assert.deepEqual(after.disks.map((d) => d.path), [join(dir, 'disk.qcow2'), layers.home]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeLayout } from '../../src/config/home.js';
import { runDoctor } from '../../src/host/doctor.js';
import { probeNetworking } from '../../src/host/net-probe.js';
import { listImages, upsertReadyImage } from '../../src/store/images-repo.js';
import { run } from '../../src/util/exec.js';
import { openTestStore } from '../helpers/store.js';

const PVM_FACTS = { cpuinfo: 'processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n', modules: ['kvm', 'kvm_pvm'], kvmDeviceUsable: true };

async function namespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFailure: true });
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

test('doctor reports every check, finds a registered image, and a forced unusable kvm fails it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-doctor-'));
  const db = await openTestStore();
  try {
    const disk = join(dir, 'base.qcow2');
    writeFileSync(disk, 'x');
    const now = new Date().toISOString();
    await upsertReadyImage(db, { name: 'default', source: 'imported', disk_path: disk, kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
    const home = homeLayout(join(dir, 'home-not-created-yet'));
    const report = await runDoctor({ home, images: () => listImages(db), facts: PVM_FACTS });
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['qemu-system', 'qemu-img', 'accel', 'shm', 'data-dir', 'network', 'root', 'guest-image', 'debootstrap', 'confine-cgroups', 'confine-qemu-user', 'confine-sandbox', 'confine-file-modes', 'confine-chroot'],
    );
    assert.equal(report.accel, 'tcg');
    assert.match(report.accelReason, /^PVM detected/);
    assert.match(report.qemuVersion ?? '', /^\d+\.\d+/);
    assert.equal(report.ok, report.checks.every((c) => c.ok || !c.required));
    for (const c of report.checks) assert.equal(c.fix === null, c.ok, `${c.name}: a fix exactly when failed`);
    const image = report.checks.find((c) => c.name === 'guest-image');
    assert.equal(image?.ok, true);
    assert.match(image?.detail ?? '', /"default"/);
    assert.ok((report.dataDirFreeBytes ?? 0) > 0, 'a data dir that does not exist yet is measured on its parent');

    const forced = await runDoctor({ home, images: () => listImages(db), facts: PVM_FACTS, accel: 'kvm' });
    const accel = forced.checks.find((c) => c.name === 'accel');
    assert.equal(forced.ok, false);
    assert.equal(accel?.ok, false);
    assert.match(accel?.detail ?? '', /VMFORK_ACCEL_UNAVAILABLE|cannot be used/);
    assert.equal(forced.accel, 'tcg', 'still says what auto would use');
  } finally {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('network probe leaves no namespace behind, and never deletes a namespace it did not create', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const ns = `vmfork-doctor-test-${process.pid}`;
  const ok = await probeNetworking(ns);
  assert.equal(ok.ok, true, ok.detail);
  assert.ok(!(await namespaces()).includes(ns));

  // an existing namespace of the same name makes `ip netns add` fail: the probe must report it and leave it alone
  await run('ip', ['netns', 'add', ns]);
  try {
    const clash = await probeNetworking(ns);
    assert.equal(clash.ok, false);
    assert.match(clash.detail, /ip netns add/);
    assert.ok((await namespaces()).includes(ns));
  } finally {
    await run('ip', ['netns', 'delete', ns]);
  }
});

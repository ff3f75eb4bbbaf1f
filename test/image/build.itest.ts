import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../../src/image/manifest.js';
import { GUEST_PACKAGES } from '../../src/image/recipe.js';
import { convert } from '../../src/qemu/qemu-img.js';
import { run } from '../../src/util/exec.js';
import { createTestHome, TEST_HOOKS } from '../fixtures/ladder.js';

/**
 * The real build: debootstrap from the host's mirror into the shared VMFORK_IMAGE_CACHE (minutes the first time,
 * then cached). Claims about the image are checked twice: in the manifest the build wrote, and independently in
 * the filesystem inside the qcow2 (read with debugfs, no mount).
 */
test('vmfork image build: required packages, vmgenid kernel, clean template, cached second build', { timeout: 30 * 60_000 }, async (t) => {
  const th = await createTestHome('image-build');
  const scratch = mkdtempSync(join(tmpdir(), 'vmfork-itest-raw-'));
  try {
    // the test image's recipe (agent + test hooks): CI builds each recipe once, and this one is everyone's
    const first = JSON.parse((await th.cli(['image', 'build', '--name', 'itest', '--hooks', TEST_HOOKS, '--json'], { timeoutMs: 30 * 60_000 })).stdout) as BuildOutput;
    t.diagnostic(`first build: cached=${first.cached} in ${first.seconds} s (cache ${th.home.images})`);
    assert.equal(first.image.name, 'itest');
    assert.ok(first.image.disk_path.startsWith(`${th.home.images}/`), 'files live in the (shared) image dir');

    const manifest = await readManifest(join(th.home.images, first.image.recipe_hash));
    const build = manifest.build;
    assert.ok(build, 'a built image records its build');
    const installed = new Set(build.packages.map((p) => p.name));
    for (const p of GUEST_PACKAGES) assert.ok(installed.has(p), `package ${p} installed`);
    assert.ok(!installed.has('linux-image-cloud-amd64'));
    assert.equal(build.kernel.config.CONFIG_VMGENID, 'y');
    assert.deepEqual(build.hygiene, { machineIdBytes: 0, sshHostKeys: [], randomSeed: false });
    assert.ok(build.modules.bytesAfter < build.modules.bytesBefore / 4, 'unused kernel modules were pruned');
    assert.equal(manifest.cmdline, 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet tsc=reliable nowatchdog psi=0');

    // independent look into the image itself
    const raw = join(scratch, 'root.raw');
    await convert(first.image.disk_path, raw, { outFormat: 'raw', srcFormat: 'qcow2' });
    const debugfs = async (cmd: string): Promise<string> => {
      const r = await run('debugfs', ['-R', cmd, raw], { allowFailure: true });
      return r.stdout + r.stderr;
    };
    assert.match(await debugfs(`cat /boot/config-${build.kernel.version}`), /^CONFIG_VMGENID=y$/m);
    assert.match(await debugfs('stat /etc/machine-id'), /Size: 0\b/);
    assert.doesNotMatch(await debugfs('ls /etc/ssh'), /ssh_host_/);
    assert.match(await debugfs('stat /var/lib/systemd/random-seed'), /File not found/);
    assert.match(await debugfs('cat /etc/hostname'), /vmfork-template/);
    assert.match(await debugfs('cat /etc/fstab'), /^\/dev\/vda\s+\/\s+ext4/m);

    const second = JSON.parse((await th.cli(['image', 'build', '--name', 'itest-again', '--hooks', TEST_HOOKS, '--json'])).stdout) as BuildOutput;
    t.diagnostic(`second build: cached=${second.cached} in ${second.seconds} s`);
    assert.equal(second.cached, true);
    assert.equal(second.image.disk_path, first.image.disk_path, 'both names share one copy of the files');

    const show = JSON.parse((await th.cli(['image', 'show', 'itest', '--json'])).stdout) as { verified: boolean };
    assert.equal(show.verified, true);
    const list = JSON.parse((await th.cli(['image', 'list', '--json'])).stdout) as { name: string }[];
    assert.deepEqual(list.map((i) => i.name), ['itest', 'itest-again']);
    // removing the names leaves the shared cache in place for other homes
    await th.cli(['image', 'rm', 'itest']);
    const rm = JSON.parse((await th.cli(['image', 'rm', 'itest-again', '--json'])).stdout) as { filesRemoved: boolean; keptBecause: string };
    assert.deepEqual([rm.filesRemoved, rm.keptBecause], [false, 'shared-cache']);
    assert.ok((await readManifest(join(th.home.images, first.image.recipe_hash))).build);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await th.close();
  }
});

interface BuildOutput {
  image: { name: string; disk_path: string; recipe_hash: string };
  cached: boolean;
  seconds: number;
}

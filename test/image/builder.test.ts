import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../../src/errors.js';
import { buildImage, stepFailure } from '../../src/image/builder.js';
import type { BuildStep } from '../../src/image/build-steps.js';
import { BASE_RECIPE, recipeHash } from '../../src/image/recipe.js';
import { withTempDir } from '../helpers/temp-dir.js';

/** Stand-ins for debootstrap and friends: they write small outputs and the facts a real build records. */
function fakeSteps(calls: string[], fail?: { at: string; error: unknown }): BuildStep[] {
  const step = (name: string, body: BuildStep['run']): BuildStep => ({
    name,
    async run(ctx) {
      calls.push(name);
      if (fail?.at === name) throw fail.error;
      await body(ctx);
    },
  });
  return [
    step('rootfs', async (ctx) => {
      await mkdir(join(ctx.rootfs, 'etc'), { recursive: true });
      await writeFile(join(ctx.rootfs, 'etc', 'machine-id'), '');
    }),
    step('outputs', async (ctx) => {
      for (const f of ['disk.qcow2', 'vmlinuz', 'initrd.img']) await writeFile(join(ctx.outDir, f), `${f} bytes`);
      ctx.facts.packages = [{ name: 'qemu-guest-agent', version: '1:7.2', arch: 'amd64' }];
      ctx.facts.kernel = { version: '6.1.0-test', config: { CONFIG_VMGENID: 'y' } };
      ctx.facts.modules = { kept: 1, dropped: 2, bytesBefore: 3, bytesAfter: 1 };
      ctx.facts.hygiene = { machineIdBytes: 0, sshHostKeys: [], randomSeed: false };
      ctx.facts.rootfsBytes = 42;
    }),
  ];
}

const opts = (imagesDir: string, steps: BuildStep[]) => ({ imagesDir, steps, recipe: BASE_RECIPE, mirror: 'http://mirror.invalid/debian', checkHost: false });

/** Everything in the image dir except published image dirs: leftovers a failed build must not leave. */
const leftovers = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.')) : []);

test('a failing step: BUILD_FAILED naming the step with its stderr tail, and nothing left behind', withTempDir('vmfork-build-', async (images) => {
  const calls: string[] = [];
  const error = new VmforkError('VMFORK_IMAGE_BUILD_FAILED', 'debootstrap exited 1', { details: { stderrTail: 'E: Couldn\'t download packages: udev' } });
  await assert.rejects(buildImage(opts(images, fakeSteps(calls, { at: 'outputs', error }))), (err: VmforkError) => {
    assert.equal(err.code, 'VMFORK_IMAGE_BUILD_FAILED');
    assert.equal(err.details?.step, 'outputs');
    assert.match(err.message, /step outputs failed: debootstrap exited 1/);
    assert.match(err.message, /\| E: Couldn't download packages: udev/);
    return true;
  });
  assert.deepEqual(calls, ['rootfs', 'outputs']);
  assert.deepEqual(leftovers(images), [], 'no .build-* dir, no lock');
  assert.ok(!existsSync(join(images, recipeHash(BASE_RECIPE))), 'no published image');
}));

test('step failures keep the codes a user fixes differently; anything else becomes BUILD_FAILED', () => {
  assert.equal(stepFailure('mkfs', Object.assign(new Error('write failed'), { code: 'ENOSPC' })).code, 'VMFORK_NO_SPACE');
  assert.equal(stepFailure('mkfs', new VmforkError('VMFORK_DEPENDENCY_MISSING', 'chroot not found')).code, 'VMFORK_DEPENDENCY_MISSING');
  const e = stepFailure('kernel', new TypeError('boom'));
  assert.equal(e.code, 'VMFORK_IMAGE_BUILD_FAILED');
  assert.equal(e.message, 'Guest image build failed: step kernel failed: boom');
});

test('a completed build is published with a verifying manifest; the second build is cached and runs no step', withTempDir('vmfork-build-', async (images) => {
  const calls: string[] = [];
  const progress: string[] = [];
  const first = await buildImage({ ...opts(images, fakeSteps(calls)), onProgress: (l) => progress.push(l) });
  assert.equal(first.cached, false);
  assert.equal(first.dir, join(images, recipeHash(BASE_RECIPE)));
  assert.deepEqual(readdirSync(first.dir).sort(), ['disk.qcow2', 'initrd.img', 'manifest.json', 'vmlinuz']);
  assert.equal(first.manifest.build?.mirror, 'http://mirror.invalid/debian');
  assert.deepEqual(first.manifest.build?.steps.map((s) => s.name), ['rootfs', 'outputs']);
  assert.equal(first.manifest.cmdline, BASE_RECIPE.cmdline);
  assert.ok(progress.some((l) => /^outputs done in \d+\.\d s$/.test(l)), progress.join('\n'));
  assert.deepEqual(leftovers(images), []);

  calls.length = 0;
  const second = await buildImage(opts(images, fakeSteps(calls)));
  assert.equal(second.cached, true);
  assert.deepEqual(calls, []);
  assert.deepEqual(second.manifest, first.manifest);
}));

test('a cached image that fails verification is rebuilt', withTempDir('vmfork-build-', async (images) => {
  const first = await buildImage(opts(images, fakeSteps([])));
  writeFileSync(join(first.dir, 'vmlinuz'), 'VMLINUZ BYTES'); // same size, other bytes
  const calls: string[] = [];
  const again = await buildImage(opts(images, fakeSteps(calls)));
  assert.equal(again.cached, false);
  assert.deepEqual(calls, ['rootfs', 'outputs']);
  assert.deepEqual(leftovers(images), [], 'the bad copy went through the trash and is gone');
}));

test('leftovers of a crashed build are removed; a live build dir is not', withTempDir('vmfork-build-', async (images) => {
  const dead = join(images, '.build-deadbeef0000');
  mkdirSync(join(dead, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(dead, 'owner.json'), JSON.stringify({ pid: 2 ** 22 + 1, startTime: 1 })); // above pid_max
  const live = join(images, '.build-0123456789ab');
  mkdirSync(live);
  const { readStartTime } = await import('../../src/host/proc-stat.js');
  writeFileSync(join(live, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: await readStartTime(process.pid) }));
  const progress: string[] = [];
  await buildImage({ ...opts(images, fakeSteps([])), onProgress: (l) => progress.push(l) });
  assert.ok(!existsSync(dead));
  assert.ok(existsSync(live), 'another running build must keep its dir');
  assert.ok(progress.some((l) => l.includes(dead)));
}));

test('concurrent builds of one recipe: one builds, the other waits on the lock and gets the cached image', withTempDir('vmfork-build-', async (images) => {
  const callsA: string[] = [];
  const callsB: string[] = [];
  const [a, b] = await Promise.all([buildImage(opts(images, fakeSteps(callsA))), buildImage(opts(images, fakeSteps(callsB)))]);
  assert.equal(a.dir, b.dir);
  assert.equal(callsA.length + callsB.length, 2, 'the steps ran once in all');
  assert.deepEqual([a.cached, b.cached].sort(), [false, true]);
  assert.deepEqual(leftovers(images), []);
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VmforkError } from '../../src/errors.js';
import type { BuildContext } from '../../src/image/build-context.js';
import { imageRecipe } from '../../src/image/compose-recipe.js';
import { hooksRecipe, hooksStep, HOOKS_GUEST_DIR } from '../../src/image/hooks.js';
import { BASE_RECIPE, recipeHash } from '../../src/image/recipe.js';
import { withTempDir } from '../helpers/temp-dir.js';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'hooks');

test('the repo\'s test hooks: common scripts that ask for one reboot, fail or hang, per-child ones that record their input or fail under set -x', async () => {
  const r = await hooksRecipe(FIXTURE);
  assert.deepEqual(r.files, ['common/10-reboot-once.sh', 'common/90-fail.sh', 'common/91-hang.sh', 'per-child/10-record.sh', 'per-child/90-fail-xtrace.sh']);
  assert.match(r.digest, /^[0-9a-f]{64}$/);
});

test('hooks are part of the recipe hash: content and the executable bit change it, the directory\'s path does not', withTempDir('vmfork-hooks-', async (dir) => {
  const a = join(dir, 'a');
  cpSync(FIXTURE, a, { recursive: true });
  const base = recipeHash(await imageRecipe({ guestAgent: false, hooksDir: a }));
  assert.notEqual(base, recipeHash(BASE_RECIPE));
  cpSync(FIXTURE, join(dir, 'b'), { recursive: true });
  assert.equal(recipeHash(await imageRecipe({ guestAgent: false, hooksDir: join(dir, 'b') })), base);
  writeFileSync(join(a, 'common', '10-reboot-once.sh'), '#!/bin/sh\nexit 0\n');
  const edited = recipeHash(await imageRecipe({ guestAgent: false, hooksDir: a }));
  assert.notEqual(edited, base);
  chmodSync(join(a, 'common', '10-reboot-once.sh'), 0o644);
  assert.notEqual(recipeHash(await imageRecipe({ guestAgent: false, hooksDir: a })), edited);
}));

test('a hooks dir that cannot be copied faithfully is refused before any build work', withTempDir('vmfork-hooks-', async (dir) => {
  const refused = async (path: string, why: RegExp): Promise<void> => {
    await assert.rejects(hooksRecipe(path), (e: VmforkError) => e.code === 'VMFORK_INVALID_ARGUMENT' && why.test(e.message));
  };
  await refused(join(dir, 'missing'), /is not a directory/);
  mkdirSync(join(dir, 'empty'));
  await refused(join(dir, 'empty'), /holds no files/);
  mkdirSync(join(dir, 'link'));
  symlinkSync('/etc/shadow', join(dir, 'link', 'shadow'));
  await refused(join(dir, 'link'), /symlinks are refused/);
  mkdirSync(join(dir, 'odd'));
  writeFileSync(join(dir, 'odd', 'a b.sh'), '#!/bin/sh\n');
  await refused(join(dir, 'odd'), /outside \[A-Za-z0-9._\+-\]/);
}));

test('installed under /usr/local/lib/vmfork/ root-owned: scripts 0755, other files 0644; a change after the recipe fails the step', withTempDir('vmfork-hooks-', async (dir) => {
  const src = join(dir, 'hooks');
  cpSync(FIXTURE, src, { recursive: true });
  writeFileSync(join(src, 'per-child', 'domain.conf'), 'corp.example\n');
  writeFileSync(join(src, 'common', 'no-x-bit.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(src, 'common', 'no-x-bit.sh'), 0o600);
  const recipe = await imageRecipe({ guestAgent: false, hooksDir: src });
  const rootfs = join(dir, 'rootfs');
  const ctx = { recipe, sources: { hooksDir: src }, rootfs } as unknown as BuildContext;
  await hooksStep.run(ctx);
  const at = (p: string): string => join(rootfs, HOOKS_GUEST_DIR, p);
  const mode = (p: string): number => statSync(at(p)).mode & 0o7777;
  assert.equal(mode('common/10-reboot-once.sh'), 0o755);
  assert.equal(mode('common/no-x-bit.sh'), 0o755, 'a #! line makes a script');
  assert.equal(mode('per-child/domain.conf'), 0o644);
  assert.equal(mode('per-child'), 0o755);
  assert.equal(statSync(at('per-child/10-record.sh')).uid, 0);
  assert.equal(readFileSync(at('per-child/domain.conf'), 'utf8'), 'corp.example\n');

  writeFileSync(join(src, 'per-child', 'domain.conf'), 'changed\n');
  await assert.rejects(hooksStep.run({ ...ctx, rootfs: join(dir, 'rootfs2') }), (e: VmforkError) => e.code === 'VMFORK_IMAGE_BUILD_FAILED' && /changed while the image was being built/.test(e.message));
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, BASE_RECIPE, GUEST_PACKAGES, recipeHash, type ImageRecipe } from '../../src/image/recipe.js';

const clone = (): ImageRecipe => structuredClone(BASE_RECIPE);

test('canonicalJson sorts keys at every level and keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
  assert.equal(canonicalJson({ a: 1, skip: undefined }), '{"a":1}');
});

test('the recipe hash is stable: same recipe, any key or package order, same hash', () => {
  const h = recipeHash(BASE_RECIPE);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(recipeHash(clone()), h);
  const reordered = Object.fromEntries(Object.entries(clone()).reverse()) as unknown as ImageRecipe;
  reordered.packages = [...reordered.packages].reverse();
  assert.equal(recipeHash(reordered), h);
});

test('every ingredient of the image changes the hash', () => {
  const h = recipeHash(BASE_RECIPE);
  const variants: [string, (r: ImageRecipe) => void][] = [
    ['suite', (r) => (r.suite = 'trixie')],
    ['package added', (r) => r.packages.push('curl')],
    ['steps version', (r) => (r.stepsVersion += 1)],
    ['disk size', (r) => (r.diskSize = '4G')],
    ['compression', (r) => (r.compressDisk = !r.compressDisk)],
    ['prune rule', (r) => r.pruneRules.push({ path: 'drivers/gpu/', keep: true })],
    ['guest file', (r) => (r.guestFiles['/etc/hostname'] = 'other\n')],
    ['cmdline', (r) => (r.cmdline += ' loglevel=7')],
  ];
  const seen = new Set([h]);
  for (const [what, change] of variants) {
    const r = clone();
    change(r);
    const changed = recipeHash(r);
    assert.ok(!seen.has(changed), `${what} must change the hash`);
    seen.add(changed);
  }
});

test('the mirror is not part of the recipe (the same bytes come from any mirror)', () => {
  assert.ok(!canonicalJson(BASE_RECIPE).includes('http'));
});

test('the recipe carries the packages the engine relies on, with the generic kernel', () => {
  for (const p of ['linux-image-amd64', 'qemu-guest-agent', 'openssh-server', 'util-linux-extra', 'systemd-sysv', 'initramfs-tools']) {
    assert.ok(BASE_RECIPE.packages.includes(p), p);
  }
  assert.ok(!GUEST_PACKAGES.some((p) => p.includes('cloud')), 'the cloud kernel has no vmgenid');
  assert.deepEqual(BASE_RECIPE.packages, [...BASE_RECIPE.packages].sort());
});

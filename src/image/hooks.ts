import { join, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import type { BuildStep } from './build-context.js';
import type { HooksRecipe } from './recipe.js';
import { copyTree, listTree, treeDigest, type TreeLimits } from './source-tree.js';

/** Where an image's hook scripts live: `common/` and `per-child/` below it (docs/image.md, "Hooks"). */
export const HOOKS_GUEST_DIR = '/usr/local/lib/vmfork';

const LIMITS: TreeLimits = { maxFiles: 256, maxBytes: 16 * 1024 * 1024, what: 'hooks dir' };

/** Reads a hooks directory for a recipe, refusing what cannot be copied as it is (symlinks, devices, odd names, too much). */
export async function hooksRecipe(dir: string): Promise<HooksRecipe> {
  const root = resolve(dir);
  const files = await listTree(root, LIMITS);
  if (files.length === 0) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `hooks dir ${root} holds no files`, { details: { path: root } });
  return { digest: await treeDigest(root, files), files: files.map((f) => f.path) };
}

/**
 * Copies the hooks directory to /usr/local/lib/vmfork/ in the guest, root-owned (only root may change what runs
 * as root in every child), directories 0755, scripts (a `#!` line or an executable bit) 0755, other files 0644.
 */
export const hooksStep: BuildStep = {
  name: 'hooks',
  async run(ctx) {
    const want = ctx.recipe.hooks;
    if (!want) return;
    const dir = ctx.sources.hooksDir;
    if (!dir) throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'the recipe has hooks but no hooks dir was given');
    const root = resolve(dir);
    const files = await listTree(root, LIMITS);
    await copyTree(root, files, join(ctx.rootfs, HOOKS_GUEST_DIR), want.digest, (f, head) => f.executable || head.toString('latin1') === '#!');
  },
};

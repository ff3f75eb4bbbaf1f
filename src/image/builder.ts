import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GUEST_ROOTFS_UMASK, withUmask } from '../config/index.js';
import { VmforkError, toVmforkError } from '../errors.js';
import { parseSize } from '../util/index.js';
import { hostDebianMirror } from './apt-sources.js';
import { acquireBuildLock, createBuildDir, discardDir, publishDir, removeDirSafely, removeStaleBuildDirs } from './build-dir.js';
import type { ImageSources } from './build-context.js';
import { DISK_FILE, IMAGE_BUILD_STEPS, INITRD_FILE, KERNEL_FILE, type BuildContext, type BuildFacts, type BuildStep } from './build-steps.js';
import { imageRecipe } from './compose-recipe.js';
import { checkCompiler } from './guest-agent.js';
import { digestFile, loadVerifiedManifest, writeManifest, type ImageManifest } from './manifest.js';
import { checkBuildHost } from './preflight.js';
import { recipeHash, type ImageRecipe } from './recipe.js';

export interface BuildImageOptions {
  /** `home.images`: built images live in `<imagesDir>/<recipeHash>/`. */
  imagesDir: string;
  /** @default imageRecipe(): the base recipe with vmfork-guest */
  recipe?: ImageRecipe;
  /** Where the recipe's trees (agent sources, hooks) are read from at build time. */
  sources?: ImageSources;
  /** Debian mirror URL. @default the host's apt source serving the recipe's suite */
  mirror?: string;
  /** @default IMAGE_BUILD_STEPS (tests pass their own) */
  steps?: readonly BuildStep[];
  /** Human progress lines (step names and seconds). */
  onProgress?: (line: string) => void;
  /** Root, programs and free space. @default true */
  checkHost?: boolean;
}

export interface BuiltImage {
  dir: string;
  recipeHash: string;
  manifest: ImageManifest;
  /** True when a verified image of this recipe already existed and nothing was built. */
  cached: boolean;
  seconds: number;
}

/**
 * Builds the guest image of `recipe` into `<imagesDir>/<recipeHash>/`, or returns the existing one after verifying
 * every file against its manifest. The work happens in a private `.build-*` dir that is renamed into place only
 * when complete, so an interrupted or failed build never leaves a half-made image; a lock makes concurrent builds
 * of one recipe wait for each other.
 */
export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started) / 1000;
  const recipe = options.recipe ?? (await imageRecipe({ ...options.sources }));
  const hash = recipeHash(recipe);
  const finalDir = join(options.imagesDir, hash);
  const progress = options.onProgress ?? (() => undefined);

  const existing = await loadCached(finalDir, hash);
  if (existing) return { dir: finalDir, recipeHash: hash, manifest: existing, cached: true, seconds: elapsed() };

  if (options.checkHost ?? true) {
    await checkBuildHost({ imagesDir: options.imagesDir });
    if (recipe.guestAgent) await checkCompiler(); // before debootstrap's minutes, not after
  }
  const mirror = options.mirror ?? (await hostDebianMirror(recipe.suite));
  const lock = await acquireBuildLock(options.imagesDir, hash, {
    onWait: (pid) => progress(`waiting for the build of the same recipe by pid ${pid}`),
  });
  try {
    // whoever held the lock may have just published it
    const published = await loadCached(finalDir, hash);
    if (published) return { dir: finalDir, recipeHash: hash, manifest: published, cached: true, seconds: elapsed() };
    for (const dir of await removeStaleBuildDirs(options.imagesDir)) progress(`removed leftovers of an interrupted build: ${dir}`);
    await discardDir(options.imagesDir, finalDir); // present but failing verification: rebuild it
    const manifest = await buildInto(options, recipe, hash, mirror, finalDir, progress, elapsed);
    return { dir: finalDir, recipeHash: hash, manifest, cached: false, seconds: elapsed() };
  } finally {
    await lock.release();
  }
}

async function loadCached(dir: string, hash: string): Promise<ImageManifest | undefined> {
  const manifest = await loadVerifiedManifest(dir, { deep: true });
  return manifest?.source === 'built' && manifest.build?.recipeHash === hash ? manifest : undefined;
}

async function buildInto(
  options: BuildImageOptions,
  recipe: ImageRecipe,
  hash: string,
  mirror: string,
  finalDir: string,
  progress: (line: string) => void,
  elapsed: () => number,
): Promise<ImageManifest> {
  const buildDir = await createBuildDir(options.imagesDir);
  try {
    const ctx: BuildContext = { recipe, mirror, sources: options.sources ?? {}, buildDir, rootfs: join(buildDir, 'rootfs'), outDir: join(buildDir, 'out'), facts: {} };
    await mkdir(ctx.outDir);
    progress(`building image ${hash} (${recipe.suite}, mirror ${mirror}) in ${buildDir}`);
    const steps: { name: string; seconds: number }[] = [];
    // the steps make the guest's own root filesystem: its files need a guest's usual modes, not the host's private
    // umask (the build dir around it stays 0700; publishDir gives the outputs the base-image mode)
    await withUmask(GUEST_ROOTFS_UMASK, async () => {
      for (const step of options.steps ?? IMAGE_BUILD_STEPS) {
        const t0 = performance.now();
        progress(`${step.name} …`);
        try {
          await step.run(ctx);
        } catch (err) {
          throw stepFailure(step.name, err);
        }
        steps.push({ name: step.name, seconds: Math.round(performance.now() - t0) / 1000 });
        progress(`${step.name} done in ${steps[steps.length - 1]?.seconds.toFixed(1)} s`);
      }
    });
    const manifest: ImageManifest = {
      formatVersion: 1,
      source: 'built',
      createdAt: new Date().toISOString(),
      disk: { file: DISK_FILE, format: 'qcow2', virtualSize: parseSize(recipe.diskSize) },
      kernel: KERNEL_FILE,
      initrd: INITRD_FILE,
      cmdline: recipe.cmdline,
      files: {},
      build: { recipeHash: hash, recipe: { ...recipe }, mirror, suite: recipe.suite, seconds: elapsed(), steps, ...requireFacts(recipe, ctx.facts) },
    };
    for (const f of [DISK_FILE, KERNEL_FILE, INITRD_FILE]) manifest.files[f] = await digestFile(join(ctx.outDir, f));
    await writeManifest(ctx.outDir, manifest);
    if (!(await publishDir(ctx.outDir, finalDir))) {
      // a concurrent build that bypassed the lock won; its image is as good as ours
      const winner = await loadCached(finalDir, hash);
      if (!winner) throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `${finalDir} appeared during the build and does not verify`, { details: { step: 'publish' } });
      return winner;
    }
    progress(`image ${hash} ready in ${elapsed().toFixed(1)} s`);
    return manifest;
  } finally {
    await removeDirSafely(buildDir);
  }
}

function requireFacts(recipe: ImageRecipe, facts: Partial<BuildFacts>): BuildFacts {
  const { packages, kernel, modules, hygiene, rootfsBytes, guestAgent } = facts;
  const want = ['packages', 'kernel', 'modules', 'hygiene', 'rootfsBytes', ...(recipe.guestAgent ? ['guestAgent'] : [])];
  const missing = want.filter((k) => facts[k as keyof BuildFacts] === undefined);
  if (!packages || !kernel || !modules || !hygiene || rootfsBytes === undefined || missing.length > 0) {
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `the build steps did not record: ${missing.join(', ')}`, { details: { step: 'manifest' } });
  }
  return { packages, kernel, modules, hygiene, rootfsBytes, ...(guestAgent ? { guestAgent } : {}) };
}

/**
 * The error a failed step turns into: VMFORK_IMAGE_BUILD_FAILED naming the step with its stderr tail, except
 * for causes the user fixes differently (disk full, a missing program), which keep their own code.
 */
export function stepFailure(step: string, err: unknown): VmforkError {
  const e = toVmforkError(err, 'VMFORK_IMAGE_BUILD_FAILED');
  const detail = e.detail ?? e.message;
  const tail = typeof e.details?.stderrTail === 'string' ? e.details.stderrTail : undefined;
  const code = e.code === 'VMFORK_NO_SPACE' || e.code === 'VMFORK_DEPENDENCY_MISSING' ? e.code : 'VMFORK_IMAGE_BUILD_FAILED';
  const shownTail = tail ? `\n${tail.split('\n').slice(-8).map((l) => `  | ${l}`).join('\n')}` : '';
  return new VmforkError(code, `step ${step} failed: ${detail}${shownTail}`, { cause: err, details: { ...e.details, step } });
}

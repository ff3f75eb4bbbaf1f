import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { VmforkError, isVmforkError } from '../errors.js';
import { applySharedMode, PRIVATE_DIR_MODE } from '../config/index.js';
import { isSameProcess, readStartTime } from '../host/index.js';
import { run, waitUntil } from '../util/index.js';

/**
 * Where builds happen: `<images>/.build-<random>/`, on the same filesystem as the final `<images>/<hash>/`, so
 * publishing is one atomic rename. Each build dir carries `owner.json` (pid + process start time), which lets a
 * later build tell a crashed build's leftovers from a build that is still running.
 */
const BUILD_PREFIX = '.build-';
const TRASH_PREFIX = '.trash-';
const OWNER_FILE = 'owner.json';

interface Owner {
  pid: number;
  startTime: number;
}

async function selfOwner(): Promise<Owner> {
  return { pid: process.pid, startTime: (await readStartTime(process.pid)) ?? 0 };
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.startTime === 'number' ? { pid: o.pid, startTime: o.startTime } : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `<images>/.build-<random>/` owned by this process. */
export async function createBuildDir(imagesDir: string): Promise<string> {
  await mkdir(imagesDir, { recursive: true });
  const dir = join(imagesDir, `${BUILD_PREFIX}${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: PRIVATE_DIR_MODE });
  const fh = await open(join(dir, OWNER_FILE), 'wx');
  await fh.writeFile(JSON.stringify(await selfOwner()));
  await fh.close();
  return dir;
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
export async function mountsBelow(dir: string, mountinfo?: string): Promise<string[]> {
  const text = mountinfo ?? (await readFile('/proc/self/mountinfo', 'utf8'));
  const root = resolve(dir);
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === root || p.startsWith(root + sep));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Removes a build dir (or a tree inside one). A build killed inside debootstrap leaves /proc mounted in its rootfs (and in containers
 * /dev binds): recursive deletion would then walk into the host's files, so mounts are detached first and the
 * deletion refused if any survive.
 */
export async function removeDirSafely(dir: string): Promise<void> {
  for (const point of await mountsBelow(dir)) {
    await run('umount', ['-l', point], { allowFailure: true });
  }
  const left = await mountsBelow(dir);
  if (left.length > 0) {
    throw new VmforkError('VMFORK_INTERNAL', `refusing to delete ${dir}: still mounted: ${left.join(', ')}`, { details: { dir, mounts: left } });
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes `.build-*` dirs whose owner process is gone (a crashed or killed build) and `.trash-*` dirs. A build dir
 * without a readable owner file is only removed once it is an hour old (its creator may be about to write it).
 */
export async function removeStaleBuildDirs(imagesDir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(imagesDir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(imagesDir, name);
    if (name.startsWith(BUILD_PREFIX)) {
      const owner = await readOwner(join(dir, OWNER_FILE));
      if (owner ? await isSameProcess(owner.pid, owner.startTime) : Date.now() - (await stat(dir)).mtimeMs < 3600_000) continue;
    } else if (!name.startsWith(TRASH_PREFIX)) {
      continue;
    }
    await removeDirSafely(dir);
    removed.push(dir);
  }
  return removed;
}

/**
 * Renames `src` to `dest` atomically. Returns false when `dest` already exists (a concurrent build of the same
 * recipe won the race): the caller then uses the winner's files and discards its own.
 */
export async function publishDir(src: string, dest: string): Promise<boolean> {
  // an image's files get the base-image mode (private today; the hook for the QEMU user's group) before anyone sees them
  for (const f of await readdir(src)) await applySharedMode(join(src, f), 'base-image');
  await applySharedMode(src, 'base-image', 'dir');
  try {
    await rename(src, dest);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

/** Moves a bad published dir out of the way (then deletes it); open files of running VMs stay valid. */
export async function discardDir(imagesDir: string, dir: string): Promise<void> {
  const trash = join(imagesDir, `${TRASH_PREFIX}${randomBytes(6).toString('hex')}`);
  try {
    await rename(dir, trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await removeDirSafely(trash);
}

export interface BuildLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Called once when another live process holds the lock. */
  onWait?: (holderPid: number) => void;
  /** @default 30 minutes — longer than any build */
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * A lock file `<images>/.lock-<key>` so concurrent builds of one recipe wait for each other instead of doing the
 * same minutes of work twice. A lock whose owner died is taken over. Two processes taking over the same stale lock
 * at once could both proceed; that is harmless because builds never share a directory and publishing is an
 * atomic rename that the loser gives up gracefully.
 */
export async function acquireBuildLock(imagesDir: string, key: string, options: LockOptions = {}): Promise<BuildLock> {
  await mkdir(imagesDir, { recursive: true });
  const path = join(imagesDir, `.lock-${key}`);
  const me = await selfOwner();
  const take = async (): Promise<BuildLock | undefined> => {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return undefined;
    }
  };
  let told = false;
  let holder: Owner | undefined;
  return waitUntil(
    async () => {
      const lock = await take();
      if (lock) return lock;
      holder = await readOwner(path);
      const young = await stat(path).then((s) => Date.now() - s.mtimeMs < 10_000, () => false);
      if (holder ? !(await isSameProcess(holder.pid, holder.startTime)) : !young) {
        // a dead holder's lock is taken over at once, not one pause later
        await unlink(path).catch(() => undefined);
        return take();
      }
      if (!told && holder) {
        told = true;
        options.onWait?.(holder.pid);
      }
      return undefined;
    },
    { deadlineMs: options.timeoutMs ?? 30 * 60_000, everyMs: options.pollMs ?? 1000, what: `the build lock ${path}` },
  ).catch((err: unknown) => {
    if (!(isVmforkError(err) && err.code === 'VMFORK_TIMEOUT')) throw err;
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `timed out waiting for the build lock ${path} held by pid ${holder?.pid ?? '?'}`, {
      details: { step: 'lock', lock: path },
    });
  });
}

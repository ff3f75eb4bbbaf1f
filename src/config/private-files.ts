import { chmodSync, constants, mkdirSync, statSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, chown, open, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { qemuConfinement } from './qemu-user.js';
import { VmforkError } from '../errors.js';

/**
 * The data dir is private (issue 13): a guest that escapes its QEMU, or any other local user, must not read another
 * VM's disk, a template's RAM, the store or the API token. This module is the ONE place that decides file modes;
 * every other module asks it instead of writing an octal literal.
 *
 * Default: nothing vmfork makes is readable by group or other. The process runs with `PROCESS_UMASK`, so a file
 * made without an explicit mode (by Node, sqlite, qemu-img or QEMU itself) is 0600 and a directory 0700.
 */
export const PROCESS_UMASK = 0o077;
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** A sealed file (template RAM, device state, disks): read-only even to its owner, so a stray write fails loudly. */
export const SEALED_FILE_MODE = 0o400;
/**
 * The guest's own root filesystem, while an image build makes it: its files need a guest's usual modes
 * (`/etc/hosts` 0644), not the host's private ones. Only the image builder uses it (see `withUmask`).
 */
export const GUEST_ROOTFS_UMASK = 0o022;

/**
 * Paths every VM's QEMU must read, each by its kind: private to vmfork's user here, and `applySharedMode` adds the
 * group `vmfork-qemu`'s read (search, for a directory) when QEMU runs confined as its own uid (docs/security.md).
 */
export type SharedKind = 'base-image' | 'template-file' | 'replica-disk';

export const SHARED_MODES: Readonly<Record<SharedKind, { file: number; dir: number }>> = {
  /** A built or imported image's files (disk, kernel, initrd) and its directory: QEMU reads them as backing files. */
  'base-image': { file: PRIVATE_FILE_MODE, dir: PRIVATE_DIR_MODE },
  /** A frozen template's RAM, state and disks (sealed): every child's QEMU maps or backs onto them. */
  'template-file': { file: SEALED_FILE_MODE, dir: PRIVATE_DIR_MODE },
  /** A replica's full copy on a datastore (sealed): its template's disks are overlays on it. */
  'replica-disk': { file: SEALED_FILE_MODE, dir: PRIVATE_DIR_MODE },
};

/**
 * Sets the mode a shared kind's file (or, with `dir`, directory) must have. With QEMU confined (src/config/qemu-user.ts)
 * the file is root:vmfork-qemu and the group may read it (a directory: search it, not list it) — every VM's QEMU
 * needs it, none may change it; otherwise it stays private to vmfork's user.
 */
export async function applySharedMode(path: string, kind: SharedKind, what: 'file' | 'dir' = 'file'): Promise<void> {
  const c = await qemuConfinement();
  if (c.on) await chown(path, 0, c.gid);
  await chmod(path, SHARED_MODES[kind][what] | (c.on ? (what === 'file' ? 0o040 : 0o010) : 0));
}

/** Sets the process umask to PROCESS_UMASK; returns the one it replaced. */
export function applyProcessUmask(): number {
  return process.umask(PROCESS_UMASK);
}

/**
 * Runs `fn` with another umask (the process-wide one: only for a process that does nothing else meanwhile, i.e. the
 * CLI's `image build`), then restores the previous one.
 */
export async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

export interface PrivateDirResult {
  created: boolean;
  /** The mode it had when it was looser than PRIVATE_DIR_MODE (and was tightened). */
  tightenedFrom?: number;
  /** Looser than PRIVATE_DIR_MODE and not ours to tighten (EPERM: another user's dir): said, not fatal. */
  looseNotOurs?: number;
}

/** Makes `dir` (and missing parents) 0700, or tightens an existing one that group or other could enter. */
export function ensurePrivateDir(dir: string): PrivateDirResult {
  const made = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const mode = statSync(dir).mode & 0o777;
  // group search only (0710) is what confined QEMUs need to reach their own VM directories (src/vm/vm-confine.ts)
  if ((mode & 0o067) === 0) return { created: made !== undefined };
  try {
    chmodSync(dir, mode & ~0o077);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return { created: false, looseNotOurs: mode };
  }
  return { created: made !== undefined, tightenedFrom: mode };
}

/** Why a private file may not be trusted, or undefined when it may: a regular file, ours, no group/other access. */
export function privateFileProblem(s: Pick<Stats, 'mode' | 'uid'> & { isFile(): boolean }, uid: number): string | undefined {
  if (!s.isFile()) return 'is not a regular file';
  if (s.uid !== uid) return `is owned by uid ${s.uid}, not this process's uid ${uid}`;
  if ((s.mode & 0o077) !== 0) return `has mode ${(s.mode & 0o777).toString(8).padStart(4, '0')}: group or other may access it (chmod 600 it)`;
  return undefined;
}

/**
 * Reads the API token file, refusing (VMFORK_TOKEN_FILE_UNSAFE) a symlink (opened with O_NOFOLLOW: not followed,
 * not even to check it), anything but a regular file, a file owned by another uid, or one group or other may read.
 * The checks are made on the opened descriptor, so the file cannot be swapped between the check and the read.
 */
export async function readTokenFile(path: string, uid: number = process.getuid?.() ?? 0): Promise<string> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new VmforkError('VMFORK_TOKEN_FILE_UNSAFE', `${path} is a symlink (refused, not followed)`, { cause: err, details: { path } });
    throw err;
  }
  try {
    const problem = privateFileProblem(await fh.stat(), uid);
    if (problem) throw new VmforkError('VMFORK_TOKEN_FILE_UNSAFE', `${path} ${problem}`, { details: { path } });
    return (await fh.readFile('utf8')).trim();
  } finally {
    await fh.close();
  }
}

/**
 * A bearer token kept in a file of the data dir (the API token, the metrics scrape token): read from `path`, or made
 * (32 random bytes) and written with mode 0600 at the first start. The file is created exclusively (O_EXCL: a
 * symlink planted at the path is not followed), so two servers starting at once agree on one token; an existing one
 * is read through readTokenFile's checks, never tightened or followed, because a token someone else could have read
 * or planted is not a secret any more. `what` names it in the error of a file that holds no usable token.
 */
export async function ensureTokenFile(path: string, what: string): Promise<{ token: string; path: string }> {
  ensurePrivateDir(dirname(path));
  try {
    await writeFile(path, `${randomBytes(32).toString('base64url')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const token = await readTokenFile(path);
  if (token.length < 16) throw new VmforkError('VMFORK_INTERNAL', `the ${what} file ${path} holds no usable token; remove it and restart the server`);
  return { token, path };
}

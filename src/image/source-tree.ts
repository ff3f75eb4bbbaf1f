import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, lstat, mkdir, readFile, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { VmforkError } from '../errors.js';

/** One file of a directory tree copied into an image (agent sources, hook scripts). */
export interface TreeFile {
  /** Path relative to the tree's root, with '/' separators. */
  path: string;
  size: number;
  executable: boolean;
}

export interface TreeLimits {
  maxFiles: number;
  maxBytes: number;
  /** Relative paths (prefixes ending in '/', or exact names) left out, e.g. build outputs. */
  exclude?: readonly string[];
  /** What the tree is, for messages: `hooks dir`, `guest agent sources`. */
  what: string;
}

/** Names that could not be written into a guest path as they are, or could mean something to a shell. */
const SAFE_NAME = /^[A-Za-z0-9._+-]+$/;

/**
 * Lists a tree's regular files, refusing what cannot be copied into a guest faithfully and safely: symlinks (they
 * could point anywhere on the build host), devices, sockets, odd names, and more files or bytes than the limits.
 * Sorted by path, so the listing (and the digest over it) does not depend on directory order.
 */
export async function listTree(root: string, limits: TreeLimits): Promise<TreeFile[]> {
  const st = await lstat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${limits.what} ${root} is not a directory`, { details: { path: root } });
  const files: TreeFile[] = [];
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const rel = relative(root, full).split(sep).join('/');
      if (limits.exclude?.some((e) => (e.endsWith('/') ? `${rel}/`.startsWith(e) : rel === e))) continue;
      if (!SAFE_NAME.test(name)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${limits.what}: ${rel} has a name outside [A-Za-z0-9._+-]`, { details: { path: full } });
      const s = await lstat(full);
      if (s.isDirectory()) {
        await walk(full);
      } else if (s.isFile()) {
        bytes += s.size;
        files.push({ path: rel, size: s.size, executable: (s.mode & 0o111) !== 0 });
        if (files.length > limits.maxFiles || bytes > limits.maxBytes) {
          throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${limits.what} ${root} holds more than ${limits.maxFiles} files or ${limits.maxBytes} bytes`, { details: { path: root } });
        }
      } else {
        throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${limits.what}: ${rel} is not a regular file or directory (symlinks are refused)`, { details: { path: full } });
      }
    }
  };
  await walk(root);
  return files;
}

/**
 * sha256 over every file's path, executable bit and content: the recipe's fingerprint of the tree. The bit is
 * in because the image installs scripts by it; mtimes and owners are not (a checkout sets them arbitrarily).
 */
export async function treeDigest(root: string, files: readonly TreeFile[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) {
    const content = await readFile(join(root, ...f.path.split('/')));
    h.update(`${f.path}\0${f.executable ? 'x' : '-'}\0${content.length}\0`);
    h.update(content);
  }
  return h.digest('hex');
}

/**
 * Copies the listed files into `dest`, owned by root, directories 0755, files 0755 when `executable(file)` says
 * so and 0644 otherwise; then checks the copy against `digest` (the tree may have changed since the recipe was
 * made: the image must hold what its hash says).
 */
export async function copyTree(root: string, files: readonly TreeFile[], dest: string, digest: string, executable: (f: TreeFile, head: Buffer) => boolean): Promise<void> {
  const copied: TreeFile[] = [];
  for (const f of files) {
    const to = join(dest, ...f.path.split('/'));
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 0; i <= parts.length; i++) {
      const d = join(dest, ...parts.slice(0, i));
      await mkdir(d, { recursive: true });
      await chown(d, 0, 0);
      await chmod(d, 0o755);
    }
    await copyFile(join(root, ...f.path.split('/')), to);
    const head = (await readFile(to)).subarray(0, 2);
    const x = executable(f, head);
    await chown(to, 0, 0);
    await chmod(to, x ? 0o755 : 0o644);
    copied.push({ ...f, executable: f.executable });
  }
  const got = await treeDigest(dest, copied);
  if (got !== digest) {
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `${root} changed while the image was being built (digest ${got.slice(0, 12)} ≠ recipe ${digest.slice(0, 12)}); build again`, {
      details: { path: root },
    });
  }
}

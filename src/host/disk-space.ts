import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export interface FreeSpace {
  /** The directory actually measured: `path` itself or its nearest existing ancestor. */
  measured: string;
  /** Bytes an unprivileged writer can still use (statfs f_bavail × f_bsize). */
  freeBytes: number;
  /** The filesystem's whole size (f_blocks × f_bsize): the bound of any one disk made on it. */
  totalBytes: number;
}

/**
 * Free space for files that will be written under `path`. The data dir may not exist yet on a fresh host, so the
 * nearest existing ancestor is measured: that is the filesystem the directory will be created on.
 */
export async function freeSpace(path: string): Promise<FreeSpace> {
  let dir = resolve(path);
  for (;;) {
    try {
      const s = await statfs(dir);
      return { measured: dir, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch (err) {
      const parent = dirname(dir);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw err;
      dir = parent;
    }
  }
}

import { VmforkError } from '../errors.js';
import { freeSpace } from '../host/index.js';
import { formatBytes, which } from '../util/index.js';

/** A build holds the rootfs (~450 MiB), the raw filesystem and the qcow2 at once; 3 GiB leaves headroom. */
export const BUILD_SPACE_BYTES = 3 * 1024 ** 3;

/** Host programs the build runs, with the Debian package that provides each. */
export const BUILD_PROGRAMS: Readonly<Record<string, string>> = {
  debootstrap: 'debootstrap',
  'mkfs.ext4': 'e2fsprogs',
  'qemu-img': 'qemu-utils',
  chroot: 'coreutils',
  du: 'coreutils',
  umount: 'mount',
};

export interface BuildHostCheck {
  imagesDir: string;
  uid?: number;
  needBytes?: number;
}

/**
 * Everything a build needs before it starts writing: root (debootstrap creates device nodes and chowns files),
 * the programs, and free space where the image will live. Checked in that order so the cheapest fix comes first.
 */
export async function checkBuildHost(check: BuildHostCheck): Promise<void> {
  const uid = check.uid ?? process.getuid?.() ?? 0;
  if (uid !== 0) throw new VmforkError('VMFORK_NOT_ROOT', 'building a guest image runs debootstrap, which needs root');
  const missing: string[] = [];
  for (const program of Object.keys(BUILD_PROGRAMS)) {
    if (!(await which(program))) missing.push(program);
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((p) => BUILD_PROGRAMS[p]))].join(' ');
    throw new VmforkError('VMFORK_DEPENDENCY_MISSING', `${missing.join(', ')} not found; apt-get install ${packages}`, {
      details: { programs: missing },
    });
  }
  const need = check.needBytes ?? BUILD_SPACE_BYTES;
  const { measured, freeBytes } = await freeSpace(check.imagesDir);
  if (freeBytes < need) {
    throw new VmforkError('VMFORK_NO_SPACE', `building an image needs ${formatBytes(need)} free in ${measured}, only ${formatBytes(freeBytes)} left`, {
      details: { path: measured, freeBytes, needBytes: need },
    });
  }
}

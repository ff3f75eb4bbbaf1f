import { VmforkError } from '../errors.js';
import { DEFAULT_CMDLINE, resolveImageBoot, type ImageBoot } from '../image/index.js';
import type { ImageFormat } from '../qemu/index.js';
import type { VmSpecInput } from '../spec/index.js';
import type { Db } from '../store/index.js';

export interface BootSource {
  image: ImageBoot;
  /** Backing format for the VM's overlay. */
  diskFormat: ImageFormat;
  /** Direct kernel boot when the image has a kernel (built images do), else the disk's own bootloader. */
  kernel: Pick<VmSpecInput, 'kernel'>;
}

/** Locates an image's files (VMFORK_IMAGE_NOT_FOUND / VMFORK_IMAGE_INVALID) and how to boot it. */
export async function imageBootSource(db: Db, name: string): Promise<BootSource> {
  const image = await resolveImageBoot(db, name);
  const diskFormat = image.diskFormat;
  if (diskFormat !== 'qcow2' && diskFormat !== 'raw') {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `image "${name}" is ${diskFormat}; only qcow2 and raw can back a VM`, { details: { image: name, diskFormat } });
  }
  if (!image.kernel) return { image, diskFormat, kernel: {} };
  return {
    image,
    diskFormat,
    kernel: { kernel: { kernel: image.kernel, ...(image.initrd ? { initrd: image.initrd } : {}), cmdline: image.cmdline ?? DEFAULT_CMDLINE } },
  };
}

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

/**
 * A command line for a VM with a screen: `console=tty0` ahead of the serial console, so the kernel's messages show on
 * the screen too while /dev/console (the last `console=`) stays ttyS0, where systemd and the console's shell are.
 * Per boot, in the VM's spec: the image's own command line (and its recipe) is not changed.
 */
export function screenCmdline(cmdline: string): string {
  if (/(^|\s)console=tty0(\s|$)/.test(cmdline) || !/(^|\s)console=ttyS0/.test(cmdline)) return cmdline;
  return cmdline.replace(/(^|\s)console=ttyS0/, '$1console=tty0 console=ttyS0');
}

/**
 * Locates an image's files (VMFORK_IMAGE_NOT_FOUND / VMFORK_IMAGE_INVALID) and how to boot it; `screen`: a VM with a
 * screen (see screenCmdline).
 */
export async function imageBootSource(db: Db, name: string, options: { screen?: boolean } = {}): Promise<BootSource> {
  const image = await resolveImageBoot(db, name);
  const diskFormat = image.diskFormat;
  if (diskFormat !== 'qcow2' && diskFormat !== 'raw') {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `image "${name}" is ${diskFormat}; only qcow2 and raw can back a VM`, { details: { image: name, diskFormat } });
  }
  if (!image.kernel) return { image, diskFormat, kernel: {} };
  const cmdline = image.cmdline ?? DEFAULT_CMDLINE;
  return {
    image,
    diskFormat,
    kernel: { kernel: { kernel: image.kernel, ...(image.initrd ? { initrd: image.initrd } : {}), cmdline: options.screen ? screenCmdline(cmdline) : cmdline } },
  };
}

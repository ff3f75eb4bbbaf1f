import { readFile } from 'node:fs/promises';
import type { ImageRow } from '../store/schema.js';
import type { VmSpecInput } from './vm-spec.js';

/** The kernel command line the image builder's guests expect (root on the first virtio disk, serial console). */
export const DEFAULT_CMDLINE = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet';

/**
 * How to boot an image: direct kernel boot when the image has a kernel (built images do; the cmdline comes from
 * its manifest), else the disk's own bootloader through the firmware.
 */
export async function imageBootSource(image: ImageRow): Promise<Pick<VmSpecInput, 'kernel'>> {
  if (!image.kernel_path) return {};
  let cmdline = DEFAULT_CMDLINE;
  if (image.manifest_path) {
    try {
      const manifest = JSON.parse(await readFile(image.manifest_path, 'utf8')) as { cmdline?: unknown };
      if (typeof manifest.cmdline === 'string' && manifest.cmdline.length > 0) cmdline = manifest.cmdline;
    } catch {
      // an unreadable manifest is reported by `image show`; booting with the default line still works
    }
  }
  return { kernel: { kernel: image.kernel_path, ...(image.initrd_path ? { initrd: image.initrd_path } : {}), cmdline } };
}

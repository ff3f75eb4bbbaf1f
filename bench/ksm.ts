import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const KSM = '/sys/kernel/mm/ksm';
const KNOBS = ['run', 'pages_to_scan', 'sleep_millisecs'] as const;

async function knob(name: string): Promise<string> {
  return (await readFile(join(KSM, name), 'utf8')).trim();
}

/**
 * Runs KSM (kernel samepage merging, host-wide) for `waitMs` at a brisk scan rate, then `read()`, then puts every
 * knob back — unmerging first when it was off, so the host is left as found. QEMU marks guest RAM mergeable
 * (mem-merge, on by default): KSM can merge the children's copy-on-write pages that hold the same bytes.
 */
export async function withKsm<T>(waitMs: number, read: () => Promise<T>): Promise<{ value: T; pagesSharing: number; pagesShared: number }> {
  const saved = Object.fromEntries(await Promise.all(KNOBS.map(async (k) => [k, await knob(k)] as const))) as Record<(typeof KNOBS)[number], string>;
  try {
    await writeFile(join(KSM, 'pages_to_scan'), '2000');
    await writeFile(join(KSM, 'sleep_millisecs'), '20');
    await writeFile(join(KSM, 'run'), '1');
    await sleep(waitMs);
    const value = await read();
    return { value, pagesSharing: Number(await knob('pages_sharing')), pagesShared: Number(await knob('pages_shared')) };
  } finally {
    if (saved.run === '0') await writeFile(join(KSM, 'run'), '2');
    await writeFile(join(KSM, 'pages_to_scan'), saved.pages_to_scan);
    await writeFile(join(KSM, 'sleep_millisecs'), saved.sleep_millisecs);
    await writeFile(join(KSM, 'run'), saved.run);
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { execInNetns } from './ip.js';

/**
 * The host key lines (`ADDRESS TYPE BASE64`) an sshd really serves at `address`, read by `ssh-keyscan` from inside
 * the network's namespace (nothing leaves it). Right after a fork sshd may still be starting, so an empty answer is
 * retried for `settleMs` before it counts as "no key served".
 */
export async function scanSshHostKeyLines(netns: string, address: string, types: readonly string[] = ['ed25519'], options: { settleMs?: number } = {}): Promise<string[]> {
  const deadline = Date.now() + (options.settleMs ?? 15_000);
  for (;;) {
    const scan = await execInNetns(netns, 'ssh-keyscan', ['-T', '5', '-t', types.join(','), address], { allowFailure: true, timeoutMs: 30_000 });
    const lines = scan.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    if (lines.length > 0 || Date.now() >= deadline) return lines;
    await sleep(250);
  }
}

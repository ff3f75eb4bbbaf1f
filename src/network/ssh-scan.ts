import { isVmforkError } from '../errors.js';
import { waitUntil } from '../util/index.js';
import { execInNetns } from './ip.js';

/**
 * The host key lines (`ADDRESS TYPE BASE64`) an sshd really serves at `address`, read by `ssh-keyscan` from inside
 * the network's namespace (nothing leaves it). Right after a fork sshd may still be starting, so an empty answer is
 * retried for `settleMs` before it counts as "no key served".
 */
export async function scanSshHostKeyLines(netns: string, address: string, types: readonly string[] = ['ed25519'], options: { settleMs?: number } = {}): Promise<string[]> {
  const scan = async (): Promise<string[] | undefined> => {
    const r = await execInNetns(netns, 'ssh-keyscan', ['-T', '5', '-t', types.join(','), address], { allowFailure: true, timeoutMs: 30_000 });
    const lines = r.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    return lines.length > 0 ? lines : undefined;
  };
  return waitUntil(scan, { deadlineMs: options.settleMs ?? 15_000, everyMs: 250, what: `an ssh host key at ${address}` }).catch((err: unknown) => {
    if (isVmforkError(err) && err.code === 'VMFORK_TIMEOUT') return [];
    throw err;
  });
}

import { randomBytes } from 'node:crypto';
import { run } from '../../src/util/exec.js';
import { listNamespaces } from '../../src/network/ip.js';

/**
 * A namespace prefix no one else uses (pid + random), so cleanup can delete exactly the namespaces this test made
 * and never one that belongs to another engineer's run or a real vmfork.
 */
export function uniqueNetnsPrefix(): string {
  return `vmft${process.pid.toString(36)}${randomBytes(2).toString('hex')}-`;
}

/** Deletes every namespace with our prefix; for after() hooks, so it never throws. */
export async function removeNamespacesWithPrefix(prefix: string): Promise<string[]> {
  const ours = (await listNamespaces().catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  for (const ns of ours) await run('ip', ['netns', 'del', ns], { allowFailure: true });
  return ours;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

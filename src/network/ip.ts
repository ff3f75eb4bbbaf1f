import { VmforkError } from '../errors.js';
import { run, type RunOptions, type RunResult } from '../util/index.js';

/**
 * Namespaces, bridges and taps need CAP_NET_ADMIN and `ip netns add` mounts under /run/netns, so in practice root.
 * Checked before anything touches the host, so a non-root user gets this and not a half-made network.
 */
export function requireRoot(what: string, uid: number | undefined = process.getuid?.()): void {
  if (uid !== 0) {
    throw new VmforkError('VMFORK_NOT_ROOT', `${what} creates network namespaces, bridges and taps; run it as root (sudo)`, {
      details: { uid },
    });
  }
}

/** Runs `ip ARGS`; a failure is VMFORK_NETWORK_FAILED carrying the command and its stderr. */
export function ip(args: readonly string[], options: Omit<RunOptions, 'errorCode'> = {}): Promise<RunResult> {
  return run('ip', args, { timeoutMs: 10_000, ...options, errorCode: 'VMFORK_NETWORK_FAILED' });
}

/** Runs `ip -j ARGS` and parses its JSON (iproute2 prints nothing at all for an empty list). */
export async function ipJson<T>(args: readonly string[]): Promise<T[]> {
  const r = await ip(['-j', ...args]);
  const text = r.stdout.trim();
  if (text === '') return [];
  try {
    return JSON.parse(text) as T[];
  } catch (err) {
    throw new VmforkError('VMFORK_NETWORK_FAILED', `ip -j ${args.join(' ')} printed invalid JSON`, { cause: err });
  }
}

/**
 * Runs a program inside a network namespace (ping, ssh-keyscan, QEMU): its sockets see only that namespace's
 * bridge, so whatever it sends cannot leave the namespace.
 */
export function execInNetns(netns: string, cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], options);
}

/** Names of the namespaces iproute2 knows (those under /run/netns). Works without root. */
export async function listNamespaces(): Promise<string[]> {
  const rows = await ipJson<{ name: string }>(['netns', 'list']);
  return rows.map((r) => r.name);
}

/** True when an `ip` failure only says the thing to create is already there (a concurrent ensure won the race). */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof Error && /File exists|already exists|already assigned/i.test(err.message);
}

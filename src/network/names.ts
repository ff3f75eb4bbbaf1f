import { VmforkError } from '../errors.js';
import { assertValidName } from '../util/names.js';

/** Linux IFNAMSIZ is 16 bytes including the terminating NUL: interface names have at most 15 characters. */
export const IFNAME_MAX = 15;

/**
 * Every network's bridge has the same name: each lives in its own namespace, so names cannot clash, and a fixed
 * name lets the health check tell our bridge from anything else.
 */
export const BRIDGE_NAME = 'vmf-br';

/** Taps are `vt<offset of the VM's IP in the CIDR>`: unique per network because leased IPs are (≤ `vt65534`). */
export const TAP_PREFIX = 'vt';

/** The network every `vmfork fork` without `--network` uses. */
export const DEFAULT_NETWORK = { name: 'default', cidr: '10.231.0.0/24' } as const;

/**
 * Namespace names are `<prefix><network>`. The default prefix `vmfork-` can be changed with VMFORK_NETNS_PREFIX so
 * that several data dirs on one host (parallel test runs) each get their own namespaces; the chosen name is
 * recorded per network, so changing the prefix later never orphans an existing one.
 */
export const DEFAULT_NETNS_PREFIX = 'vmfork-';

/**
 * Network names are RFC 1123 labels like every vmfork name, and also at most IFNAME_MAX characters so that the
 * name itself is a legal interface name wherever one is derived from it (a host-side link, a log of `ip` output).
 */
export function assertValidNetworkName(name: string): void {
  assertValidName(name, 'network');
  if (name.length > IFNAME_MAX) {
    throw new VmforkError('VMFORK_INVALID_NAME', `network name "${name}" is longer than ${IFNAME_MAX} characters`, {
      details: { name, what: 'network' },
    });
  }
}

export function netnsPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const prefix = env.VMFORK_NETNS_PREFIX ?? DEFAULT_NETNS_PREFIX;
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(prefix)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `VMFORK_NETNS_PREFIX "${prefix}" must be 1-32 of [a-z0-9-]`);
  }
  return prefix;
}

export function netnsName(network: string, prefix: string = netnsPrefix()): string {
  return `${prefix}${network}`;
}

export function tapName(index: number): string {
  return `${TAP_PREFIX}${index}`;
}

/** True for names createTap may produce, so health checks and cleanups never mistake a foreign link for ours. */
export function isTapName(name: string): boolean {
  return /^vt[0-9]{1,5}$/.test(name);
}

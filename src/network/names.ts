import { randomBytes } from 'node:crypto';
import { VmforkError } from '../errors.js';
import { LOCAL_HOST_ID, settingOnce, type Db } from '../store/index.js';
import { assertValidName } from '../util/index.js';

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

/**
 * Namespace names are `<prefix><network>`, and namespaces are host-global: two data dirs on one host must not both
 * call theirs `vmfork-default`. So each data dir draws its own prefix once (`vmf-<6 hex>-`, kept in its store);
 * VMFORK_NETNS_PREFIX overrides it. The chosen name is recorded per network, so a prefix that changes later never
 * orphans an existing namespace.
 */
export const NETNS_PREFIX_SETTING = 'netns_prefix';

const PREFIX = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** VMFORK_NETNS_PREFIX when set (validated), else undefined. */
export function netnsPrefixOverride(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const prefix = env.VMFORK_NETNS_PREFIX;
  if (prefix === undefined) return undefined;
  if (!PREFIX.test(prefix)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `VMFORK_NETNS_PREFIX "${prefix}" must be 1-32 of [a-z0-9-]`);
  return prefix;
}

/** The prefix this data dir gives new namespaces: the override, or its own (drawn on first use and kept). */
export async function dataDirNetnsPrefix(db: Db, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return netnsPrefixOverride(env) ?? settingOnce(db, NETNS_PREFIX_SETTING, () => `vmf-${randomBytes(3).toString('hex')}-`);
}

export function netnsName(network: string, prefix: string): string {
  return `${prefix}${network}`;
}

/**
 * The namespace of one host's instance of a network: the network's own name on the local host, `<netns>@<host>` on
 * an agent's. On separate machines the plain name would do; on one machine (the test datacenter) namespaces are
 * global, and distinct names keep each host's instance its own, joined to the others only by VXLAN.
 */
export function instanceNetns(netns: string, host: string): string {
  return host === LOCAL_HOST_ID ? netns : `${netns}@${host}`;
}

/** The network's own namespace name, for a name instanceNetns made (gc knows an instance by its network). */
export function baseNetnsOf(netns: string): string {
  const at = netns.indexOf('@');
  return at < 0 ? netns : netns.slice(0, at);
}

export function tapName(index: number): string {
  return `${TAP_PREFIX}${index}`;
}

/** True for names createTap may produce, so health checks and cleanups never mistake a foreign link for ours. */
export function isTapName(name: string): boolean {
  return /^vt[0-9]{1,5}$/.test(name);
}

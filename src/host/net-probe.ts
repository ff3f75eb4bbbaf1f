import { access, constants } from 'node:fs/promises';
import { isVmforkError } from '../errors.js';
import { run } from '../util/index.js';

export interface NetProbeResult {
  ok: boolean;
  /** What was tried and what happened, e.g. the failing `ip` command and its stderr. */
  detail: string;
  /** What to do when it failed. */
  fix?: string;
}

/**
 * Proves, by doing it, that this host can give VMs their network: create a network namespace, a bridge and a tap
 * enslaved to it inside, then delete the namespace (which takes the bridge and tap with it). Reading capabilities
 * is not enough: containers and seccomp profiles can refuse any of these steps even to root.
 */
export async function probeNetworking(namespace = `vmfork-doctor-${process.pid}`): Promise<NetProbeResult> {
  if (!(await exists('/dev/net/tun'))) {
    return { ok: false, detail: '/dev/net/tun is missing: taps cannot be created', fix: 'modprobe tun (or give the container /dev/net/tun)' };
  }
  const steps: string[][] = [
    ['link', 'add', 'vmfork-br0', 'type', 'bridge'],
    ['tuntap', 'add', 'dev', 'vmfork-tap0', 'mode', 'tap'],
    ['link', 'set', 'vmfork-tap0', 'master', 'vmfork-br0'],
    ['link', 'set', 'vmfork-br0', 'up'],
  ];
  let created = false;
  try {
    const add = await ip(['netns', 'add', namespace]);
    if (add) return add;
    created = true;
    for (const step of steps) {
      const failed = await ip(['-n', namespace, ...step]);
      if (failed) return failed;
    }
    return { ok: true, detail: 'created a network namespace with a bridge and a tap, then removed it' };
  } finally {
    // always clean up, also when a step failed: a namespace left behind would pile up with every doctor run
    if (created) await run('ip', ['netns', 'delete', namespace], { allowFailure: true }).catch(() => undefined);
  }
}

/** Runs one `ip` command; undefined on success, else a failed probe result. */
async function ip(args: string[]): Promise<NetProbeResult | undefined> {
  try {
    const r = await run('ip', args, { allowFailure: true, timeoutMs: 10_000 });
    if (r.code === 0) return undefined;
    const err = r.stderr.trim() || `exit code ${r.code}`;
    const denied = /Operation not permitted|Permission denied/i.test(err);
    return {
      ok: false,
      detail: `ip ${args.join(' ')} failed: ${err}`,
      fix: denied
        ? 'run vmfork as root: network namespaces, bridges and taps need CAP_NET_ADMIN'
        : 'check that the kernel supports network namespaces, bridges and tun/tap',
    };
  } catch (err) {
    if (isVmforkError(err) && err.code === 'VMFORK_DEPENDENCY_MISSING') {
      return { ok: false, detail: 'the ip program is missing', fix: 'apt-get install iproute2' };
    }
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

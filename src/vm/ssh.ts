import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { sshFingerprint } from '../identity/index.js';
import { leaseOfVm, scanSshHostKeyLines } from '../network/index.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';

/** Where and how `vmfork ssh` reaches a child: its namespace, address, and a known_hosts file holding its key. */
export interface SshTarget {
  vm: string;
  netns: string;
  address: string;
  /** A file with exactly the child's verified host key: ssh runs with StrictHostKeyChecking=yes against it. */
  knownHosts: string;
  fingerprint: string;
}

/**
 * Finds a running child's address and host key for a real OpenSSH session from the host. The key is read from the
 * child's sshd inside its network namespace and must be the one the guest reported when it was forked (its identity
 * facts): a child serving another key is refused instead of trusted on first use.
 */
export async function sshTarget(deps: VmDeps, name: string): Promise<SshTarget> {
  const vm = await getVmReconciled(deps, name);
  if (vm.state !== 'running') throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${vm.state}; it must be running`, { details: { vm: name, state: vm.state } });
  const lease = await leaseOfVm(deps.db, name);
  if (!lease) throw new VmforkError('VMFORK_VM_STATE', `VM ${name} has no address on a vmfork network (only forked children are reachable by ssh)`, { details: { vm: name } });
  const lines = await scanSshHostKeyLines(lease.netns, lease.ip);
  const line = lines[0];
  const served = line ? sshFingerprint(line.split(/\s+/).slice(1).join(' ')) : undefined;
  if (!line || !served) throw new VmforkError('VMFORK_SSH_HOST_KEY', `${name} (${lease.ip}) serves no ed25519 host key`, { details: { vm: name } });
  const recorded = vm.facts_json ? ((JSON.parse(vm.facts_json) as { sshHostKeyFingerprints?: string[] }).sshHostKeyFingerprints ?? []) : [];
  if (recorded.length && !recorded.includes(served)) {
    throw new VmforkError('VMFORK_SSH_HOST_KEY', `${name} serves ${served}, not the key it reported when forked (${recorded.join(', ')}): refusing to connect`, {
      details: { vm: name, served, recorded },
    });
  }
  const dir = join(deps.home.run, 'ssh');
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const knownHosts = join(dir, `${name}.known_hosts`);
  await writeFile(knownHosts, `${line}\n`, { mode: PRIVATE_FILE_MODE });
  await chmod(knownHosts, PRIVATE_FILE_MODE);
  return { vm: name, netns: lease.netns, address: lease.ip, knownHosts, fingerprint: served };
}

/** The ssh command line for a target (no secret on it: keys come from files or the user's agent). */
export function sshArgv(t: SshTarget, options: { user?: string; identity?: string; command?: readonly string[] } = {}): string[] {
  return [
    'netns',
    'exec',
    t.netns,
    'ssh',
    '-o',
    `UserKnownHostsFile=${t.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'HostKeyAlgorithms=ssh-ed25519',
    ...(options.identity ? ['-i', options.identity, '-o', 'IdentitiesOnly=yes'] : []),
    '-l',
    options.user ?? 'root',
    t.address,
    ...(options.command?.length ? ['--', ...options.command] : []),
  ];
}

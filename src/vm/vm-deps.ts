import type { HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { LOCAL_HOST_ID, type Db, type VmRow } from '../store/index.js';
import type { Logger } from '../util/index.js';

/** What VM, template and fork operations need from their caller (the CLI context, the API server, a test fixture). */
export interface VmDeps {
  db: Db;
  home: HomeLayout;
  log: Logger;
  /**
   * The host this process acts for: a host agent's name (docs/hosts.md); absent for a process on its own (the
   * `local` host). VMs it makes carry it, and only its own VMs are checked against its processes.
   */
  hostId?: string;
}

export function hereHost(deps: Pick<VmDeps, 'hostId'>): string {
  return deps.hostId ?? LOCAL_HOST_ID;
}

/**
 * A VM's QEMU, disks and sockets are on its host: only that host's agent may act on them (another machine's pid
 * means nothing here). Callers that can reach the agent send it a job instead (src/host-agent/).
 */
export function assertVmHere(deps: Pick<VmDeps, 'hostId'>, vm: Pick<VmRow, 'name' | 'host_id'>): void {
  if (vm.host_id !== hereHost(deps)) {
    throw new VmforkError('VMFORK_VM_ELSEWHERE', `VM ${vm.name} is on host ${vm.host_id}: its operations run on that host's agent (give the fleet's --db, and the CLI sends them there)`, {
      details: { vm: vm.name, host: vm.host_id },
    });
  }
}

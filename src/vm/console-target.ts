import { lstat } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { decodeVmSpec } from '../spec/index.js';
import type { VmState } from '../state/index.js';
import { getVmReconciled } from './lifecycle.js';
import { assertVmHere, type VmDeps } from './vm-deps.js';
import { vmPathsIn } from './vm-paths.js';

/** States in which a VM's QEMU runs a guest: its console and screen can be watched (a boot's first lines too). */
export const CONSOLE_STATES: readonly VmState[] = ['starting', 'forking', 'running', 'paused', 'stopping'];

/**
 * The socket of a local VM's serial console: its logger's hub (src/vm/serial-logger.ts), which serves the log's
 * tail then the live port to each viewer. VMFORK_VM_NOT_FOUND; VMFORK_VM_ELSEWHERE for a VM on another host (its
 * sockets are there); VMFORK_VM_STATE when its QEMU is not running or it has no hub (started before the hub existed,
 * or its logger is gone).
 */
export async function vmConsoleSocket(deps: VmDeps, name: string): Promise<string> {
  const vm = await liveVm(deps, name, 'console');
  const path = vmPathsIn(vm.dir).consoleSocket;
  await ownSocket(path, name, 'console', 'it has no console socket: its QEMU was started before the console existed (start it again), or its serial logger is not running');
  return path;
}

/**
 * The socket of a local VM's screen: QEMU's VNC server. VMFORK_VM_STATE when the VM has no screen (`screen: true` in
 * its pool spec, `vm boot --screen`), or its QEMU is not running; otherwise as vmConsoleSocket.
 */
export async function vmScreenSocket(deps: VmDeps, name: string): Promise<string> {
  const vm = await liveVm(deps, name, 'screen');
  const path = decodeVmSpec(vm.spec_json).vncSocket;
  if (!path) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} has no screen: give its pool spec \`screen: true\` (or \`vm boot --screen\`)`, {
      details: { vm: name, stream: 'screen', reason: 'no-screen' },
    });
  }
  await ownSocket(path, name, 'screen', 'its VNC socket is missing');
  return path;
}

async function liveVm(deps: VmDeps, name: string, stream: 'console' | 'screen'): Promise<{ dir: string; spec_json: string }> {
  const vm = await getVmReconciled(deps, name);
  assertVmHere(deps, vm);
  if (!CONSOLE_STATES.includes(vm.state)) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${vm.state}: its ${stream} exists while its QEMU runs`, {
      details: { vm: name, state: vm.state, allowed: CONSOLE_STATES, stream, reason: 'not-running' },
    });
  }
  return vm;
}

/**
 * The socket at `path` must be one vmfork's own uid made: the hub binds it, and QEMU binds its VNC socket before
 * `-runas` drops it to the VM's uid. That uid owns the VM's directory, so a QEMU taken over could put its own
 * socket, or a link to another VM's, in their place; neither is connected to.
 */
async function ownSocket(path: string, name: string, stream: 'console' | 'screen', missing: string): Promise<void> {
  const s = await lstat(path).catch(() => undefined);
  if (!s?.isSocket()) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name}: ${missing}`, { details: { vm: name, stream, reason: 'no-socket', path } });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && s.uid !== uid) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name}: its ${stream} socket ${path} belongs to uid ${s.uid}, not to vmfork's ${uid}; not connecting`, {
      details: { vm: name, stream, reason: 'foreign-socket', path },
    });
  }
}

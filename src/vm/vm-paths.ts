import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';

/** Files of one VM, all inside its own directory so destroy is one recursive remove. */
export interface VmPaths {
  dir: string;
  disk: string;
  qmp: string;
  agent: string;
  /** vmfork-guest's port (only VMs of images that carry the agent have one). */
  guest: string;
  serialLog: string;
  /** QEMU's serial port, read by the serial logger into serialLog. */
  serialSocket: string;
  /**
   * The serial logger's console hub (src/vm/serial-logger.ts): vmfork's own uid, 0600, so a confined QEMU cannot
   * connect to it; every web console viewer reads the port's output and writes keystrokes through it.
   */
  consoleSocket: string;
  /** QEMU's VNC server of a VM with a screen (`-vnc unix:`), proxied by the web console. */
  screenSocket: string;
  stderrLog: string;
  pidfile: string;
}

// sun_path holds 108 bytes including the NUL; a longer socket path fails deep inside QEMU with a vague error.
const MAX_SOCKET_PATH = 107;

/**
 * A VM's disk file by device id: `disk0` (the system disk every VM has) is `disk.qcow2`, any other disk
 * `disk-<id>.qcow2` — a child's overlays and a template's disks are named the same way in their directories.
 */
export function diskFile(dir: string, id: string): string {
  return join(dir, id === 'disk0' ? 'disk.qcow2' : `disk-${id}.qcow2`);
}

export function vmPaths(vmsDir: string, name: string): VmPaths {
  return vmPathsIn(join(vmsDir, name));
}

/**
 * The files of a VM living in `dir` (its record's `dir`). A child forked from a warm process lives in the warm
 * process's directory, which is named after the warm process, not after the child.
 */
export function vmPathsIn(dir: string): VmPaths {
  const paths = {
    dir,
    disk: diskFile(dir, 'disk0'),
    qmp: join(dir, 'qmp.sock'),
    agent: join(dir, 'qga.sock'),
    guest: join(dir, 'vfg.sock'),
    serialLog: join(dir, 'serial.log'),
    // as short as the other sockets' names: the longest path a data dir allows stays the same
    serialSocket: join(dir, 'tty.sock'),
    consoleSocket: join(dir, 'con.sock'),
    screenSocket: join(dir, 'vnc.sock'),
    stderrLog: join(dir, 'qemu.stderr.log'),
    pidfile: join(dir, 'qemu.pid'),
  };
  for (const sock of [paths.qmp, paths.agent, paths.guest, paths.serialSocket, paths.consoleSocket, paths.screenSocket]) {
    if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) {
      throw new VmforkError('VMFORK_INVALID_ARGUMENT', `socket path ${sock} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter --home`, {
        details: { path: sock },
      });
    }
  }
  return paths;
}

export interface VmChannels {
  agentSocket: string;
  vga?: { memMiB: number };
  vncSocket?: string;
  vmforkAgentSocket?: string;
  qmpSocket: string;
  serialLog: string;
  serialSocket: string;
  pidfile: string;
  vmgenid: string;
  uuid: string;
}

/**
 * VGA memory of a VM with a screen (QEMU's default is 16 MiB). Text mode needs 32 KiB of it, the built image has no
 * DRM driver (drivers/gpu is pruned), and 1024x768 at 32 bits still fits in 4 MiB for a guest that adds one. Pages
 * never drawn cost nothing: not in a child's memory, a few bytes each in a template's state. Guest-visible: a
 * template records it in its layout, and its children have the same.
 */
export const SCREEN_VGA_MEM_MIB = 4;

/**
 * The per-VM part of a spec every kind of VM has: its control channels and log files, plus a fresh vmgenid guid
 * (a child's guest reseeds its CRNG when it changes) and SMBIOS uuid. `vmforkAgent`: also vmfork-guest's port
 * (templates of images that carry the agent, and their children). `screen`: a VGA device of `memMiB` (true:
 * SCREEN_VGA_MEM_MIB) and QEMU's VNC server on the VM's screen socket; without it the spec has neither key, so a
 * VM without a screen has the command line it always had.
 */
export function vmChannels(paths: VmPaths, options: { vmforkAgent?: boolean; screen?: boolean | { memMiB: number } | undefined } = {}): VmChannels {
  const screen = options.screen === true ? { memMiB: SCREEN_VGA_MEM_MIB } : options.screen || undefined;
  return {
    agentSocket: paths.agent,
    ...(options.vmforkAgent ? { vmforkAgentSocket: paths.guest } : {}),
    ...(screen ? { vga: { memMiB: screen.memMiB }, vncSocket: paths.screenSocket } : {}),
    qmpSocket: paths.qmp,
    serialLog: paths.serialLog,
    serialSocket: paths.serialSocket,
    pidfile: paths.pidfile,
    vmgenid: randomUUID(),
    uuid: randomUUID(),
  };
}

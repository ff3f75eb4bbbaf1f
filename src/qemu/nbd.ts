import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import { processesWithArg, QEMU_IMG_BINARY, readStartTime, runQemuTool } from '../host/index.js';
import { freePort } from '../util/index.js';
import { terminateProcess } from './qemu-process.js';

/**
 * Disks over the network (issue 14 item 3): a read-only NBD export by qemu-nbd, pulled with `qemu-img convert`,
 * both ends authenticated and encrypted by TLS with a pre-shared key. The file is exported as raw bytes (a qcow2
 * file travels as itself), so the copy is byte for byte and its sha256 is the source's.
 */
const QEMU_NBD_BINARY = 'qemu-nbd';
const PSK_USER = 'vmfork';
const CREDS = 'vmfork-psk';

/**
 * A private directory under `parent` (the agent's own, in its data dir's run directory) holding the key in QEMU's
 * `keys.psk` format, and an export's pid files; removed with removePskDir.
 */
export async function writePskDir(keyHex: string, parent: string): Promise<string> {
  if (!/^[0-9a-f]{32,}$/.test(keyHex)) throw new VmforkError('VMFORK_INTERNAL', 'a TLS pre-shared key is at least 16 bytes of hex');
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(parent, 'psk-'));
  await writeFile(join(dir, 'keys.psk'), `${PSK_USER}:${keyHex}\n`, { mode: 0o600 });
  return dir;
}


export interface NbdExport {
  host: string;
  port: number;
  name: string;
  pid: number;
  /** Ends the export (the process, by pid and start time) and removes its key. */
  stop(): Promise<void>;
}

/**
 * Exports `file` read-only on `host` (an address of this machine) under `name`, for clients holding the key in
 * `pskDir`. `--fork` returns once the socket listens; the process serves until `stop()` (the caller bounds its life).
 */
export async function startNbdExport(options: { file: string; host: string; name: string; pskDir: string; format?: 'raw' | 'qcow2' }): Promise<NbdExport> {
  const port = await freePort(options.host);
  const pidfile = join(options.pskDir, `${options.name}.pid`);
  // raw: the file as itself (a replica copy); qcow2: what a guest sees through it and its backing chain (a lazy disk)
  await runQemuTool(QEMU_NBD_BINARY, [
    '--read-only', '--format', options.format ?? 'raw', '--shared', '1', '--persistent', '--fork', '--pid-file', pidfile,
    '--export-name', options.name, '--bind', options.host, '--port', String(port),
    '--object', serverCredsArg(options.pskDir), '--tls-creds', CREDS,
    resolve(options.file),
  ], { errorCode: 'VMFORK_QEMU_IMG_FAILED', timeoutMs: 30_000 });
  const { pid, stop } = await forkedProcess(pidfile, options.name);
  return { host: options.host, port, name: options.name, pid, stop };
}

async function forkedProcess(pidfile: string, what: string): Promise<{ pid: number; stop: () => Promise<void> }> {
  const pid = Number((await readFile(pidfile, 'utf8')).trim());
  const startTime = await readStartTime(pid);
  if (!startTime) throw new VmforkError('VMFORK_QEMU_IMG_FAILED', `qemu-nbd for ${what} exited at once`);
  return { pid, stop: () => terminateProcess(pid, startTime, { graceMs: 2_000 }).then(() => undefined) };
}

export interface NbdRelay {
  /** The unix socket a local QEMU reads the remote export through (`nbd+unix:///<name>?socket=<path>`). */
  socket: string;
  name: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * A local qemu-nbd that reads another host's export (client side of TLS-PSK, keys in `pskDir`) and serves it,
 * read-only, on a unix socket: a VM's QEMU runs in a network namespace with no route to the other host, and holds
 * no key. The socket goes in the VM's own directory, which its QEMU's uid is given before QEMU starts.
 */
export async function startNbdRelay(options: { host: string; port: number; name: string; pskDir: string; socket: string }): Promise<NbdRelay> {
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const pidfile = join(options.pskDir, `relay-${options.name}.pid`);
  await runQemuTool(QEMU_NBD_BINARY, [
    '--read-only', '--shared', '4', '--persistent', '--fork', '--pid-file', pidfile,
    '--export-name', options.name, '--socket', resolve(options.socket),
    '--object', clientCredsArg(options.pskDir), '--image-opts', `driver=nbd,host=${host},port=${options.port},export=${options.name},tls-creds=${CREDS}`,
  ], { errorCode: 'VMFORK_QEMU_IMG_FAILED', timeoutMs: 30_000 });
  const { pid, stop } = await forkedProcess(pidfile, `the relay of ${options.name}`);
  return { socket: resolve(options.socket), name: options.name, pid, stop };
}

/** The backing file name of an image read through a relay. */
export function relayBacking(relay: Pick<NbdRelay, 'socket' | 'name'>): string {
  return `nbd+unix:///${relay.name}?socket=${relay.socket}`;
}

/** Copies an NBD export into `target` (raw bytes: for an exported qcow2 file, that file). */
export async function pullNbd(options: { host: string; port: number; name: string; pskDir: string; target: string }): Promise<void> {
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  await runQemuTool(QEMU_IMG_BINARY, [
    'convert', '-q', '-O', 'raw',
    '--object', clientCredsArg(options.pskDir),
    '--image-opts', `driver=nbd,host=${host},port=${options.port},export=${options.name},tls-creds=${CREDS}`,
    resolve(options.target),
  ], { errorCode: 'VMFORK_QEMU_IMG_FAILED', timeoutMs: 60 * 60_000 });
}

export async function removePskDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** The argument that names an export's key directory on its qemu-nbd's command line. */
function serverCredsArg(pskDir: string): string {
  return `tls-creds-psk,id=${CREDS},endpoint=server,dir=${pskDir}`;
}

/** The same for the client side (a pull, a relay). */
function clientCredsArg(pskDir: string): string {
  return `tls-creds-psk,id=${CREDS},endpoint=client,dir=${pskDir},username=${PSK_USER}`;
}

/**
 * Ends what a dead agent left under `parent`: each key directory's qemu-nbd processes, exports and relays (found by the directory on
 * their command line, so another agent's exports, under another parent, are never touched) and the directory.
 * Their 15-minute deadline was a timer in the agent that died. Returns how many exports were ended.
 */
export async function endStaleExports(parent: string): Promise<number> {
  let ended = 0;
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    const dir = join(parent, entry);
    for (const p of [...(await processesWithArg(serverCredsArg(dir))), ...(await processesWithArg(clientCredsArg(dir)))]) {
      await terminateProcess(p.pid, p.startTime, { graceMs: 2_000 });
      ended += 1;
    }
    await removePskDir(dir);
  }
  return ended;
}

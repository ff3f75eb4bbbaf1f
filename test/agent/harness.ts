/**
 * Runs the real vmfork-guest, compiled from guest/ on this host, inside fresh namespaces: a user namespace
 * (mapped root: no capability over the host — clock_settime and the RNG ioctls fail with EPERM), its own UTS
 * (hostname), network (a veth pair named eth0/v0), mount (the machine-id bind mount) and pid namespace (no host
 * process can be signalled). Every file the agent touches is under a temporary --root; its socket is fd 3, one
 * end of the socketpair node makes for the child's extra stdio.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeAgentMessage, FrameDecoder, VmforkAgentClient, type AgentMessage } from '../../src/agent/index.js';
import { compileGuestAgent, defaultGuestAgentDir } from '../../src/image/index.js';
import { guestAgentRecipe } from '../../src/image/guest-agent.js';
import { waitUntil } from '../../src/util/index.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let built: Promise<string> | undefined;

/** The agent binary for the current sources: compiled once into dist/guest/<digest>/ and reused by every test file. */
export function agentBinary(): Promise<string> {
  built ??= (async () => {
    const { sourceDigest } = await guestAgentRecipe(defaultGuestAgentDir());
    const dir = join(REPO, 'dist', 'guest', sourceDigest.slice(0, 16));
    const binary = join(dir, 'build', 'vmfork-guest');
    if (existsSync(binary)) return binary;
    mkdirSync(dirname(dir), { recursive: true });
    const work = mkdtempSync(`${dir}.tmp-`);
    await compileGuestAgent(defaultGuestAgentDir(), work, sourceDigest);
    try {
      renameSync(work, dir);
    } catch {
      rmSync(work, { recursive: true, force: true }); // another test file won the race: its build is the same
    }
    return binary;
  })();
  return built;
}

export const TEMPLATE_MAC = '02:00:00:00:00:01';
export const TEMPLATE_HOSTS = '127.0.0.1\tlocalhost\n127.0.1.1\tvmfork-template\n::1\tlocalhost ip6-localhost ip6-loopback\n';
export const TRANSIENT_MACHINE_ID = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

/** A guest root as a booted template leaves it: empty machine-id under systemd's bind mount, keys, a lease. */
export function makeGuestRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'vmfork-guest-root-'));
  const put = (path: string, content: string, mode = 0o644): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
    chmodSync(join(root, path), mode);
  };
  put('etc/machine-id', '', 0o444);
  put('run/machine-id', `${TRANSIENT_MACHINE_ID}\n`, 0o444);
  mkdirSync(join(root, 'var/lib/dbus'), { recursive: true });
  symlinkSync('../../../etc/machine-id', join(root, 'var/lib/dbus/machine-id')); // Debian's link, kept inside root
  put('etc/hostname', 'vmfork-template\n');
  put('etc/hosts', TEMPLATE_HOSTS);
  put('etc/ssh/ssh_host_ed25519_key', 'the template key\n', 0o600);
  put('etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 AAAAtemplate root@vmfork-template\n');
  put('etc/ssh/ssh_host_rsa_key', 'a stray key\n', 0o600);
  put('var/lib/dhcp/dhclient.eth0.leases', 'lease {}\n');
  mkdirSync(join(root, 'var/lib/systemd'), { recursive: true });
  // records the service kicks instead of reaching any systemd (the agent runs it inside the namespaces)
  // logs its calls; answers `is-system-running` as a booted guest would
  put('usr/bin/systemctl', '#!/bin/sh\necho "$*" >> "${0%/usr/bin/systemctl}/systemctl.log"\n[ "$1" = is-system-running ] && echo running\nexit 0\n', 0o755);
  return root;
}

const SETUP = `set -e
root=$1; agent=$2; shift 2
ip link set lo up
ip link add v0 type veth peer name eth0
ip link set v0 up
ip addr add 10.77.0.1/24 dev v0
ip link set eth0 address ${TEMPLATE_MAC}
ip link set eth0 up
ip addr add 10.77.0.99/24 dev eth0
ip route add default via 10.77.0.1 dev eth0
ip neigh replace 10.77.0.50 lladdr 02:00:00:00:00:50 dev eth0 nud stale
if [ -s "$root/run/machine-id" ] && [ ! -s "$root/etc/machine-id" ]; then mount --bind "$root/run/machine-id" "$root/etc/machine-id"; fi
exec "$agent" --fd 3 --root "$root" --systemctl "$root/usr/bin/systemctl" "$@"`;

export interface AgentUnderTest {
  root: string;
  proc: ChildProcess;
  /** The host end of the agent's channel. */
  socket: Socket;
  stderr(): string;
  /** A protocol client on the socket (no handshake yet). */
  client(): VmforkAgentClient;
  /**
   * Resolves once the agent is blocked waiting for a frame's header. After a framing error it drains input until
   * 200 ms of quiet (PROTOCOL.md); a frame sent before the drain ends is dropped, one sent once this resolves is read.
   */
  waitForNextFrame(): Promise<void>;
  /** Closes the channel (the agent exits on EOF), waits for the namespace to go, kills by pid if it lingers. */
  stop(options?: { keepRoot?: boolean }): Promise<void>;
}

/** x86_64 syscall numbers of what the agent blocks in (a non-blocking channel, so it waits in poll, not read). */
const SYS_POLL = 7n;
const SYS_PPOLL = 271n;

/**
 * Whether `pid` (the agent: unshare --fork's child, once sh has exec'd it) is asleep in a poll without a timeout:
 * its wait for the next header. The drain polls with 200 ms and a frame's payload with the frame timeout, so those
 * are told apart by the timeout argument in /proc/PID/syscall ("running" while it runs: not waiting).
 */
function waitsForHeader(unsharePid: number): boolean {
  const [agent] = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/);
  if (!agent || readFileSync(`/proc/${agent}/comm`, 'utf8').trim() !== 'vmfork-guest') return false;
  const words = readFileSync(`/proc/${agent}/syscall`, 'utf8').trim().split(' ');
  if (!words.every((w) => /^(?:\d+|0x[0-9a-f]+)$/.test(w))) return false;
  const [nr, , , timeout] = words.map((w) => BigInt(w));
  if (nr === SYS_POLL) return ((timeout ?? 0n) & 0xffffffffn) === 0xffffffffn; // poll(fds, 1, -1)
  return nr === SYS_PPOLL && timeout === 0n; // ppoll(fds, 1, NULL, …)
}

export async function startAgent(options: { root?: string; args?: string[] } = {}): Promise<AgentUnderTest> {
  const binary = await agentBinary();
  const root = options.root ?? makeGuestRoot();
  const proc = spawn(
    'unshare',
    ['--user', '--map-root-user', '--uts', '--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--', '/bin/sh', '-c', SETUP, 'sh', root, binary, ...(options.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const socket = proc.stdio[3] as Socket;
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  let client: VmforkAgentClient | undefined;
  return {
    root,
    proc,
    socket,
    stderr: () => err,
    client: () => (client ??= VmforkAgentClient.fromStream(socket, 'test agent')),
    async waitForNextFrame() {
      const pid = proc.pid as number;
      await waitUntil(() => waitsForHeader(pid), { deadlineMs: 30_000, everyMs: 20, what: `agent under unshare ${pid} to wait for a frame` });
    },
    async stop(o = {}) {
      client?.close();
      socket.destroy();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      if (!o.keepRoot) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Raw frames to and from the agent, for the tests that must send what the client never would. */
export class RawPeer {
  private readonly decoder = new FrameDecoder();
  private readonly queue: AgentMessage[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.queue.push(decodeAgentMessage(f));
      this.wake?.();
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async next(timeoutMs = 5_000): Promise<AgentMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() >= deadline) throw new Error(`no frame from the agent within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        this.wake = res;
        setTimeout(res, Math.max(1, deadline - Date.now()));
      });
    }
    return this.queue.shift() as AgentMessage;
  }
}

/**
 * WATCH in a real forked child (TCG, the shared rung): a real OpenSSH login through `vmfork ssh` as a user of the
 * guest is registered by pam_systemd with logind, vmfork-guest reports it in SESSIONS, and its logout in the next
 * one. Then the watch's connection is closed and a new one opened: the agent went back to waiting for a host.
 * Every wait is for an event (a SESSIONS, the ssh process's exit), never for a clock window.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openSessions, watchSessions, type AgentSession, type AgentSessions } from '../../src/agent/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { CLI, forkTracked, guestShell, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;
const keys = mkdtempSync(join(tmpdir(), 'vmfork-sessions-key-'));
after(() => rmSync(keys, { recursive: true, force: true }));

/** Under TCG with both cores busy: sshd's PAM session and logind's bookkeeping take seconds, not minutes. */
const EVENT_DEADLINE_MS = 120_000;

/** Every SESSIONS of a watch, in order. */
type Seen = AgentSessions[];

/**
 * An interactive ssh login (no remote command: a login shell reading its commands from the pipe) through
 * `vmfork ssh`, held until a SESSIONS lists it; then logout, and the first SESSIONS without the user after it.
 * Returns the user's session as the agent reported it while logged in.
 */
async function loginAndOut(child: string, user: string, key: string, got: Seen): Promise<AgentSession> {
  const env: NodeJS.ProcessEnv = { ...process.env, VMFORK_HOME: fx.th.root };
  delete env.VMFORK_NETNS_PREFIX;
  const ssh = spawn(process.execPath, [CLI, 'ssh', child, '-i', key, '-l', user], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  ssh.stdout.on('data', (d: Buffer) => (out += d.toString()));
  ssh.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => ssh.on('close', (code) => res(code)));
  ssh.stdin.write('echo "logged-in as $(id -un) on $(hostname)"\n');
  try {
    const sessions = await waitUntil(() => got.map((s) => openSessions(s, user)).find((l) => l.length > 0), {
      deadlineMs: EVENT_DEADLINE_MS,
      everyMs: 50,
      what: `a SESSIONS with ${user}'s login (got ${JSON.stringify(got)}; ssh said ${out}${err})`,
    });
    assert.equal(sessions.length, 1, `one session for ${user}'s one login`);
    await waitUntil(() => out.includes(`logged-in as ${user} on ${child}`), { deadlineMs: EVENT_DEADLINE_MS, everyMs: 50, what: `${user}'s login shell to answer (${out}${err})` });
    const before = got.length;
    ssh.stdin.end('exit\n');
    assert.equal(await exited, 0, `ssh exited cleanly: ${err}`);
    // logind removes the session once its scope is empty (a closing state may be reported on the way)
    await waitUntil(() => got.slice(before).some((s) => !s.sessions.some((x) => x.user === user)), {
      deadlineMs: EVENT_DEADLINE_MS,
      everyMs: 50,
      what: `a SESSIONS without ${user} after the logout (got ${JSON.stringify(got.slice(before))})`,
    });
    return sessions[0] as AgentSession;
  } finally {
    if (ssh.exitCode === null) ssh.kill();
  }
}

vmTest('a real ssh login is one user session in SESSIONS, its logout none (a user and root); a new watch after the first closed starts empty', tracker, async () => {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'sess-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const child = batch.children[0];
  assert.ok(child);
  const key = join(keys, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sessions-test', '-f', key]);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  const made = await guestShell(fx.th.db, child.name, [
    'useradd -m -s /bin/bash alice',
    'install -d -m 700 -o alice -g alice ~alice/.ssh',
    `printf '%s\\n' '${pub}' > ~alice/.ssh/authorized_keys`,
    'chown alice:alice ~alice/.ssh/authorized_keys && chmod 600 ~alice/.ssh/authorized_keys',
    'install -d -m 700 /root/.ssh',
    `printf '%s\\n' '${pub}' > /root/.ssh/authorized_keys`,
    'id -u alice',
  ].join(' && '));
  assert.equal(made.code, 0, made.err);

  const got: Seen = [];
  const socket = join(fx.th.home.vms, child.name, 'vfg.sock');
  const watch = await watchSessions(socket, (s) => got.push(s), { timeoutMs: 60_000 });
  try {
    assert.deepEqual(openSessions(watch.initial), [], `no user is logged in yet: ${JSON.stringify(watch.initial)}`);
    const alice = await loginAndOut(child.name, 'alice', key, got);
    assert.deepEqual([alice.uid, alice.class, alice.service, alice.remote], [Number(made.out), 'user', 'sshd', true], JSON.stringify(alice));
    assert.deepEqual(openSessions(got[got.length - 1] as AgentSessions), [], 'nobody is logged in after alice\'s logout');
    const root = await loginAndOut(child.name, 'root', key, got);
    assert.deepEqual([root.uid, root.class, root.service], [0, 'user', 'sshd'], 'a root login over ssh is a user session too');
    assert.deepEqual(openSessions(got[got.length - 1] as AgentSessions), [], 'nobody is logged in after root\'s logout');
  } finally {
    watch.close();
  }
  assert.equal((await watch.ended).code, 'VMFORK_AGENT_UNAVAILABLE');

  // the agent saw the host go away and waits for the next one: a new watch is answered
  const again = await watchSessions(socket, () => undefined, { timeoutMs: 60_000 });
  try {
    assert.deepEqual(openSessions(again.initial), []);
  } finally {
    again.close();
  }
});

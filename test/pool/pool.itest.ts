/**
 * Pools end to end, the patent's way, against a real `vmfork serve` and real QEMU: phase 1 once on an internal clone
 * (with a reboot), a replica, children forked and customized live, the replica map reused, on-demand children,
 * a real OpenSSH login, and a server killed mid-task that converges again after a restart. The image carries the
 * test hooks of test/fixtures/hooks (built once into the image cache).
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { listNamespaces } from '../../src/network/index.js';
import { machinePasswordMatches } from '../../src/customize/index.js';
import { removeReplica } from '../../src/replica/index.js';
import { currentProcess, getVm, listLeases } from '../../src/store/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { OpenApiChecker } from '../api/openapi-check.js';
import { CLI, REPO_ROOT, createTestHome, guestShell, qemuProcessesMatching, teardownHome, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';

let th: TestHome;
let tracker: VmTracker;
let server: Server | undefined;
let checker: OpenApiChecker;
let keyDir: string;
const PORT = 18_000 + (process.pid % 2_000);

interface Server {
  proc: ChildProcess;
  url: string;
  token: string;
  output: string[];
}

/** `vmfork serve` as a user runs it; resolves once it prints where it listens. */
async function startServer(): Promise<Server> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${PORT}`], { env: { ...process.env, VMFORK_HOME: th.root }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vmfork serve did not start: ${output.join('')}`)), 120_000);
    const onData = (d: Buffer): void => {
      output.push(d.toString());
      const m = /serving (http:\/\/\S+)/.exec(output.join(''));
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    proc.once('exit', (code) => reject(new Error(`vmfork serve exited ${code}: ${output.join('')}`)));
  });
  return { proc, url, token: readFileSync(join(th.root, 'api-token'), 'utf8').trim(), output };
}

async function stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const s = server;
  server = undefined;
  if (!s || s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill(signal);
  await exited;
}

/** One API call, its response checked against the server's own OpenAPI document. */
async function api<T>(method: string, path: string, body?: unknown, token: string | null = server?.token ?? null): Promise<{ status: number; body: T }> {
  assert.ok(server, 'the server runs');
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  checker?.check(method, path, { statusCode: res.status, headers: { 'content-type': res.headers.get('content-type') ?? '' }, body: text, json: () => JSON.parse(text) as unknown } as never);
  return { status: res.status, body: JSON.parse(text) as T };
}

/** The CLI against the running server. */
function cli(args: string[], options: { allowFailure?: boolean } = {}): ReturnType<typeof run> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, VMFORK_HOME: th.root, VMFORK_URL: server?.url ?? '' }, allowFailure: options.allowFailure ?? false, timeoutMs: 1_200_000 });
}

async function waitTask(id: string): Promise<{ state: string; result: Record<string, unknown> | null; lastError: { message: string } | null }> {
  return waitUntil(
    async () => {
      const t = await api<{ state: string; result: Record<string, unknown> | null; lastError: { message: string } | null }>('GET', `/v1/tasks/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(t.body.state) ? t.body : undefined;
    },
    { deadlineMs: 20 * 60_000, everyMs: 500, what: `task ${id} to end` },
  );
}

async function guest(name: string, script: string): Promise<string> {
  const r = await guestShell(th.db, name, script);
  assert.equal(r.code, 0, `${name}: ${script}: ${r.err}`);
  return r.out;
}

function spec(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const publicKey = readFileSync(join(keyDir, 'id_ed25519.pub'), 'utf8').trim();
  return {
    name,
    image: 'pool',
    provisioning: 'up-front',
    persistent: true,
    size: { max: 3 },
    naming: { pattern: `${name}-{n:2}` },
    disks: { userData: '128M', disposable: '128M', swap: '32M' },
    customize: {
      common: [{ path: '/usr/local/lib/vmfork/common/10-reboot-once.sh', timeoutSeconds: 300 }],
      perChild: [{ path: '/usr/local/lib/vmfork/per-child/10-record.sh', args: { domain: 'corp.example', ou: 'desks' }, timeoutSeconds: 30 }],
      machinePassword: true,
    },
    access: { sshAuthorizedKeys: [publicKey] },
    memory: '384M',
    ...extra,
  };
}

let desk: { taskId: string; result: Record<string, unknown> };

before(async () => {
  th = await createTestHome('pools');
  tracker = new VmTracker(th);
  await th.cli(['image', 'build', '--name', 'pool', '--hooks', join(REPO_ROOT, 'test', 'fixtures', 'hooks')], { timeoutMs: 1_800_000 });
  keyDir = mkdtempSync(join(tmpdir(), 'vmfork-pool-key-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pool-test', '-f', join(keyDir, 'id_ed25519')]);
  server = await startServer();
  const doc = await fetch(`${server.url}/openapi.json`, { headers: { authorization: `Bearer ${server.token}` } });
  checker = await OpenApiChecker.fromDocument(await doc.json());
  const file = join(keyDir, 'desk.json');
  writeFileSync(file, JSON.stringify(spec('desk')));
  const created = await cli(['pool', 'create', '-f', file, '--wait', '--json']);
  const out = JSON.parse(created.stdout) as { taskId?: string; id?: string; task?: { id: string }; state?: string };
  const taskId = out.taskId ?? out.task?.id ?? out.id ?? '';
  const task = await waitTask(taskId);
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  desk = { taskId, result: task.result ?? {} };
  for (const n of ['desk-01', 'desk-02', 'desk-03']) tracker.track(n);
});

after(async () => {
  if (server) {
    for (const p of ['desk', 'desk2', 'od']) {
      const r = await api<{ taskId?: string }>('DELETE', `/v1/pools/${p}`).catch(() => undefined);
      if (r?.status === 202 && r.body.taskId) await waitTask(r.body.taskId);
    }
    await stopServer();
  }
  await tracker.teardown();
  rmSync(keyDir, { recursive: true, force: true });
  const prefix = await th.netnsPrefix();
  assert.deepEqual(await teardownHome(th), [], 'the pool test home left nothing behind');
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(prefix)), []);
});

vmTest('the API refuses before anything is made: no token 401, wrong token 403, a malformed spec 400 naming the field, an unknown image 404', () => tracker, async () => {
  assert.equal((await api('GET', '/v1/pools', undefined, null)).status, 401);
  assert.equal((await api('GET', '/v1/pools', undefined, 'not-the-token')).status, 403);
  const tasksBefore = (await api<unknown[]>('GET', '/v1/tasks')).body.length;
  const bad = await api<{ error: { code: string; message: string; details: { problems: { path: string }[] } } }>('POST', '/v1/pools', { ...spec('bad'), size: { max: 'three' }, colour: 'blue' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'VMFORK_INVALID_ARGUMENT');
  assert.deepEqual(bad.body.error.details.problems.map((p) => p.path).sort(), ['colour', 'size.max'].sort());
  const unknown = await api<{ error: { code: string; message: string } }>('POST', '/v1/pools', spec('nope', { image: 'no-such-image' }));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'VMFORK_IMAGE_NOT_FOUND');
  assert.match(unknown.body.error.message, /image/);
  assert.equal((await api<unknown[]>('GET', '/v1/tasks')).body.length, tasksBefore, 'no task was started');
  assert.deepEqual((await api<{ name: string }[]>('GET', '/v1/pools')).body.map((p) => p.name), ['desk']);
});

vmTest('a persistent pool of 3: /home on the user-data disk, swap and /tmp on the disposable one, phase 1 rebooted, no child booted', () => tracker, async () => {
  const pool = await api<{ state: string; counts: Record<string, number>; replica: string }>('GET', '/v1/pools/desk');
  assert.equal(pool.body.state, 'ready');
  assert.deepEqual(pool.body.counts, { running: 3 });
  // phase 1 rebooted the internal clone at least once: the common hook asked for it (exit 100)
  const replica = (await api<{ id: string; template: string; pools: string[] }[]>('GET', '/v1/replicas')).body.find((r) => r.id === pool.body.replica);
  assert.ok(replica?.template, 'the replica was frozen into a template');
  assert.deepEqual(replica.pools, ['desk']);
  assert.ok(Number(desk.result.phase1Reboots) >= 1, `phase 1 rebooted the internal clone: ${JSON.stringify(desk.result)}`);
  const template = JSON.parse((await th.cli(['template', 'show', replica.template, '--json'])).stdout) as { record: { bootId: string } };
  for (const name of ['desk-01', 'desk-02', 'desk-03']) {
    const [home, tmp, swap, bootId, done] = (
      await guest(name, 'findmnt -n -o LABEL /home; findmnt -n -o LABEL /tmp; for s in $(swapon --show=NAME --noheadings); do blkid -s LABEL -o value "$s"; done; cat /proc/sys/kernel/random/boot_id; wc -l < /var/lib/vmfork-test/common-done')
    ).split('\n');
    assert.equal(home, 'vmf-home', `${name}: /home is the user-data disk's ext4`);
    assert.equal(tmp, 'vmf-tmp', `${name}: /tmp is on the disposable disk`);
    assert.equal(swap, 'vmf-swap', `${name}: swap is on the disposable disk`);
    assert.equal(bootId, template.record.bootId, `${name}: boot_id is the replica template's (never booted)`);
    assert.equal(done, '1', `${name}: the common hook finished once, after its reboot, before the replica was cut`);
  }
  const v = await th.cli(['verify', 'desk-01', 'desk-02', 'desk-03', '--json'], { allowFailure: true });
  const report = JSON.parse(v.stdout) as { ok: boolean; collisions: unknown[]; problems: unknown[] };
  assert.deepEqual([report.collisions, report.problems], [[], []]);
  assert.equal(v.code, 0);
});

vmTest('per-child hooks got their args and the machine password; the host keeps only its salted hash and holds it nowhere in clear', () => tracker, async () => {
  const passwords: string[] = [];
  for (const name of ['desk-01', 'desk-02', 'desk-03']) {
    const [args, sha] = (await guest(name, 'cat /var/lib/vmfork-test/per-child.args | tr "\\n" " "; echo; cat /var/lib/vmfork-test/machine-password.sha256')).split('\n');
    assert.equal(args?.trim(), '--domain=corp.example --ou=desks');
    const row = await getVm(th.db, name);
    assert.ok(row?.secret_hash?.startsWith('scrypt$'), 'a salted hash is stored');
    assert.ok(machinePasswordMatches(row?.secret_hash ?? '', sha ?? ''), `${name}: the sha256 the hook saw matches the stored salted hash`);
    passwords.push(await guest(name, 'cat /run/vmfork-test/machine-password'));
  }
  assert.equal(new Set(passwords).size, 3, 'one password per child');
  for (const [i, pw] of passwords.entries()) assert.equal(createHash('sha256').update(pw).digest('hex').length, 64, `password ${i} read back`);
  // every file of the data dir (store, WAL, logs, VM dirs), every task event, every QEMU command line
  const hits: string[] = [];
  const scan = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await scan(p);
      else if (e.isFile() && !/\.(qcow2|raw)$|\/ram$/.test(p)) {
        const text = await readFile(p, 'latin1').catch(() => '');
        for (const pw of passwords) if (text.includes(pw)) hits.push(p);
      }
    }
  };
  await scan(th.root);
  for (const t of (await api<{ id: string }[]>('GET', '/v1/tasks')).body) {
    const events = await fetch(`${server?.url}/v1/tasks/${t.id}/events`, { headers: { authorization: `Bearer ${server?.token}` } }).then((r) => r.text());
    for (const pw of passwords) if (events.includes(pw)) hits.push(`task ${t.id} events`);
  }
  for (const pid of await qemuProcessesMatching(th.root)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    for (const pw of passwords) if (cmdline.includes(pw)) hits.push(`QEMU ${pid} argv`);
  }
  assert.deepEqual(hits, [], 'no machine password anywhere on the host');
});

vmTest('a real ssh client logs in with the pool key and sees the child\'s own hostname and host key', () => tracker, async () => {
  const r = await cli(['ssh', 'desk-02', '-i', join(keyDir, 'id_ed25519'), '--', 'hostname; cat /etc/ssh/ssh_host_ed25519_key.pub']);
  const [hostname, pub] = r.stdout.trim().split('\n');
  assert.equal(hostname, 'desk-02');
  const facts = JSON.parse((await getVm(th.db, 'desk-02'))?.facts_json ?? '{}') as { sshHostKeyFingerprints: string[] };
  const fp = await run('ssh-keygen', ['-lf', '-'], { input: `${pub ?? ''}\n` });
  assert.ok(facts.sshHostKeyFingerprints.includes(`ED25519 ${fp.stdout.split(' ')[1] ?? ''}`), `the key ssh accepted is the child's own: ${fp.stdout}`);
  const other = await cli(['ssh', 'desk-03', '-i', join(keyDir, 'id_ed25519'), '--', 'cat /etc/ssh/ssh_host_ed25519_key.pub']);
  assert.notEqual(other.stdout.trim(), pub, 'each child has its own host key');
});

vmTest('a second pool with the same phase-1 spec reuses the replica: no phase 1, no copy', () => tracker, async () => {
  const accepted = await api<{ taskId: string }>('POST', '/v1/pools', spec('desk2', { size: { max: 1 } }));
  assert.equal(accepted.status, 202);
  const task = await waitTask(accepted.body.taskId);
  tracker.track('desk2-01');
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  assert.equal(task.result?.replicaReused, true);
  const replicas = (await api<{ id: string; pools: string[] }[]>('GET', '/v1/replicas')).body;
  assert.equal(replicas.length, 1, 'one replica for both pools');
  assert.deepEqual(replicas[0]?.pools, ['desk', 'desk2']);
  assert.equal(await getVm(th.db, `p1-${replicas[0]?.id ?? ''}`), undefined, 'no internal clone was made');
  await assert.rejects(removeReplica(th, replicas[0]?.id ?? ''), { code: 'VMFORK_REPLICA_IN_USE' }, 'a replica in use is protected');
});

vmTest('a failed create leaves nothing: a taken name is 409; a common script that fails or times out, or a failing per-child hook, rolls the pool back', () => tracker, async () => {
  const taken = await api<{ error: { code: string } }>('POST', '/v1/pools', spec('desk'));
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error.code, 'VMFORK_POOL_EXISTS');
  const replicasBefore = (await api<{ id: string }[]>('GET', '/v1/replicas')).body.map((r) => r.id);
  const vmsBefore = (JSON.parse((await th.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name).sort();
  const cases: [string, Record<string, unknown>][] = [
    // other common scripts: another phase-1 digest, so a new replica is started and must be rolled back
    ['badcommon', { customize: { common: [{ path: '/usr/local/lib/vmfork/common/90-fail.sh', timeoutSeconds: 60 }] } }],
    ['slowcommon', { customize: { common: [{ path: '/usr/local/lib/vmfork/common/91-hang.sh', timeoutSeconds: 3 }] } }],
    // the desk replica is reused; the child's phase 2 fails, the child is rolled back and nothing else is tried
    ['badhook', { stopOnError: true, size: { max: 2 }, customize: { ...(spec('x').customize as object), perChild: [{ path: '/usr/local/lib/vmfork/per-child/no-such-hook.sh', timeoutSeconds: 30 }] } }],
  ];
  for (const [name, extra] of cases) {
    const accepted = await api<{ taskId: string }>('POST', '/v1/pools', spec(name, extra));
    assert.equal(accepted.status, 202);
    const task = await waitTask(accepted.body.taskId);
    assert.equal(task.state, 'failed', `${name}: ${JSON.stringify(task)}`);
    assert.match(JSON.stringify(task.lastError), /VMFORK_CUSTOMIZE_FAILED/, `${name}: ${JSON.stringify(task.lastError)}`);
    const why = { badcommon: /90-fail\.sh exited 3[^]*licence server unreachable/, slowcommon: /91-hang\.sh did not finish within 3 s/, badhook: /no-such-hook\.sh/ }[name];
    assert.match(task.lastError?.message ?? '', why ?? /./, `${name}: the error names the script (and its stderr tail)`);
    assert.equal((await api('GET', `/v1/pools/${name}`)).status, 404, `${name}: no pool left`);
  }
  assert.deepEqual((await api<{ id: string }[]>('GET', '/v1/replicas')).body.map((r) => r.id), replicasBefore, 'the failed replica was rolled back; the shared one kept');
  const vmsAfter = (JSON.parse((await th.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name).sort();
  assert.deepEqual(vmsAfter, vmsBefore, 'no child, internal clone or template of the failed pools is left');
  const leases = (await listLeases(th.db)).map((l) => l.vm_name);
  assert.ok(!leases.some((n) => n.startsWith('bad')), `no lease left: ${leases.join(', ')}`);
  // the name is free again: the same create with a working hook succeeds
  const retry = await api<{ taskId: string }>('POST', '/v1/pools', spec('badhook', { size: { max: 1 } }));
  tracker.track('badhook-01');
  assert.equal((await waitTask(retry.body.taskId)).state, 'succeeded');
  const removed = await api<{ taskId: string }>('DELETE', '/v1/pools/badhook');
  assert.equal((await waitTask(removed.body.taskId)).state, 'succeeded');
});

vmTest('an on-demand pool registers its children powered off, forks one on power-on and keeps its spares', () => tracker, async () => {
  const accepted = await api<{ taskId: string }>('POST', '/v1/pools', spec('od', { provisioning: 'on-demand', size: { max: 3, min: 1, spares: 1 } }));
  assert.equal(accepted.status, 202);
  assert.equal((await waitTask(accepted.body.taskId)).state, 'succeeded');
  for (const n of ['od-01', 'od-02', 'od-03']) tracker.track(n);
  const states = async (): Promise<Record<string, string>> => Object.fromEntries((await api<{ vms: { name: string; state: string }[] }>('GET', '/v1/pools/od')).body.vms.map((v) => [v.name, v.state]));
  assert.deepEqual(await states(), { 'od-01': 'running', 'od-02': 'registered', 'od-03': 'registered' });
  assert.equal(await currentProcess(th.db, 'od-02'), undefined, 'a registered child has no QEMU');
  assert.ok((await listLeases(th.db)).some((l) => l.vm_name === 'od-02'), 'but its address is reserved');
  const on = await cli(['vm', 'power-on', 'od-02', '--json']);
  const onTask = JSON.parse(on.stdout) as { taskId: string };
  assert.equal((await waitTask(onTask.taskId)).state, 'succeeded');
  assert.deepEqual(await states(), { 'od-01': 'running', 'od-02': 'running', 'od-03': 'registered' }, 'od-02 forked on power-on; od-01 still the spare');
  assert.equal(await guest('od-02', 'hostname'), 'od-02');
});

vmTest('kill -9 of the server mid-task, then a restart converges the pool with nothing leaked', () => tracker, async () => {
  const resize = await api<{ taskId: string }>('PATCH', '/v1/pools/desk2', { max: 3 });
  assert.equal(resize.status, 202);
  for (const n of ['desk2-02', 'desk2-03']) tracker.track(n);
  // kill it while a child is being forked: its QEMU runs, its row says forking, its task says running
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && (await getVm(th.db, 'desk2-02'))?.state !== 'forking') await sleep(20);
  assert.equal((await getVm(th.db, 'desk2-02'))?.state, 'forking');
  await stopServer('SIGKILL');
  server = await startServer();
  assert.match(server.output.join(''), new RegExp(`task ${resize.body.taskId} \\(pool-resize desk2`), 'the restarted server resumed the task');
  const task = await waitTask(resize.body.taskId);
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  const pool = (await api<{ state: string; vms: { name: string; state: string }[] }>('GET', '/v1/pools/desk2')).body;
  assert.equal(pool.state, 'ready');
  assert.deepEqual(pool.vms, [{ name: 'desk2-01', state: 'running' }, { name: 'desk2-02', state: 'running' }, { name: 'desk2-03', state: 'running' }]);
  // one QEMU per running VM of the data dir, one lease per VM: nothing of the killed attempt is left
  const running = (JSON.parse((await th.cli(['vm', 'list', '--json'])).stdout) as { name: string; state: string }[]).filter((v) => v.state === 'running');
  assert.equal((await qemuProcessesMatching(`${th.root}/`)).length, running.length, 'no leaked QEMU');
  const leases = (await listLeases(th.db)).map((l) => l.vm_name).sort();
  const vms = (JSON.parse((await th.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name).sort();
  assert.deepEqual(leases, vms, 'one lease per VM, none leaked');
});

/**
 * Pools end to end, the patent's way, against a real `vmfork serve` and real QEMU: phase 1 once on an internal clone
 * (with a reboot), a replica, children forked and customized live, the replica map reused, on-demand children,
 * a real OpenSSH login, and a server killed mid-task that converges again after a restart. The pool `desk` these
 * read is the pool rung (test/fixtures/pool-rung.ts), shared with the other pool test files; a test that makes a
 * pool of its own removes it (`removePoolChecked`: nothing of it left, its replica kept).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { machinePasswordMatches } from '../../src/customize/index.js';
import { removeReplica } from '../../src/replica/index.js';
import { currentProcess, getVm, listLeases } from '../../src/store/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { qemuProcessesMatching, vmTest } from '../fixtures/ladder.js';
import { removePoolChecked, RUNG_CHILDREN, RUNG_POOL, usePoolRung, type TaskBody } from '../fixtures/pool-rung.js';

const fx = usePoolRung();
const tracker = () => fx.tracker;

vmTest('the API refuses before anything is made: no token 401, wrong token 403, a malformed spec 400 naming the field, an unknown image 404', tracker, async () => {
  assert.equal((await fx.api('GET', '/v1/pools', undefined, null)).status, 401);
  assert.equal((await fx.api('GET', '/v1/pools', undefined, 'not-the-token')).status, 403);
  const tasksBefore = (await fx.api<unknown[]>('GET', '/v1/tasks?limit=1000')).body.length;
  const bad = await fx.api<{ error: { code: string; message: string; details: { problems: { path: string }[] } } }>('POST', '/v1/pools', { ...fx.spec('bad'), size: { max: 'three' }, colour: 'blue' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'VMFORK_INVALID_ARGUMENT');
  assert.deepEqual(bad.body.error.details.problems.map((p) => p.path).sort(), ['colour', 'size.max'].sort());
  const unknown = await fx.api<{ error: { code: string; message: string } }>('POST', '/v1/pools', fx.spec('nope', { image: 'no-such-image' }));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'VMFORK_IMAGE_NOT_FOUND');
  assert.match(unknown.body.error.message, /image/);
  assert.equal((await fx.api<unknown[]>('GET', '/v1/tasks?limit=1000')).body.length, tasksBefore, 'no task was started');
  assert.deepEqual((await fx.api<{ name: string }[]>('GET', '/v1/pools')).body.map((p) => p.name), [RUNG_POOL], 'no pool was made');
});

vmTest('a persistent pool of 3: /home on the user-data disk, swap and /tmp on the disposable one, phase 1 rebooted (two boot_ids), no child booted', tracker, async () => {
  const pool = await fx.api<{ state: string; counts: Record<string, number>; replica: string }>('GET', `/v1/pools/${RUNG_POOL}`);
  assert.equal(pool.body.state, 'ready');
  assert.deepEqual(pool.body.counts, { running: 3 });
  const replica = (await fx.api<{ id: string; template: string; pools: string[] }[]>('GET', '/v1/replicas')).body.find((r) => r.id === pool.body.replica);
  assert.ok(replica?.template, 'the replica was frozen into a template');
  assert.deepEqual(replica.pools, [RUNG_POOL]);
  const created = (await fx.api<TaskBody>('GET', `/v1/tasks/${fx.createTaskId}`)).body;
  assert.ok(Number(created.result?.phase1Reboots) >= 1, `vmfork counted phase 1's reboot: ${JSON.stringify(created.result)}`);
  const template = JSON.parse((await fx.th.cli(['template', 'show', replica.template, '--json'])).stdout) as { record: { bootId: string } };
  for (const name of RUNG_CHILDREN) {
    const script = [
      'findmnt -n -o LABEL /home; findmnt -n -o LABEL /tmp',
      'for s in $(swapon --show=NAME --noheadings); do blkid -s LABEL -o value "$s"; done',
      'cat /proc/sys/kernel/random/boot_id /var/lib/vmfork-test/reboot-requested /var/lib/vmfork-test/common-done',
    ].join('; ');
    const [home, tmp, swap, bootId, beforeReboot, ...afterReboot] = (await fx.guest(name, script)).split('\n');
    assert.equal(home, 'vmf-home', `${name}: /home is the user-data disk's ext4`);
    assert.equal(tmp, 'vmf-tmp', `${name}: /tmp is on the disposable disk`);
    assert.equal(swap, 'vmf-swap', `${name}: swap is on the disposable disk`);
    assert.equal(bootId, template.record.bootId, `${name}: boot_id is the replica template's (never booted)`);
    // the hook recorded the boot that asked for the reboot and, once, the boot it finished in: a real reboot
    // happened in between (not only vmfork's counter), and both are older than the template's own boot
    assert.equal(afterReboot.length, 1, `${name}: the common hook finished once, after its reboot, before the replica was cut`);
    assert.match(beforeReboot ?? '', /^[0-9a-f-]{36}$/, `${name}: the boot that asked for the reboot was recorded`);
    assert.notEqual(afterReboot[0], beforeReboot, `${name}: the hook finished in another boot than the one that asked for the reboot`);
    assert.ok(![beforeReboot, afterReboot[0]].includes(bootId), `${name}: phase 1's boots are not the template's`);
  }
  const v = await fx.th.cli(['verify', ...RUNG_CHILDREN, '--json'], { allowFailure: true });
  const report = JSON.parse(v.stdout) as { ok: boolean; collisions: unknown[]; problems: unknown[] };
  assert.deepEqual([report.collisions, report.problems], [[], []]);
  assert.equal(v.code, 0);
});

vmTest('per-child hooks got their args and the machine password; the host keeps only its salted hash and holds it nowhere in clear', tracker, async () => {
  const passwords: string[] = [];
  for (const name of RUNG_CHILDREN) {
    const [args, sha] = (await fx.guest(name, 'cat /var/lib/vmfork-test/per-child.args | tr "\\n" " "; echo; cat /var/lib/vmfork-test/machine-password.sha256')).split('\n');
    assert.equal(args?.trim(), '--domain=corp.example --ou=desks');
    const row = await getVm(fx.th.db, name);
    assert.ok(row?.secret_hash?.startsWith('scrypt$'), 'a salted hash is stored');
    assert.ok(machinePasswordMatches(row?.secret_hash ?? '', sha ?? ''), `${name}: the sha256 the hook saw matches the stored salted hash`);
    passwords.push(await fx.guest(name, 'cat /run/vmfork-test/machine-password'));
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
  await scan(fx.th.root);
  for (const t of (await fx.api<{ id: string }[]>('GET', '/v1/tasks')).body) {
    const events = await fetch(`${fx.server.url}/v1/tasks/${t.id}/events`, { headers: { authorization: `Bearer ${fx.server.token}` } }).then((r) => r.text());
    for (const pw of passwords) if (events.includes(pw)) hits.push(`task ${t.id} events`);
  }
  for (const pid of await qemuProcessesMatching(fx.th.root)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    for (const pw of passwords) if (cmdline.includes(pw)) hits.push(`QEMU ${pid} argv`);
  }
  assert.deepEqual(hits, [], 'no machine password anywhere on the host');
});

vmTest('a real ssh client logs in with the pool key and sees the child\'s own hostname and host key', tracker, async () => {
  const r = await fx.cli(['ssh', 'desk-02', '-i', fx.keyFile, '--', 'hostname; cat /etc/ssh/ssh_host_ed25519_key.pub']);
  const [hostname, pub] = r.stdout.trim().split('\n');
  assert.equal(hostname, 'desk-02');
  const facts = JSON.parse((await getVm(fx.th.db, 'desk-02'))?.facts_json ?? '{}') as { sshHostKeyFingerprints: string[] };
  const fp = await run('ssh-keygen', ['-lf', '-'], { input: `${pub ?? ''}\n` });
  assert.ok(facts.sshHostKeyFingerprints.includes(`ED25519 ${fp.stdout.split(' ')[1] ?? ''}`), `the key ssh accepted is the child's own: ${fp.stdout}`);
  const other = await fx.cli(['ssh', 'desk-03', '-i', fx.keyFile, '--', 'cat /etc/ssh/ssh_host_ed25519_key.pub']);
  assert.notEqual(other.stdout.trim(), pub, 'each child has its own host key');
});

vmTest('a second pool with the same phase-1 spec reuses the replica: no phase 1, no copy', tracker, async () => {
  const before = (await fx.api<{ id: string }[]>('GET', '/v1/replicas')).body.map((r) => r.id);
  fx.tracker.track('desk2-01');
  const task = await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec('desk2', { size: { max: 1 } })));
  assert.equal(task.result?.replicaReused, true);
  const replicas = (await fx.api<{ id: string; pools: string[] }[]>('GET', '/v1/replicas')).body;
  assert.deepEqual(replicas.map((r) => r.id), before, 'no replica was made');
  const shared = replicas.find((r) => r.id === task.result?.replica);
  assert.deepEqual(shared?.pools, [RUNG_POOL, 'desk2'], 'one replica for both pools');
  assert.equal(await getVm(fx.th.db, `p1-${shared.id}`), undefined, 'no internal clone was made');
  await assert.rejects(removeReplica(fx.th, shared.id), { code: 'VMFORK_REPLICA_IN_USE' }, 'a replica in use is protected');
  await removePoolChecked(fx, 'desk2');
});

vmTest('a failed create leaves nothing: a taken name is 409; a common script that fails or times out, or a failing per-child hook, rolls the pool back', tracker, async () => {
  const taken = await fx.api<{ error: { code: string } }>('POST', '/v1/pools', fx.spec('desk'));
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error.code, 'VMFORK_POOL_EXISTS');
  const replicasBefore = (await fx.api<{ id: string }[]>('GET', '/v1/replicas')).body.map((r) => r.id);
  const vmsBefore = (JSON.parse((await fx.th.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name).sort();
  const cases: [string, Record<string, unknown>][] = [
    // other common scripts: another phase-1 digest, so a new replica is started and must be rolled back
    ['badcommon', { customize: { common: [{ path: '/usr/local/lib/vmfork/common/90-fail.sh', timeoutSeconds: 60 }] } }],
    ['slowcommon', { customize: { common: [{ path: '/usr/local/lib/vmfork/common/91-hang.sh', timeoutSeconds: 3 }] } }],
    // the desk replica is reused; the child's phase 2 fails, the child is rolled back and nothing else is tried
    ['badhook', { stopOnError: true, size: { max: 2 }, customize: { ...(fx.spec('x').customize as object), perChild: [{ path: '/usr/local/lib/vmfork/per-child/no-such-hook.sh', timeoutSeconds: 30 }] } }],
  ];
  for (const [name, extra] of cases) {
    const accepted = await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(name, extra));
    assert.equal(accepted.status, 202);
    const task = await fx.waitTask(accepted.body.taskId);
    assert.equal(task.state, 'failed', `${name}: ${JSON.stringify(task)}`);
    assert.match(JSON.stringify(task.lastError), /VMFORK_CUSTOMIZE_FAILED/, `${name}: ${JSON.stringify(task.lastError)}`);
    const why = { badcommon: /90-fail\.sh exited 3[^]*licence server unreachable/, slowcommon: /91-hang\.sh did not finish within 3 s/, badhook: /no-such-hook\.sh/ }[name];
    assert.match(task.lastError?.message ?? '', why ?? /./, `${name}: the error names the script (and its stderr tail)`);
    assert.equal((await fx.api('GET', `/v1/pools/${name}`)).status, 404, `${name}: no pool left`);
  }
  assert.deepEqual((await fx.api<{ id: string }[]>('GET', '/v1/replicas')).body.map((r) => r.id), replicasBefore, 'the failed replica was rolled back; the shared one kept');
  const vmsAfter = (JSON.parse((await fx.th.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name).sort();
  assert.deepEqual(vmsAfter, vmsBefore, 'no child, internal clone or template of the failed pools is left');
  const leases = (await listLeases(fx.th.db)).map((l) => l.vm_name);
  assert.ok(!leases.some((n) => n.startsWith('bad')), `no lease left: ${leases.join(', ')}`);
  // the name is free again: the same create with a working hook succeeds
  const retry = await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec('badhook', { size: { max: 1 } }));
  fx.tracker.track('badhook-01');
  assert.equal((await fx.waitTask(retry.body.taskId)).state, 'succeeded');
  await removePoolChecked(fx, 'badhook');
});

vmTest('an on-demand pool registers its children powered off, forks one on power-on and keeps its spares', tracker, async () => {
  const accepted = await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec('od', { provisioning: 'on-demand', size: { max: 3, min: 1, spares: 1 } }));
  assert.equal(accepted.status, 202);
  assert.equal((await fx.waitTask(accepted.body.taskId)).state, 'succeeded');
  for (const n of ['od-01', 'od-02', 'od-03']) fx.tracker.track(n);
  const states = async (): Promise<Record<string, string>> => Object.fromEntries((await fx.api<{ vms: { name: string; state: string }[] }>('GET', '/v1/pools/od')).body.vms.map((v) => [v.name, v.state]));
  assert.deepEqual(await states(), { 'od-01': 'running', 'od-02': 'registered', 'od-03': 'registered' });
  assert.equal(await currentProcess(fx.th.db, 'od-02'), undefined, 'a registered child has no QEMU');
  assert.ok((await listLeases(fx.th.db)).some((l) => l.vm_name === 'od-02'), 'but its address is reserved');
  const on = await fx.cli(['vm', 'power-on', 'od-02', '--json']);
  const onTask = JSON.parse(on.stdout) as { taskId: string };
  assert.equal((await fx.waitTask(onTask.taskId)).state, 'succeeded');
  assert.deepEqual(await states(), { 'od-01': 'running', 'od-02': 'running', 'od-03': 'registered' }, 'od-02 forked on power-on; od-01 still the spare');
  assert.equal(await fx.guest('od-02', 'hostname'), 'od-02');
  // a pre-registered child holds an address and overlays, not a QEMU: `pool rm` removes those too
  await removePoolChecked(fx, 'od');
});

vmTest('kill -9 of the server mid-task, then a restart converges the pool with nothing leaked', tracker, async () => {
  for (const n of ['crash-01', 'crash-02']) fx.tracker.track(n);
  await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec('crash', { size: { max: 1 } })));
  const resize = await fx.api<{ taskId: string }>('PATCH', '/v1/pools/crash', { max: 2 });
  assert.equal(resize.status, 202);
  // kill it while a child is being forked: its QEMU runs, its row says forking, its task says running
  await waitUntil(async () => (await getVm(fx.th.db, 'crash-02'))?.state === 'forking', { deadlineMs: 120_000, everyMs: 20, what: 'crash-02 to be forking' });
  await fx.stop('SIGKILL');
  const server = await fx.start();
  assert.match(server.output.join(''), new RegExp(`task ${resize.body.taskId} \\(pool-resize crash`), 'the restarted server resumed the task');
  const task = await fx.waitTask(resize.body.taskId);
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  const pool = (await fx.api<{ state: string; vms: { name: string; state: string }[] }>('GET', '/v1/pools/crash')).body;
  assert.equal(pool.state, 'ready');
  assert.deepEqual(pool.vms.map((v) => ({ name: v.name, state: v.state })), [{ name: 'crash-01', state: 'running' }, { name: 'crash-02', state: 'running' }]);
  // one QEMU per running VM of the data dir, one lease per VM: nothing of the killed attempt is left
  const list = JSON.parse((await fx.th.cli(['vm', 'list', '--json'])).stdout) as { name: string; state: string }[];
  assert.equal((await qemuProcessesMatching(`${fx.th.root}/`)).length, list.filter((v) => v.state === 'running').length, 'no leaked QEMU');
  const leases = (await listLeases(fx.th.db)).map((l) => l.vm_name).sort();
  assert.deepEqual(leases, list.map((v) => v.name).sort(), 'one lease per VM, none leaked');
  await removePoolChecked(fx, 'crash');
});

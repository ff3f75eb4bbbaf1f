/**
 * A pool child's life against a real `vmfork serve` and real QEMU: a persistent child suspended and resumed (and
 * booted from its disks when its state is damaged), a pool shrunk, a non-persistent child refreshed at power-off
 * by its pool's follow-up converge, claimed, released, ended by its TTL, its user's logoff and its own power-off,
 * an image pushed with min-ready held, and what `pool rm` and `replica rm` leave. The persistent pool stands on the pool rung's replica and
 * template (test/fixtures/pool-rung.ts); the non-persistent one needs its own replica (persistence is part of the
 * phase-1 spec), made cheap: no common scripts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { ownerAlive } from '../../src/host/index.js';
import { currentProcess, getVm, listLeases } from '../../src/store/index.js';
import { waitUntil } from '../../src/util/index.js';
import { CLI, vmTest } from '../fixtures/ladder.js';
import { assertChildrenGone, removePoolChecked, traceChildren, usePoolRung, type TaskBody } from '../fixtures/pool-rung.js';

const fx = usePoolRung();
const tracker = () => fx.tracker;

/** The QEMU a VM runs now (pid + start time), asserted. */
async function qemuOf(vm: string): Promise<{ pid: number; startTime: number }> {
  const proc = await currentProcess(fx.th.db, vm);
  assert.ok(proc, `${vm} runs a QEMU`);
  return { pid: proc.pid, startTime: proc.start_time };
}

async function poolVms(pool: string): Promise<{ name: string; state: string }[]> {
  return (await fx.api<{ vms: { name: string; state: string }[] }>('GET', `/v1/pools/${pool}`)).body.vms.map((v) => ({ name: v.name, state: v.state }));
}

interface Claim {
  vm: string;
  user: string | null;
  state: string;
  ip: string | null;
  mac: string | null;
  sshHostKeys: string[];
  expiresAt: string | null;
  how: string;
  tookMs: number;
  taskId: string;
}

/** What a user of a child can see of its identity, read inside the guest. */
async function identityOf(vm: string): Promise<{ machineId: string; bootId: string; mac: string; ip: string; files: string }> {
  const [machineId = '', bootId = '', mac = '', ip = '', files = ''] = (
    await fx.guest(vm, 'cat /etc/machine-id /proc/sys/kernel/random/boot_id /sys/class/net/eth0/address; ip -4 -o addr show dev eth0 | awk \'{print $4}\'; ls /root/user-file /tmp/user-file /home/user-file 2>/dev/null | wc -l')
  ).split('\n');
  return { machineId, bootId, mac, ip, files };
}

/**
 * Claim, release and TTL on a one-child non-persistent pool: the user's files are gone after the release, the
 * child keeps its name, MAC and address, gets a new machine-id and host key, and never boots.
 */
async function claimReleaseAndTtl(pool: string, vm: string): Promise<void> {
  const first = JSON.parse((await fx.cli(['pool', 'claim', pool, '--user', 'ada', '--ttl', '1h', '--json'])).stdout) as Claim;
  assert.deepEqual([first.vm, first.user, first.state, first.how], [vm, 'ada', 'claimed', 'spare']);
  assert.ok(first.sshHostKeys.length > 0 && first.ip && first.mac, JSON.stringify(first));
  process.stderr.write(`claim of a spare: ${first.tookMs} ms at the API\n`);
  const before = await identityOf(vm);
  await fx.guest(vm, 'for d in /root /tmp /home; do echo ada > $d/user-file; done; sync');
  assert.equal((await identityOf(vm)).files, '3');

  // nothing left to claim: 409 with the counts, and nothing changes; a release of an unclaimed VM is 409 too
  const none = await fx.api<{ error: { code: string; details: { counts: Record<string, number> } } }>('POST', `/v1/pools/${pool}/claim`, {});
  assert.deepEqual([none.status, none.body.error.code, none.body.error.details.counts], [409, 'VMFORK_POOL_EXHAUSTED', { claimed: 1 }]);
  const claims = JSON.parse((await fx.cli(['pool', 'claims', '--json'])).stdout) as Claim[];
  assert.deepEqual(claims.map((c) => [c.vm, c.user, c.state]), [[vm, 'ada', 'claimed']]);

  const released = JSON.parse((await fx.cli(['vm', 'release', vm, '--wait', '--json'])).stdout) as TaskBody;
  assert.equal(released.state, 'succeeded', JSON.stringify(released.lastError));
  assert.deepEqual([released.kind, released.queue, released.result?.action], ['vm-release', pool, 'refreshed']);
  const again = await fx.api<{ error: { code: string } }>('POST', `/v1/vms/${vm}/release`);
  assert.deepEqual([again.status, again.body.error.code], [409, 'VMFORK_VM_NOT_CLAIMED']);
  const after = await identityOf(vm);
  assert.equal(after.files, '0', 'nothing the last user wrote survives (/root, /tmp, /home)');
  assert.deepEqual([after.mac, after.ip], [before.mac, before.ip], 'the same MAC and address');
  assert.equal(after.bootId, before.bootId, "no boot: both are forks of the template's running guest");
  assert.notEqual(after.machineId, before.machineId, 'a new machine-id');

  // the next user gets the refreshed child, with a new host key; its TTL ends the claim, and refreshes it again
  const second = (await fx.api<Claim>('POST', `/v1/pools/${pool}/claim`, { user: 'bob', ttlSeconds: 1 })).body;
  assert.deepEqual([second.vm, second.user, second.how], [vm, 'bob', 'spare']);
  assert.notDeepEqual(second.sshHostKeys, first.sshHostKeys, 'new SSH host keys');
  const ttl = await waitUntil(
    async () => (await fx.api<TaskBody[]>('GET', `/v1/tasks?kind=vm-release&target=${vm}&limit=5`)).body.find((t) => t.id !== released.id),
    { deadlineMs: 120_000, everyMs: 250, what: `the TTL release of ${vm}` },
  );
  const ended = await fx.waitTask(ttl.id);
  assert.equal(ended.state, 'succeeded', JSON.stringify(ended.lastError));
  assert.equal(ended.result?.reason, 'ttl');
  assert.deepEqual((await fx.api<Claim[]>('GET', '/v1/claims')).body, []);
  assert.notEqual((await identityOf(vm)).machineId, after.machineId, 'refreshed again');
  await releasedByTheGuest(pool, vm);
}

/**
 * An image push (a phase-1 change: a new replica) to a pool grown to 3, with min-ready 2: its ready children are
 * sampled every 200 ms for the whole push (the lowest seen must hold), every child ends on the new template with
 * nothing of before, and the old replica is retired. Returns the new replica.
 */
async function pushWithMinReady(pool: string, spec: Record<string, unknown>, oldReplica: string): Promise<string> {
  for (const n of [`${pool}-02`, `${pool}-03`]) fx.tracker.track(n);
  await fx.succeeded(await fx.api<{ taskId: string }>('PATCH', `/v1/pools/${pool}`, { max: 3 }));
  await fx.guest(`${pool}-01`, 'echo before > /root/pushed-file && sync');
  const file = join(fx.th.root, 'pushed.json');
  await writeFile(file, JSON.stringify({ ...spec, size: { max: 3 }, disks: { disposable: '160M', swap: '32M' } }));
  let sampling = true;
  const samples: number[] = [];
  // a sampler, not a wait: it records what it sees until the push ends
  const sampler = (async () => {
    while (sampling) {
      samples.push((await fx.api<{ vms: { state: string }[] }>('GET', `/v1/pools/${pool}`)).body.vms.filter((v) => v.state === 'running').length);
      await sleep(200);
    }
  })();
  let task: TaskBody;
  try {
    task = JSON.parse((await fx.cli(['pool', 'update', pool, '-f', file, '--min-ready', '2', '--wait', '--json'])).stdout) as TaskBody;
  } finally {
    sampling = false;
    await sampler;
  }
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  const shown = (await fx.api<{ replica: string; template: string; templates: Record<string, number>; push: { state: string; replaced: string[]; lowestReady: number } }>('GET', `/v1/pools/${pool}`)).body;
  process.stderr.write(`push of 3 with min-ready 2: ${samples.length} samples, lowest ready ${Math.min(...samples)}; ${JSON.stringify(shown.push)}\n`);
  assert.ok(Math.min(...samples) >= 2, `never fewer than 2 ready: ${samples.join(' ')}`);
  assert.deepEqual([shown.push.state, [...shown.push.replaced].sort()], ['done', [`${pool}-01`, `${pool}-02`, `${pool}-03`]]);
  assert.notEqual(shown.replica, oldReplica, 'a new replica');
  assert.deepEqual(shown.templates, { [shown.template]: 3 }, 'every child on the new template');
  assert.equal((await fx.guest(`${pool}-01`, 'ls /root/pushed-file 2>/dev/null | wc -l')).trim(), '0', 'refreshed from the new template');
  assert.equal((await fx.api<{ id: string }[]>('GET', '/v1/replicas')).body.find((r) => r.id === oldReplica), undefined, 'the old replica is retired');
  return shown.replica;
}

/** The next release task of `vm` after `known`, waited for until it ends. */
async function nextRelease(vm: string, known: ReadonlySet<string>): Promise<TaskBody> {
  const t = await waitUntil(
    async () => (await fx.api<TaskBody[]>('GET', `/v1/tasks?kind=vm-release&target=${vm}&limit=10`)).body.find((x) => !known.has(x.id)),
    { deadlineMs: 180_000, everyMs: 250, what: `a release of ${vm}` },
  );
  return fx.waitTask(t.id);
}

async function releaseIds(vm: string): Promise<Set<string>> {
  return new Set((await fx.api<TaskBody[]>('GET', `/v1/tasks?kind=vm-release&target=${vm}&limit=50`)).body.map((t) => t.id));
}

/**
 * The pool's release policy (logoff, poweroff): a real ssh login seen by the server through vmfork-guest's WATCH,
 * then its logout, releases the child; so does the guest powering itself off.
 */
async function releasedByTheGuest(pool: string, vm: string): Promise<void> {
  let known = await releaseIds(vm);
  const claim = (await fx.api<Claim>('POST', `/v1/pools/${pool}/claim`, { user: 'root' })).body;
  assert.equal(claim.vm, vm);
  // an interactive login (a shell reading the pipe), held until the claim shows it, then `exit`
  const ssh = spawn(process.execPath, [CLI, 'ssh', vm, '-i', fx.keyFile], { env: { ...process.env, VMFORK_HOME: fx.th.root }, stdio: ['pipe', 'pipe', 'pipe'] });
  let said = '';
  ssh.stderr.on('data', (d: Buffer) => (said += d.toString()));
  const exited = new Promise<number | null>((res) => ssh.on('close', (code) => res(code)));
  try {
    ssh.stdin.write('echo logged-in\n');
    await waitUntil(async () => (await fx.api<(Claim & { sessions: string[] | null })[]>('GET', '/v1/claims')).body.find((c) => c.vm === vm)?.sessions?.includes('root'), {
      deadlineMs: 180_000, everyMs: 250, what: `the server to see root's session on ${vm} (ssh said: ${said})`,
    });
    ssh.stdin.end('exit\n');
    assert.equal(await exited, 0, `ssh: ${said}`);
  } finally {
    if (ssh.exitCode === null) ssh.kill();
  }
  const logoff = await nextRelease(vm, known);
  assert.deepEqual([logoff.state, logoff.result?.reason, logoff.result?.action], ['succeeded', 'logoff', 'refreshed'], JSON.stringify(logoff.lastError));

  // the guest powers itself off: its QEMU exits, and the claim clock releases (refreshes) it
  known = await releaseIds(vm);
  await fx.api<Claim>('POST', `/v1/pools/${pool}/claim`, {});
  const qemu = await qemuOf(vm);
  await fx.guest(vm, 'systemctl --no-block poweroff');
  const off = await nextRelease(vm, known);
  assert.deepEqual([off.state, off.result?.reason, off.result?.action], ['succeeded', 'poweroff', 'refreshed'], JSON.stringify(off.lastError));
  assert.notDeepEqual(await qemuOf(vm), qemu, 'a new QEMU');
  assert.equal((await getVm(fx.th.db, vm))?.claim_state, 'unclaimed');
}

vmTest('a persistent child powered off is suspended and resumed without a boot (its uptime and a running process kept); with its state damaged it boots from its disks, /home kept; a shrink destroys the children past max', tracker, async () => {
  for (const n of ['keep-01', 'keep-02']) fx.tracker.track(n);
  const created = await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec('keep', { size: { max: 2 } })));
  assert.equal(created.result?.replicaReused, true, "the rung's replica is reused");
  const proof = randomUUID();
  const guestState = 'cat /etc/machine-id /proc/sys/kernel/random/boot_id /home/proof; cut -d" " -f1 /proc/uptime; kill -0 $(cat /run/keep.pid) && echo alive; hostname; ip -4 -o addr show dev eth0';
  await fx.guest('keep-01', `echo ${proof} > /home/proof && sync && (setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /run/keep.pid)`);
  const [machineId, bootBefore, , uptimeBefore] = (await fx.guest('keep-01', guestState)).split('\n');
  const qemu = await qemuOf('keep-01');
  const lease = (await listLeases(fx.th.db)).find((l) => l.vm_name === 'keep-01');
  assert.ok(lease, 'keep-01 has a lease');

  // power-off through the CLI, as a user would: suspended to its own state file, QEMU gone, its address kept
  const off = JSON.parse((await fx.cli(['vm', 'power-off', 'keep-01', '--json'])).stdout) as { taskId: string };
  const offTask = await fx.waitTask(off.taskId);
  assert.equal(offTask.state, 'succeeded', JSON.stringify(offTask.lastError));
  assert.equal(offTask.result?.action, 'suspended');
  assert.equal(offTask.result?.followUp, undefined, 'a persistent child is not refreshed: no converge follows');
  assert.equal(await ownerAlive({ ...qemu, boot: null }), false, "keep-01's QEMU is gone");
  assert.equal((await getVm(fx.th.db, 'keep-01'))?.state, 'stopped');
  assert.deepEqual((await listLeases(fx.th.db)).find((l) => l.vm_name === 'keep-01')?.ip, lease.ip, 'its address is kept');
  assert.deepEqual(await poolVms('keep'), [{ name: 'keep-01', state: 'stopped' }, { name: 'keep-02', state: 'running' }]);

  // power-on through the API: resumed at the same instruction — the same boot, its uptime going on, its process alive
  const on = await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/vms/keep-01/power-on'));
  assert.equal(on.result?.action, 'resumed', JSON.stringify(on.result));
  const [machineAfter, bootAfter, proofAfter, uptimeAfter, alive, hostname, addresses] = (await fx.guest('keep-01', guestState)).split('\n');
  assert.equal(bootAfter, bootBefore, 'no boot: the same boot_id');
  assert.ok(Number(uptimeAfter) >= Number(uptimeBefore), `uptime goes on: ${uptimeBefore} → ${uptimeAfter}`);
  assert.equal(alive, 'alive', 'the process started before the power-off still runs');
  assert.equal(machineAfter, machineId, 'the same machine-id');
  assert.equal(proofAfter, proof, 'the file in /home is there');
  assert.equal(hostname, 'keep-01');
  assert.match(addresses ?? '', new RegExp(`inet ${lease.ip.replace(/\./g, '\\.')}/`), `its address: ${addresses}`);

  // its state file damaged while it is off: it boots from its disks (a new boot_id), says so, and keeps /home
  await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/vms/keep-01/power-off'));
  const state = join(fx.th.home.vms, 'keep-01', 'checkpoints', 'vmfork-suspend', 'state');
  assert.ok(existsSync(state), `the suspend state is at ${state}`);
  await truncate(state, 4096);
  const booted = await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/vms/keep-01/power-on'));
  assert.equal(booted.result?.action, 'booted', JSON.stringify(booted.result));
  assert.match(String(booted.result?.resumeError), /suspend state did not load/);
  const [machineBooted, bootBooted, proofBooted] = (await fx.guest('keep-01', 'cat /etc/machine-id /proc/sys/kernel/random/boot_id /home/proof')).split('\n');
  assert.notEqual(bootBooted, bootBefore, 'booted');
  assert.deepEqual([machineBooted, proofBooted], [machineId, proof], 'the same machine, the same /home');

  // shrink to 1: keep-02 (past max) is destroyed, keep-01 stays
  const trace = await traceChildren(fx, ['keep-02']);
  const shrink = await fx.succeeded(await fx.api<{ taskId: string }>('PATCH', '/v1/pools/keep', { max: 1 }));
  assert.deepEqual(shrink.result?.removed, ['keep-02']);
  assert.deepEqual(shrink.result?.forked, []);
  await assertChildrenGone(fx, trace);
  assert.deepEqual(await poolVms('keep'), [{ name: 'keep-01', state: 'running' }]);
  await removePoolChecked(fx, 'keep');
});

vmTest('a non-persistent child is refreshed at power-off by the pool\'s queued converge (new machine-id, its files gone); claimed, given back and refreshed (same name, MAC, IP; a new identity; nothing of its last user), claimed again until its TTL ends; pool rm leaves nothing and the replica stays until replica rm', tracker, async () => {
  fx.tracker.track('fresh-01');
  const { customize } = fx.spec('x') as { customize: { perChild: unknown; machinePassword: boolean } };
  const spec = fx.spec('fresh', {
    persistent: false, size: { max: 1 }, disks: { disposable: '128M', swap: '32M' }, customize: { perChild: customize.perChild, machinePassword: true },
    release: { on: ['ttl', 'logoff', 'poweroff'], graceSeconds: 0 },
  });
  const created = await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', spec));
  assert.equal(created.result?.replicaReused, false, 'persistence is part of the phase-1 spec: a replica of its own');
  const replica = String(created.result?.replica);
  const proof = randomUUID();
  const machineId = await fx.guest('fresh-01', `echo ${proof} > /home/proof && echo ${proof} > /root/proof && sync && cat /etc/machine-id`);
  const qemu = await qemuOf('fresh-01');

  const off = await fx.api<{ taskId: string }>('POST', '/v1/vms/fresh-01/power-off');
  const offTask = await fx.succeeded(off);
  assert.equal(offTask.result?.action, 'refreshed');
  assert.equal(await ownerAlive({ ...qemu, boot: null }), false, "the old fresh-01's QEMU is gone");
  const followUp = offTask.result?.followUp;
  assert.equal(typeof followUp, 'string', `the power-off queued a converge: ${JSON.stringify(offTask.result)}`);
  const converge: TaskBody = await fx.waitTask(String(followUp));
  assert.equal(converge.state, 'succeeded', JSON.stringify(converge.lastError));
  assert.deepEqual([converge.kind, converge.queue, converge.queuedBehind], ['pool-converge', 'fresh', offTask.id], 'the converge ran in the pool\'s queue, behind the power-off');
  assert.deepEqual(converge.result?.forked, ['fresh-01'], 'fresh-01 was forked again');
  assert.notDeepEqual(await qemuOf('fresh-01'), qemu, 'a new QEMU');
  const [machineAfter, gone] = (await fx.guest('fresh-01', 'cat /etc/machine-id; ls /home/proof /root/proof 2>/dev/null | wc -l')).split('\n');
  assert.notEqual(machineAfter, machineId, 'a new machine-id');
  assert.equal(gone, '0', 'the files written before the refresh are gone');
  assert.deepEqual(await poolVms('fresh'), [{ name: 'fresh-01', state: 'running' }]);

  await claimReleaseAndTtl('fresh', 'fresh-01');
  const pushed = await pushWithMinReady('fresh', spec, replica);

  // pool rm: nothing of the pool left, its replica (and the replica's template) kept until `replica rm`
  const removal = await removePoolChecked(fx, 'fresh');
  assert.equal(removal.replica, pushed);
  const view = (await fx.api<{ id: string; pools: string[]; template: string | null; path: string }[]>('GET', '/v1/replicas')).body.find((r) => r.id === pushed);
  assert.ok(view?.template, `replica ${pushed} keeps its template`);
  assert.deepEqual(view.pools, []);
  const rm = JSON.parse((await fx.cli(['replica', 'rm', pushed, '--json'])).stdout) as { id: string; templates: string[] };
  assert.deepEqual(rm, { id: pushed, templates: [view.template] });
  assert.equal((await fx.api<{ id: string }[]>('GET', '/v1/replicas')).body.find((r) => r.id === pushed), undefined, 'the replica is gone');
  assert.equal(existsSync(view.path), false, "the replica's files are gone");
  const templates = JSON.parse((await fx.th.cli(['template', 'list', '--json'])).stdout) as { name: string }[];
  assert.ok(!templates.some((t) => t.name === view.template), `template ${view.template} is gone`);
});

/**
 * kill -9 at every step, proven: for each fault point of src/util/fault.ts (the registry, so a new step is walked
 * without editing this file) a server started with VMFORK_FAULT=<point> runs the operation that reaches it and dies
 * there by SIGKILL; a server started again (no fault) must finish or roll back what was half done. Then: the pool
 * converged by itself (the operation's own semantics), gc finds nothing left over, no two children share an
 * identity, and the pool rung's leak check (QEMU, VM records, leases, taps, namespaces, VM directories) finds
 * nothing after the pool is removed.
 *
 * `npm test` walks a fixed SAMPLE spread over the operations that reuse the rung's replica (under TCG a point that
 * needs phase 1 costs two cold boots); `npm run test:faults` (VMFORK_FAULT_WALK=all) walks every point.
 */
import assert from 'node:assert/strict';
import { getVm } from '../../src/store/index.js';
import { FAULT_POINTS, isFaultPoint, waitUntil, type FaultPoint, type FaultScenario } from '../../src/util/index.js';
import { vmTest } from '../fixtures/ladder.js';
import { assertChildrenGone, removePoolChecked, RUNG_CHILDREN, traceChildren, usePoolRung, type ChildrenTrace, type TaskBody } from '../fixtures/pool-rung.js';

const fx = usePoolRung();
const tracker = () => fx.tracker;

const POOL = 'fault';
const FIRST = 'fault-01';
const CHILDREN = [FIRST, 'fault-02'];
/** One point of each operation that needs no phase 1, chosen where most is half done. */
const SAMPLE: FaultPoint[] = ['converge.replica-linked', 'fork.identity', 'claim.reserved', 'release.disposable-reset', 'pool-remove.child-destroyed'];
const WALK_MS = 20 * 60_000;

const walk: FaultPoint[] = process.env.VMFORK_FAULT_WALK === 'all' ? (Object.keys(FAULT_POINTS) as FaultPoint[]) : SAMPLE;
const only = process.env.VMFORK_FAULT_ONLY?.split(',').filter(isFaultPoint);

type Pool = { state: string; replica: string | null; template: string | null; vms: { name: string; state: string }[] };

/** The operation under the faulted server: how to see it end (had the fault not come), and its task once known. */
interface Started {
  ended(): Promise<boolean>;
  taskId(): Promise<string | undefined>;
}

interface Scenario {
  /** Made by a server without the fault, so only the operation itself can reach the point. */
  setup(): Promise<void>;
  start(): Promise<Started>;
  /** After the restart and the operation's end: the pool as the operation leaves it. */
  converged(): Promise<void>;
  /** What the scenario made beyond the pool (a replica, a template). */
  cleanup(pool: Pool | undefined): Promise<void>;
}

const ended = (state: string): boolean => ['succeeded', 'failed', 'cancelled'].includes(state);
const pool = async (): Promise<Pool | undefined> => {
  const r = await fx.api<Pool>('GET', `/v1/pools/${POOL}`);
  return r.status === 200 ? r.body : undefined;
};
const create = async (extra: Record<string, unknown>): Promise<Started> => {
  const accepted = await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(POOL, extra));
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  return byTask(accepted.body.taskId);
};
const byTask = (id: string): Started => ({ ended: async () => ended((await fx.api<TaskBody>('GET', `/v1/tasks/${id}`)).body.state), taskId: () => Promise.resolve(id) });
const claimSpare = async (): Promise<void> => {
  const r = await fx.api<{ vm: string }>('POST', `/v1/pools/${POOL}/claim`, {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
};
const release = async (): Promise<Started> => {
  const r = await fx.api<{ taskId: string }>('POST', `/v1/vms/${FIRST}/release`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return byTask(r.body.taskId);
};
/** The pool ready with these children, each in this state. */
const poolIs = async (vms: Record<string, string>): Promise<void> => {
  const p = await pool();
  assert.deepEqual({ state: p?.state, vms: Object.fromEntries((p?.vms ?? []).map((v) => [v.name, v.state])) }, { state: 'ready', vms });
};
const unclaimed = async (): Promise<void> => {
  assert.equal((await getVm(fx.th.db, FIRST))?.claim_state, 'unclaimed', `${FIRST} is given back`);
};
const removeReplica = async (p: Pool | undefined): Promise<void> => {
  if (p?.replica) assert.equal((await fx.api('DELETE', `/v1/replicas/${p.replica}`)).status, 200, `replica ${p.replica} removed`);
};
const noop = (): Promise<void> => Promise.resolve();
let removeTrace: ChildrenTrace | undefined;

const SCENARIOS: Record<FaultScenario, Scenario> = {
  // other disk sizes: another phase-1 digest, so phase 1, the copy and a template boot are done again
  'new-replica': {
    setup: noop,
    start: () => create({ size: { max: 1 }, disks: { userData: '128M', disposable: '96M', swap: '32M' } }),
    converged: () => poolIs({ 'fault-01': 'running' }),
    cleanup: removeReplica,
  },
  // the rung's replica in another memory size: a template boot and cut, no phase 1
  template: {
    setup: noop,
    start: () => create({ size: { max: 1 }, memory: '320M' }),
    converged: () => poolIs({ 'fault-01': 'running' }),
    cleanup: async (p) => {
      if (p?.template) await fx.th.cli(['template', 'rm', p.template]);
    },
  },
  create: { setup: noop, start: () => create({ size: { max: 2 } }), converged: () => poolIs({ 'fault-01': 'running', 'fault-02': 'running' }), cleanup: noop },
  claim: {
    setup: async () => void (await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(POOL, { provisioning: 'on-demand', size: { max: 1, min: 0, spares: 0 } })))),
    start: async () => {
      // the claim answers when its fork is done: the kill cuts the request (not an end: the task stays in the store)
      const claims = async (): Promise<TaskBody[]> => (await fx.api<TaskBody[]>('GET', `/v1/tasks?kind=pool-claim&target=${FIRST}&limit=1000`)).body;
      const earlier = new Set((await claims()).map((t) => t.id));
      let settled = false;
      void fx.api('POST', `/v1/pools/${POOL}/claim`, {}).then(
        () => (settled = true),
        () => undefined,
      );
      return { ended: () => Promise.resolve(settled), taskId: async () => (await claims()).find((t) => !earlier.has(t.id))?.id };
    },
    // claimed and running (the resumed claim finished its fork), or given back to the pool, registered again
    converged: async () => {
      const p = await pool();
      const claimed = (await getVm(fx.th.db, FIRST))?.claim_state === 'claimed';
      assert.deepEqual({ state: p?.state, vms: p?.vms.map((v) => ({ name: v.name, state: v.state })) }, { state: 'ready', vms: [{ name: FIRST, state: claimed ? 'running' : 'registered' }] });
    },
    cleanup: noop,
  },
  release: {
    setup: async () => {
      await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(POOL, { size: { max: 1 } })));
      await claimSpare();
    },
    start: release,
    converged: async () => {
      await poolIs({ 'fault-01': 'running' });
      await unclaimed();
    },
    cleanup: noop,
  },
  // a non-persistent pool (another phase-1 digest: a replica of its own, made in the setup)
  refresh: {
    setup: async () => {
      await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(POOL, { persistent: false, size: { max: 1 }, disks: { disposable: '128M', swap: '32M' } })));
      await claimSpare();
    },
    start: release,
    converged: async () => {
      await poolIs({ 'fault-01': 'running' });
      await unclaimed();
    },
    cleanup: removeReplica,
  },
  remove: {
    setup: async () => {
      await fx.succeeded(await fx.api<{ taskId: string }>('POST', '/v1/pools', fx.spec(POOL, { size: { max: 2 } })));
      removeTrace = await traceChildren(fx, CHILDREN);
    },
    start: async () => {
      const r = await fx.api<{ taskId: string }>('DELETE', `/v1/pools/${POOL}`);
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return byTask(r.body.taskId);
    },
    converged: async () => {
      assert.equal(await pool(), undefined, 'the removal finished: no pool');
      assert.ok(removeTrace);
      await assertChildrenGone(fx, removeTrace);
    },
    cleanup: noop,
  },
};

/** Tasks of the walk's pool still live (its queue, its children): a resumed task's follow-ups included. */
async function liveTasks(): Promise<TaskBody[]> {
  const all = (await fx.api<(TaskBody & { target: string })[]>('GET', '/v1/tasks?limit=1000')).body;
  return all.filter((t) => !ended(t.state) && (t.queue === POOL || t.target === POOL || CHILDREN.includes(t.target)));
}

for (const point of walk.filter((p) => !only?.length || only.includes(p))) {
  const { scenario, what } = FAULT_POINTS[point];
  vmTest(`kill -9 at ${point} (${scenario}: ${what}): a restart converges, nothing is left over, no identity is shared`, tracker, async () => {
    const s = SCENARIOS[scenario];
    for (const n of CHILDREN) fx.tracker.track(n);
    let before: Pool | undefined;
    let failed: unknown;
    try {
      await s.setup();
      // the setup's server has no fault: the operation alone runs under one that has
      await fx.stop();
      const faulted = await fx.start({ VMFORK_TESTING: '1', VMFORK_FAULT: point });
      const t0 = performance.now();
      const op = await s.start();
      const outcome = await waitUntil(async () => (!fx.running ? 'killed' : (await op.ended().catch(() => !fx.running)) && fx.running ? 'ended' : undefined), {
        deadlineMs: WALK_MS,
        everyMs: 250,
        what: `the server to die at ${point}`,
      });
      assert.equal(outcome, 'killed', `the operation ended without reaching ${point}`);
      await waitUntil(() => faulted.proc.signalCode !== null || faulted.proc.exitCode !== null, { deadlineMs: 10_000, everyMs: 20, what: 'the exit to be seen' });
      assert.equal(faulted.proc.signalCode, 'SIGKILL');
      assert.match(faulted.output.join(''), new RegExp(`vmfork fault: killed at ${point.replaceAll('.', '\\.')}\\b`), 'it died at the point, not elsewhere');
      const killedMs = performance.now() - t0;
      await fx.stop();
      await fx.start();
      const id = await op.taskId();
      if (id) await fx.waitTask(id);
      await waitUntil(async () => ((await liveTasks()).length === 0 ? true : undefined), { deadlineMs: WALK_MS, everyMs: 500, what: `pool ${POOL}'s tasks to end` });
      await s.converged();
      before = await pool();
      const gc = (await fx.api<{ actions: { kind: string; target: string; reason: string }[] }>('POST', '/v1/gc', { dryRun: true })).body;
      assert.deepEqual(gc.actions, [], 'gc finds nothing that nothing owns');
      const running = (before?.vms ?? []).filter((v) => v.state === 'running').map((v) => v.name);
      const v = await fx.th.cli(['verify', ...RUNG_CHILDREN, ...running, '--json'], { allowFailure: true });
      const report = JSON.parse(v.stdout) as { collisions: unknown[]; problems: { kind: string }[] };
      // a persistent child's release boots it from its disks (by design): `rebooted` is no fault there
      const problems = report.problems.filter((p) => !(scenario === 'release' && p.kind === 'rebooted'));
      assert.deepEqual([report.collisions, problems], [[], []], 'no two children share a MAC, IP, machine-id, hostname or host key');
      process.stderr.write(`fault ${point}: killed after ${Math.round(killedMs / 1000)} s, converged ${Math.round((performance.now() - t0 - killedMs) / 1000)} s later\n`);
    } catch (err) {
      failed = err;
    }
    // what the walk made goes whatever happened; a failure here is reported only when the walk itself passed
    try {
      if (!fx.running) await fx.start();
      before ??= await pool();
      if (before) await removePoolChecked(fx, POOL);
      await s.cleanup(before);
    } catch (err) {
      failed ??= err;
    }
    if (failed) throw failed;
  });
}

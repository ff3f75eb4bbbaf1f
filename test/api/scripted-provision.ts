import type { ChildProgressState } from '../../src/state/index.js';
import { VmforkError } from '../../src/errors.js';
import type { ProvisionService } from '../../src/api/index.js';
import { parsePoolSpec, type PoolDetail, type PoolSpec } from '../../src/pool/index.js';
import { poolChildNames } from '../../src/pool/spec.js';
import { checkPoolRefs } from '../../src/pool/refs.js';
import { startTask, type TaskContext, type TaskDeps, type TaskRunners } from '../../src/task/index.js';

/**
 * A scripted stand-in for the provisioning engine, for API protocol tests only (no VM is made): it keeps pools in
 * memory and runs each operation as a real task whose runner reports a step and each child. It records every call,
 * so a test can prove that a rejected request reached nothing.
 */
export class ScriptedProvision implements ProvisionService {
  readonly calls: string[] = [];
  readonly pools = new Map<string, PoolDetail>();
  readonly claims = new Map<string, Awaited<ReturnType<ProvisionService['listClaims']>>[number]>();
  /** Runners hold here until a test opens it (null: they run straight through). */
  hold: Promise<void> | null = null;
  readonly runners: TaskRunners;

  constructor(private deps: TaskDeps) {
    const children = async (ctx: TaskContext, names: string[], state: ChildProgressState): Promise<Record<string, unknown>> => {
      await ctx.step('children', 50);
      if (this.hold) await this.hold;
      for (const name of names) await ctx.child(name, { state, percent: 100 });
      ctx.signal.throwIfAborted();
      return { children: names.length };
    };
    this.runners = {
      'pool-create': (ctx) => children(ctx, (ctx.input.children as string[]) ?? [], 'running'),
      'pool-resize': (ctx) => children(ctx, (ctx.input.children as string[]) ?? [], 'running'),
      'pool-remove': (ctx) => children(ctx, (ctx.input.children as string[]) ?? [], 'destroyed'),
      'vm-power-on': (ctx) => children(ctx, [ctx.target], 'running'),
      'vm-power-off': (ctx) => children(ctx, [ctx.target], 'stopped'),
    };
  }

  private pool(name: string): PoolDetail {
    const p = this.pools.get(name);
    if (!p) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `no pool named "${name}"`, { details: { pool: name } });
    return p;
  }

  private run(kind: string, target: string, input: Record<string, unknown>): Promise<string> {
    return startTask(this.deps, { kind, target, input }, this.runners[kind] as TaskRunners[string]);
  }

  /** Validates as the real engine does (spec, then what it names) before it records the call: a bad spec reaches nothing. */
  async createPool(input: unknown): Promise<{ taskId: string; pool: string }> {
    const spec: PoolSpec = parsePoolSpec(input);
    await checkPoolRefs(this.deps.db, spec);
    this.calls.push(`createPool ${spec.name}`);
    const names = poolChildNames(spec);
    const taskId = await this.run('pool-create', spec.name, { pool: spec.name, children: names });
    const now = new Date().toISOString();
    this.pools.set(spec.name, {
      name: spec.name, state: 'provisioning', image: spec.image, provisioning: spec.provisioning, persistent: spec.persistent, size: spec.size,
      hostId: 'local', datastore: spec.datastore, counts: { running: names.length }, createdAt: now,
      lastTask: { id: taskId, kind: 'pool-create', state: 'queued', percent: 0, step: null },
      spec, hosts: { local: names.length }, replica: null, lastTaskId: taskId, template: null, templates: {}, push: null,
      vms: names.map((n, i) => ({ name: n, state: 'running', host: 'local', ip: `10.0.0.${i + 10}`, claimedBy: null, claimedAt: null, secondsToReady: 0.5, reboots: null, createdAt: now })),
    });
    return { taskId, pool: spec.name };
  }

  listPools(): Promise<PoolDetail[]> {
    this.calls.push('listPools');
    return Promise.resolve([...this.pools.values()].map(({ spec: _s, vms: _v, lastTaskId: _l, template: _t, templates: _ts, push: _p, hosts: _h, ...summary }) => summary as PoolDetail));
  }

  getPool(name: string): Promise<PoolDetail> {
    this.calls.push(`getPool ${name}`);
    return Promise.resolve(this.pool(name));
  }

  async resizePool(name: string, request: { max: number }): Promise<{ taskId: string }> {
    this.calls.push(`resizePool ${name} ${request.max}`);
    const p = this.pool(name);
    return { taskId: await this.run('pool-resize', name, { pool: name, children: poolChildNames(p.spec as PoolSpec, request.max) }) };
  }

  async removePool(name: string): Promise<{ taskId: string }> {
    this.calls.push(`removePool ${name}`);
    const p = this.pool(name);
    return { taskId: await this.run('pool-remove', name, { pool: name, children: p.vms.map((v) => v.name) }) };
  }

  async powerOn(vm: string): Promise<{ taskId: string }> {
    this.calls.push(`powerOn ${vm}`);
    return { taskId: await this.run('vm-power-on', vm, { vm }) };
  }

  async powerOff(vm: string): Promise<{ taskId: string }> {
    this.calls.push(`powerOff ${vm}`);
    return { taskId: await this.run('vm-power-off', vm, { vm }) };
  }

  async checkpointVm(vm: string, request: { label?: string }): Promise<{ taskId: string; label: string }> {
    this.calls.push(`checkpointVm ${vm}`);
    const label = request.label ?? 'ckpt-scripted';
    return { taskId: await this.run('vm-checkpoint', vm, { vm, label }), label };
  }

  async revertVm(vm: string, request: { to: string }): Promise<{ taskId: string }> {
    this.calls.push(`revertVm ${vm} ${request.to}`);
    return { taskId: await this.run('vm-revert', vm, { vm, to: request.to }) };
  }

  async promoteVm(vm: string, request: { datastore?: string; rateMiBs?: number }): Promise<{ taskId: string }> {
    this.calls.push(`promoteVm ${vm}${request.datastore ? ` ${request.datastore}` : ''}`);
    return { taskId: await this.run('vm-promote', vm, { vm, ...request }) };
  }

  listCheckpoints(vm: string): ReturnType<ProvisionService['listCheckpoints']> {
    this.calls.push(`listCheckpoints ${vm}`);
    return Promise.resolve([]);
  }

  /** Hands out the pool's first child at once (a spare), recording who holds it. */
  claim(pool: string, request: { user?: string; ttlSeconds?: number }): ReturnType<ProvisionService['claim']> {
    this.calls.push(`claim ${pool}`);
    const p = this.pool(pool);
    const vm = p.vms[0]?.name ?? `${pool}-1`;
    const view = { vm, pool, user: request.user ?? null, state: 'claimed' as const, ip: '10.231.0.2', mac: '02:00:00:00:00:02', sshHostKeys: ['SHA256:scripted'], claimedAt: new Date().toISOString(), expiresAt: null, sessions: null };
    this.claims.set(vm, view);
    return Promise.resolve({ ...view, how: 'spare' as const, tookMs: 1, taskId: 'scripted' });
  }

  async releaseVm(vm: string): Promise<{ taskId: string }> {
    this.calls.push(`releaseVm ${vm}`);
    if (!this.claims.delete(vm)) throw new VmforkError('VMFORK_VM_NOT_CLAIMED', `VM ${vm} is unclaimed; only a claimed pool child is released`, { details: { vm, claim: 'unclaimed' } });
    return { taskId: await this.run('vm-power-off', vm, { vm }) };
  }

  async updatePool(name: string, spec: unknown): Promise<{ taskId: string; pool: string }> {
    const next = parsePoolSpec(spec);
    this.calls.push(`updatePool ${name} ${next.name}`);
    this.pool(name);
    return { taskId: await this.run('pool-resize', name, { pool: name, children: [] }), pool: name };
  }

  listClaims(pool?: string): ReturnType<ProvisionService['listClaims']> {
    this.calls.push('listClaims');
    return Promise.resolve([...this.claims.values()].filter((c) => !pool || c.pool === pool));
  }

  listReplicas(): ReturnType<ProvisionService['listReplicas']> {
    this.calls.push('listReplicas');
    return Promise.resolve([
      { id: 'r-1', state: 'ready', image: 'default', imageVersion: 'v1', phase1Digest: 'a'.repeat(64), hostId: 'local', datastore: 'default', path: '/d/r-1', template: 'replica-r-1', pools: [...this.pools.keys()], phase1: null, disks: [], copiedFrom: null, createdAt: new Date().toISOString() },
    ]);
  }

  removeReplica(id: string): ReturnType<ProvisionService['removeReplica']> {
    this.calls.push(`removeReplica ${id}`);
    if (this.pools.size) return Promise.reject(new VmforkError('VMFORK_REPLICA_IN_USE', `replica ${id} is used by pool(s) ${[...this.pools.keys()].join(', ')}`));
    return Promise.resolve({ id, templates: [`rt-${id}-512m1c`] });
  }
}

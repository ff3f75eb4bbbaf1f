/**
 * Fault injection, for tests only (docs/testing.md): `faultPoint('fork.identity')` marks a step of a pool operation
 * where a `kill -9` of the server must leave nothing a restart cannot finish or roll back. With VMFORK_TESTING=1
 * and VMFORK_FAULT=<point>[@<n>] in its environment, the process kills itself with SIGKILL the n-th time (default:
 * the first) it reaches that point. Without VMFORK_TESTING=1 the switch is ignored, so a stray VMFORK_FAULT in a
 * user's environment never kills a real server.
 *
 * FAULT_POINTS is the registry the kill -9 walk (test/pool/faults.itest.ts) reads: a new point is walked without
 * editing the test, and a unit test checks every `faultPoint(...)` call in src/ names a registered point and every
 * registered point is called somewhere.
 */
import { writeSync } from 'node:fs';

/**
 * The operation that reaches a point, as the walk drives it: `new-replica` a create whose phase-1 spec has no
 * replica yet (phase 1 + copy + template), `template` a create that reuses a replica in a new shape (template boot +
 * cut), `create` a create that reuses both (the children), `claim` a claim that forks a registered child, `release`
 * a persistent pool's release (disposable disk reset), `refresh` a non-persistent pool's release (the child forked
 * again), `remove` a pool's removal.
 */
export const FAULT_SCENARIOS = ['new-replica', 'template', 'create', 'claim', 'release', 'refresh', 'remove'] as const;
export type FaultScenario = (typeof FAULT_SCENARIOS)[number];

interface FaultPointInfo {
  scenario: FaultScenario;
  /** What is half done when the server dies there. */
  what: string;
}

/** Every fault point, in the order an operation reaches them. */
export const FAULT_POINTS = {
  'replica.inserted': { scenario: 'new-replica', what: 'the replica row is `creating`; phase 1 not started' },
  'phase1.clone-booted': { scenario: 'new-replica', what: "phase 1's internal clone runs (its agent answered)" },
  'phase1.disks': { scenario: 'new-replica', what: "the clone's disks are partitioned, formatted and mounted" },
  'phase1.script-done': { scenario: 'new-replica', what: 'a common script exited 0 (each script: @n)' },
  'phase1.powered-off': { scenario: 'new-replica', what: 'the clone is powered off; nothing copied' },
  'replica.disk-copied': { scenario: 'new-replica', what: 'a disk was copied onto the datastore (each disk: @n)' },
  'replica.ready': { scenario: 'new-replica', what: 'the replica is ready; the pool does not name it yet' },
  'converge.replica-linked': { scenario: 'create', what: 'the pool names its replica; no template chosen' },
  'template.booted': { scenario: 'template', what: "the template's parent runs (its agent answered); nothing frozen" },
  'template.cut': { scenario: 'template', what: "the template's RAM and state are saved; its record is not ready" },
  'converge.template-linked': { scenario: 'create', what: 'the pool names its template; no child reserved' },
  'fork.planned': { scenario: 'create', what: 'children reserved (records `creating`, leases held); none launched' },
  'fork.launched': { scenario: 'create', what: "a child's tap, overlays and QEMU exist (`forking`); state not loaded (each child: @n)" },
  'fork.resumed': { scenario: 'create', what: "a child runs the template's state and its guest answered; no identity yet" },
  'fork.identity': { scenario: 'create', what: 'a child has its own identity; phase 2 not run' },
  'fork.customized': { scenario: 'create', what: "a child's phase 2 (per-child hooks, machine password) is done; still `forking`" },
  'converge.children-done': { scenario: 'create', what: 'every child is running; the pool is still `provisioning`' },
  'claim.reserved': { scenario: 'claim', what: 'the claim reserved a registered child; its fork not started' },
  'release.stopped': { scenario: 'release', what: 'a released persistent child is stopped; its disposable disk not reset' },
  'release.disposable-reset': { scenario: 'release', what: "the child's disposable disk is new; it is not booted" },
  'refresh.killed': { scenario: 'refresh', what: "a released child is `refreshing`, its QEMU killed; its overlays are the last user's" },
  'refresh.overlays': { scenario: 'refresh', what: 'its overlays are new and it is `registered`; not forked' },
  'pool-remove.deleting': { scenario: 'remove', what: 'the pool is `deleting`; no child removed' },
  'pool-remove.child-destroyed': { scenario: 'remove', what: 'a child was removed, others remain (each child: @n)' },
} as const satisfies Record<string, FaultPointInfo>;

export type FaultPoint = keyof typeof FAULT_POINTS;

/** Whether `name` is a registered fault point (the CLI and tests check a VMFORK_FAULT value with it). */
export function isFaultPoint(name: string): name is FaultPoint {
  return Object.hasOwn(FAULT_POINTS, name);
}

/** The switch as the environment sets it: the point, and which hit kills (1-based). Undefined when off. */
export function faultSwitch(env: NodeJS.ProcessEnv = process.env): { point: FaultPoint; hit: number } | undefined {
  if (env.VMFORK_TESTING !== '1' || !env.VMFORK_FAULT) return undefined;
  const m = /^([a-z0-9.-]+)(?:@([1-9]\d*))?$/.exec(env.VMFORK_FAULT);
  if (!m?.[1] || !isFaultPoint(m[1])) return undefined;
  return { point: m[1], hit: Number(m[2] ?? 1) };
}

const hits = new Map<FaultPoint, number>();

/**
 * A step where a crash must be survivable. Off (no test flag, or another point named): nothing. On: a line on
 * stderr saying where (written synchronously: it must be out before the kill), then SIGKILL to this process — as
 * abrupt as a power cut, no handler, no flush.
 */
export function faultPoint(name: FaultPoint): void {
  const on = faultSwitch();
  if (on?.point !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n !== on.hit) return;
  writeSync(2, `vmfork fault: killed at ${name}${on.hit > 1 ? `@${on.hit}` : ''} (VMFORK_FAULT, test only)\n`);
  process.kill(process.pid, 'SIGKILL');
}

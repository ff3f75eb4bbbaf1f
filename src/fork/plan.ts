import { join } from 'node:path';
import { VmforkError } from '../errors.js';
import { checkHostCapacity, localQemuBuild } from '../host/index.js';
import { allocateLeaseIn, ensureNetworkNamed, freeCount } from '../network/index.js';
import { deviceLayoutOf } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { insertVm, requireTemplate, vmNames, withWriteLock } from '../store/index.js';
import { assertFilesIntact, assertTemplateHere, readyTemplate, templateFileList, type ReadyTemplate } from '../template/index.js';
import { assertValidName } from '../util/index.js';
import { hereHost, vmPaths, type VmDeps } from '../vm/index.js';
import { childSpec } from './child-spec.js';
import type { ReservedChild } from './reserved.js';
import { takeWarm, warmCandidates } from './warm-take.js';

export type { ReservedChild } from './reserved.js';

export interface ForkRequest {
  template: string;
  count: number;
  /** Child names; `{n}` is replaced by a number that continues after existing names. @default `<template>-{n}` */
  namePattern?: string;
  /** @default 'default' (created on first use) */
  network?: string;
  /** Exactly these child names (a pool's naming), instead of a pattern. */
  names?: readonly string[];
  /** The pool the children belong to. */
  pool?: string;
  /** Take the template's warm processes when there are (only migrate-incoming + cont left per child). @default true */
  useWarm?: boolean;
  /**
   * Lazy children (src/fork/lazy.ts): the template is another host's, its files are read from there; only its
   * record and this host's QEMU build are checked, no warm process is taken.
   */
  lazy?: boolean;
}

export interface ForkPlan {
  template: ReadyTemplate;
  names: string[];
  network: string;
  children: ReservedChild[];
  /** How many children took a warm process: the template's warm pool wants a refill. */
  warmTaken: number;
}

export const MAX_FORK_COUNT = 256;

/**
 * Every check a fork batch needs, then the reservation: the template is ready and its files intact, this QEMU is
 * the template's build with the same machine type, the network has enough free addresses and the host enough
 * memory; then, in ONE write transaction, the names are chosen and each child's record (state `creating`, owned by
 * this process) and lease are inserted. Two concurrent forks therefore never plan the same name or address: the
 * second one's transaction sees the first one's rows.
 */
export async function planFork(deps: VmDeps, req: ForkRequest, actor: Actor): Promise<ForkPlan> {
  if (!Number.isInteger(req.count) || req.count <= 0 || req.count > MAX_FORK_COUNT) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--count must be a whole number from 1 to ${MAX_FORK_COUNT}, got ${String(req.count)}`, {
      details: { count: req.count },
    });
  }
  const template = readyTemplate(await requireTemplate(deps.db, req.template));
  if (!req.lazy) assertTemplateHere(hereHost(deps), template.row);
  if (req.names && req.names.length !== req.count) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${req.names.length} names given for ${req.count} children`, { details: { names: req.names } });
  }
  const pattern = req.namePattern ?? `${req.template}-{n}`;
  const pick = (existing: ReadonlySet<string>): string[] => (req.names ? explicitNames(req.names, existing) : childNames(pattern, req.count, existing));
  pick(new Set()); // bad names fail before the network is touched
  // independent checks, run together (two of them wait for other programs, ip and QEMU, most of their time); the
  // first failure in this order is reported, whichever finished first
  const [, network] = await allInOrder([
    assertMatchesTemplate(template, { cacheFile: qemuBuildCache(deps.home.run) }),
    ensureNetworkNamed(deps.db, req.network, hereHost(deps)).then(async (net) => {
      const { free, total } = await freeCount(deps.db, net);
      if (free < req.count) {
        throw new VmforkError('VMFORK_NETWORK_EXHAUSTED', `network ${net} has ${free} of ${total} addresses left, ${req.count} asked`, {
          details: { network: net, free, total, asked: req.count },
        });
      }
      return net;
    }),
    // Children share the template's RAM copy-on-write: budget QEMU's own overhead plus a quarter of the guest RAM
    // each for the pages a child dirties (docs/forking.md, "Capacity").
    checkHostCapacity({
      dir: deps.home.root,
      diskBytes: req.count * 64 * 1024 ** 2,
      // a lazy child's RAM is its own (the stream fills it), not copy-on-write over this host's file
      memoryMiB: req.lazy ? template.record.memoryMiB : Math.ceil(template.record.memoryMiB / 4),
      count: req.count,
      overheadMiB: 64,
    }),
    req.lazy ? Promise.resolve() : assertFilesIntact(req.template, templateFileList(template.record)),
  ]);
  const candidates = req.useWarm === false || req.lazy ? [] : await warmCandidates(deps, template, network);
  const children = await withWriteLock(deps.db, async (conn) => {
    const names = pick(await vmNames(conn));
    const reserved: ReservedChild[] = [];
    for (const name of names) {
      const warm = await takeWarm(conn, candidates, name, actor, req.pool);
      if (warm) {
        reserved.push(warm);
        continue;
      }
      const lease = await allocateLeaseIn(conn, { network, vmName: name, host: hereHost(deps) });
      const paths = vmPaths(deps.home.vms, name);
      const spec = childSpec(template, name, paths, lease, { lazy: req.lazy === true });
      const now = new Date().toISOString();
      await insertVm(
        conn,
        { name, host_id: hereHost(deps), image_name: template.record.image, template_name: template.row.name, pool_name: req.pool ?? null, state: 'creating', role: 'child', dir: paths.dir, spec_json: JSON.stringify(spec), last_error: null, created_at: now, updated_at: now },
        actor,
      );
      reserved.push({ name, lease, paths, spec });
    }
    return reserved;
  });
  return { template, names: children.map((c) => c.name), network, children, warmTaken: children.filter((c) => c.warm).length };
}

/** Expands the name pattern; numbering continues after the highest existing `{n}` so repeated forks never clash. */
export function childNames(pattern: string, count: number, existing: ReadonlySet<string>): string[] {
  let names: string[];
  if (pattern.includes('{n}')) {
    const [before, after] = [pattern.slice(0, pattern.indexOf('{n}')), pattern.slice(pattern.indexOf('{n}') + 3)];
    let start = 1;
    for (const name of existing) {
      if (name.startsWith(before) && name.endsWith(after)) {
        const n = Number(name.slice(before.length, name.length - after.length));
        if (Number.isInteger(n) && n >= start) start = n + 1;
      }
    }
    names = Array.from({ length: count }, (_, i) => pattern.replace('{n}', String(start + i)));
  } else {
    names = Array.from({ length: count }, () => pattern);
  }
  for (const n of names) assertValidName(n, 'child');
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n) || existing.has(n)) {
      throw new VmforkError('VMFORK_VM_EXISTS', `name pattern "${pattern}" gives "${n}" twice or an existing name; use {n} in --name`, {
        details: { pattern, name: n },
      });
    }
    seen.add(n);
  }
  return names;
}

/** Explicit child names: each a valid label, none twice, none taken. */
export function explicitNames(names: readonly string[], existing: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  for (const n of names) {
    assertValidName(n, 'child');
    if (seen.has(n) || existing.has(n)) throw new VmforkError('VMFORK_VM_EXISTS', `child name "${n}" is given twice or already taken`, { details: { name: n } });
    seen.add(n);
  }
  return [...names];
}

/** Like Promise.all, but all settle and the first rejection in argument order is thrown: errors stay deterministic. */
async function allInOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Where the QEMU build probe is remembered between commands (host/qemu-build.ts says why it is safe). */
export function qemuBuildCache(runDir: string): string {
  return join(runDir, 'qemu-build.json');
}

/** A child's device state only loads into the same QEMU build, machine type and device layout. */
export async function assertMatchesTemplate(t: ReadyTemplate, options: { cacheFile?: string } = {}): Promise<void> {
  const local = await localQemuBuild(options.cacheFile ? { cacheFile: options.cacheFile } : {});
  const problems: string[] = [];
  if (local.build !== t.record.qemuBuild) problems.push(`QEMU build "${local.build}" ≠ template's "${t.record.qemuBuild}"`);
  if (local.machine !== t.record.machine) problems.push(`machine type ${local.machine} ≠ template's ${t.record.machine}`);
  // the argv builder of this vmfork version must still lay devices out as it did when the template was cut
  if (deviceLayoutOf(t.spec) !== t.record.layout) problems.push('device layout built by this vmfork differs from the recorded one');
  if (problems.length) {
    throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `template ${t.row.name}: ${problems.join('; ')}`, { details: { template: t.row.name, problems } });
  }
}

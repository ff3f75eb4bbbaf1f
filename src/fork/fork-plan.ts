import { VmforkError } from '../errors.js';
import { freeCount } from '../network/leases.js';
import { DEFAULT_NETWORK } from '../network/names.js';
import { ensureDefaultNetwork } from '../network/networks.js';
import { deviceLayoutOf } from '../qemu/qemu-argv.js';
import { requireNetwork } from '../store/networks-repo.js';
import { requireTemplate } from '../store/templates-repo.js';
import { listVms } from '../store/vms-repo.js';
import { assertValidName } from '../util/names.js';
import { checkHostCapacity } from '../vm/capacity.js';
import type { VmDeps } from '../vm/vm-deps.js';
import { localQemuBuild } from './qemu-build.js';
import { assertFilesIntact } from './template-files.js';
import { readyTemplate, type ReadyTemplate } from './template-record.js';

export interface ForkRequest {
  template: string;
  count: number;
  /** Child names; `{n}` is replaced by a number that continues after existing names. @default `<template>-{n}` */
  namePattern?: string;
  /** @default 'default' (created on first use) */
  network?: string;
}

export interface ForkPlan {
  template: ReadyTemplate;
  names: string[];
  network: string;
}

export const MAX_FORK_COUNT = 256;

/**
 * Every check a fork batch needs, before anything is created: the template is ready and its files intact, this
 * QEMU is the template's build with the same machine type, names are valid and new, the network has enough free
 * addresses and the host enough memory.
 */
export async function planFork(deps: VmDeps, req: ForkRequest): Promise<ForkPlan> {
  if (!Number.isInteger(req.count) || req.count <= 0 || req.count > MAX_FORK_COUNT) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--count must be a whole number from 1 to ${MAX_FORK_COUNT}, got ${String(req.count)}`, {
      details: { count: req.count },
    });
  }
  const template = readyTemplate(await requireTemplate(deps.db, req.template));
  const existing = new Set((await listVms(deps.db)).map((v) => v.name));
  const names = childNames(req.namePattern ?? `${req.template}-{n}`, req.count, existing);
  await assertMatchesTemplate(template);
  const network = req.network ?? DEFAULT_NETWORK.name;
  if (network === DEFAULT_NETWORK.name) await ensureDefaultNetwork(deps.db);
  else await requireNetwork(deps.db, network);
  const { free, total } = await freeCount(deps.db, network);
  if (free < req.count) {
    throw new VmforkError('VMFORK_NETWORK_EXHAUSTED', `network ${network} has ${free} of ${total} addresses left, ${req.count} asked`, {
      details: { network, free, total, asked: req.count },
    });
  }
  // Children share the template's RAM copy-on-write: budget QEMU's own overhead plus a quarter of the guest RAM
  // each for the pages a child dirties (docs/forking.md, "Capacity").
  await checkHostCapacity({
    dir: deps.home.root,
    diskBytes: req.count * 64 * 1024 ** 2,
    memoryMiB: Math.ceil(template.record.memoryMiB / 4),
    count: req.count,
    overheadMiB: 64,
  });
  await assertFilesIntact(req.template, template.record.files);
  return { template, names, network };
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

/** A child's device state only loads into the same QEMU build, machine type and device layout. */
export async function assertMatchesTemplate(t: ReadyTemplate): Promise<void> {
  const local = await localQemuBuild();
  const problems: string[] = [];
  if (local.build !== t.record.qemuBuild) problems.push(`QEMU build "${local.build}" ≠ template's "${t.record.qemuBuild}"`);
  if (local.machine !== t.record.machine) problems.push(`machine type ${local.machine} ≠ template's ${t.record.machine}`);
  // the argv builder of this vmfork version must still lay devices out as it did when the template was cut
  if (deviceLayoutOf(t.spec) !== t.record.layout) problems.push('device layout built by this vmfork differs from the recorded one');
  if (problems.length) {
    throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `template ${t.row.name}: ${problems.join('; ')}`, { details: { template: t.row.name, problems } });
  }
}

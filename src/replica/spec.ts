import { createHash } from 'node:crypto';
import type { DiskLayout } from '../customize/index.js';
import { canonicalJson } from '../image/index.js';
import { parseMemoryMiB, parseSize } from '../util/index.js';

/**
 * What the replica map needs of a pool spec: the pool room's PoolSpec has all of it. Typed here, below the pool
 * room, so that a replica never depends on the pool that asked for it (several pools share one).
 */
export interface ReplicaSpec {
  image: string;
  datastore: string;
  network: string;
  persistent: boolean;
  disks: { userData?: string; disposable: string; swap: string };
  customize: { common: readonly { path: string; timeoutSeconds: number }[] };
  access?: { sshAuthorizedKeys: string[] };
  memory?: string;
  cpus?: number;
  /** Children with a VGA device: a template of their own (the device is part of what a child loads). */
  screen?: boolean;
}

/**
 * sha256 of exactly what phase 1 (the internal clone's common customization) depends on: the image version, whether
 * the pool is persistent, its disks, the common scripts and the access keys. The replica map keys on it, so two
 * pools that agree on these share a replica whatever their names, sizes or per-child hooks.
 */
export function phase1Digest(spec: ReplicaSpec, imageVersion: string): string {
  const parts = { imageVersion, persistent: spec.persistent, disks: spec.disks, common: spec.customize.common, access: spec.access ?? null };
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

/** The disks phase 1 lays out for a spec. */
export function diskLayoutOf(spec: ReplicaSpec): DiskLayout {
  return {
    disposableBytes: parseSize(spec.disks.disposable),
    swapBytes: parseSize(spec.disks.swap),
    ...(spec.persistent && spec.disks.userData !== undefined ? { userDataBytes: parseSize(spec.disks.userData) } : {}),
  };
}

/** Memory and CPUs of a pool's children: the spec's, or the template defaults (512 MiB, 1 vCPU). */
export function childShape(spec: Pick<ReplicaSpec, 'memory' | 'cpus'>): { memoryMiB: number; cpus: number } {
  return { memoryMiB: parseMemoryMiB(spec.memory ?? '512M'), cpus: spec.cpus ?? 1 };
}

/**
 * The template made from a replica for one memory size, CPU count and screen: every pool of that shape shares it. A
 * screen's VGA device is guest-visible, so pools with one get a template of their own (`-vga`), and a pool without
 * one keeps the name (and template) it always had.
 */
export function replicaTemplateName(replicaId: string, spec: Pick<ReplicaSpec, 'memory' | 'cpus' | 'screen'>): string {
  const { memoryMiB, cpus } = childShape(spec);
  return `rt-${replicaId}-${memoryMiB}m${cpus}c${spec.screen === true ? '-vga' : ''}`;
}

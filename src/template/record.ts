import { VmforkError } from '../errors.js';
import { decodeVmSpec, type VmSpec } from '../spec/index.js';
import type { TemplateRow } from '../store/index.js';
import type { AgentForkRecord } from './agent-prepare.js';
import type { FileRecord } from './files.js';

/**
 * How a template's children get their identity: `agent` — vmfork-guest's pending FORK_ME request returns with the
 * child's CONFIG, applied in-process; `script` — the identity script through qemu-ga (images without the agent).
 */
export type ForkPath = 'agent' | 'script';

/** Everything a child depends on, written once when the template is frozen. */
export interface TemplateRecord {
  image: string;
  qemuBuild: string;
  machine: string;
  accel: 'kvm' | 'tcg';
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  /** Canonical device layout (deviceLayoutOf) and its sha256. */
  layout: string;
  layoutHash: string;
  /**
   * `disk` is the system disk (`disk0`); `disks` every disk by device id (disk0 included) — absent in records
   * written before templates had more than one disk.
   */
  files: { ram: FileRecord; state: FileRecord; disk: FileRecord; disks?: Record<string, FileRecord> };
  /** boot_id of the parent: every child reports the same one (the proof that no child rebooted). */
  bootId: string;
  coldBootSeconds: number;
  prepareMs: number;
  cutMs: number;
  frozenAt: string;
  /** Absent in records written before the agent path: those are `script`. */
  forkPath?: ForkPath;
  /** The agent path's template id and FORK_ME nonce, repeated by every child's CONFIG. */
  agent?: AgentForkRecord;
  /** A template made from a running child (`--from-vm`): the child, and the template whose disks this one's overlay. */
  fromVm?: FromVmRecord;
}

/** Where a `--from-vm` template came from, and how long its child stood still for it. */
export interface FromVmRecord {
  vm: string;
  template: string;
  /** From the child's `stop` to its `cont`: the copy of its disks, the parent's start and the move of its RAM. */
  pausedMs: number;
  steps?: { copyMs: number; launchMs: number; migrateMs: number };
}

/** The path a template's children take (records from before the agent path took the script path). */
export function forkPathOf(record: Pick<TemplateRecord, 'forkPath' | 'agent'>): ForkPath {
  return record.forkPath === 'agent' && record.agent ? 'agent' : 'script';
}

export interface ReadyTemplate {
  row: TemplateRow;
  /** The parent's spec, decoded once for a whole fork batch. */
  spec: VmSpec;
  record: TemplateRecord;
}

/** Every disk a child overlays, by device id, in the template's device order. */
export function templateDisks(record: TemplateRecord): { id: string; file: FileRecord }[] {
  const disks = record.files.disks ?? { disk0: record.files.disk };
  return Object.entries(disks).map(([id, file]) => ({ id, file }));
}

/** Every sealed file of a template with its role (`ram`, `state`, `disk`, `disk:<id>` for further disks). */
export function templateFileList(record: TemplateRecord): [string, FileRecord][] {
  const disks = templateDisks(record).map(({ id, file }): [string, FileRecord] => [id === 'disk0' ? 'disk' : `disk:${id}`, file]);
  return [['ram', record.files.ram], ['state', record.files.state], ...disks];
}

/** The record of a frozen template, or null while it has none (still being created, failed). */
export function templateRecordOf(row: TemplateRow): TemplateRecord | null {
  return row.record_json ? (JSON.parse(row.record_json) as TemplateRecord) : null;
}

/**
 * A template's files and QEMUs are on its host: children fork from it only there (another machine has neither).
 * The CLI sends a fork of another host's template to that host's agent.
 */
export function assertTemplateHere(here: string, row: Pick<TemplateRow, 'name' | 'host_id'>): void {
  if (row.host_id !== here) {
    throw new VmforkError('VMFORK_VM_ELSEWHERE', `template ${row.name} is on host ${row.host_id}: its children fork there, on that host's agent (give the fleet's --db, and the CLI sends the fork there)`, {
      details: { template: row.name, host: row.host_id },
    });
  }
}

/** A template row that is `ready`, with its parsed spec and record; otherwise VMFORK_TEMPLATE_NOT_READY. */
export function readyTemplate(row: TemplateRow): ReadyTemplate {
  const record = templateRecordOf(row);
  if (row.state !== 'ready' || !record) {
    throw new VmforkError('VMFORK_TEMPLATE_NOT_READY', `template ${row.name} is ${row.state}${row.last_error ? `: ${row.last_error}` : ''}`, {
      details: { template: row.name, state: row.state },
    });
  }
  return { row, spec: decodeVmSpec(row.spec_json), record };
}

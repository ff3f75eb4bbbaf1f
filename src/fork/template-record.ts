import { VmforkError } from '../errors.js';
import type { TemplateRow } from '../store/schema.js';
import type { VmSpec } from '../vm/vm-spec.js';
import { parseVmSpec } from '../vm/vm-spec.js';
import type { FileRecord } from './template-files.js';

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
  files: { ram: FileRecord; state: FileRecord; disk: FileRecord };
  /** boot_id of the parent: every child reports the same one (the proof that no child rebooted). */
  bootId: string;
  coldBootSeconds: number;
  prepareMs: number;
  cutMs: number;
  frozenAt: string;
}

export interface ReadyTemplate {
  row: TemplateRow;
  spec: VmSpec;
  record: TemplateRecord;
}

/** A template row that is `ready`, with its parsed spec and record; otherwise VMFORK_TEMPLATE_NOT_READY. */
export function readyTemplate(row: TemplateRow): ReadyTemplate {
  if (row.state !== 'ready' || !row.record_json) {
    throw new VmforkError('VMFORK_TEMPLATE_NOT_READY', `template ${row.name} is ${row.state}${row.last_error ? `: ${row.last_error}` : ''}`, {
      details: { template: row.name, state: row.state },
    });
  }
  return { row, spec: parseVmSpec(JSON.parse(row.spec_json)), record: JSON.parse(row.record_json) as TemplateRecord };
}

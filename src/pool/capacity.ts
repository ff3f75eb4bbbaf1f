import { VmforkError, withContext } from '../errors.js';
import { availableMemoryMiB, freeSpace } from '../host/index.js';
import { listVms, type Db } from '../store/index.js';
import { formatBytes, parseSize } from '../util/index.js';
import { requireDatastore } from '../host/index.js';
import type { PoolSpec } from './spec.js';
import { poolChildNames } from './spec.js';
import { checkPoolRefs } from './refs.js';
import { childShape as poolShape } from '../replica/index.js';
import { targetActive } from './converge.js';

/** QEMU's own memory per running VM, and the share of guest RAM a forked child is budgeted to dirty. */
const OVERHEAD_MIB = 64;

/**
 * Every check a pool needs before anything is made for it (a 4xx, never a half-made pool): what the spec names
 * exists (image, network, datastore), its child names are free, the datastore holds the replica's disks, and the
 * host's memory the children forked up front. Each error names the spec field at fault; capacity errors say how
 * many would fit.
 */
export async function checkPoolFits(db: Db, spec: PoolSpec): Promise<void> {
  await checkPoolRefs(db, spec);
  const taken = new Set((await listVms(db)).map((v) => v.name));
  const names = poolChildNames(spec).slice(0, spec.size.max);
  const clash = names.find((n) => taken.has(n));
  if (clash) throw fieldError('VMFORK_VM_EXISTS', 'naming', `child name "${clash}" is already a VM of this data dir`);
  const store = await requireDatastore(db, spec.datastore);
  const { freeBytes } = await freeSpace(store.path);
  // the replica is a full copy: the system disk as the image left it plus the data disks as phase 1 filled them
  const replicaBytes = 1024 ** 3 + parseSize(spec.disks.disposable) + (spec.persistent && spec.disks.userData ? parseSize(spec.disks.userData) : 0);
  if (replicaBytes > freeBytes) {
    throw fieldError('VMFORK_NO_SPACE', spec.persistent ? 'disks.userData' : 'disks.disposable', `the replica needs up to ${formatBytes(replicaBytes)} on datastore ${spec.datastore}; ${formatBytes(freeBytes)} free`);
  }
  const { memoryMiB } = poolShape(spec);
  const forked = targetActive(spec, 0);
  // phase 1's clone and the template's parent hold their whole RAM; a forked child shares the template's and dirties part
  const perChildMiB = Math.ceil(memoryMiB / 4) + OVERHEAD_MIB;
  const availMiB = (await availableMemoryMiB()) - (memoryMiB + OVERHEAD_MIB);
  const fit = Math.max(0, Math.floor(availMiB / perChildMiB));
  if (fit < forked) {
    throw fieldError('VMFORK_INSUFFICIENT_MEMORY', spec.provisioning === 'up-front' ? 'size.max' : 'size.min', `${forked} children of ${memoryMiB} MiB to fork, this host's memory holds ${fit}`, { fit, asked: forked });
  }
}

function fieldError(code: 'VMFORK_VM_EXISTS' | 'VMFORK_NO_SPACE' | 'VMFORK_INSUFFICIENT_MEMORY', field: string, message: string, extra: Record<string, unknown> = {}): VmforkError {
  return withContext(new VmforkError(code, message), `pool spec: ${field}`, { details: { problems: [{ path: field, message }], ...extra } });
}

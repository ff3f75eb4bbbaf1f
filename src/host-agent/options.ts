import { isAbsolute, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import { assertValidName, parseListen } from '../util/index.js';
import { DEFAULT_CPU_ALLOCATION_RATIO } from '../host/index.js';

/** The protocol between host agents and the rest of the fleet (the store's host rows, later its job queue). */
export const HOST_AGENT_PROTOCOL = 1;

export interface HostAgentOptions {
  host: string;
  listen: { host: string; port: number };
  datastores: { name: string; path: string }[];
  heartbeatMs: number;
  /** Heartbeats missed for this long: the host is `lost`. */
  lostAfterMs: number;
  /** The fleet's key file (replica copies between hosts need it). */
  fleetKeyFile?: string;
  /** Replica copies received at once. @default 2 */
  maxCopies: number;
  /** vCPUs placement lets run per CPU of this host (Nova's cpu_allocation_ratio). */
  cpuAllocationRatio: number;
}

export interface RawHostAgentOptions {
  host?: string;
  listen?: string;
  datastore?: string[];
  heartbeatSeconds?: string;
  lostAfterSeconds?: string;
  fleetKeyFile?: string;
  maxCopies?: string;
  cpuAllocationRatio?: string;
}

function seconds(value: string | undefined, fallback: number, field: string, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--${field} must be a number of seconds from ${min} to ${max}, got "${value}"`, { details: { field } });
  }
  return Math.round(n * 1000);
}

/**
 * Everything the agent was given, checked before it touches the store or the disk: the host's name (an RFC 1123
 * label, as it names paths and appears in pool placement), an address, at least one datastore `NAME=PATH` with an
 * absolute path and names used once, and the heartbeat's timing (the lost threshold at least 3 heartbeats).
 */
export function parseHostAgentOptions(raw: RawHostAgentOptions): HostAgentOptions {
  if (!raw.host) throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--host NAME is required: the name this host has in the fleet', { details: { field: 'host' } });
  assertValidName(raw.host, 'host');
  if (!raw.listen) throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--listen HOST:PORT is required: where the other hosts reach this one', { details: { field: 'listen' } });
  const listen = parseListen(raw.listen, '10.0.0.2:8471');
  const given = raw.datastore ?? [];
  if (given.length === 0) throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--datastore NAME=PATH is required (once per datastore): where this host keeps replicas and disks', { details: { field: 'datastore' } });
  const datastores = given.map((d) => {
    const eq = d.indexOf('=');
    const name = eq > 0 ? d.slice(0, eq) : '';
    const path = eq > 0 ? d.slice(eq + 1) : '';
    if (!name || !path || !isAbsolute(path)) {
      throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--datastore must be NAME=/absolute/path, got "${d}"`, { details: { field: 'datastore', value: d } });
    }
    assertValidName(name, 'datastore');
    return { name, path: resolve(path) };
  });
  const names = datastores.map((d) => d.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `datastore "${twice}" is given twice`, { details: { field: 'datastore', name: twice } });
  const paths = datastores.map((d) => d.path);
  const shared = paths.find((p, i) => paths.indexOf(p) !== i);
  if (shared) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `path ${shared} is given for two datastores`, { details: { field: 'datastore', path: shared } });
  const heartbeatMs = seconds(raw.heartbeatSeconds, 5_000, 'heartbeat-seconds', 0.2, 300);
  const lostAfterMs = seconds(raw.lostAfterSeconds, heartbeatMs * 3, 'lost-after-seconds', 0.6, 3600);
  if (lostAfterMs < heartbeatMs * 3) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--lost-after-seconds must be at least 3 heartbeats (${(heartbeatMs * 3) / 1000} s): one late heartbeat must not lose a host`, { details: { field: 'lost-after-seconds' } });
  }
  const maxCopies = raw.maxCopies === undefined ? 2 : Number(raw.maxCopies);
  if (!Number.isInteger(maxCopies) || maxCopies < 1 || maxCopies > 64) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--max-copies must be a whole number from 1 to 64, got "${raw.maxCopies}"`, { details: { field: 'max-copies' } });
  }
  if (raw.fleetKeyFile !== undefined && !isAbsolute(raw.fleetKeyFile)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--fleet-key-file must be an absolute path, got "${raw.fleetKeyFile}"`, { details: { field: 'fleet-key-file' } });
  }
  const cpuAllocationRatio = raw.cpuAllocationRatio === undefined ? DEFAULT_CPU_ALLOCATION_RATIO : Number(raw.cpuAllocationRatio);
  if (!Number.isFinite(cpuAllocationRatio) || cpuAllocationRatio <= 0 || cpuAllocationRatio > 128) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--cpu-allocation-ratio must be a number above 0 and at most 128, got "${raw.cpuAllocationRatio}"`, { details: { field: 'cpu-allocation-ratio' } });
  }
  return { host: raw.host, listen, datastores, heartbeatMs, lostAfterMs, maxCopies, cpuAllocationRatio, ...(raw.fleetKeyFile ? { fleetKeyFile: raw.fleetKeyFile } : {}) };
}

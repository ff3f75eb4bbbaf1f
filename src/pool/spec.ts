import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { VmforkError } from '../errors.js';
import { DEFAULT_NETWORK } from '../network/index.js';
import { parseNamePattern, parseSize, patternNames } from '../util/index.js';
import { sizeText } from './spec-limits.js';
import { MIN_DISK_BYTES, PoolSpecInputSchema, type PLACEMENT_STRATEGIES, type PoolSpecInput, type PROVISIONING_MODES, type ReleaseTrigger } from './spec-schema.js';

/** A validated pool spec with every default applied and every size in its canonical form (`256M`). */
export interface PoolSpec {
  name: string;
  image: string;
  provisioning: (typeof PROVISIONING_MODES)[number];
  persistent: boolean;
  /** `warm`: registered children kept launched at `-incoming defer`, so a claim that forks only resumes (on-demand pools). */
  size: { max: number; min: number; spares: number; warm: number };
  naming: { pattern: string } | { names: string[] };
  network: string;
  disks: { userData?: string; disposable: string; swap: string };
  customize: {
    common: { path: string; timeoutSeconds: number }[];
    perChild: { path: string; args: Record<string, string>; timeoutSeconds: number }[];
    machinePassword: boolean;
  };
  stopOnError: boolean;
  /** Besides the user's release: which events end a claim (`ttl` honours a claim's TTL), and the logoff grace. */
  release: { on: ReleaseTrigger[]; graceSeconds: number };
  datastore: string;
  access?: { sshAuthorizedKeys: string[] };
  memory?: string;
  cpus?: number;
  /** Children with a VGA screen (served over VNC); absent when false, so specs without it keep their JSON. */
  screen?: true;
  /** Over the fleet's hosts (src/pool/placement.ts); absent: every child on the server's own host. */
  placement?: { hosts?: string[]; strategy: (typeof PLACEMENT_STRATEGIES)[number]; lazyReplica?: true };
}

/** One thing wrong with a spec: the field path (`size.max`, `naming.names[2]`; '' for the whole spec) and why. */
export interface SpecProblem {
  path: string;
  message: string;
}

export const DEFAULT_COMMON_TIMEOUT_SECONDS = 300;
export const DEFAULT_PER_CHILD_TIMEOUT_SECONDS = 60;
export const DEFAULT_SWAP = '64M';
/** A claim ends with its TTL unless the spec says otherwise; logoff and poweroff are opt-in. */
export const DEFAULT_RELEASE_ON: readonly ReleaseTrigger[] = ['ttl'];
export const DEFAULT_LOGOFF_GRACE_SECONDS = 30;

/** The largest binary unit that divides the size exactly: "0.25G" and "256MiB" both become "256M". */
export function canonicalSize(input: string): string {
  return sizeText(parseSize(input));
}

/** 64M, or a quarter of a smaller disposable disk (whole MiB): the rest of it is /tmp. */
function defaultSwap(disposable: string): string {
  const mib = 1024 * 1024;
  return `${Math.min(parseSize(DEFAULT_SWAP), Math.floor(parseSize(disposable) / 4 / mib) * mib)}B`;
}

/** THE one place defaults are applied (and sizes made canonical), so a spec means the same wherever it is read. */
export function applyPoolDefaults(input: PoolSpecInput): PoolSpec {
  const customize = input.customize ?? {};
  const spec: PoolSpec = {
    name: input.name,
    image: input.image,
    provisioning: input.provisioning ?? 'up-front',
    persistent: input.persistent ?? false,
    size: { max: input.size.max, min: input.size.min ?? 0, spares: input.size.spares ?? 0, warm: input.size.warm ?? 0 },
    naming: input.naming?.names ? { names: input.naming.names } : { pattern: input.naming?.pattern ?? `${input.name}-{n}` },
    network: input.network ?? DEFAULT_NETWORK.name,
    disks: {
      ...(input.disks.userData === undefined ? {} : { userData: canonicalSize(input.disks.userData) }),
      disposable: canonicalSize(input.disks.disposable),
      swap: canonicalSize(input.disks.swap ?? defaultSwap(input.disks.disposable)),
    },
    customize: {
      common: (customize.common ?? []).map((h) => ({ path: h.path, timeoutSeconds: h.timeoutSeconds ?? DEFAULT_COMMON_TIMEOUT_SECONDS })),
      perChild: (customize.perChild ?? []).map((h) => ({
        path: h.path,
        args: Object.fromEntries(Object.entries(h.args ?? {}).map(([k, v]) => [k, String(v)])),
        timeoutSeconds: h.timeoutSeconds ?? DEFAULT_PER_CHILD_TIMEOUT_SECONDS,
      })),
      machinePassword: customize.machinePassword ?? false,
    },
    stopOnError: input.stopOnError ?? true,
    release: { on: [...new Set(input.release?.on ?? DEFAULT_RELEASE_ON)], graceSeconds: input.release?.graceSeconds ?? DEFAULT_LOGOFF_GRACE_SECONDS },
    datastore: input.datastore ?? 'default',
  };
  if (input.access) spec.access = { sshAuthorizedKeys: [...input.access.sshAuthorizedKeys] };
  if (input.memory !== undefined) spec.memory = canonicalSize(input.memory);
  if (input.cpus !== undefined) spec.cpus = input.cpus;
  if (input.screen === true) spec.screen = true;
  if (input.placement) {
    spec.placement = {
      ...(input.placement.hosts ? { hosts: [...new Set(input.placement.hosts)] } : {}),
      strategy: input.placement.strategy ?? 'spread',
      ...(input.placement.lazyReplica ? { lazyReplica: true as const } : {}),
    };
  }
  return spec;
}

/** Checks that span fields, on a spec whose fields are each valid. */
export function poolSpecProblems(spec: PoolSpec, input: PoolSpecInput): SpecProblem[] {
  const out: SpecProblem[] = [];
  const { max, min, spares } = spec.size;
  if (min > max) out.push({ path: 'size.max', message: `must be ≥ size.min (${min})` });
  if (spares > max) out.push({ path: 'size.spares', message: `must be ≤ size.max (${max})` });
  if (spec.size.warm > 0 && spec.provisioning !== 'on-demand') out.push({ path: 'size.warm', message: 'warm processes wait for registered children: only an on-demand pool has them' });
  if (spec.size.warm > max) out.push({ path: 'size.warm', message: `must be ≤ size.max (${max})` });
  if (spec.placement && spec.provisioning !== 'up-front') {
    out.push({ path: 'placement', message: 'a pool placed over hosts is provisioned up-front (on-demand children are not placed over hosts yet)' });
  }
  if (spec.placement && spec.persistent) out.push({ path: 'placement', message: 'a pool placed over hosts is not persistent (its children are rebuilt elsewhere when a host is lost)' });
  if (input.naming?.pattern !== undefined && input.naming.names !== undefined) {
    out.push({ path: 'naming', message: 'give either naming.pattern or naming.names, not both' });
  }
  if ('names' in spec.naming) {
    const seen = new Map<string, number>();
    spec.naming.names.forEach((n, i) => {
      const first = seen.get(n);
      if (first !== undefined) out.push({ path: `naming.names[${i}]`, message: `duplicate name "${n}" (also naming.names[${first}])` });
      else seen.set(n, i);
    });
    if (spec.naming.names.length < max) out.push({ path: 'naming.names', message: `${spec.naming.names.length} names for size.max ${max}: give at least ${max}` });
  } else {
    const p = parseNamePattern(spec.naming.pattern);
    const problem = 'problem' in p ? p.problem : patternNames(p, max).problem;
    if (problem) out.push({ path: 'naming.pattern', message: input.naming?.pattern === undefined ? `default "${spec.naming.pattern}": ${problem}` : problem });
  }
  if (!spec.persistent && spec.disks.userData !== undefined) {
    out.push({ path: 'disks.userData', message: 'a non-persistent pool has no user-data disk (set persistent: true, or remove disks.userData)' });
  }
  if (spec.persistent && spec.disks.userData === undefined) out.push({ path: 'disks.userData', message: 'a persistent pool needs a user-data disk size, e.g. 256M' });
  if (parseSize(spec.disks.swap) + MIN_DISK_BYTES > parseSize(spec.disks.disposable)) {
    out.push({ path: 'disks.swap', message: `must leave at least 16M of disks.disposable (${spec.disks.disposable}) for /tmp` });
  }
  if (spec.customize.machinePassword && spec.customize.perChild.length === 0) {
    // the password is handed only to perChild hooks: with none it would be drawn and hashed, and never reach the guest
    out.push({ path: 'customize.machinePassword', message: 'needs a customize.perChild hook: the machine password is handed only to perChild hooks (on stdin), so with none it would be drawn, hashed and never delivered' });
  }
  if (spec.memory !== undefined && parseSize(spec.memory) % (1024 * 1024) !== 0) out.push({ path: 'memory', message: 'must be a whole number of MiB' });
  return out;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

/** zod issues as field-path problems: one per unknown field, "required" for a missing one. */
export function zodProblems(issues: readonly z.core.$ZodIssue[], prefix = ''): SpecProblem[] {
  const join = (p: string): string => (prefix && p ? `${prefix}.${p}` : prefix || p);
  return issues.flatMap((i) => {
    const at = fieldPath(i.path);
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ path: join(at ? `${at}.${k}` : k), message: 'unknown field' }));
    const message = i.code === 'invalid_type' && /received undefined$/.test(i.message) ? 'required' : i.message;
    return [{ path: join(at), message }];
  });
}

/** The one error a rejected spec gives: VMFORK_INVALID_ARGUMENT naming the first field at fault, all in details. */
export function invalidSpec(problems: SpecProblem[], what = 'pool spec'): VmforkError {
  const first = problems[0];
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  const detail = first ? `${what}: ${first.path ? `${first.path}: ` : ''}${first.message}${more}` : what;
  return new VmforkError('VMFORK_INVALID_ARGUMENT', detail, { details: { problems } });
}

/** Validates a pool spec (already parsed from YAML/JSON): VMFORK_INVALID_ARGUMENT with every problem, or the spec. */
export function parsePoolSpec(value: unknown): PoolSpec {
  const parsed = PoolSpecInputSchema.safeParse(value);
  if (!parsed.success) throw invalidSpec(zodProblems(parsed.error.issues));
  const spec = applyPoolDefaults(parsed.data);
  const problems = poolSpecProblems(spec, parsed.data);
  if (problems.length) throw invalidSpec(problems);
  return spec;
}

/** Parses YAML (a superset of JSON) or, with format 'json', strict JSON text, then validates it. */
export function parsePoolSpecText(text: string, format: 'yaml' | 'json' = 'yaml'): PoolSpec {
  let value: unknown;
  try {
    value = format === 'json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    throw invalidSpec([{ path: '', message: `not valid ${format === 'json' ? 'JSON' : 'YAML'}: ${message}` }]);
  }
  return parsePoolSpec(value);
}

/**
 * The names of a pool's children 1..count (`size.max` by default), in order. A names list shorter than `count`
 * (a resize beyond it) is VMFORK_INVALID_ARGUMENT naming `naming.names`.
 */
export function poolChildNames(spec: PoolSpec, count: number = spec.size.max): string[] {
  if ('names' in spec.naming) {
    if (spec.naming.names.length < count) throw invalidSpec([{ path: 'naming.names', message: `${spec.naming.names.length} names for ${count} children` }]);
    return spec.naming.names.slice(0, count);
  }
  const p = parseNamePattern(spec.naming.pattern);
  if ('problem' in p) throw invalidSpec([{ path: 'naming.pattern', message: p.problem }]);
  const { names, problem } = patternNames(p, count);
  if (problem) throw invalidSpec([{ path: 'naming.pattern', message: problem }]);
  return names;
}

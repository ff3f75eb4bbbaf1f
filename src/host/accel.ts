import { constants } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { VmforkError } from '../errors.js';

export type Accel = 'kvm' | 'tcg';

/** What the user asked for: `auto` picks KVM only where it really works. */
export type AccelChoice = Accel | 'auto';

export const ACCEL_CHOICES: readonly AccelChoice[] = ['auto', 'kvm', 'tcg'];

/** The host facts accelerator detection looks at; `readHostFacts()` reads them from the running kernel. */
export interface HostFacts {
  /** Text of /proc/cpuinfo. */
  cpuinfo: string;
  /** Names of loaded or built-in kernel modules (kvm_intel, kvm_amd, kvm_pvm, …). */
  modules: string[];
  /** /dev/kvm exists and this user can open it read-write. */
  kvmDeviceUsable: boolean;
  /** Why /dev/kvm is not usable (ENOENT, EACCES, …); only for the reason text. */
  kvmDeviceError?: string;
}

export interface AccelDecision {
  accel: Accel;
  /** One sentence a user can act on: what was seen and what was chosen. */
  reason: string;
}

/**
 * Chooses the accelerator. KVM only where the CPU advertises vmx/svm, the matching kvm_intel/kvm_amd is loaded
 * (or built in) and /dev/kvm opens: a /dev/kvm alone is not enough, because PVM (kvm_pvm) also provides one and
 * stock guest kernels hang under it. Forcing `kvm` where it is unusable is VMFORK_ACCEL_UNAVAILABLE.
 */
export function detectAccel(facts: HostFacts, forced: AccelChoice = 'auto'): AccelDecision {
  if (forced === 'tcg') return { accel: 'tcg', reason: 'forced by --accel tcg' };
  const kvm = kvmVerdict(facts);
  if (forced === 'kvm') {
    if (!kvm.usable) {
      throw new VmforkError('VMFORK_ACCEL_UNAVAILABLE', `--accel kvm: ${kvm.why}`, { details: { reason: kvm.why } });
    }
    return { accel: 'kvm', reason: `forced by --accel kvm (${kvm.why})` };
  }
  return kvm.usable ? { accel: 'kvm', reason: `${kvm.why}: using KVM` } : { accel: 'tcg', reason: `${kvm.why}; using TCG` };
}

function kvmVerdict(facts: HostFacts): { usable: boolean; why: string } {
  const flags = cpuFlags(facts.cpuinfo);
  const modules = new Set(facts.modules);
  const vendor = flags.has('vmx') ? { flag: 'vmx', module: 'kvm_intel' } : flags.has('svm') ? { flag: 'svm', module: 'kvm_amd' } : undefined;
  if (!vendor) {
    if (modules.has('kvm_pvm')) {
      return { usable: false, why: 'PVM detected (kvm_pvm loaded, no vmx/svm): stock guest kernels hang under it' };
    }
    return { usable: false, why: 'no vmx/svm in /proc/cpuinfo (no hardware virtualization exposed to this host)' };
  }
  if (!modules.has(vendor.module)) {
    return { usable: false, why: `${vendor.flag} present but ${vendor.module} is not loaded (modprobe ${vendor.module})` };
  }
  if (!facts.kvmDeviceUsable) {
    const err = facts.kvmDeviceError ? ` (${facts.kvmDeviceError})` : '';
    return { usable: false, why: `${vendor.module} loaded and ${vendor.flag} present, but /dev/kvm cannot be opened${err}` };
  }
  return { usable: true, why: `${vendor.module} loaded and ${vendor.flag} present` };
}

/** The union of all `flags` lines of /proc/cpuinfo (every CPU lists them; hybrid CPUs may differ). */
export function cpuFlags(cpuinfo: string): Set<string> {
  const flags = new Set<string>();
  for (const line of cpuinfo.split('\n')) {
    const m = /^flags\s*:(.*)$/.exec(line);
    if (m?.[1]) for (const f of m[1].trim().split(/\s+/)) if (f) flags.add(f);
  }
  return flags;
}

/** Module names from `lsmod` output (skips its header line). */
export function parseLsmod(text: string): string[] {
  return firstColumns(text).filter((name, i) => !(i === 0 && name === 'Module'));
}

/** Module names from /proc/modules (`name size refcount deps state address`). */
export function parseProcModules(text: string): string[] {
  return firstColumns(text);
}

function firstColumns(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/**
 * Loaded and built-in modules: /proc/modules (absent on a kernel built without module support, which has no lsmod
 * either) united with the /sys/module directories. /sys/module is read in every case because built-in modules
 * never appear in /proc/modules, and a built-in kvm_intel, kvm_amd or kvm_pvm does appear there (they have
 * parameters).
 */
export async function readLoadedModules(procModules = '/proc/modules', sysModule = '/sys/module'): Promise<string[]> {
  const fromProc = await readFile(procModules, 'utf8').catch(() => undefined);
  const names = new Set(fromProc === undefined ? [] : parseProcModules(fromProc));
  for (const name of await readdir(sysModule).catch(() => [] as string[])) names.add(name);
  return [...names].sort();
}

/** Reads the facts of this host for `detectAccel`. */
export async function readHostFacts(): Promise<HostFacts> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const modules = await readLoadedModules();
  try {
    // QEMU opens /dev/kvm read-write; existing with the wrong mode is as useless as not existing
    const fh = await open('/dev/kvm', constants.O_RDWR);
    await fh.close();
    return { cpuinfo, modules, kvmDeviceUsable: true };
  } catch (err) {
    return { cpuinfo, modules, kvmDeviceUsable: false, kvmDeviceError: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

/** Parses a user-supplied `--accel` value. */
export function parseAccelChoice(value: string): AccelChoice {
  if ((ACCEL_CHOICES as readonly string[]).includes(value)) return value as AccelChoice;
  throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--accel must be one of ${ACCEL_CHOICES.join(', ')}, not "${value}"`, {
    details: { accel: value },
  });
}

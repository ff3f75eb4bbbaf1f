import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuFlags, detectAccel, parseAccelChoice, parseLsmod, parseProcModules, readHostFacts, readLoadedModules, type HostFacts } from '../../src/host/accel.js';

const cpuinfo = (flags: string): string =>
  [0, 1]
    .map((n) => `processor\t: ${n}\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`)
    .join('\n');

const INTEL = cpuinfo('fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx ept vpid ssse3 sse4_1 sse4_2 x2apic avx');
const AMD = cpuinfo('fpu vme de pse tsc msr pae mce cx8 apic svm npt lbrv nrip_save sse4a avx2');
// this host: PVM guest CPU without virtualization extensions
const PVM = cpuinfo('fpu vme de pse tsc msr pae mce cx8 apic sep cmov pat clflush mmx fxsr sse sse2 ht syscall nx hypervisor avx2');

const LSMOD_INTEL = `Module                  Size  Used by
kvm_intel             380928  0
kvm                  1142784  1 kvm_intel
irqbypass              16384  1 kvm
`;
const PROC_MODULES_AMD = `kvm_amd 155648 0 - Live 0x0000000000000000
ccp 114688 1 kvm_amd, Live 0x0000000000000000
kvm 1142784 1 kvm_amd, Live 0x0000000000000000
`;

const facts = (c: string, modules: string[], kvmDeviceUsable = true): HostFacts => ({ cpuinfo: c, modules, kvmDeviceUsable });

test('module lists parse from lsmod and /proc/modules', () => {
  assert.deepEqual(parseLsmod(LSMOD_INTEL), ['kvm_intel', 'kvm', 'irqbypass']);
  assert.deepEqual(parseProcModules(PROC_MODULES_AMD), ['kvm_amd', 'ccp', 'kvm']);
  assert.deepEqual(parseProcModules(''), []);
});

test('cpu flags are the union of every flags line', () => {
  const flags = cpuFlags(`${cpuinfo('a b')}\nflags\t: c vmx\n`);
  assert.ok(flags.has('vmx') && flags.has('a') && flags.has('c'));
  assert.equal(cpuFlags('no flags here').size, 0);
});

test('Intel with vmx and kvm_intel uses KVM', () => {
  assert.deepEqual(detectAccel(facts(INTEL, parseLsmod(LSMOD_INTEL))), { accel: 'kvm', reason: 'kvm_intel loaded and vmx present: using KVM' });
});

test('AMD with svm and kvm_amd uses KVM', () => {
  assert.deepEqual(detectAccel(facts(AMD, parseProcModules(PROC_MODULES_AMD))), { accel: 'kvm', reason: 'kvm_amd loaded and svm present: using KVM' });
});

test('PVM (kvm_pvm, /dev/kvm usable, no vmx/svm) falls back to TCG and says why', () => {
  const d = detectAccel(facts(PVM, ['kvm', 'kvm_pvm']));
  assert.equal(d.accel, 'tcg');
  assert.equal(d.reason, 'PVM detected (kvm_pvm loaded, no vmx/svm): stock guest kernels hang under it; using TCG');
});

test('no virtualization at all uses TCG', () => {
  const d = detectAccel(facts(PVM, [], false));
  assert.equal(d.accel, 'tcg');
  assert.match(d.reason, /^no vmx\/svm in \/proc\/cpuinfo/);
});

test('vmx present but kvm_intel missing uses TCG and names the module', () => {
  const d = detectAccel(facts(INTEL, ['kvm']));
  assert.equal(d.accel, 'tcg');
  assert.match(d.reason, /vmx present but kvm_intel is not loaded \(modprobe kvm_intel\); using TCG/);
});

test('an unopenable /dev/kvm rules KVM out even with vmx and kvm_intel', () => {
  const d = detectAccel({ ...facts(INTEL, ['kvm', 'kvm_intel'], false), kvmDeviceError: 'EACCES' });
  assert.equal(d.accel, 'tcg');
  assert.match(d.reason, /\/dev\/kvm cannot be opened \(EACCES\)/);
});

test('forcing: tcg always works, kvm only where usable, else ACCEL_UNAVAILABLE with the reason', () => {
  assert.deepEqual(detectAccel(facts(INTEL, ['kvm_intel']), 'tcg'), { accel: 'tcg', reason: 'forced by --accel tcg' });
  assert.deepEqual(detectAccel(facts(INTEL, ['kvm_intel']), 'kvm'), { accel: 'kvm', reason: 'forced by --accel kvm (kvm_intel loaded and vmx present)' });
  assert.throws(() => detectAccel(facts(PVM, ['kvm_pvm']), 'kvm'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_ACCEL_UNAVAILABLE');
    assert.match(err.message, /PVM detected/);
    return true;
  });
  assert.equal(parseAccelChoice('auto'), 'auto');
  assert.throws(() => parseAccelChoice('hvf'), { code: 'VMFORK_INVALID_ARGUMENT' });
});

test('loaded modules come from /proc/modules plus /sys/module, or /sys/module alone when /proc/modules is absent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-mod-'));
  try {
    for (const m of ['kvm', 'kvm_pvm']) mkdirSync(join(dir, 'sys', m), { recursive: true });
    assert.deepEqual(await readLoadedModules(join(dir, 'no-proc-modules'), join(dir, 'sys')), ['kvm', 'kvm_pvm']);
    writeFileSync(join(dir, 'modules'), PROC_MODULES_AMD);
    assert.deepEqual(await readLoadedModules(join(dir, 'modules'), join(dir, 'sys')), ['ccp', 'kvm', 'kvm_amd', 'kvm_pvm']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('this host reads as it is: facts are consistent with the detection', async () => {
  const real = await readHostFacts();
  assert.ok(real.cpuinfo.includes('processor'));
  const d = detectAccel(real);
  const flags = cpuFlags(real.cpuinfo);
  if (!flags.has('vmx') && !flags.has('svm')) assert.equal(d.accel, 'tcg');
  if (real.modules.includes('kvm_pvm') && d.accel === 'tcg') assert.match(d.reason, /vmx|svm|PVM/);
});

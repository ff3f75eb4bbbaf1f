import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVmSpec } from '../../src/spec/vm-spec.js';

const minimal = { name: 'vm1', accel: 'tcg', memoryMiB: 256, qmpSocket: '/run/vm1/qmp.sock' };

test('defaults: q35, one vCPU, anonymous RAM, no devices, cpu model by accelerator', () => {
  const s = parseVmSpec(minimal);
  assert.equal(s.machine, 'q35');
  assert.equal(s.cpus, 1);
  assert.deepEqual(s.memory, { kind: 'anonymous' });
  assert.deepEqual([s.disks, s.nics], [[], []]);
  assert.equal(s.cpuModel, 'max');
  assert.equal(parseVmSpec({ ...minimal, accel: 'kvm' }).cpuModel, 'host');
  assert.deepEqual(parseVmSpec(s), s, 'parsing a parsed spec changes nothing');
});

test('invalid specs are rejected with every problem named', () => {
  const bad = (input: object, pattern: RegExp): void => {
    assert.throws(() => parseVmSpec({ ...minimal, ...input }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'VMFORK_INVALID_ARGUMENT');
      assert.match(err.message, pattern);
      return true;
    });
  };
  bad({ name: 'Not_A_Label' }, /name: must be an RFC 1123 label/);
  bad({ cpuModel: 'host' }, /cpuModel: cpu model "host" needs accel kvm/);
  bad({ accel: 'kvm', tbSizeMiB: 32 }, /tbSizeMiB: the translation cache size only applies to accel tcg/);
  bad({ memoryMiB: 32 }, /memoryMiB/);
  bad({ nics: [{ id: 'net0', mac: '01:00:5e:00:00:01', backend: { kind: 'user' } }] }, /unicast/);
  bad({ nics: [{ id: 'net0', mac: '52:54:00:00:00:01', backend: { kind: 'tap', ifname: 'a-very-long-interface' } }] }, /ifname/);
  bad({ disks: [{ id: 'd', path: '/a', format: 'qcow2' }, { id: 'd', path: '/b', format: 'qcow2' }] }, /disks\.1\.id: device id "d" is reserved or already used/);
  bad({ disks: [{ id: 'mem', path: '/a', format: 'qcow2' }] }, /reserved/);
  bad({ vmgenid: 'nope' }, /vmgenid: must be a GUID/);
  bad({ kernel: { kernel: '/k', cmdline: 'a\nb' } }, /kernel\.cmdline: must not contain newlines/);
  bad({ surprise: 1 }, /surprise/);
  bad({ name: 'UPPER', memoryMiB: 1 }, /name: .*; memoryMiB/);
});

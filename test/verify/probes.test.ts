import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFingerprints } from '../../src/verify/probes.js';

test('parseFingerprints reads ssh-keygen -lf - output and sorts by type', () => {
  const text = [
    '256 SHA256:r6tCI+jI4pAS6R0c7amQWL7jSo5FWD6117S5SdBqkdE 10.231.0.2 (ED25519)',
    '256 SHA256:Zm9vYmFyYmF6cXV4cXV1eHh5enp5eHp6eXh6enl4e 10.231.0.2 (ECDSA)',
    '',
  ].join('\n');
  assert.deepEqual(parseFingerprints(text), [
    { type: 'ECDSA', fingerprint: 'SHA256:Zm9vYmFyYmF6cXV4cXV1eHh5enp5eHp6eXh6enl4e', bits: 256 },
    { type: 'ED25519', fingerprint: 'SHA256:r6tCI+jI4pAS6R0c7amQWL7jSo5FWD6117S5SdBqkdE', bits: 256 },
  ]);
});

test('parseFingerprints ignores anything that is not a fingerprint line', () => {
  assert.deepEqual(parseFingerprints('(stdin) is not a public key file.\n# 10.231.0.2:22 SSH-2.0-OpenSSH_9.2p1\n'), []);
});

test('parseFingerprints matches what the real ssh-keygen prints for keyscan-format lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-fp-'));
  try {
    for (const t of ['ed25519', 'ecdsa']) execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-f', join(dir, t)]);
    // ssh-keyscan prints `HOST KEYTYPE BASE64` per key; ssh-keygen -lf - reads exactly that
    const scanned = ['ed25519', 'ecdsa']
      .map((t) => readFileSync(join(dir, `${t}.pub`), 'utf8').split(' '))
      .map(([type, b64]) => `10.231.0.9 ${type} ${b64}`)
      .join('\n');
    const out = execFileSync('ssh-keygen', ['-lf', '-'], { input: `${scanned}\n`, encoding: 'utf8' });
    const keys = parseFingerprints(out);
    assert.deepEqual(keys.map((k) => k.type), ['ECDSA', 'ED25519']);
    for (const k of keys) {
      const own = execFileSync('ssh-keygen', ['-lf', join(dir, `${k.type.toLowerCase()}.pub`)], { encoding: 'utf8' });
      assert.equal(own.split(' ')[1], k.fingerprint, `${k.type} fingerprint equals the key file's`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../../src/util/exec.js';

// main.js runs the CLI when imported, so the command is exercised as a user runs it: as a process
const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

test('vmfork doctor --json prints the report and exits by its verdict; --accel kvm fails on a host without KVM', async () => {
  const home = mkdtempSync(join(tmpdir(), 'vmfork-doctor-cli-'));
  try {
    const r = await run(process.execPath, [MAIN, '--home', home, 'doctor', '--json'], { allowFailure: true });
    const report = JSON.parse(r.stdout) as { ok: boolean; accel: string; accelReason: string; qemuVersion: string; checks: { name: string; ok: boolean; required: boolean }[] };
    assert.ok(report.accel === 'kvm' || report.accel === 'tcg');
    assert.ok(report.accelReason.length > 0);
    assert.equal(r.code, report.ok ? 0 : 1);
    assert.ok(report.checks.length >= 9);

    const human = await run(process.execPath, [MAIN, '--home', home, 'doctor'], { allowFailure: true });
    assert.match(human.stdout, /^(ok|FAIL|warn)\s+qemu-system\s+/m);
    assert.match(human.stdout, /^(ok|FAIL)\s+accel\s+(kvm|tcg): /m);

    if (report.accel === 'tcg') {
      const forced = await run(process.execPath, [MAIN, '--home', home, 'doctor', '--accel', 'kvm'], { allowFailure: true });
      assert.equal(forced.code, 1);
      assert.match(forced.stdout, /^FAIL\s+accel\s+.*--accel kvm/m);
      assert.match(forced.stdout, /accel: use --accel auto/);
    }
    const bad = await run(process.execPath, [MAIN, '--home', home, 'doctor', '--accel', 'hvf'], { allowFailure: true });
    assert.notEqual(bad.code, 0);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

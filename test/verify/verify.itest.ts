import assert from 'node:assert/strict';
import type { ForkBatchResult } from '../../src/fork/index.js';
import type { VerifyReport } from '../../src/verify/index.js';
import { forkTracked, guestShell, sharedScriptRung, useSharedRung, vmTest, type SharedRung, type VmTracker } from '../fixtures/ladder.js';

const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;

async function forkVerified(count: number, namePattern: string, template = fx.template): Promise<ForkBatchResult> {
  const batch = await forkTracked(fx.th, tracker(), { template, count, namePattern });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed, null, 2));
  return batch;
}

async function verify(args: string[]): Promise<{ code: number; report: VerifyReport; ms: number }> {
  const t0 = performance.now();
  const r = await fx.th.cli(['verify', ...args, '--json'], { allowFailure: true, timeoutMs: 120_000 });
  const ms = Math.round(performance.now() - t0);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as VerifyReport, ms };
  } catch {
    throw new Error(`verify printed no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

async function guestSh(name: string, script: string): Promise<string> {
  const r = await guestShell(fx.th.db, name, script, 30_000);
  assert.equal(r.code, 0, `${name}: ${script}: ${r.err}`);
  return r.out;
}

// the same checks on both paths: children of the agent-path template and of the script-path one (image without
// vmfork-guest) verify alike
for (const path of ['agent', 'script'] as const) {
  vmTest(`${path} path: 3 forked children verify as distinct machines that never rebooted`, tracker, async () => {
    const rung: SharedRung = path === 'agent' ? fx.rung : await sharedScriptRung();
    const batch = await forkVerified(3, `ver-${path}-{n}`, rung.template);
    assert.deepEqual(batch.children.map((c) => c.forkPath), [path, path, path]);
    const names = batch.children.map((c) => c.name);
    const { code, report, ms } = await verify(names);
    process.stderr.write(`verify of 3 children: ${report.wallMs} ms collecting, ${ms} ms for the whole CLI process\n`);
    for (const c of report.children) {
      process.stderr.write(`  ${c.name} ${c.ipv4} clock ${c.clockOffsetMs} ±${c.clockUncertaintyMs} ms, ping ${c.pingRttMs} ms, collected in ${c.collectMs} ms ${JSON.stringify(c.sourceMs)}\n`);
    }
    assert.deepEqual(report.collisions, []);
    assert.deepEqual(report.problems, []);
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    assert.deepEqual(report.skipped, []);
    assert.deepEqual(report.children.map((c) => c.name), batch.children.map((c) => c.name));
    for (const c of report.children) {
      assert.equal(c.bootId, rung.record.bootId, `${c.name}: boot_id is the template's`);
      assert.equal(c.bootIdMatchesTemplate, true);
      assert.equal(c.reboots, 0);
      assert.equal(c.reachable, true, `${c.name} answers ping`);
      assert.equal(c.hostname, c.name);
      assert.equal(c.mac, c.qemuMac, `${c.name}: the guest and QEMU agree on the MAC`);
      assert.equal(c.netns, batch.children[0]?.netns, 'QEMU lives in the network namespace of its network');
      assert.deepEqual(c.sshHostKeys.map((k) => k.type), ['ED25519']);
      assert.match(c.urandom ?? '', /^[0-9a-f]{64}$/);
      assert.ok(c.clockOffsetMs !== null && c.clockUncertaintyMs !== null);
      // judged as verify judges it: against the reading's own bar, which a loaded host widens
      assert.ok(Math.abs(c.clockOffsetMs) - c.clockUncertaintyMs <= 2000, `${c.name}: clock ${c.clockOffsetMs} ±${c.clockUncertaintyMs} ms`);
    }
    // one child at a time: the same verdict; the clock bars are measured without the siblings competing for the CPU
    const serial = await verify([...names, '--concurrency', '1']);
    assert.equal(serial.code, 0, JSON.stringify(serial.report.problems));
    process.stderr.write(`verify --concurrency 1: ${serial.report.wallMs} ms; clocks ${serial.report.children.map((c) => `${c.clockOffsetMs} ±${c.clockUncertaintyMs}`).join(', ')} ms\n`);

    // --template selects every child of the template: these three, and those of no other test (each cleans up)
    const all = await verify(['--template', rung.template]);
    assert.equal(all.code, 0);
    assert.deepEqual(all.report.children.map((c) => c.name), names);
    const human = await fx.th.cli(['verify', ...names]);
    process.stderr.write(human.stdout);
    assert.match(human.stdout, /^no collisions among 3 children$/m);
    // the facts come from the guest, yet they must match what the fork engine assigned
    for (const f of batch.children) {
      const c = report.children.find((x) => x.name === f.name);
      assert.equal(c?.ipv4, f.ip);
      assert.equal(c?.mac, f.mac.toLowerCase());
    }
    await tracker().teardown();
  });
}

vmTest('a real collision and a stale clock inside the guests are caught, and the exit code says so', tracker, async () => {
  const batch = await forkVerified(2, 'clash-{n}');
  const [a, b] = batch.children;
  assert.ok(a && b);
  // the second child takes the first one's kernel host name and loses 5 minutes: both are guest state, not records
  await guestSh(b.name, `echo ${a.name} > /proc/sys/kernel/hostname && date -s @$(( $(date +%s) - 300 )) >/dev/null`);
  const { code, report } = await verify([a.name, b.name]);
  assert.equal(code, 1);
  assert.equal(report.ok, false);
  assert.deepEqual(report.collisions, [{ field: 'hostname', value: a.name, children: [a.name, b.name] }]);
  assert.deepEqual(report.problems.map((p) => [p.child, p.kind]), [[b.name, 'clock-offset']]);
  const offset = report.children.find((c) => c.name === b.name)?.clockOffsetMs ?? 0;
  process.stderr.write(`clock set back 300 s in ${b.name}: verify reports ${offset} ms\n`);
  assert.ok(offset < -298_000 && offset > -302_000, `offset ${offset} ms is about −300 s`);

  const human = await fx.th.cli(['verify', a.name, b.name], { allowFailure: true });
  assert.equal(human.code, 1);
  assert.match(human.stdout, /^NAME +IP +MAC +MACHINE-ID +SSH-KEY +CLOCK +BOOT_ID=TEMPLATE +PING$/m);
  assert.match(human.stdout, new RegExp(`^COLLISION hostname ${a.name}: ${a.name}, ${b.name}$`, 'm'));
  assert.match(human.stdout, new RegExp(`^PROBLEM ${b.name} clock-offset: `, 'm'));
  await tracker().teardown();
});

vmTest('verify of a template that does not exist says so with its code', tracker, async () => {
  const gone = await fx.th.cli(['verify', '--template', 'no-such-template', '--json'], { allowFailure: true });
  assert.equal(gone.code, 1);
  assert.equal((JSON.parse(gone.stdout) as { error: { code: string } }).error.code, 'VMFORK_TEMPLATE_NOT_FOUND');
});

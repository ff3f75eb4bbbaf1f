import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../src/store/db.js';
import { allocateLease, releaseLease } from '../../src/network/leases.js';
import { listNamespaces } from '../../src/network/ip.js';
import { isRoot, removeNamespacesWithPrefix, uniqueNetnsPrefix } from './itest-helpers.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const prefix = uniqueNetnsPrefix();
const home = mkdtempSync(join(tmpdir(), 'vmfork-netcli-'));
// A data dir of its own for the unprivileged run, owned by nobody so only root-ness differs.
const nobodyHome = mkdtempSync(join(tmpdir(), 'vmfork-netcli-nobody-'));
chownSync(nobodyHome, 65534, 65534);

after(async () => {
  await removeNamespacesWithPrefix(prefix);
  rmSync(home, { recursive: true, force: true });
  rmSync(nobodyHome, { recursive: true, force: true });
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(prefix)), []);
});

const NOBODY = { uid: 65534, gid: 65534, home: nobodyHome };

function vmfork(args: string[], options: { uid?: number; gid?: number; home?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const { home: dataDir = home, ...ids } = options;
    const child = spawn(process.execPath, [cli, '--home', dataDir, ...args], {
      env: { ...process.env, VMFORK_NETNS_PREFIX: prefix },
      ...ids,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test('vmfork network create / list / show / rm', { skip }, async () => {
  const created = await vmfork(['network', 'create', 'clinet', '--cidr', '10.231.210.9/24', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const c = JSON.parse(created.stdout) as Record<string, unknown>;
  assert.deepEqual(
    [c.name, c.cidr, c.netns, c.gateway, c.present, c.used, c.free, c.normalizedFrom],
    ['clinet', '10.231.210.0/24', `${prefix}clinet`, '10.231.210.1', true, 0, 253, '10.231.210.9/24'],
  );

  const dup = await vmfork(['network', 'create', 'clinet', '--cidr', '10.231.211.0/24']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /^error VMFORK_NETWORK_EXISTS: /);

  const db = await openStore(join(home, 'vmfork.db'));
  try {
    await allocateLease(db, { network: 'clinet', vmName: 'vm-1' });
    const list = await vmfork(['network', 'list']);
    assert.match(list.stdout, /^NAME\s+CIDR\s+NAMESPACE\s+GATEWAY\s+USED\s+FREE\s+PRESENT\s+STATE$/m);
    assert.match(list.stdout, /^clinet\s+10\.231\.210\.0\/24\s+\S+clinet\s+10\.231\.210\.1\s+1\s+252\s+yes\s+ready$/m);

    const show = JSON.parse((await vmfork(['network', 'show', 'clinet', '--json'])).stdout) as { leases: { vmName: string; ip: string }[]; problems: string[] };
    assert.deepEqual(show.leases.map((l) => [l.vmName, l.ip]), [['vm-1', '10.231.210.2']]);
    assert.deepEqual(show.problems, []);
    assert.match((await vmfork(['network', 'show', 'clinet'])).stdout, /health:\s+ok[\s\S]*vm-1\s+10\.231\.210\.2\/24/);

    const busy = await vmfork(['network', 'rm', 'clinet', '--json']);
    assert.equal(busy.code, 1);
    assert.equal((JSON.parse(busy.stdout) as { error: { code: string } }).error.code, 'VMFORK_NETWORK_IN_USE');
    await releaseLease(db, 'clinet', 'vm-1');
  } finally {
    await db.destroy();
  }
  const rm = await vmfork(['network', 'rm', 'clinet']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /namespace \S+clinet deleted/);
  assert.ok(!(await listNamespaces()).includes(`${prefix}clinet`));
  assert.deepEqual(JSON.parse((await vmfork(['network', 'list', '--json'])).stdout), []);
  assert.match((await vmfork(['network', 'show', 'clinet'])).stderr, /VMFORK_NETWORK_NOT_FOUND/);
});

/** Whether uid 65534 can load the CLI at all: a checkout under a 0700 directory (mktemp -d) hides it from nobody. */
function cliReadableByNobody(): boolean {
  const r = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(cli)}, require('fs').constants.R_OK)`], { uid: 65534, gid: 65534 });
  return r.status === 0;
}

test('bad input is refused before anything happens', { skip }, async () => {
  const bad = await vmfork(['network', 'create', 'x', '--cidr', '300.1.1.1/24', '--json']);
  assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'VMFORK_INVALID_CIDR');
  assert.ok(!(await listNamespaces()).includes(`${prefix}x`));
});

test('non-root is refused before anything happens', { skip }, async (t) => {
  if (!cliReadableByNobody()) {
    t.skip('this checkout is not readable by uid 65534 (a parent directory is private), so the CLI cannot run as nobody');
    return;
  }
  const nobody = await vmfork(['network', 'create', 'x', '--cidr', '10.231.212.0/24'], NOBODY);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /^error VMFORK_NOT_ROOT: .*run it as root/);
  const list = await vmfork(['network', 'list', '--json'], NOBODY);
  assert.equal(list.code, 0, `listing works without root: ${list.stderr}`);
  assert.match((await vmfork(['network', 'rm', 'x'], NOBODY)).stderr, /^error VMFORK_NOT_ROOT: /);
  assert.ok(!(await listNamespaces()).includes(`${prefix}x`));
});

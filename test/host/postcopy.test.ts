import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { qemuConfinement } from '../../src/config/index.js';
import { postcopyReady } from '../../src/host/postcopy.js';
import { withTempDir } from '../helpers/temp-dir.js';

test("postcopy here: with the sysctl at 1 always; at 0 only when QEMU runs as vmfork's own user, and the reason names the sysctl", withTempDir('vmfork-uffd-', async (root) => {
  const sysctl = join(root, 'unprivileged_userfaultfd');
  await writeFile(sysctl, '1\n');
  assert.equal((await postcopyReady({ sysctl })).on, true);
  await writeFile(sysctl, '0\n');
  const at0 = await postcopyReady({ sysctl });
  if ((await qemuConfinement()).on) {
    assert.equal(at0.on, false);
    assert.match(at0.why, /vm\.unprivileged_userfaultfd = 0/);
    assert.match(at0.why, /docs\/lazy-replicas\.md/);
  } else assert.equal(at0.on, true);
  assert.equal((await postcopyReady({ sysctl: join(root, 'absent') })).on, !(await qemuConfinement()).on, 'an unreadable sysctl counts as off for a confined QEMU');
}));

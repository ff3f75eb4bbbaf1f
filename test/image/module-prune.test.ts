import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { moduleName, planPrune, pruneModules, ruleKeeps } from '../../src/image/module-prune.js';
import { withTempDir } from '../helpers/temp-dir.js';

test('rules: the longest matching rule wins, unmatched paths are kept', () => {
  const cases: [string, boolean][] = [
    ['kernel/drivers/net/virtio_net.ko', true],
    ['kernel/drivers/net/ethernet/intel/e1000/e1000.ko', false],
    ['kernel/drivers/gpu/drm/virtio/virtio-gpu.ko', false],
    ['kernel/drivers/virtio/virtio_balloon.ko', true],
    ['kernel/drivers/block/virtio_blk.ko', true],
    ['kernel/drivers/block/nbd.ko', false],
    ['kernel/sound/core/snd.ko', false],
    ['kernel/net/wireless/cfg80211.ko', false],
    ['kernel/net/bluetooth/bluetooth.ko', false],
    ['kernel/net/netfilter/nf_tables.ko', true],
    ['kernel/net/9p/9pnet_rdma.ko', false],
    ['kernel/fs/ext4/ext4.ko', true],
    ['kernel/fs/btrfs/btrfs.ko', false],
    ['kernel/fs/nls/nls_utf8.ko', true],
    ['kernel/fs/nls/nls_koi8-r.ko', false],
    ['kernel/crypto/crc32c_generic.ko', true],
    ['kernel/lib/crc16.ko', true],
    ['kernel/arch/x86/kvm/kvm.ko', false],
  ];
  for (const [path, keep] of cases) assert.equal(ruleKeeps(path), keep, path);
  // a module rule matches the module only, not a longer name sharing the prefix
  assert.equal(ruleKeeps('kernel/drivers/net/virtio_net_extra.ko'), false);
  assert.equal(ruleKeeps('kernel/drivers/block/virtio_blk.ko.xz'), true);
});

test('moduleName normalizes suffixes and dashes the way modprobe does', () => {
  assert.equal(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko'), 'virtio_rng');
  assert.equal(moduleName('kernel/fs/ext4/ext4.ko.zst'), 'ext4');
});

const DEP = `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/netfs/netfs.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/gpu/drm/drm.ko: kernel/drivers/i2c/i2c-core.ko
kernel/drivers/i2c/i2c-core.ko:
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/sound/core/snd.ko:
`;

test('planPrune keeps every dependency of a kept module, transitively, even where the rules drop it', () => {
  const plan = planPrune(DEP, undefined, ['virtio_net']);
  assert.ok(plan.keep.includes('kernel/drivers/scsi/scsi_mod.ko'), 'dependency of virtio_scsi');
  assert.ok(plan.keep.includes('kernel/drivers/scsi/scsi_common.ko'), 'dependency of a dependency');
  assert.deepEqual(plan.drop, ['kernel/drivers/gpu/drm/drm.ko', 'kernel/drivers/i2c/i2c-core.ko', 'kernel/sound/core/snd.ko']);
  assert.deepEqual(plan.missingRequired, []);
  // a rule set that drops everything still keeps what is required, with its dependencies
  const dropAll = ['drivers/', 'fs/', 'net/', 'sound/'].map((path) => ({ path, keep: false }));
  const minimal = planPrune(DEP, dropAll, ['virtio-net']);
  assert.deepEqual(minimal.keep, ['kernel/drivers/net/net_failover.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/net/core/failover.ko']);
  assert.deepEqual(planPrune(DEP, undefined, ['virtio_blk']).missingRequired, ['virtio_blk']);
});

test('pruneModules deletes dropped files and empty dirs; built-in modules satisfy required ones', withTempDir('vmfork-prune-', async (root) => {
  const dir = join(root, 'lib', 'modules', '6.1.0-test');
  for (const line of DEP.trim().split('\n')) {
    const file = join(dir, line.slice(0, line.indexOf(':')));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, Buffer.alloc(100));
  }
  writeFileSync(join(dir, 'modules.dep'), DEP);
  writeFileSync(join(dir, 'modules.builtin'), 'kernel/drivers/block/virtio_blk.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\nkernel/fs/ext4/ext4.ko\n');
  const r = await pruneModules(root, '6.1.0-test');
  assert.equal(r.dropped, 3);
  assert.equal(r.kept, 9);
  assert.equal(r.bytesBefore, 1200);
  assert.equal(r.bytesAfter, 900);
  assert.deepEqual(r.plan.missingRequired, [], 'virtio_blk etc. are built in; virtio_net is a module');
  assert.ok(!existsSync(join(dir, 'kernel', 'sound')), 'emptied directories go');
  assert.ok(!existsSync(join(dir, 'kernel', 'drivers', 'gpu')));
  assert.ok(existsSync(join(dir, 'kernel', 'drivers', 'net', 'virtio_net.ko')));
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { imageRecipe } from '../../src/image/compose-recipe.js';
import { applyGuestConfig, applyHygiene, DEFAULT_CMDLINE, lockRootPassword, SERIAL_CONSOLE_DROPIN } from '../../src/image/guest-config.js';
import { BASE_RECIPE, recipeHash } from '../../src/image/recipe.js';
import { withTempDir } from '../helpers/temp-dir.js';

/** A rootfs shaped like debootstrap leaves it, as far as hygiene and configuration touch it. */
function fakeRootfs(root: string): void {
  const files: Record<string, string> = {
    'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
    'var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n',
    'etc/ssh/ssh_host_ed25519_key': 'secret',
    'etc/ssh/ssh_host_ed25519_key.pub': 'public',
    'etc/ssh/ssh_host_rsa_key': 'secret',
    'etc/ssh/sshd_config': 'config',
    'var/lib/systemd/random-seed': 'seed',
    'etc/shadow': 'root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n',
    'etc/hostname': 'buildhost\n',
    'etc/resolv.conf': 'nameserver 10.255.255.53\n',
    'var/cache/apt/archives/bash_5.2_amd64.deb': 'deb',
    'var/cache/apt/pkgcache.bin': 'bin',
    'var/lib/apt/lists/mirror.example_debian_dists_bookworm_InRelease': 'list',
    'var/lib/apt/lists/lock': '',
    'var/log/dpkg.log': 'log',
    'usr/share/doc/bash/copyright': 'GPL',
    'usr/share/doc/bash/changelog.gz': 'changes',
    'usr/share/man/man1/bash.1.gz': 'man',
    'usr/share/locale/locale.alias': 'alias',
    'usr/share/locale/de/LC_MESSAGES/bash.mo': 'mo',
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(join(root, 'etc/systemd/system/timers.target.wants'), { recursive: true });
  symlinkSync('/lib/systemd/system/apt-daily.timer', join(root, 'etc/systemd/system/timers.target.wants/apt-daily.timer'));
}

test('hygiene: no machine identity, no host keys, no seed, root locked, caches and docs gone', withTempDir('vmfork-hygiene-', async (root) => {
  fakeRootfs(root);
  await applyHygiene(root);
  assert.equal(readFileSync(join(root, 'etc/machine-id'), 'utf8'), '', 'zero-length machine-id');
  assert.ok(lstatSync(join(root, 'var/lib/dbus/machine-id')).isSymbolicLink());
  assert.equal(readlinkSync(join(root, 'var/lib/dbus/machine-id')), '/etc/machine-id');
  assert.deepEqual(readdirSync(join(root, 'etc/ssh')), ['sshd_config']);
  assert.ok(!existsSync(join(root, 'var/lib/systemd/random-seed')));
  assert.match(readFileSync(join(root, 'etc/shadow'), 'utf8'), /^root:!\*:20000:/);
  assert.deepEqual(readdirSync(join(root, 'var/cache/apt/archives')), []);
  assert.ok(!existsSync(join(root, 'var/cache/apt/pkgcache.bin')));
  assert.deepEqual(readdirSync(join(root, 'var/lib/apt/lists')), ['lock']);
  assert.ok(!existsSync(join(root, 'var/log/dpkg.log')));
  assert.deepEqual(readdirSync(join(root, 'usr/share/doc/bash')), ['copyright'], 'Debian policy: copyright stays');
  assert.deepEqual(readdirSync(join(root, 'usr/share/man')), []);
  assert.deepEqual(readdirSync(join(root, 'usr/share/locale')), ['locale.alias']);
}));

test('lockRootPassword is idempotent and leaves other accounts alone', withTempDir('vmfork-shadow-', async (root) => {
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/shadow'), 'root:$y$hash:1::::::\nuser:$y$other:1::::::\n');
  await lockRootPassword(root);
  await lockRootPassword(root);
  assert.equal(readFileSync(join(root, 'etc/shadow'), 'utf8'), 'root:!$y$hash:1::::::\nuser:$y$other:1::::::\n');
}));

test('guest config: hostname, fstab on /dev/vda, no resolver, initramfs list, sshd key drop-in, units', withTempDir('vmfork-guestcfg-', async (root) => {
  fakeRootfs(root);
  await applyGuestConfig(root);
  const read = (p: string): string => readFileSync(join(root, p), 'utf8');
  assert.equal(read('etc/hostname'), 'vmfork-template\n');
  assert.match(read('etc/hosts'), /127\.0\.1\.1\tvmfork-template/);
  assert.match(read('etc/fstab'), /^\/dev\/vda\t\/\text4\t/);
  assert.equal(read('etc/resolv.conf'), '', "the build host's resolver must not leak into the image");
  assert.equal(read('etc/initramfs-tools/modules'), 'virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_console\next4\n');
  assert.match(read('etc/initramfs-tools/conf.d/vmfork.conf'), /^MODULES=list$/m);
  const dropIn = read('etc/systemd/system/ssh.service.d/10-vmfork-host-keys.conf');
  assert.match(dropIn, /^ExecStartPre=$/m, 'the stock sshd -t must not run before keys exist');
  assert.ok(dropIn.indexOf('ssh-keygen') < dropIn.indexOf('sshd -t'));
  assert.equal(readlinkSync(join(root, 'etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service')), '/lib/systemd/system/serial-getty@.service');
  assert.ok(!existsSync(join(root, 'etc/systemd/system/timers.target.wants/apt-daily.timer')));
  assert.ok(!existsSync(join(root, 'etc/network/interfaces')), 'no network configuration: the template gets no IP');
  assert.match(DEFAULT_CMDLINE, /root=\/dev\/vda .*console=ttyS0 .*net\.ifnames=0/);
}));

test('the serial console runs a root shell without a login session; --no-serial-autologin is the recipe without it, hash for hash', withTempDir('vmfork-console-', async (root) => {
  fakeRootfs(root);
  await applyGuestConfig(root);
  const dropIn = readFileSync(join(root, 'etc/systemd/system/serial-getty@ttyS0.service.d/10-vmfork-console.conf'), 'utf8');
  assert.match(dropIn, /^ExecStart=$/m, "the stock agetty's login prompt is replaced");
  assert.match(dropIn, /^ExecStart=-\/sbin\/agetty --skip-login .*--login-program \/bin\/bash --login-options=-l .* - \$TERM$/m);
  assert.doesNotMatch(dropIn, /autologin|login -f/, 'no logind session: it would hold claims released on logoff');
  const without = await imageRecipe({ guestAgent: false, serialAutologin: false });
  assert.equal(without.guestFiles[SERIAL_CONSOLE_DROPIN], undefined);
  assert.ok(BASE_RECIPE.guestFiles[SERIAL_CONSOLE_DROPIN], 'on by default');
  const { [SERIAL_CONSOLE_DROPIN]: _dropIn, ...others } = BASE_RECIPE.guestFiles;
  assert.equal(recipeHash(without), recipeHash({ ...BASE_RECIPE, guestFiles: others }));
}));

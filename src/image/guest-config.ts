import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { INITRAMFS_MODULES } from './module-prune.js';

export const TEMPLATE_HOSTNAME = 'vmfork-template';

/**
 * Kernel command line for booting a built image with -kernel/-initrd (net.ifnames=0 keeps the NIC named eth0). The
 * rest keeps an idle child's vCPU asleep under TCG, where every guest wakeup costs host CPU (docs/idle-cpu.md):
 * tsc=reliable ends the clocksource watchdog's 2 wakeups a second (TCG's TSC cannot drift from itself), nowatchdog
 * the lockup detector's hrtimer (and its false alarms on a loaded host), psi=0 the pressure averages' work every 2 s.
 */
export const DEFAULT_CMDLINE = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet tsc=reliable nowatchdog psi=0';

/** The serial getty's drop-in that gives the console a root shell; `image build --no-serial-autologin` leaves it out. */
export const SERIAL_CONSOLE_DROPIN = '/etc/systemd/system/serial-getty@ttyS0.service.d/10-vmfork-console.conf';

/**
 * Files written verbatim into the rootfs. They are part of the recipe hash, so editing one rebuilds the image.
 * There is deliberately no network configuration: minbase installs no DHCP client and systemd-networkd stays
 * disabled, so the template never gets an address; the fork engine gives each child a static one.
 */
export const GUEST_FILES: Readonly<Record<string, string>> = {
  '/etc/hostname': `${TEMPLATE_HOSTNAME}\n`,
  '/etc/hosts': `127.0.0.1\tlocalhost\n127.0.1.1\t${TEMPLATE_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`,
  // fsck pass 0: the kernel mounts root rw from the command line, so systemd-fsck-root would only skip anyway
  '/etc/fstab': '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n',
  // debootstrap copied the HOST's resolver here; DNS is per pool and set by the engine
  '/etc/resolv.conf': '',
  '/etc/initramfs-tools/modules': `${INITRAMFS_MODULES.join('\n')}\n`,
  // MODULES=list: a 6 MiB initrd with only the virtio path to root instead of 35 MiB (MODULES=most)
  '/etc/initramfs-tools/conf.d/vmfork.conf': 'MODULES=list\nCOMPRESS=gzip\n',
  // The template ships without host keys (every clone would share them), and `sshd -t` fails without any, so the
  // stock ExecStartPre list is replaced: make a missing ed25519 key first, then test the config. Only ed25519:
  // with `ssh-keygen -A` (RSA too) ssh.service took 9.9 s to start under TCG. A forked child gets fresh keys from
  // the engine; a cold-booted VM gets them here.
  '/etc/systemd/system/ssh.service.d/10-vmfork-host-keys.conf':
    "[Service]\nExecStartPre=\nExecStartPre=-/bin/sh -c 'test -e /etc/ssh/ssh_host_ed25519_key || exec /usr/bin/ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key'\nExecStartPre=/usr/sbin/sshd -t\n",
  // Idle children (docs/idle-cpu.md). qemu-ga, while no host is connected to its virtio port, wakes every 100 ms to
  // retry the read (its main.c): 1.3 % of a core per idle child, two thirds of its idle cost. The slack lets the
  // kernel fold that sleep into other wakeups, or end it up to 0.5 s late; qemu-ga's answers are not slowed once a
  // host is connected (it then blocks in poll), only its first one may be by up to the slack.
  '/etc/systemd/system/qemu-guest-agent.service.d/10-vmfork-idle.conf': '[Service]\nTimerSlackNSec=500ms\n',
  // The web console (docs/console.md): the serial port runs a root shell instead of a login prompt, so an operator
  // can type `hostname` in a child's console. No password exists to type (root is locked), and whoever reaches the
  // console went through the API's token, which already runs commands as root (`vm exec`). Not `agetty --autologin`:
  // its `login -f` opens a logind session that never ends, which would hold every claim released on logoff; a shell
  // started by agetty opens none. `image build --no-serial-autologin` keeps the login prompt.
  [SERIAL_CONSOLE_DROPIN]:
    '[Service]\nEnvironment=HOME=/root\nExecStart=\nExecStart=-/sbin/agetty --skip-login --noissue --noclear --login-program /bin/bash --login-options=-l --keep-baud 115200,57600,38400,9600 - $TERM\n',
  // The screen (docs/console.md): a login prompt on tty1, only in a VM with a display. vmfork adds console=tty0 to
  // the kernel command line exactly when it gives a VM a VGA device, so every other VM (no display: tty1 is the
  // dummy console) starts no getty there and its boot is as before. A pool's template shows the prompt at its
  // cut, so each child's screen has it from its first frame.
  '/etc/systemd/system/getty@tty1.service.d/10-vmfork-screen.conf': '[Unit]\nConditionKernelCommandLine=console=tty0\n',
  // kcompactd wakes every 500 ms for proactive compaction; 0 leaves compaction to allocations that need it
  '/etc/sysctl.d/60-vmfork-idle.conf': 'vm.compaction_proactiveness = 0\n',
  // keep later `apt-get install`s in the guest as slim as the image
  '/etc/dpkg/dpkg.cfg.d/10-vmfork-slim':
    'path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/locale/*\npath-include=/usr/share/locale/locale.alias\n',
};

/** Units enabled by symlink (unit → target), as `systemctl enable` would, without running systemctl. */
export const ENABLED_UNITS: Readonly<Record<string, string>> = {
  'getty.target.wants/serial-getty@ttyS0.service': '/lib/systemd/system/serial-getty@.service',
};

/**
 * Units whose enablement debootstrap left behind and that a template must not have: the timers would fire in all
 * children at the same moment (and apt has no network), and
 * e2scrub_reap (LVM snapshot cleanup; there is no LVM) took 10 s of a 20 s TCG boot.
 */
export const DISABLED_UNITS = [
  'multi-user.target.wants/e2scrub_reap.service',
  'timers.target.wants/apt-daily.timer',
  'timers.target.wants/apt-daily-upgrade.timer',
  'timers.target.wants/dpkg-db-backup.timer',
  'timers.target.wants/e2scrub_all.timer',
  'timers.target.wants/fstrim.timer',
] as const;

/** Paths removed wholesale: caches, logs of the build, documentation (see dpkg excludes above). */
export const REMOVED_PATHS = [
  '/var/cache/apt/archives/*.deb',
  '/var/cache/apt/*.bin',
  '/var/lib/apt/lists/*_*',
  '/var/log/bootstrap.log',
  '/var/log/dpkg.log',
  '/var/log/alternatives.log',
  '/var/log/apt/*',
  '/usr/share/man/*',
  '/usr/share/info/*',
  '/usr/share/locale/*',
  '/usr/share/doc/*',
  '/tmp/*',
] as const;

/** Names the removals spare: licences (Debian policy) and the locale alias table glibc reads. */
const KEPT_NAMES = new Set(['copyright', 'locale.alias']);

/** Writes GUEST_FILES and the unit links. */
export async function applyGuestConfig(rootfs: string): Promise<void> {
  for (const [path, content] of Object.entries(GUEST_FILES)) {
    const target = join(rootfs, path);
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { force: true }); // resolv.conf may be a symlink into the host's layout
    await writeFile(target, content);
  }
  const unitDir = join(rootfs, 'etc', 'systemd', 'system');
  for (const [link, unit] of Object.entries(ENABLED_UNITS)) {
    await mkdir(dirname(join(unitDir, link)), { recursive: true });
    await rm(join(unitDir, link), { force: true });
    await symlink(unit, join(unitDir, link));
  }
  for (const link of DISABLED_UNITS) await rm(join(unitDir, link), { force: true });
}

/**
 * Template hygiene (docs/image.md): no machine identity, no host keys, no random seed, root locked. Runs last so
 * nothing in the build regenerates them.
 */
export async function applyHygiene(rootfs: string): Promise<void> {
  // Zero-length, not absent: systemd then treats the boot as first boot and makes a transient id, and the file
  // exists for the per-child step to write into.
  await writeFile(join(rootfs, 'etc', 'machine-id'), '');
  const dbusId = join(rootfs, 'var', 'lib', 'dbus', 'machine-id');
  await rm(dbusId, { force: true });
  await mkdir(dirname(dbusId), { recursive: true });
  await symlink('/etc/machine-id', dbusId);
  const sshDir = join(rootfs, 'etc', 'ssh');
  for (const f of await readdir(sshDir).catch(() => [] as string[])) {
    if (f.startsWith('ssh_host_')) await rm(join(sshDir, f));
  }
  await rm(join(rootfs, 'var', 'lib', 'systemd', 'random-seed'), { force: true });
  await lockRootPassword(rootfs);
  for (const pattern of REMOVED_PATHS) await removeGlob(rootfs, pattern);
}

/** `passwd -l root` without running it: `!` in front of the hash field. */
export async function lockRootPassword(rootfs: string): Promise<void> {
  const shadow = join(rootfs, 'etc', 'shadow');
  const lines = (await readFile(shadow, 'utf8')).split('\n').map((line) => {
    const f = line.split(':');
    if (f[0] !== 'root' || f[1] === undefined) return line;
    f[1] = f[1].startsWith('!') ? f[1] : `!${f[1] || '*'}`;
    return f.join(':');
  });
  await writeFile(shadow, lines.join('\n'), { mode: 0o640 });
}

/** Removes what a pattern matches; `*` (any run of characters) may appear in the last path component only. */
async function removeGlob(rootfs: string, pattern: string): Promise<void> {
  const dir = join(rootfs, dirname(pattern));
  const last = pattern.slice(pattern.lastIndexOf('/') + 1);
  const re = new RegExp(`^${last.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!re.test(name) || KEPT_NAMES.has(name)) continue;
    const full = join(dir, name);
    if (pattern === '/usr/share/doc/*' && (await lstat(full)).isDirectory()) {
      // Debian policy: the copyright file stays with the binaries
      for (const f of await readdir(full)) if (!KEPT_NAMES.has(f)) await rm(join(full, f), { recursive: true, force: true });
      continue;
    }
    await rm(full, { recursive: true, force: true });
  }
}

import { expectFact, fact, factList, failed, passed } from './facts.js';
import { shQuote } from '../util/index.js';
import type { IdentityStep, NormalizedIdentity } from './types.js';

/**
 * /etc/machine-id (+ /var/lib/dbus/machine-id when it is a file rather than Debian's symlink). A first boot with
 * an empty file leaves systemd's transient id bind-mounted over it; that mount is removed so the write lands on
 * disk. journald names its journal directory after the id it read at start, and journalctl shows only the current
 * id's directory, so journald is restarted — in the epilogue, without waiting — when the id changed. dbus-daemon
 * and PID 1 keep the old id in memory until the next boot.
 */
export const machineIdStep: IdentityStep = {
  name: 'machine-id',
  script: (id: NormalizedIdentity) =>
    [
      `mid=${shQuote(id.machineId)}`,
      // systemd's transient id is /run/machine-id bind-mounted over /etc/machine-id: same inode (test -ef is a
      // builtin; scanning /proc/self/mountinfo with `read` costs ~50 ms under TCG, one syscall per byte)
      'if [ -e /run/machine-id ] && [ /etc/machine-id -ef /run/machine-id ]; then umount /etc/machine-id; fi',
      'read_first cur /etc/machine-id',
      'put_line /etc/machine-id "$mid"',
      'if [ ! -L /var/lib/dbus/machine-id ] && [ -d /var/lib/dbus ]; then put_line /var/lib/dbus/machine-id "$mid"; fi',
      'if [ "$cur" = "$mid" ]; then fact journald unchanged; else defer journald; fact journald restart-deferred; fi',
      'read_first v /etc/machine-id; fact etc "$v"',
      'if [ -e /var/lib/dbus/machine-id ]; then read_first v /var/lib/dbus/machine-id; fact dbus "$v"; fi',
    ].join('\n'),
  // a journald restart takes ~0.35 s of the guest's one vCPU under TCG: not while later steps still run
  epilogue: () => 'if take_deferred journald; then queue_unit systemd-journald.service; fact journald restarted; fi',
  verify(facts, ctx) {
    const want = ctx.identity.machineId;
    const bad = expectFact(facts, 'etc', want, '/etc/machine-id');
    if (bad) return bad;
    const dbus = fact(facts, 'dbus');
    if (dbus !== undefined && dbus !== want) return failed(`/var/lib/dbus/machine-id is ${JSON.stringify(dbus)}, expected ${want}`);
    const journald = fact(facts, 'journald') ?? 'unknown';
    if (journald === 'restart-deferred') return failed('journald was to be restarted but its epilogue did not run');
    return passed(`journald ${journald}${dbus === undefined ? '; no /var/lib/dbus/machine-id' : ''}`);
  },
};

/** The 127.0.1.1 line Debian uses to resolve the machine's own name without DNS. */
export function hostsLine(hostname: string): string {
  const short = hostname.split('.')[0] ?? hostname;
  return short === hostname ? `127.0.1.1\t${hostname}` : `127.0.1.1\t${hostname}\t${short}`;
}

/** Kernel hostname (written to /proc: no `hostname` binary, no fork), /etc/hostname, the /etc/hosts line. */
export const hostnameStep: IdentityStep = {
  name: 'hostname',
  script: (id: NormalizedIdentity) =>
    [
      `h=${shQuote(id.hostname)}`,
      `printf '%s\\n' "$h" > /proc/sys/kernel/hostname`,
      'put_line /etc/hostname "$h"',
      `set_hosts_line /etc/hosts ${shQuote(hostsLine(id.hostname))}`,
      'read_first v /proc/sys/kernel/hostname; fact kernel "$v"',
      'read_first v /etc/hostname; fact etc "$v"',
      'while IFS= read -r l; do case $l in 127.0.1.1[[:space:]]*) fact hosts "$l" ;; esac; done < /etc/hosts',
    ].join('\n'),
  verify(facts, ctx) {
    const want = ctx.identity.hostname;
    const bad = expectFact(facts, 'kernel', want, 'the kernel hostname') ?? expectFact(facts, 'etc', want, '/etc/hostname');
    if (bad) return bad;
    const norm = (line: string): string => line.trim().split(/\s+/).join(' ');
    const lines = factList(facts, 'hosts').map(norm);
    const expected = norm(hostsLine(want));
    if (lines.length !== 1 || lines[0] !== expected) return failed(`/etc/hosts 127.0.1.1 lines are ${JSON.stringify(lines)}, expected ["${expected}"]`);
    return passed();
  },
};

/**
 * systemd-random-seed credits nothing from this file (no `user.random-seed-creditable` xattr is set) but mixes it
 * in at the next boot, so a child that reboots does not start from its template's seed. Written in place by the
 * builtin printf under umask 077 (a torn seed would only mix in fewer fresh bytes: it is never credited).
 */
export const randomSeedStep: IdentityStep = {
  name: 'random-seed',
  script: () =>
    [
      'f=/var/lib/systemd/random-seed',
      'if [ ! -d /var/lib/systemd ]; then mkdir -p /var/lib/systemd; fi',
      // run_step runs each step in a subshell of its own: this umask ends with the step (no subshell of its own, no fork)
      'umask 077',
      'printf "$VMFORK_SEED" > "$f"',
      `s=$(stat -c '%s %a %U' "$f")`,
      // an existing file keeps its mode through the write above
      `case $s in *' 600 root') ;; *) chmod 600 "$f"; chown root "$f"; s=$(stat -c '%s %a %U' "$f") ;; esac`,
      'fact stat "$s"',
    ].join('\n'),
  verify(facts, ctx) {
    const want = `${ctx.entropyBytes.seed} 600 root`;
    return expectFact(facts, 'stat', want, 'the random seed (size mode owner)') ?? passed(`${ctx.entropyBytes.seed} bytes, mode 600`);
  },
};

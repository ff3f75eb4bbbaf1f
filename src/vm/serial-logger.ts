import { spawn } from 'node:child_process';
import type { Logger } from '../util/index.js';

/**
 * Why a logger process, and not QEMU writing the file: `-serial file:` (and `-chardev file`, `logfile=`) have no
 * size limit, so `cat /dev/zero > /dev/ttyS0` as root in a guest fills the data dir. QEMU's `ringbuf` chardev is
 * capped but lives in QEMU's memory: its read is destructive and it dies with QEMU, which is exactly when a boot
 * failure needs the tail. So QEMU serves the serial port on a unix socket (`-chardev socket,server=on,wait=off`,
 * spec.serialSocket) and this per-VM logger copies it into `serial.log`, rotating it to `serial.log.1` at half the
 * cap: both files together never pass the cap, and `serial.log` always ends with the newest bytes.
 *
 * It is also the console hub (issue 15). QEMU's socket chardev takes ONE client — a second connection waits until
 * the first closes — so the logger, that one client, listens on the VM's console socket (`con.sock`) and fans the
 * port's output out to every viewer connected there (the web console), and forwards any viewer's bytes to the port.
 * A new viewer first gets the last 64 KiB the port wrote (the end of serial.log: the logger is its only writer, so
 * tail and live output join without a gap or a repeat). Nothing a viewer does can stall the log or QEMU: viewers
 * are written to without blocking, each has its own buffer, and one that falls more than 1 MiB behind is dropped.
 * Keystrokes waiting for QEMU (whose UART stops reading while its FIFO is full) are held up to 64 KiB; past that
 * the viewers are not read until QEMU takes them. At most 32 viewers; more are closed at once.
 *
 * Files in the VM's directory are opened as a confined QEMU's uid could have left them: that uid owns the
 * directory, so it can put a symlink where serial.log or con.sock should be. The log is opened with O_NOFOLLOW (a
 * link to a file of the host would otherwise be appended to as vmfork's user, root), the socket is bound under
 * umask 0177 (0600, vmfork's uid: the QEMU uid may not connect to it; a chmod by path would follow a link) after
 * whatever was at its path is unlinked; the web side checks its owner before connecting (src/vm/console-target.ts).
 *
 * The logger runs detached, like QEMU, so the log is kept whether or not a vmfork server runs; it ends by itself
 * when QEMU closes the socket (QEMU exited), or when QEMU dies before it could connect. If it is killed, QEMU drops
 * the port's output (a socket chardev with no client discards writes): the guest never blocks on its console.
 *
 * It is perl rather than node: 7.2 MiB resident of which 2.3 MiB its own (the rest is libperl, shared by every
 * VM's logger; measured as a hub with its 64 KiB tail full) instead of ~40 MiB per VM, and `perl-base` is Essential
 * on Debian (Socket, Errno and Fcntl are all in it; the loop is perl's own 4-argument select, no module).
 */
const SCRIPT = String.raw`
use strict; use warnings; use Socket; use Errno; use Fcntl;
my ($sockpath, $log, $cap, $pid, $hub) = @ARGV;
$0 = "vmfork-serial-logger $log";
$SIG{PIPE} = 'IGNORE';
my $half = int($cap / 2);
my ($TAIL, $BEHIND, $INMAX, $VIEWERS) = (65536, 1048576, 65536, 32);
my $s;
my $deadline = time + 120;
for (;;) {
  socket($s, PF_UNIX, SOCK_STREAM, 0) or exit 1;
  last if connect($s, pack_sockaddr_un($sockpath));
  close $s;
  my $alive = kill(0, $pid) || $!{EPERM};
  exit 0 if !$alive || time > $deadline;
  select(undef, undef, undef, 0.02);
}
sub nonblock { my $h = shift; fcntl($h, F_SETFL, fcntl($h, F_GETFL, 0) | O_NONBLOCK); }
sub again { $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR} }
umask 0177;
my $fh;
my $size = 0;
sub logopen { sysopen($fh, $log, O_WRONLY | O_CREAT | O_NOFOLLOW | shift, 0600) or exit 1; binmode $fh; $size = -s $fh || 0; }
sub tailof {
  my ($path, $n) = @_;
  sysopen(my $r, $path, O_RDONLY | O_NOFOLLOW) or return '';
  my $len = -s $r || 0;
  $len = $n if $len > $n;
  sysseek($r, -$len, 2) if $len;
  my $b = '';
  sysread($r, $b, $len);
  return $b;
}
logopen(O_APPEND);
unlink "$log.1" if (-s "$log.1" || 0) > $half; # a log written before the cap existed
my $ring = tailof($log, $TAIL);
$ring = tailof("$log.1", $TAIL - length $ring) . $ring if length $ring < $TAIL;
sub logwrite {
  my $buf = shift;
  while (length $buf) {
    if ($size >= $half) { close $fh; rename($log, "$log.1"); logopen(O_TRUNC); }
    my $part = substr($buf, 0, $half - $size, '');
    syswrite($fh, $part);
    $size += length $part;
  }
}
my $lsn;
if (defined $hub && length $hub) {
  unlink $hub;
  undef $lsn unless socket($lsn, PF_UNIX, SOCK_STREAM, 0) && bind($lsn, pack_sockaddr_un($hub)) && listen($lsn, 16);
  nonblock($lsn) if $lsn;
}
nonblock($s);
my %v;
my $in = '';
sub drop { my $k = shift; close $v{$k}{h}; delete $v{$k}; }
for (;;) {
  my ($r, $w) = ('', '');
  vec($r, fileno $s, 1) = 1;
  vec($w, fileno $s, 1) = 1 if length $in;
  vec($r, fileno $lsn, 1) = 1 if $lsn;
  for my $k (keys %v) {
    vec($r, $k, 1) = 1 if length $in < $INMAX;
    vec($w, $k, 1) = 1 if length $v{$k}{out};
  }
  my ($rr, $ww) = ($r, $w);
  if (select($rr, $ww, undef, undef) < 0) { next if $!{EINTR}; last; }
  if (vec($rr, fileno $s, 1)) {
    my $n = sysread($s, my $buf, 65536);
    if (!defined $n) { last unless again(); }
    elsif ($n == 0) { last; }
    else {
      logwrite($buf);
      $ring .= $buf;
      substr($ring, 0, length($ring) - $TAIL, '') if length $ring > $TAIL;
      for my $k (keys %v) { $v{$k}{out} .= $buf; drop($k) if length $v{$k}{out} > $BEHIND; }
    }
  }
  if (length $in && vec($ww, fileno $s, 1)) {
    my $n = syswrite($s, $in);
    if (defined $n) { substr($in, 0, $n, ''); } elsif (!again()) { last; }
  }
  if ($lsn && vec($rr, fileno $lsn, 1) && accept(my $h, $lsn)) {
    if (keys %v >= $VIEWERS) { close $h; }
    else { nonblock($h); $v{fileno $h} = { h => $h, out => $ring }; }
  }
  for my $k (keys %v) {
    my $c = $v{$k};
    if (vec($rr, $k, 1) && length $in < $INMAX) {
      my $n = sysread($c->{h}, my $buf, 4096);
      if (defined $n ? $n == 0 : !again()) { drop($k); next; }
      $in .= $buf if $n;
    }
    if (length $c->{out} && vec($ww, $k, 1)) {
      my $n = syswrite($c->{h}, $c->{out});
      if (defined $n) { substr($c->{out}, 0, $n, ''); } elsif (!again()) { drop($k); }
    }
  }
}
unlink $hub if $lsn;
`;

/** serial.log and serial.log.1 together, at most. Smallest 8 KiB; the default 2 MiB keeps several boots' logs. */
export const SERIAL_LOG_DEFAULT_BYTES = 2 * 1024 * 1024;
const MIN_BYTES = 8 * 1024;

/** The cap: VMFORK_SERIAL_LOG_BYTES when set (a whole number of bytes, at least 8 KiB), else the default. */
export function serialLogCap(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.VMFORK_SERIAL_LOG_BYTES;
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isSafeInteger(n) ? Math.max(MIN_BYTES, n) : SERIAL_LOG_DEFAULT_BYTES;
}

export interface SerialLoggerOptions {
  /** QEMU's serial socket (spec.serialSocket). */
  socket: string;
  /** The log file (spec.serialLog); the previous half is `<log>.1`. */
  log: string;
  /** Where the console hub listens for viewers (paths.consoleSocket); absent: a logger only. */
  console?: string;
  /** QEMU's pid: the logger gives up connecting once it is gone. */
  qemuPid: number;
  maxBytes?: number;
  logger: Logger;
}

/**
 * Starts the VM's serial logger and console hub (detached; it connects as soon as QEMU's socket listens, then
 * listens on `console`). Resolves with its pid, or undefined when it could not start: the VM then runs without a
 * serial log or console, which is logged, not fatal.
 */
export async function startSerialLogger(options: SerialLoggerOptions): Promise<number | undefined> {
  const cap = options.maxBytes ?? serialLogCap();
  const args = [options.socket, options.log, String(cap), String(options.qemuPid), options.console ?? ''];
  const child = spawn('perl', ['-e', SCRIPT, ...args], { detached: true, stdio: 'ignore' });
  const error = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  child.unref();
  if (error) {
    options.logger.warn({ err: error, log: options.log }, 'serial logger did not start (is perl installed?): this VM has no serial log');
    return undefined;
  }
  return child.pid;
}

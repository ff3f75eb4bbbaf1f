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
 * The logger runs detached, like QEMU, so the log is kept whether or not a vmfork server runs; it ends by itself
 * when QEMU closes the socket (QEMU exited), or when QEMU dies before it could connect. If it is killed, QEMU drops
 * the port's output (a socket chardev with no client discards writes): the guest never blocks on its console.
 *
 * It is perl rather than node: 6.8 MiB resident of which 1.7 MiB its own (the rest is libperl, shared by
 * every VM's logger) instead of ~40 MiB per VM, and `perl-base` is Essential on Debian
 * (Socket and Errno are both in it).
 */
const SCRIPT = String.raw`
use strict; use warnings; use Socket; use Errno;
my ($sockpath, $log, $cap, $pid) = @ARGV;
$0 = "vmfork-serial-logger $log";
$SIG{PIPE} = 'IGNORE';
my $half = int($cap / 2);
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
my $fh;
my $size = 0;
sub reopen { open($fh, '>>', $log) or exit 1; binmode $fh; $size = -s $fh || 0; }
reopen();
unlink "$log.1" if (-s "$log.1" || 0) > $half; # a log written before the cap existed
for (;;) {
  my $n = sysread($s, my $buf, 65536);
  if (!defined $n) { next if $!{EINTR}; last; }
  last if $n == 0;
  while (length $buf) {
    if ($size >= $half) { close $fh; rename($log, "$log.1"); open($fh, '>', $log) or exit 1; binmode $fh; $size = 0; }
    my $part = substr($buf, 0, $half - $size, '');
    syswrite($fh, $part);
    $size += length $part;
  }
}
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
  /** QEMU's pid: the logger gives up connecting once it is gone. */
  qemuPid: number;
  maxBytes?: number;
  logger: Logger;
}

/**
 * Starts the VM's serial logger (detached; it connects as soon as QEMU's socket listens). Resolves with its pid, or
 * undefined when it could not start: the VM then runs without a serial log, which is logged, not fatal.
 */
export async function startSerialLogger(options: SerialLoggerOptions): Promise<number | undefined> {
  const cap = options.maxBytes ?? serialLogCap();
  const child = spawn('perl', ['-e', SCRIPT, options.socket, options.log, String(cap), String(options.qemuPid)], { detached: true, stdio: 'ignore' });
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

import { fact, failed, passed } from './facts.js';
import type { IdentityStep } from './types.js';

/** How far the guest clock may end up from the host's. */
export const CLOCK_TOLERANCE_MS = 1_000;

/**
 * The clock is stepped inside the script by the offset the host measured with guest-get-time just before:
 * `date -s "now + 300.123456789 seconds"` reads the clock, adds and sets it within one process, so the step is
 * exact however long the exec took to start (an absolute time would age in transit by that much). Not
 * guest-set-time: qemu-ga follows settimeofday with `hwclock -w`, which waits for the RTC's next second boundary —
 * 0.7-1.6 s per child under TCG, more than the rest of the pipeline together — and QEMU's RTC already follows the
 * host clock, so a fork needs no RTC write. applyIdentity measures the offset again afterwards and falls back to
 * guest-set-time when it is still too large.
 */
export const clockStep: IdentityStep = {
  name: 'clock',
  script: () =>
    [
      'case $VMFORK_CLOCK_STEP in [+-][0-9]*.[0-9]*) ;; *) echo "bad clock step on stdin: $VMFORK_CLOCK_STEP" >&2; exit 1 ;; esac',
      't=$(date -s "now $VMFORK_CLOCK_STEP seconds" +%s%N)',
      'fact stepped "$VMFORK_CLOCK_STEP"',
      'fact date_ns "$t"',
    ].join('\n'),
  verify(facts, ctx) {
    const { offsetMs, correctedWithAgent, setTimeError, restampedFromMs } = ctx.clock;
    if (setTimeError !== undefined) return failed(`guest-set-time failed: ${setTimeError}`);
    if (offsetMs === undefined) return failed('the clock offset was not measured');
    if (Math.abs(offsetMs) > CLOCK_TOLERANCE_MS) return failed(`the guest clock is ${offsetMs} ms off the host's`);
    const stepped = fact(facts, 'stepped');
    const ns = fact(facts, 'date_ns');
    if (stepped === undefined || ns === undefined || !/^\d{10,}$/.test(ns)) return failed(`the guest reported no clock step (${JSON.stringify(stepped)})`);
    const guestMs = Number(BigInt(ns) / 1_000_000n);
    const { start, end } = ctx.execWindowMs;
    if (!correctedWithAgent && (guestMs < start - CLOCK_TOLERANCE_MS || guestMs > end + CLOCK_TOLERANCE_MS)) {
      return failed(`after the step the guest clock read ${new Date(guestMs).toISOString()}, outside the exec window ${new Date(start).toISOString()}..${new Date(end).toISOString()}`);
    }
    const corrected = correctedWithAgent ? ', then corrected with guest-set-time' : restampedFromMs !== undefined ? `; CONFIG sent again (the first left it ${restampedFromMs} ms off)` : '';
    return passed(`stepped by ${Math.round(Number(stepped) * 1000)} ms${corrected}; offset ${offsetMs} ms`);
  },
};

/**
 * Perl issues RNDRESEEDCRNG (ioctl 0x5207) so the CRNG uses the entropy just written now rather than at its next
 * scheduled reseed (up to a minute later), and counts the kernel's vmgenid reseed messages in /dev/kmsg (opened
 * O_NONBLOCK = 2048, so reading stops at the end instead of waiting for new messages).
 */
const PERL_RESEED = [
  'my $s = shift; sub f { print "\\@\\@step=$s $_[0]=$_[1]\\n" }',
  'open(my $u, "<", "/dev/urandom") or die "/dev/urandom: $!\\n";',
  'ioctl($u, 0x5207, 0) or die "RNDRESEEDCRNG: $!\\n";',
  'my $n = 0;',
  'if (sysopen(my $k, "/dev/kmsg", 2048)) {',
  '  while (1) { my $r = sysread($k, my $rec, 8192); if (!defined $r) { next if $! == 32; last } last if !$r;',
  '    $n++ if $rec =~ /crng reseeded due to virtual machine fork/ }',
  '}',
  'f("reseeded", 1); f("vmgenid_reseeds", $n);',
].join(' ');

/**
 * Host entropy into the CRNG, written by the builtin printf (never in any argv). The vmgenid reseed happened at
 * resume, before this script: the new guid alone makes a child's stream differ from its siblings'. The host
 * entropy makes it unpredictable to anyone who knows the template's memory and the guid (which is on QEMU's
 * command line).
 */
export const rngStep: IdentityStep = {
  name: 'rng',
  script: () =>
    [
      'printf "$VMFORK_RNG" > /dev/urandom',
      'fact pushed_bytes "$(( ${#VMFORK_RNG} / 4 ))"',
      'if command -v perl > /dev/null 2>&1; then',
      `  perl -e '${PERL_RESEED}' "$STEP"`,
      'else',
      '  fact reseeded 0',
      `  fact vmgenid_reseeds "$(dmesg 2> /dev/null | grep -c 'crng reseeded due to virtual machine fork' || :)"`,
      'fi',
    ].join('\n'),
  verify(facts, ctx) {
    const pushed = Number(fact(facts, 'pushed_bytes'));
    if (pushed !== ctx.entropyBytes.rng) return failed(`pushed ${String(fact(facts, 'pushed_bytes'))} bytes of entropy, expected ${ctx.entropyBytes.rng}`);
    const reseeded = fact(facts, 'reseeded') === '1' ? 'CRNG reseeded now (RNDRESEEDCRNG)' : 'mixed in; used at the next CRNG reseed (no perl for RNDRESEEDCRNG)';
    const forks = fact(facts, 'vmgenid_reseeds');
    const vmgenid = forks === undefined || forks === '' ? 'kernel log unavailable' : `kernel logged ${forks} vmgenid reseed(s)`;
    return passed(`${pushed} bytes of host entropy; ${reseeded}; ${vmgenid}`);
  },
};

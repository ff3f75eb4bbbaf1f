import { fact, failed, passed } from './facts.js';
import { FACT_PREFIX } from './shell.js';
import type { IdentityStep } from './types.js';

/** How far the guest clock may provably end up from the host's: past its measurement's own uncertainty. */
export const CLOCK_TOLERANCE_MS = 1_000;

/**
 * |offset| minus the half-window of its own measurement: how far off the clock is at least. A measurement taken on
 * a loaded host has a wide window (seconds when the guest's vCPU waited for a core); its midpoint alone would call
 * a correct clock wrong, or a wrong one right.
 */
export function provableOffsetMs(offsetMs: number, uncertaintyMs: number | undefined): number {
  return Math.max(0, Math.abs(offsetMs) - (uncertaintyMs ?? 0));
}

/** `+12 ±4 ms`: an offset with the half-window that bounds it. */
function formatClock(offsetMs: number, uncertaintyMs: number | undefined): string {
  return `${offsetMs} ms${uncertaintyMs === undefined ? '' : ` ±${uncertaintyMs}`}`;
}

/**
 * The clock is SET, not stepped: to the host's epoch ns stamp that arrives on stdin, taken just before the exec was
 * sent (`date -s @SECONDS.NANOSECONDS`), plus the time the shell has existed in the guest (the part of the stamp's
 * age the guest can measure: its start, reading the script and stdin; what is left is the request's transit) and
 * the time one `date` just took (under load an exec takes hundreds of ms before the setting one sets anything). A relative step computed on the host from a guest-get-time made before the
 * exec inherits that measurement's error — on a busy host a first request to a just-resumed guest waits seconds
 * before qemu-ga reads it, and its midpoint was then 2 s wrong — while an absolute stamp is only as old as the exec's
 * start's transit. applyIdentity then reads the clock back with guest-get-time and sets it once more with guest-set-time (its
 * stamp taken right before the call, applied as qemu-ga reads it) when it is provably off. guest-set-time is not the
 * first choice: qemu-ga follows settimeofday with `hwclock -w`, which waits for the RTC's next second boundary —
 * 0.7-1.6 s per child under TCG — and QEMU's RTC already follows the host clock, so a fork needs no RTC write.
 */
export const clockStep: IdentityStep = {
  name: 'clock',
  script: () =>
    [
      'case $VMFORK_CLOCK_NS in [1-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;; *) echo "bad host clock stamp on stdin: $VMFORK_CLOCK_NS" >&2; exit 1 ;; esac',
      // the old clock first, timed: the setting `date` below takes about as long as this one to reach settimeofday
      'now_cs; _c0=$NOW_CS',
      '_old=$(date +%s%N)',
      'now_cs; _exec=$(( NOW_CS - _c0 ))',
      // how long this shell has existed (its start time in /proc/$$/stat, field 22, against /proc/uptime; both
      // boot-time clock ticks of 10 ms): the stamp aged that much in the guest already, stdin wait included
      '_st=; read -r _st < /proc/$$/stat || :',
      'set -f; set -- ${_st##*) }; set +f',
      '_born=${20:-}',
      'case $_born in [0-9]*) _age=$(( NOW_CS - _born )) ;; *) _age=0 ;; esac',
      'if [ "$_age" -lt 0 ]; then _age=0; fi',
      '_t=$(( VMFORK_CLOCK_NS + (_age + _exec) * 10000000 ))',
      '_ns=000000000$(( _t % 1000000000 )); _ns=${_ns#${_ns%?????????}}',
      'now_cs; _c2=$NOW_CS',
      't=$(date -s "@$(( _t / 1000000000 )).$_ns" +%s%N)',
      'now_cs; _c3=$NOW_CS',
      // the old clock was read one `date` earlier than the new one was set: the step is the jump less the guest's
      // own time between those two instants (each `date` does its work at about the same point of its run, so
      // start-to-start and end-to-end both measure it; their mean, in boot-time ticks the setting does not move)
      '_between=$(( (_c2 - _c0 + _c3 - _c0 - _exec) * 5 ))',
      '_d=$(( t - _old - _between * 1000000 )); _sign=+',
      'if [ "$_d" -lt 0 ]; then _d=$(( -_d )); _sign=-; fi',
      'fact stamp "$VMFORK_CLOCK_NS"',
      'fact aged_ms "$(( _age * 10 ))"',
      'fact date_exec_ms "$(( _exec * 10 ))"',
      'fact between_ms "$_between"',
      // printf straight out, not through $(…): a command substitution forks
      `printf '${FACT_PREFIX}%s stepped=%s%d.%09d\\n' "$STEP" "$_sign" "$(( _d / 1000000000 ))" "$(( _d % 1000000000 ))"`,
      'fact date_ns "$t"',
    ].join('\n'),
  verify(facts, ctx) {
    const { offsetMs, uncertaintyMs, correctedWithAgent, setTimeError, restampedFromMs } = ctx.clock;
    if (setTimeError !== undefined) return failed(`guest-set-time failed: ${setTimeError}`);
    if (offsetMs === undefined) return failed('the clock offset was not measured');
    if (provableOffsetMs(offsetMs, uncertaintyMs) > CLOCK_TOLERANCE_MS) return failed(`the guest clock is ${formatClock(offsetMs, uncertaintyMs)} off the host's`);
    const stepped = fact(facts, 'stepped');
    const ns = fact(facts, 'date_ns');
    if (stepped === undefined || ns === undefined || !/^\d{10,}$/.test(ns)) return failed(`the guest reported no clock step (${JSON.stringify(stepped)})`);
    const guestMs = Number(BigInt(ns) / 1_000_000n);
    const { start, end } = ctx.execWindowMs;
    // set from a stamp taken at `start`, read back before the result reached the host at `end`: a reading outside
    // that window means the setting did not take (whatever the load, the window holds it)
    if (!correctedWithAgent && (guestMs < start - CLOCK_TOLERANCE_MS || guestMs > end + CLOCK_TOLERANCE_MS)) {
      return failed(`after the step the guest clock read ${new Date(guestMs).toISOString()}, outside the exec window ${new Date(start).toISOString()}..${new Date(end).toISOString()}`);
    }
    const corrected = correctedWithAgent ? ', then corrected with guest-set-time' : restampedFromMs !== undefined ? `; CONFIG sent again (the first left it ${restampedFromMs} ms off)` : '';
    const aged = fact(facts, 'aged_ms');
    const age = aged === undefined ? '' : ` (the stamp + ${aged} ms it aged in the guest + ${fact(facts, 'date_exec_ms') ?? '?'} ms for date to set it)`;
    return passed(`stepped by ${Math.round(Number(stepped) * 1000)} ms${age}${corrected}; offset ${formatClock(offsetMs, uncertaintyMs)}`);
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

import { isVmforkError } from '../errors.js';
import { hostNowMs, hostNowNs } from '../util/index.js';
import { provableOffsetMs } from './clock-rng-steps.js';
import type { GuestAgentClient } from '../qemu/index.js';
import type { VerifyContext } from './types.js';

/**
 * Deadline of one clock call to qemu-ga (guest-get-time, guest-set-time). Generous: under TCG on a busy host a
 * just-resumed guest can take seconds to read a request, and guest-set-time waits for `hwclock -w` (up to ~1.6 s
 * unloaded). Each call has its own deadline, so a slow identity exec cannot leave the clock calls a few ms.
 */
export const CLOCK_CALL_TIMEOUT_MS = 15_000;

/**
 * Past this provable offset after the script set the clock, it is set again with guest-set-time: precise, but
 * ~1 s under TCG because qemu-ga then runs `hwclock -w`, 1-5 s on a loaded host. What the script's setting leaves
 * is the exec request's transit: tens of ms on an idle host, 100-300 ms measured with both cores busy (the
 * identity integration test under load). The agent path resends CONFIG past the same 250 ms.
 */
export const CLOCK_CORRECT_MS = 250;

/** A probe this tight is good enough: no further probe is sent. */
const TIGHT_MS = 25;
/** At most this many guest-get-time probes per reading; the one with the shortest round trip is kept. */
const PROBES = 3;

/** Guest minus host wall clock, and the half-window that bounds it (the true offset is in offsetMs ± uncertaintyMs). */
export interface ClockReading {
  offsetMs: number;
  uncertaintyMs: number;
}

/** An offset known to lie in [loMs, hiMs], as its midpoint ± half the interval. */
export function readingBetween(loMs: number, hiMs: number): ClockReading {
  return { offsetMs: Math.round((loMs + hiMs) / 2), uncertaintyMs: Math.ceil(Math.abs(hiMs - loMs) / 2) };
}

/** The guest clock `guestMs`, read at some instant of the host window [startMs, endMs], as an offset ± half-window. */
export function offsetInWindow(guestMs: number, startMs: number, endMs: number): ClockReading {
  return readingBetween(guestMs - endMs, guestMs - startMs);
}

/**
 * Reads the guest clock back with guest-get-time: up to PROBES round trips, keeping the tightest (a loaded host
 * makes some round trips long, not all of them). The midpoint of a long round trip can be off by most of it, so the
 * reading always carries its half-window.
 */
export async function readGuestClock(agent: Pick<GuestAgentClient, 'execute'>): Promise<ClockReading> {
  let best: ClockReading | undefined;
  for (let i = 0; i < PROBES && (best === undefined || best.uncertaintyMs > TIGHT_MS); i++) {
    const start = hostNowMs();
    const guestNs = await agent.execute<number>('guest-get-time', undefined, { timeoutMs: CLOCK_CALL_TIMEOUT_MS });
    const reading = offsetInWindow(guestNs / 1e6, start, hostNowMs());
    if (best === undefined || reading.uncertaintyMs < best.uncertaintyMs) best = reading;
  }
  return best as ClockReading;
}

/**
 * The check after the script set the clock: read it back; when it is provably off by more than CLOCK_CORRECT_MS,
 * set it once more with guest-set-time — its stamp taken right before the call, applied by qemu-ga as it reads the
 * request, the closest to the guest this agent allows — and read it back again. Once, not in a loop: the clock
 * step judges what is left against its tolerance and the reading's own uncertainty.
 */
export async function checkGuestClock(agent: Pick<GuestAgentClient, 'execute' | 'setTime'>): Promise<VerifyContext['clock']> {
  const first = await readGuestClock(agent);
  const clock: VerifyContext['clock'] = { ...first };
  if (provableOffsetMs(first.offsetMs, first.uncertaintyMs) <= CLOCK_CORRECT_MS) return clock;
  try {
    await agent.setTime(hostNowNs(), { timeoutMs: CLOCK_CALL_TIMEOUT_MS });
    Object.assign(clock, await readGuestClock(agent), { correctedWithAgent: true });
  } catch (err) {
    // the agent answered with an error (hwclock missing, say): the clock step reports it
    if (!(isVmforkError(err) && err.code === 'VMFORK_AGENT_ERROR')) throw err;
    clock.setTimeError = err.message;
  }
  return clock;
}

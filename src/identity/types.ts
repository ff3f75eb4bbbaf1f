/** What makes a forked child its own machine. Validated by `validateIdentity` before any of it reaches the guest. */
export interface ChildIdentity {
  /** RFC 1123 host name: one label or dotted labels, lower-case, at most 64 characters (the kernel's limit). */
  hostname: string;
  /** Locally administered unicast MAC; the fork engine sets the same one on the QEMU NIC. */
  mac: string;
  /** Static IPv4; without it every global IPv4 address and the default route on the interface are removed. */
  ipv4?: { address: string; prefix: number; gateway: string };
  /** 32 lower-case hex digits, drawn host-side (`newMachineId()`). */
  machineId: string;
  /** The guest's NIC. @default 'eth0' */
  interface?: string;
}

/** A ChildIdentity after validation: normalized (lower-case MAC) and with every default filled in. */
export interface NormalizedIdentity {
  hostname: string;
  mac: string;
  ipv4?: { address: string; prefix: number; gateway: string };
  machineId: string;
  interface: string;
}

export interface IdentityStepResult {
  step: string;
  ok: boolean;
  detail?: string;
  /** Guest-side duration (10 ms resolution: measured from /proc/uptime without forking). */
  ms?: number;
}

/** What the guest reported after the pipeline, read from the guest itself (never echoed from the request). */
export interface GuestFacts {
  hostname: string;
  machineId: string;
  mac: string;
  ipv4?: { address: string; prefix: number; gateway?: string };
  ipv6LinkLocal?: string;
  bootId: string;
  /** Guest wall clock minus host wall clock after the pipeline (guest-get-time, or the agent's REPORT stamp). */
  clockOffsetMs: number;
  /** Half the window of that measurement: the true offset lies within clockOffsetMs ± this. */
  clockUncertaintyMs?: number;
}

export interface IdentityReport {
  steps: IdentityStepResult[];
  /** Host-side wall time of the whole apply, agent round trips included. */
  totalMs: number;
  /** One per host key sshd serves, e.g. `ED25519 SHA256:…`. */
  sshHostKeyFingerprints: string[];
  guest: GuestFacts;
}

/** Facts one step printed: key → every value printed under it, in order. */
export type StepFacts = ReadonlyMap<string, readonly string[]>;

/** Host-side facts some verifications compare against. */
export interface VerifyContext {
  identity: NormalizedIdentity;
  /** Host epoch ms just before the exec was sent and just after its result arrived. */
  execWindowMs: { start: number; end: number };
  /** Bytes of host entropy sent for the RNG and for the random seed. */
  entropyBytes: { rng: number; seed: number };
  /**
   * The host-side half of the clock step: the offset read back after the clock was set, ± the half-window of that
   * reading (`uncertaintyMs`), and whether the script's setting was provably off by too much and guest-set-time had
   * to correct it (with its error, if it failed). On the agent path, `restampedFromMs`: how far behind the first
   * CONFIG may have left it (its REPORT against the host's clock at arrival), when a second one was sent.
   */
  clock: { offsetMs?: number; uncertaintyMs?: number; correctedWithAgent?: boolean; setTimeError?: string; restampedFromMs?: number };
}

export interface StepVerdict {
  ok: boolean;
  detail?: string;
}

/**
 * One named, idempotent identity step. `script` returns the body of a shell function that runs in its own
 * subshell under `set -e`, changes one thing, then prints what the guest now reports with `fact KEY VALUE`;
 * `verify` judges those facts. Running a step twice must leave the same state and must not fail.
 */
export interface IdentityStep {
  name: string;
  script(identity: NormalizedIdentity): string;
  /**
   * Runs after every step (in step order), for background work the step asked for with `defer NAME`: service
   * restarts that would otherwise compete with the remaining steps for the guest's one vCPU. Its facts use the
   * same step name; its rc/ms/stderr are printed as epilogue_rc/epilogue_ms/epilogue_stderr.
   */
  epilogue?(identity: NormalizedIdentity): string;
  verify(facts: StepFacts, ctx: VerifyContext): StepVerdict;
}

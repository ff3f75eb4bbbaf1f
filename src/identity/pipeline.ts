import { ipv4Step, ipv6LinkLocalStep, macStep, neighboursLeasesStep } from './network-steps.js';
import { sshHostKeysStep } from './ssh-step.js';
import { clockStep, rngStep } from './clock-rng-steps.js';
import { hostnameStep, machineIdStep, randomSeedStep } from './system-steps.js';
import type { IdentityStep } from './types.js';

/**
 * The identity pipeline, in the order it runs. Why this order:
 * - clock first: everything after it (key comments, file times, the journal) then carries the right time;
 * - rng before anything that draws random numbers (ssh-keygen above all);
 * - machine-id and hostname before the ssh keys, whose marker and comment use them;
 * - mac → ipv6-link-local → ipv4: the MAC can only change while the link is down, the link-local is derived
 *   from the MAC when the link comes up, and a default route needs the link up and the address on it;
 * - neighbours and leases after the addresses, so nothing learned under the template's address survives;
 * - random-seed last: it only matters at the next boot.
 */
export const IDENTITY_STEPS: readonly IdentityStep[] = [
  clockStep,
  rngStep,
  machineIdStep,
  hostnameStep,
  macStep,
  ipv6LinkLocalStep,
  ipv4Step,
  neighboursLeasesStep,
  sshHostKeysStep,
  randomSeedStep,
];

export const IDENTITY_STEP_NAMES: readonly string[] = IDENTITY_STEPS.map((s) => s.name);

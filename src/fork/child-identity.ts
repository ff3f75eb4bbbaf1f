import type { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { applyIdentity, newMachineId, type IdentityReport } from '../identity/index.js';

export interface ChildIdentityRequest {
  hostname: string;
  mac: string;
  ipv4: { address: string; prefix: number; gateway: string };
}

export interface ChildIdentityResult {
  machineId: string;
  report: IdentityReport;
}

/** Draws the child's machine-id host-side and runs the identity pipeline (src/identity/) in the running child. */
export async function giveIdentity(agent: GuestAgentClient, req: ChildIdentityRequest): Promise<ChildIdentityResult> {
  const machineId = newMachineId();
  const report = await applyIdentity(agent, { ...req, machineId });
  return { machineId, report };
}

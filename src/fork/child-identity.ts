import { VmforkAgentClient } from '../agent/index.js';
import { VmforkError } from '../errors.js';
import { applyIdentity, applyIdentityThroughAgent, newMachineId, type IdentityReport } from '../identity/index.js';
import type { Lease } from '../network/index.js';
import { GuestAgentClient } from '../qemu/index.js';
import type { VmSpec } from '../spec/index.js';
import { forkPathOf, type ReadyTemplate } from '../template/index.js';
import type { Logger } from '../util/index.js';

/** A child's identity as applied and verified, and what remains to be awaited off the critical path. */
export interface ChildIdentity {
  machineId: string;
  report: IdentityReport;
  /** Agent path: the service kicks after the REPORT, judged like the script's unit jobs. Script path: none. */
  kicks?: () => Promise<IdentityReport>;
}

/**
 * The guest's channels of one child while it is forked: vmfork-guest's (agent path) is connected BEFORE `cont`, so
 * the guest never sees its host side close — the read the template's agent was blocked in simply returns with the
 * CONFIG. qemu-ga's is opened when something needs it: the identity script (script path) or the caller's
 * customization (both paths).
 */
export class ChildChannels {
  private qgaClient: GuestAgentClient | undefined;

  private constructor(
    private readonly spec: VmSpec,
    readonly vfg: VmforkAgentClient | undefined,
  ) {}

  /** Before `cont`: connects vmfork-guest's socket when the template was cut on the agent path. */
  static async beforeCont(t: ReadyTemplate, spec: VmSpec): Promise<ChildChannels> {
    if (forkPathOf(t.record) !== 'agent') return new ChildChannels(spec, undefined);
    if (!spec.vmforkAgentSocket) {
      throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `template ${t.row.name} was cut on the agent path but the child has no vmfork-guest port`);
    }
    return new ChildChannels(spec, await VmforkAgentClient.connect(spec.vmforkAgentSocket, { timeoutMs: 5_000 }));
  }

  /** After `cont`: the first answer of the guest (vmfork-guest's HELLO, or qemu-ga's ping). */
  async greet(t: ReadyTemplate): Promise<void> {
    if (!this.vfg) {
      await (await this.qga()).ping({ timeoutMs: 30_000 });
      return;
    }
    const hello = await this.vfg.hello({ timeoutMs: 30_000 });
    // the per-child guard: a fresh fork of THIS cut, still waiting for its configuration
    if (hello.state !== 'fork-pending' || hello.templateId !== t.record.agent?.templateId) {
      throw new VmforkError('VMFORK_AGENT_ERROR', `vmfork-guest in the child is ${hello.state} for template ${hello.templateId ?? 'none'}, not a fresh fork of ${t.record.agent?.templateId ?? t.row.name}`, {
        details: { state: hello.state, templateId: hello.templateId },
      });
    }
  }

  /** qemu-ga, connected and synchronised on first use. */
  async qga(): Promise<GuestAgentClient> {
    this.qgaClient ??= await GuestAgentClient.connect(this.spec.agentSocket ?? '', { timeoutMs: 5_000 });
    return this.qgaClient;
  }

  close(): void {
    this.vfg?.close();
    this.qgaClient?.close();
  }
}

/** Applies and verifies the child's identity on its template's path (docs/identity.md: same checks, both paths). */
export async function identifyChild(t: ReadyTemplate, channels: ChildChannels, name: string, lease: Lease, log: Logger): Promise<ChildIdentity> {
  const machineId = newMachineId();
  const identity = { hostname: name, mac: lease.mac, machineId, ipv4: { address: lease.ip, prefix: lease.prefix, gateway: lease.gateway } };
  const fork = t.record.agent;
  if (channels.vfg && fork) {
    const applied = await applyIdentityThroughAgent(channels.vfg, identity, { templateId: fork.templateId, nonce: Buffer.from(fork.nonce, 'hex') }, { log });
    return { machineId, report: applied.report, kicks: () => applied.kicks() };
  }
  return { machineId, report: await applyIdentity(await channels.qga(), identity) };
}

import { randomBytes } from 'node:crypto';
import { VmforkAgentClient } from '../agent/index.js';
import { VmforkError } from '../errors.js';

/**
 * What a template cut at vmfork-guest's request records, and every child's CONFIG repeats: the template id the
 * host named in PREPARE and the nonce the agent drew with FORK_ME. The nonce is in the template's memory (and so in
 * every child's): it names this cut, it is no secret and authenticates nobody (docs/guest-agent.md, "Security").
 */
export interface AgentForkRecord {
  templateId: string;
  /** 16 bytes, hex. */
  nonce: string;
  protocol: number;
  agentVersion: string;
}

/** A fresh id per cut: a CONFIG made for an earlier cut of a template of the same name is refused by the agent. */
export function newTemplateId(name: string): string {
  return `${name}@${randomBytes(6).toString('hex')}`;
}

export interface AgentPrepared {
  /** Still connected: the parent's port must show a host connected at the cut, as every child's will at `cont`. */
  client: VmforkAgentClient;
  fork: AgentForkRecord;
  prepareMs: number;
}

/**
 * The guest-initiated half of a template's creation: HELLO (the agent must be idle: a guest that was already forked
 * is no parent — unless `fromChild`: a configured child is, see from-vm.ts), PREPARE (what the prepare script does on the script path, in the agent), then the agent's FORK_ME —
 * from then on the guest waits for its configuration in the very read every child will resume in, and the caller
 * cuts at once. The connection stays open for the cut; the caller closes it afterwards.
 */
export async function prepareThroughAgent(socketPath: string, templateId: string, options: { timeoutMs: number; signal?: AbortSignal; fromChild?: boolean }): Promise<AgentPrepared> {
  const client = await VmforkAgentClient.waitReady(socketPath, { timeoutMs: options.timeoutMs, signal: options.signal });
  try {
    const hello = client.lastHello;
    // a running child made into a template (--from-vm) was configured by its own fork: PREPARE asks it anew
    const ready = hello?.state === 'idle' || (options.fromChild === true && hello?.state === 'configured');
    if (!ready) {
      throw new VmforkError('VMFORK_AGENT_ERROR', `vmfork-guest in the parent is ${hello?.state ?? 'silent'}${hello?.templateId ? ` (template ${hello.templateId})` : ''}, not idle: this guest was forked before`);
    }
    const t0 = performance.now();
    const { prepared, forkMe } = await client.prepare({ templateId }, { timeoutMs: 120_000 });
    const failed = prepared.steps.filter((s) => !s.ok);
    if (failed.length || !forkMe) {
      const why = failed.map((s) => `${s.step}: ${s.detail ?? 'failed'}`).join('; ') || 'no FORK_ME after PREPARED';
      throw new VmforkError('VMFORK_AGENT_ERROR', `vmfork-guest could not prepare the template guest: ${why}`, { details: { steps: prepared.steps } });
    }
    if (forkMe.templateId !== templateId) {
      throw new VmforkError('VMFORK_AGENT_PROTOCOL', `vmfork-guest asked to be forked as template ${forkMe.templateId}, not ${templateId}`);
    }
    return {
      client,
      fork: { templateId, nonce: forkMe.nonce.toString('hex'), protocol: hello.protocol, agentVersion: hello.agentVersion },
      prepareMs: performance.now() - t0,
    };
  } catch (err) {
    client.close();
    throw err;
  }
}

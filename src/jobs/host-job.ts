import { z } from 'zod';
import { ERROR_CODES, VmforkError, type ErrorCode } from '../errors.js';
import { ACCEL_CHOICES } from '../host/index.js';

const name = z.string().min(1).max(63);
/** A replica's id: 12 hex digits of its key's hash (src/replica/). */
const replicaId = z.string().regex(/^[0-9a-f]{12}$/);

/**
 * The steps a host's agent runs for the rest of the fleet, as they travel in its queue. Each carries what the step
 * needs and nothing secret (jobs sit in the database in clear). Checked again by the agent: a job from a newer
 * vmfork with an op this agent does not know is answered with VMFORK_HOST_PROTOCOL, not run half-understood.
 */
export const HOST_JOB = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('vm-boot'),
    image: name,
    name,
    memory: z.string().max(16).optional(),
    cpus: z.number().int().min(1).max(64).optional(),
    accel: z.enum(ACCEL_CHOICES as [string, ...string[]]).optional(),
    screen: z.boolean().optional(),
  }),
  z.object({ op: z.literal('vm-stop'), name, timeoutMs: z.number().int().min(1000).max(3_600_000).optional() }),
  z.object({ op: z.literal('vm-start'), name }),
  z.object({ op: z.literal('vm-destroy'), name }),
  // a template made on this host from an image (its network's instance here joined to the fleet's)
  z.object({
    op: z.literal('template-create'),
    name,
    image: name,
    memory: z.string().max(16).optional(),
    cpus: z.number().int().min(1).max(64).optional(),
    network: name.optional(),
    accel: z.enum(ACCEL_CHOICES as [string, ...string[]]).optional(),
    screen: z.boolean().optional(),
  }),
  z.object({ op: z.literal('template-rm'), name }),
  // children of a template on this host, under names the sender chose (a re-run finds those already forked)
  z.object({ op: z.literal('fork'), template: name, names: z.array(name).min(1).max(1000), network: name.optional(), awaitKicks: z.boolean().optional() }),
  // a command in a VM on this host through its guest agent (its argv sits in the job in clear, as in `ps`)
  z.object({ op: z.literal('vm-exec'), name, command: z.array(z.string().max(4096)).min(1).max(256), timeoutMs: z.number().int().min(1000).max(3_600_000) }),
  // `vmfork verify` of children on this host: their facts read here (guest agent, QMP, ping and ssh-keyscan)
  z.object({ op: z.literal('verify-collect'), names: z.array(name).min(1).max(1000) }),
  // a placed pool's part on this host: its replica here (received before), its template, these children forked
  // (lazyFrom: the first child forked lazily from that host's template, then the replica copied from it here)
  z.object({
    op: z.literal('pool-host-converge'),
    pool: name,
    names: z.array(name).min(1).max(1000),
    lazyFrom: z.object({ host: name, replica: replicaId }).optional(),
  }),
  // a placed pool's child on this host refreshed (its claim released): forked again from this host's template
  z.object({ op: z.literal('pool-child-refresh'), pool: name, name }),
  // the pool's template here served to one lazy child on another host: memory by postcopy, disks over NBD
  z.object({ op: z.literal('template-serve'), pool: name, replica: replicaId, serveId: z.string().uuid() }),
  z.object({ op: z.literal('template-unserve'), serveId: z.string().uuid() }),
  // phase 1 and the replica on this host, for a pool spec (checked again by the agent, as the pool room parses it)
  z.object({ op: z.literal('replica-make'), spec: z.record(z.string(), z.unknown()) }),
  // this host's copy of another host's replica, pulled from it
  z.object({ op: z.literal('replica-receive'), replica: replicaId, datastore: name }),
  // a replica's disks served read-only to the host that pulls them, under a key both derive from the export's id
  z.object({ op: z.literal('replica-export'), replica: replicaId, exportId: z.string().uuid() }),
  z.object({ op: z.literal('replica-unexport'), exportId: z.string().uuid() }),
  // this host's replica removed with its templates and files (refused while a pool uses it)
  z.object({ op: z.literal('replica-rm'), replica: replicaId }),
]);

export type HostJob = z.infer<typeof HOST_JOB>;
export type HostJobOp = HostJob['op'];

/**
 * What an agent completes a job with: the step's result, or the VmforkError it ended with (bad input, a VM in the
 * wrong state: what running it again would not change). Errors a retry may cure are not answers: the job fails
 * and pg-boss runs it again.
 */
export type JobAnswer = { ok: true; result: Record<string, unknown> } | { ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

export function parseHostJob(data: unknown): HostJob {
  const parsed = HOST_JOB.safeParse(data);
  if (!parsed.success) {
    const op = typeof data === 'object' && data !== null && 'op' in data ? String((data as { op: unknown }).op) : '?';
    throw new VmforkError('VMFORK_HOST_PROTOCOL', `this host agent cannot run a job "${op}": ${parsed.error.issues[0]?.message ?? 'malformed'} (a vmfork of another version sent it)`, {
      details: { op },
    });
  }
  return parsed.data;
}

/** The error an answer carries, as the sender rethrows it (same code and message as on the agent). */
export function answerError(host: string, answer: Extract<JobAnswer, { ok: false }>): VmforkError {
  const code: ErrorCode = (ERROR_CODES as string[]).includes(answer.error.code) ? (answer.error.code as ErrorCode) : 'VMFORK_HOST_JOB';
  return new VmforkError(code, answer.error.message, { details: { ...(answer.error.details ?? {}), host } });
}

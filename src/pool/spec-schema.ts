import { z } from 'zod';
import { parseSize } from '../util/index.js';
import { argValueSchema, MAX_CPUS, MAX_DISK_BYTES, MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_SECONDS, MAX_MEMORY_BYTES, MAX_POOL_SIZE, MAX_SIZE_TEXT, MAX_SSH_KEY_CHARS, sizeText, typeError, wholeNumber } from './spec-limits.js';

export { MAX_POOL_SIZE } from './spec-limits.js';

/**
 * The pool spec as users write it (YAML or JSON; docs/api.md, issue 7). Field names are a contract. Every object is
 * strict (an unknown field is an error at its own path) and nothing is defaulted here: defaults are applied in one
 * place (`applyPoolDefaults`), and checks that span fields run after it (`poolSpecProblems`). The API validates
 * request bodies and generates OpenAPI from these same schemas.
 */

/** Hook scripts ship inside the image, root-owned, in this directory (like Horizon's post-synchronization scripts). */
export const HOOK_DIR = '/usr/local/lib/vmfork/';
export const MIN_DISK_BYTES = 16 * 1024 * 1024;
/** How a pool's children are made: all forked at once, or `min` forked and the rest pre-registered. */
/** What gives a claimed child back besides its user's release (docs/lifecycle.md). */
export const RELEASE_TRIGGERS = ['ttl', 'logoff', 'poweroff'] as const;
export type ReleaseTrigger = (typeof RELEASE_TRIGGERS)[number];

export const PROVISIONING_MODES = ['up-front', 'on-demand'] as const;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_MESSAGE = 'must be an RFC 1123 label: lower-case letters, digits and "-", 1-63 characters, no leading or trailing "-"';
// no "..", no spaces or shell characters: the path reaches the guest agent as argv[0] and shows up in logs
const HOOK_PATH = /^\/usr\/local\/lib\/vmfork\/(?:(?!\.\.?\/)[A-Za-z0-9._-]+\/)*(?!\.\.?$)[A-Za-z0-9._-]+$/;
const ARG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const SSH_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;

export const labelSchema = z.string({ error: typeError(`must be a string: ${LABEL_MESSAGE}`) }).regex(LABEL, { error: LABEL_MESSAGE });

function sizeProblem(value: string, minBytes: number, maxBytes: number): string | undefined {
  let bytes: number;
  try {
    bytes = parseSize(value);
  } catch {
    return `"${value}" is not a size like 256M or 2G (binary units)`;
  }
  if (bytes < minBytes) return `at least ${sizeText(minBytes)}`;
  if (bytes > maxBytes) return `at most ${sizeText(maxBytes)}`;
  return undefined;
}

/** A size string (`256M`, `2G`; a bare number is MiB), from `minBytes` to `maxBytes`. */
export function sizeSchema(minBytes: number, maxBytes: number = MAX_DISK_BYTES): z.ZodString {
  return z
    .string({ error: typeError('must be a size string like 256M or 2G') })
    .max(MAX_SIZE_TEXT, { error: `at most ${MAX_SIZE_TEXT} characters` })
    .check((ctx) => {
      const problem = sizeProblem(ctx.value, minBytes, maxBytes);
      if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
    })
    .describe(`a size: a number with a binary unit (K, M, G, T), e.g. 256M; from ${sizeText(minBytes)} to ${sizeText(maxBytes)}`);
}

const timeoutSeconds = wholeNumber(1, MAX_HOOK_TIMEOUT_SECONDS, 'seconds');
const hookPath = z
  .string({ error: typeError('must be a string path') })
  .regex(HOOK_PATH, { error: `must be an absolute path under ${HOOK_DIR} (hook scripts live in the image there), without "..", spaces or shell characters` });

export const CommonHookSchema = z.strictObject({
  path: hookPath,
  /** @default 300 */
  timeoutSeconds: timeoutSeconds.optional(),
});

export const PerChildHookSchema = z.strictObject({
  path: hookPath,
  args: z
    .record(z.string().regex(ARG_KEY, { error: 'argument names are letters, digits and "_", not starting with a digit' }), argValueSchema)
    .refine((args) => Object.keys(args).length <= MAX_HOOK_ARGS, { error: `at most ${MAX_HOOK_ARGS} arguments` })
    .optional(),
  /** @default 60 */
  timeoutSeconds: timeoutSeconds.optional(),
});

/** spread: children evenly over the hosts (most room first); pack: each host filled before the next. */
export const PLACEMENT_STRATEGIES = ['spread', 'pack'] as const;

export const PoolSpecInputSchema = z
  .strictObject({
    name: labelSchema,
    image: labelSchema,
    provisioning: z.enum(PROVISIONING_MODES, { error: typeError('must be "up-front" or "on-demand"') }).optional(),
    persistent: z.boolean({ error: typeError('must be true or false') }).optional(),
    size: z.strictObject({
      max: wholeNumber(1, MAX_POOL_SIZE),
      min: wholeNumber(0, MAX_POOL_SIZE).optional(),
      spares: wholeNumber(0, MAX_POOL_SIZE).optional(),
      warm: wholeNumber(0, MAX_POOL_SIZE).optional(),
    }),
    naming: z
      .strictObject({
        pattern: z.string({ error: typeError('must be a string like "desk-{n:3}"') }).min(1, { error: 'at least 1 character' }).max(80, { error: 'at most 80 characters' }).optional(),
        names: z.array(labelSchema).min(1, { error: 'at least 1 name' }).max(MAX_POOL_SIZE, { error: `at most ${MAX_POOL_SIZE} names` }).optional(),
      })
      .optional(),
    network: labelSchema.optional(),
    disks: z.strictObject({
      userData: sizeSchema(MIN_DISK_BYTES).optional(),
      disposable: sizeSchema(MIN_DISK_BYTES),
      swap: sizeSchema(1024 * 1024).optional(),
    }),
    customize: z
      .strictObject({
        common: z.array(CommonHookSchema).max(100, { error: 'at most 100 hooks' }).optional(),
        perChild: z.array(PerChildHookSchema).max(100, { error: 'at most 100 hooks' }).optional(),
        machinePassword: z.boolean({ error: typeError('must be true or false') }).optional(),
      })
      .optional(),
    stopOnError: z.boolean({ error: typeError('must be true or false') }).optional(),
    release: z
      .strictObject({
        on: z.array(z.enum(RELEASE_TRIGGERS, { error: `must be one of ${RELEASE_TRIGGERS.join(', ')}` })).max(RELEASE_TRIGGERS.length).optional(),
        graceSeconds: wholeNumber(0, 86_400, 'seconds').optional(),
      })
      .optional()
      .describe('what gives a claimed child back besides its user: its TTL, the end of its last login session (logoff), the guest powering itself off; after graceSeconds (logoff)'),
    datastore: labelSchema.optional(),
    access: z
      .strictObject({
        sshAuthorizedKeys: z
          .array(
            z
              .string()
              .max(MAX_SSH_KEY_CHARS, { error: `at most ${MAX_SSH_KEY_CHARS} characters` })
              .regex(SSH_KEY, { error: 'must be one OpenSSH public key line: "ssh-ed25519 AAAA… comment"' }),
          )
          .min(1, { error: 'at least 1 key' })
          .max(100, { error: 'at most 100 keys' }),
      })
      .optional(),
    memory: sizeSchema(64 * 1024 * 1024, MAX_MEMORY_BYTES).optional(),
    cpus: wholeNumber(1, MAX_CPUS).optional(),
    screen: z
      .boolean({ error: typeError('must be true or false') })
      .optional()
      .describe('a VGA screen in every child, viewed in the web console over VNC (default false; its own template: docs/console.md)'),
    placement: z
      .strictObject({
        hosts: z.array(labelSchema).min(1, { error: 'at least 1 host' }).max(1000, { error: 'at most 1000 hosts' }).optional(),
        strategy: z.enum(PLACEMENT_STRATEGIES, { error: `must be one of ${PLACEMENT_STRATEGIES.join(', ')}` }).optional(),
        lazyReplica: z
          .boolean()
          .optional()
          .describe("the first child on a host without the replica starts at once from another host's template (memory by postcopy, disks over NBD) while the copy runs (docs/lazy-replicas.md)"),
      })
      .optional()
      .describe("the fleet's hosts the children go to (default: every host with an agent), spread evenly or packed onto as few as fit (docs/placement.md)"),
  })
  .describe('A pool of desktops: the image, its size, naming, disks and customization (docs/api.md)');

export type PoolSpecInput = z.infer<typeof PoolSpecInputSchema>;

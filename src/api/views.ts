import { z } from 'zod';
import type { ImageDetail } from '../image/index.js';
import type { NetworkDetail, NetworkSummary } from '../network/index.js';
import { IMAGE_STATES, NETWORK_STATES, TEMPLATE_STATES, VM_ROLES, VM_STATES } from '../state/index.js';
import { LOCAL_HOST_ID, type ImageRow } from '../store/index.js';

/**
 * How the read-only routes show images, templates, networks and VMs (camelCase, every record with its host id).
 * Templates and VMs keep the shape their rooms already give `--json` (their schemas allow more fields than they
 * name); images and networks are mapped here.
 */
const owner = z.object({ pid: z.number().int().nullable(), op: z.string().nullable() }).nullable();

export const ImageViewSchema = z.object({
  name: z.string(),
  state: z.enum(IMAGE_STATES),
  source: z.enum(['built', 'imported']),
  hostId: z.string(),
  diskPath: z.string(),
  recipeHash: z.string().nullable(),
  virtualSize: z.number().int(),
  fileSize: z.number().int(),
  owner,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export const ImageDetailSchema = ImageViewSchema.extend({
  manifest: z.record(z.string(), z.unknown()).nullable(),
  /** Why the files no longer match the manifest ([] when they do). */
  problems: z.array(z.string()),
});

export function imageView(row: ImageRow): z.infer<typeof ImageViewSchema> {
  return {
    name: row.name,
    state: row.state,
    source: row.source,
    hostId: LOCAL_HOST_ID,
    diskPath: row.disk_path,
    recipeHash: row.recipe_hash,
    virtualSize: row.virtual_size,
    fileSize: row.file_size,
    owner: row.owner_pid === null ? null : { pid: row.owner_pid, op: row.owner_op },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function imageDetailView(d: ImageDetail): z.infer<typeof ImageDetailSchema> {
  return { ...imageView(d.image), manifest: (d.manifest as Record<string, unknown> | undefined) ?? null, problems: d.problems };
}

export const TemplateViewSchema = z.looseObject({
  name: z.string(),
  state: z.enum(TEMPLATE_STATES),
  image: z.string(),
  /** The template this one stands on (made from one of its children: `template create --from-vm`), or null. */
  parent: z.string().nullable(),
  hostId: z.string(),
  children: z.number().int(),
  createdAt: z.string(),
  lastError: z.string().nullable(),
});
export const TemplateDetailSchema = TemplateViewSchema.extend({ childNames: z.array(z.string()) });

/** `hostId`: the host its files and QEMUs are on (the view's `host`), where its children fork. */
export function templateApiView<T extends Record<string, unknown>>(view: T): T & { hostId: string } {
  return { ...view, hostId: typeof view.host === 'string' ? view.host : LOCAL_HOST_ID };
}

export const NetworkViewSchema = z.object({
  name: z.string(),
  hostId: z.string(),
  cidr: z.string(),
  netns: z.string(),
  bridge: z.string(),
  gateway: z.string(),
  state: z.enum(NETWORK_STATES),
  createdAt: z.string(),
  present: z.boolean(),
  used: z.number().int(),
  free: z.number().int(),
  total: z.number().int(),
});
export const NetworkDetailSchema = NetworkViewSchema.extend({
  leases: z.array(
    z.object({
      network: z.string(),
      vmName: z.string(),
      ip: z.string(),
      prefix: z.number().int(),
      gateway: z.string(),
      mac: z.string(),
      tap: z.string(),
      netns: z.string(),
      bridge: z.string(),
      allocatedAt: z.string(),
    }),
  ),
  /** What the namespace holds; null unless the server runs as root. */
  host: z.record(z.string(), z.unknown()).nullable(),
  problems: z.array(z.string()).nullable(),
});

export function networkView(n: NetworkSummary): z.infer<typeof NetworkViewSchema> {
  return { ...n, hostId: LOCAL_HOST_ID };
}

export function networkDetailView(n: NetworkDetail): z.infer<typeof NetworkDetailSchema> {
  return { ...n, hostId: LOCAL_HOST_ID, host: n.host as Record<string, unknown> | null };
}

export const VmViewSchema = z.looseObject({
  name: z.string(),
  state: z.enum(VM_STATES),
  /** Every role the store has: `GET /v1/vms` lists a pool's phase-1 clone and a template's warm processes too. */
  role: z.enum(VM_ROLES),
  image: z.string().nullable(),
  /** The host it runs on. */
  host: z.string(),
  /** The pool it belongs to (null: a VM of its own, a template's parent, a clone). */
  pool: z.string().nullable(),
  /** Its IPv4 address on its network (null: none leased). */
  ip: z.string().nullable(),
  createdAt: z.string(),
  lastError: z.string().nullable(),
});
export const VmDetailSchema = VmViewSchema.extend({
  spec: z.record(z.string(), z.unknown()),
  process: z.object({ pid: z.number().int(), startTime: z.number().int(), qmp: z.string(), agent: z.string().nullable(), startedAt: z.string() }).nullable(),
  files: z.record(z.string(), z.string()),
});

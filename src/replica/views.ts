import { z } from 'zod';
import { REPLICA_STATES } from '../state/index.js';

/** A replica as the API and `vmfork replica list` show it (a contract: docs/api.md). */
export const ReplicaViewSchema = z.object({
  id: z.string(),
  state: z.enum(REPLICA_STATES),
  image: z.string(),
  imageVersion: z.string(),
  /** phase1Digest(spec, imageVersion): pools agreeing on it share the replica. */
  phase1Digest: z.string(),
  hostId: z.string(),
  datastore: z.string(),
  path: z.string(),
  /** The frozen template children fork from (null until it is cut). */
  template: z.string().nullable(),
  /** Pools using it: while any does, removal and modification are refused. */
  pools: z.array(z.string()),
  /** What phase 1 did when it made the replica (null until it is ready). */
  phase1: z.object({ reboots: z.number().int().min(0), seconds: z.number(), copySeconds: z.number() }).nullable(),
  /** Its sealed disks, system disk first: a copy on another host has the same sha256s. */
  disks: z.array(z.object({ id: z.string(), path: z.string(), sha256: z.string(), size: z.number().int().min(0) })),
  /** Set on a copy: the replica (of another host) it was pulled from. */
  copiedFrom: z.object({ replica: z.string(), host: z.string() }).nullable(),
  createdAt: z.string(),
});
export type ReplicaView = z.infer<typeof ReplicaViewSchema>;

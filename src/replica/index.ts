/**
 * The replica map (the patent's replicas, one per image version + phase-1 digest + host + datastore): phase 1 on an
 * internal clone, the full copy onto a datastore, the replica's template in a pool's shape, their views.
 */
export { ensureReplica, healReplica, removeReplica, replicaDisks, type ReplicaDisk, type StepReporter } from './map.js';
export { receiveReplica, type CopyRecord, type ReplicaPull } from './copy.js';
export { listReplicaViews, removeReplicaAndTemplates } from './service.js';
export { childShape, diskLayoutOf, phase1Digest, type ReplicaSpec } from './spec.js';
export { ensureReplicaTemplate } from './template.js';
export { ReplicaViewSchema, type ReplicaView } from './views.js';

import type { Migration, MigrationProvider } from 'kysely';
import { initial } from './001-initial.js';
import { networks } from './002-networks.js';
import { templates } from './003-templates.js';
import { owners } from './004-owners.js';
import { tasks } from './005-tasks.js';
import { datastores } from './006-datastores.js';
import { pools } from './007-pools.js';
import { queues } from './008-queues.js';
import { claims } from './009-claims.js';
import { checkpoints } from './010-checkpoints.js';
import { templateParents } from './011-template-parents.js';
import { poolPush } from './012-pool-push.js';
import { poolReservations } from './013-pool-reservations.js';
import { qemuUid } from './014-qemu-uid.js';
import { hostAgents } from './015-host-agents.js';
import { ownerBoot } from './016-owner-boot.js';
import { fleetPlacement } from './017-fleet-placement.js';
import { cpuRatio } from './018-cpu-ratio.js';
import { sessions } from './019-sessions.js';
import { forkTimings } from './020-fork-timings.js';

/**
 * Migrations live in code (not discovered on disk) so the compiled package carries them. Names sort in apply
 * order; never rename or edit one that has shipped — add the next number.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '001-initial': initial,
  '002-networks': networks,
  '003-templates': templates,
  '004-owners': owners,
  '005-tasks': tasks,
  '006-datastores': datastores,
  '007-pools': pools,
  '008-queues': queues,
  '009-claims': claims,
  '010-checkpoints': checkpoints,
  '011-template-parents': templateParents,
  '012-pool-push': poolPush,
  '013-pool-reservations': poolReservations,
  '014-qemu-uid': qemuUid,
  '015-host-agents': hostAgents,
  '016-owner-boot': ownerBoot,
  '017-fleet-placement': fleetPlacement,
  '018-cpu-ratio': cpuRatio,
  '019-sessions': sessions,
  '020-fork-timings': forkTimings,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(MIGRATIONS),
};

import { setTimeout as sleep } from 'node:timers/promises';
import { currentOwner, machineBoot, ownerAlive } from '../host/index.js';
import { dialectOf, sessionLockFree, trySessionLock, type Db, type HostLock } from '../store/index.js';
import type { Logger } from '../util/index.js';

/** The advisory lock a server holds while it lives: other machines' servers read its tasks' owner off it. */
export function serverLockKey(owner: { pid: number; startTime: number; boot: string | null }): string {
  return `vmfork-owner:${owner.boot ?? ''}/${owner.pid}/${owner.startTime}`;
}

/**
 * Several servers on one PostgreSQL store may run on several machines, where a pid means nothing. Each server holds
 * a session advisory lock named after itself (machine, boot, pid, start time) for its whole life: PostgreSQL drops
 * it when the server's connection ends, `kill -9` included. Lost with the connection (a database restart), it is
 * taken again within a second. Nothing on SQLite: one server per data dir there.
 */
export async function holdServerLock(db: Db, log: Logger): Promise<{ stop(): Promise<void> } | undefined> {
  if (dialectOf(db) !== 'postgres') return undefined;
  const key = serverLockKey(await currentOwner());
  let lock: HostLock | undefined = await trySessionLock(db, key);
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await sleep(1_000, undefined, { signal: stopping.signal }).catch(() => undefined);
      if (stopping.signal.aborted || lock?.held) continue;
      lock = await trySessionLock(db, key).catch(() => undefined);
      if (lock) log.warn('server lock taken again: its connection was lost (the database restarted)');
    }
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
      await lock?.release();
    },
  };
}

/**
 * Whether a task's owner (a server) still runs. On this machine: its pid and start time (host/self.ts). On another
 * machine sharing the PostgreSQL store: whether its server lock is still held. On SQLite, another machine's owner
 * counts as alive (ownerAlive).
 */
export async function taskOwnerAlive(db: Db, owner: { pid: number | null; startTime: number | null; boot: string | null }): Promise<boolean> {
  if (owner.pid === null || owner.startTime === null) return false;
  const here = await machineBoot();
  const elsewhere = owner.boot !== null && owner.boot.split('/')[0] !== here.split('/')[0];
  if (!elsewhere || dialectOf(db) !== 'postgres') return ownerAlive(owner);
  return !(await sessionLockFree(db, serverLockKey({ pid: owner.pid, startTime: owner.startTime, boot: owner.boot })));
}

import { isVmforkError } from '../errors.js';
import type { Logger } from '../util/index.js';
import type { ProvisionService } from './provision-service.js';

/** The views an events stream sends, as [event, JSON] pairs: `pools` always, `pool` when one was asked for. */
export type Views = [string, string][];

/** The views for one stream: a missing pool is the route's 404 at connect, an `error` view once it is removed. */
export async function readViews(provision: ProvisionService, pool: string | undefined, atConnect: boolean): Promise<Views> {
  const out: Views = [['pools', JSON.stringify(await provision.listPools())]];
  if (pool === undefined) return out;
  out.push(['pool', await poolView(provision, pool, atConnect)]);
  return out;
}

async function poolView(provision: ProvisionService, pool: string, atConnect: boolean): Promise<string> {
  try {
    return JSON.stringify(await provision.getPool(pool));
  } catch (err) {
    if (atConnect || !isVmforkError(err) || err.status !== 404) throw err;
    return JSON.stringify({ error: err.toJSON() });
  }
}

interface Subscriber<S> {
  pool: string | undefined;
  session: S | undefined;
  /** The views of this tick, and whether the stream's session is still live (no session: always). */
  deliver: (views: Views, live: boolean) => void;
}

export interface ViewPollerOptions<S> {
  provision: () => ProvisionService;
  /** Whether a session still holds: checked once per tick for each session with a stream open. */
  sessionIsLive: (session: S) => Promise<boolean>;
  /** What makes two streams' sessions the same one (each request carries its own copy). */
  sessionKey: (session: S) => string;
  everyMs: number;
  log: Logger;
}

/**
 * One reader of the pool views per server, shared by all its event streams: each tick reads the pool list once, each
 * pool some stream follows once, and each open session's liveness once, however many pages are open — instead of
 * every stream reading them all each second. Runs only while a stream is open; ticks never overlap.
 */
export class ViewPoller<S> {
  private readonly subscribers = new Set<Subscriber<S>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly options: ViewPollerOptions<S>) {}

  /** Follows the views from the next tick on; the returned function stops it. */
  subscribe(pool: string | undefined, session: S | undefined, deliver: Subscriber<S>['deliver']): () => void {
    const sub: Subscriber<S> = { pool, session, deliver };
    this.subscribers.add(sub);
    this.schedule();
    return () => {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    };
  }

  private schedule(): void {
    if (this.timer || this.ticking || this.subscribers.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.options.everyMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.ticking = true;
    try {
      const subs = [...this.subscribers];
      const provision = this.options.provision();
      const pools = [...new Set(subs.flatMap((s) => (s.pool === undefined ? [] : [s.pool])))];
      const { sessionKey } = this.options;
      const sessions = [...new Map(subs.flatMap((s) => (s.session === undefined ? [] : [[sessionKey(s.session), s.session] as const]))).entries()];
      const [list, details, live] = await Promise.all([
        provision.listPools().then((l) => JSON.stringify(l)),
        Promise.all(pools.map(async (p) => [p, await poolView(provision, p, false)] as const)).then((d) => new Map(d)),
        Promise.all(sessions.map(async ([key, s]) => [key, await this.options.sessionIsLive(s)] as const)).then((l) => new Map(l)),
      ]);
      for (const s of subs) {
        if (!this.subscribers.has(s)) continue; // left while this tick read
        const detail = s.pool === undefined ? undefined : details.get(s.pool);
        const views: Views = detail === undefined ? [['pools', list]] : [['pools', list], ['pool', detail]];
        s.deliver(views, s.session === undefined || live.get(sessionKey(s.session)) !== false);
      }
    } catch (err) {
      this.options.log.warn({ err }, 'pool event streams: cannot read the views; trying again');
    } finally {
      // the next tick is timed from the end of this one: a slow store never gets a second reading stacked on it
      this.ticking = false;
      this.schedule();
    }
  }
}

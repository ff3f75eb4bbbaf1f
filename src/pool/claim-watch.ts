import { isSameProcess } from '../host/index.js';
import { currentProcess, type VmRow } from '../store/index.js';
import { reconcileVm, type VmDeps } from '../vm/index.js';
import type { ReleaseTrigger } from './spec-schema.js';

/** Watches one child's login sessions: `onSessions` gets the users of its user-class sessions at once and on each change. */
export type SessionSource = (deps: VmDeps, vm: VmRow, onSessions: (users: string[]) => void, onEnd: (err?: unknown) => void) => Promise<{ close(): void }>;

interface Watcher {
  close(): void;
  /** A session of the claim has been seen: only then does the end of the last one mean a logoff. */
  seen: boolean;
  userSeen: boolean;
  /** The last list the guest reported (null until the watch answered). */
  users: string[] | null;
  timer?: NodeJS.Timeout;
}

/** A claimed child as the claim clock looks at it: its row and its pool's release policy. */
export interface WatchedClaim {
  vm: VmRow;
  on: readonly ReleaseTrigger[];
  graceSeconds: number;
}

/**
 * The guest's side of a claim's end (issue 12 item 3), kept by the server's claim clock:
 * - `poweroff`: a claimed child whose QEMU is gone (the guest powered itself off) is reconciled and released;
 * - `logoff`: a claimed child's login sessions are watched (vmfork-guest's WATCH); once a session has been seen
 *   and the last one ends, the child is released after `graceSeconds` unless a session comes back meanwhile.
 *   Once the user the claim names has logged in, only that user's sessions count; before, any user's do.
 */
export class ClaimWatch {
  private readonly watchers = new Map<string, Watcher>();

  constructor(
    private readonly deps: VmDeps,
    private readonly sessions: SessionSource | undefined,
    private readonly release: (vm: string, reason: 'logoff' | 'poweroff') => Promise<unknown>,
  ) {}

  /** One look: poweroffs released; watchers opened for new claims and closed for ended ones. */
  async sync(claims: readonly WatchedClaim[]): Promise<void> {
    const wanted = new Set<string>();
    for (const c of claims) {
      if (c.vm.claim_state !== 'claimed') continue;
      if (c.on.includes('poweroff') && (await this.poweredOff(c.vm))) {
        this.stop(c.vm.name);
        await this.release(c.vm.name, 'poweroff').catch((err: unknown) => this.deps.log.warn({ vm: c.vm.name, err }, 'guest powered off, but the release was refused'));
        continue;
      }
      if (c.on.includes('logoff') && this.sessions && c.vm.state === 'running') {
        wanted.add(c.vm.name);
        // not awaited: a guest slow to answer must not hold up the TTLs and poweroffs of this look
        if (!this.watchers.has(c.vm.name)) void this.open(c);
      }
    }
    for (const name of [...this.watchers.keys()]) if (!wanted.has(name)) this.stop(name);
  }

  /** The users of a watched child's open sessions as last reported, or null when its sessions are not watched. */
  sessionsOf(vm: string): string[] | null {
    return this.watchers.get(vm)?.users ?? null;
  }

  stopAll(): void {
    for (const name of [...this.watchers.keys()]) this.stop(name);
  }

  private async poweredOff(vm: VmRow): Promise<boolean> {
    if (vm.state !== 'running' && vm.state !== 'paused') return vm.state === 'stopped' || vm.state === 'failed';
    const proc = await currentProcess(this.deps.db, vm.name);
    if (proc && (await isSameProcess(proc.pid, proc.start_time))) return false;
    return (await reconcileVm(this.deps, vm)).state !== vm.state;
  }

  private async open(c: WatchedClaim): Promise<void> {
    const name = c.vm.name;
    const entry: Watcher = { close: () => undefined, seen: false, userSeen: false, users: null };
    this.watchers.set(name, entry);
    const onSessions = (users: string[]): void => {
      entry.users = users;
      // once the claim's user has logged in, only their sessions count; before, any (the label may be no guest user)
      if (c.vm.claimed_by !== null && users.includes(c.vm.claimed_by)) entry.userSeen = true;
      const mine = entry.userSeen ? users.filter((u) => u === c.vm.claimed_by) : users;
      if (mine.length > 0) {
        entry.seen = true;
        if (entry.timer) clearTimeout(entry.timer);
        delete entry.timer;
        return;
      }
      if (!entry.seen || entry.timer) return;
      // the deliberate delay: a user who logs out and straight back in (a reconnect) keeps the child
      entry.timer = setTimeout(() => {
        this.stop(name);
        void this.release(name, 'logoff').catch((err: unknown) => this.deps.log.warn({ vm: name, err }, 'last session ended, but the release was refused'));
      }, c.graceSeconds * 1000);
    };
    try {
      const w = await this.sessions?.(this.deps, c.vm, onSessions, (err) => {
        // the connection ended (QEMU gone, a refresh): the next look opens it again if the claim still stands
        if (this.watchers.get(name) === entry && !entry.timer) this.watchers.delete(name);
        if (err) this.deps.log.debug({ vm: name, err }, 'session watch ended');
      });
      if (w) entry.close = () => w.close();
    } catch (err) {
      this.watchers.delete(name);
      this.deps.log.debug({ vm: name, err }, 'cannot watch sessions yet; the next look tries again');
    }
  }

  private stop(name: string): void {
    const e = this.watchers.get(name);
    if (!e) return;
    this.watchers.delete(name);
    if (e.timer) clearTimeout(e.timer);
    e.close();
  }
}

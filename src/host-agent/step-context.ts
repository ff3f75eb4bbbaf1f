import type { JobQueue } from '../jobs/index.js';
import type { NbdExport } from '../qemu/index.js';
import type { VmDeps } from '../vm/index.js';
import type { MemoryServer } from '../fork/index.js';
import type { PskListener } from './psk-link.js';

/** A counting semaphore: at most `max` holders at once, the others wait in order. */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly max: number) {}

  async take(): Promise<() => void> {
    if (this.used >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.used++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    };
  }

  get busy(): number {
    return this.used;
  }
}

/** What a host serves for one lazy child elsewhere: the memory server, its disks' exports, the link's listener. */
export interface Serving {
  server: MemoryServer;
  disks: NbdExport[];
  listener: PskListener;
  pskDir: string;
  timer: NodeJS.Timeout;
  answer: Record<string, unknown>;
}

/** What a host's steps run with: this host's data dir and name, the queue (to ask other hosts), its key and limits. */
export interface StepContext {
  deps: VmDeps & { hostId: string };
  queue: JobQueue;
  /** The address other hosts reach this one on: exports listen there. */
  listenHost: string;
  /** The fleet's key (--fleet-key-file): without it this host neither serves nor pulls replicas. */
  fleetKey: Buffer | undefined;
  /** Replica copies this host receives at once (Horizon's "max concurrent" per host: --max-copies). */
  copies: Slots;
  /** Exports this host serves, by export id, each ended by its puller or by its deadline. */
  exports: Map<string, { disks: NbdExport[]; pskDir: string; timer: NodeJS.Timeout }>;
  /** What this host serves to lazy children elsewhere, by serve id (src/host-agent/lazy-steps.ts). */
  serves: Map<string, Serving>;
}

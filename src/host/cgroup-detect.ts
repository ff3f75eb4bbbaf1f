import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The controllers a VM's cgroup uses: its memory limit, its CPU weight, its pids limit. */
export const CGROUP_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export type CgroupController = (typeof CGROUP_CONTROLLERS)[number];

/** One mounted hierarchy holding some of our controllers: v1 mounts one (or a few) per hierarchy, v2 all in one. */
export interface CgroupHierarchy {
  version: 1 | 2;
  /** Where it is mounted (its root cgroup). */
  mount: string;
  controllers: CgroupController[];
}

export interface CgroupSupport {
  /** `v1`, `v2`, `hybrid` (our controllers on both) or `none`. */
  version: 'v1' | 'v2' | 'hybrid' | 'none';
  hierarchies: CgroupHierarchy[];
  /** Controllers no mounted hierarchy offers: their limit is not applied. */
  missing: CgroupController[];
}

/** Where the host is read from: the real /proc/self/mounts unless a test passes a fake mount table. */
export interface CgroupSys {
  /** Text in /proc/self/mounts format; its mount points may lie anywhere (a temp dir in tests). */
  mounts?: string;
  env?: NodeJS.ProcessEnv;
  /** Text in /proc/PID/cgroup format for the process asked about (tests). */
  procCgroup?: string;
}

/** /proc/mounts escapes blanks, tabs, newlines and backslashes in paths as octal (`\040`). */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function isController(name: string): name is CgroupController {
  return (CGROUP_CONTROLLERS as readonly string[]).includes(name);
}

/**
 * Finds, for each controller we use, the hierarchy that offers it. A v1 mount names its controllers in its options
 * (`rw,relatime,cpu,cpuacct`); a v2 mount lists in its root's cgroup.controllers those not bound to a v1 hierarchy
 * (a "hybrid" host such as this one mounts v2 at /sys/fs/cgroup/unified with only hugetlb there). A controller
 * offered by both goes to v1: the kernel then lists it on neither side twice, but be explicit.
 */
export async function detectCgroups(sys: CgroupSys = {}): Promise<CgroupSupport> {
  const text = sys.mounts ?? (await readFile('/proc/self/mounts', 'utf8').catch(() => ''));
  const v1 = new Map<string, CgroupController[]>();
  const v2: { mount: string; controllers: CgroupController[] }[] = [];
  for (const line of text.split('\n')) {
    const [, rawPath, type, options] = line.split(' ');
    if (!rawPath || !options) continue;
    const mount = unescapeMountPath(rawPath);
    if (type === 'cgroup') {
      const ours = options.split(',').filter(isController);
      if (ours.length) v1.set(mount, ours);
    } else if (type === 'cgroup2') {
      const listed = await readFile(join(mount, 'cgroup.controllers'), 'utf8').catch(() => '');
      v2.push({ mount, controllers: listed.trim().split(/\s+/).filter(isController) });
    }
  }
  const hierarchies: CgroupHierarchy[] = [...v1].map(([mount, controllers]) => ({ version: 1, mount, controllers }));
  const onV1 = new Set(hierarchies.flatMap((h) => h.controllers));
  for (const m of v2) {
    const controllers = m.controllers.filter((c) => !onV1.has(c) && !hierarchies.some((h) => h.version === 2 && h.controllers.includes(c)));
    if (controllers.length) hierarchies.push({ version: 2, mount: m.mount, controllers });
  }
  const found = new Set(hierarchies.flatMap((h) => h.controllers));
  const versions = new Set(hierarchies.map((h) => h.version));
  const version = versions.size === 0 ? 'none' : versions.size === 2 ? 'hybrid' : versions.has(1) ? 'v1' : 'v2';
  return { version, hierarchies, missing: CGROUP_CONTROLLERS.filter((c) => !found.has(c)) };
}

import type { Lease } from '../network/index.js';
import type { LaunchedProcess } from '../qemu/index.js';
import type { VmSpec } from '../spec/index.js';
import type { VmPaths } from '../vm/index.js';

/** One child as planned: its name, address and spec are reserved in the store before anything is created. */
export interface ReservedChild {
  name: string;
  lease: Lease;
  paths: VmPaths;
  spec: VmSpec;
  /** The warm process this child took (already `forking`, owned by the fork): its QEMU waits at -incoming defer. */
  warm?: LaunchedProcess;
}

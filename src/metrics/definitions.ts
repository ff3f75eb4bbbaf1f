import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric `GET /metrics` serves (docs/metrics.md lists them with their labels), on a registry of its own per
 * app: two apps in one process (tests, a server beside a CLI) never share or double-register a series, and
 * prom-client's global registry stays untouched.
 */
export interface VmforkMetrics {
  /** What a scrape reads: this app's metrics and the process's own. */
  registry: Registry;
  pools: Gauge<'state'>;
  poolState: Gauge<'pool' | 'state'>;
  poolChildren: Gauge<'pool' | 'state'>;
  poolReadyChildren: Gauge<'pool'>;
  poolSpareChildren: Gauge<'pool'>;
  poolClaims: Gauge<'pool' | 'state'>;
  poolSize: Gauge<'pool' | 'bound'>;
  poolReservations: Gauge;
  poolReservedMax: Gauge<'pool'>;
  vms: Gauge<'state' | 'role'>;
  tasks: Gauge<'state' | 'kind'>;
  hostUp: Gauge<'host'>;
  hostMemory: Gauge<'host' | 'kind'>;
  hostVcpus: Gauge<'host' | 'kind'>;
  datastoreBytes: Gauge<'host' | 'datastore' | 'kind'>;
  qemuProcesses: Gauge<'host'>;
  qemuResident: Gauge<'vm'>;
  qemuPss: Gauge<'vm'>;
  forkReady: Histogram<'pool'>;
  claim: Histogram<'pool' | 'outcome'>;
  phase1: Histogram<'host'>;
  replicaCopy: Histogram<'host'>;
  taskDuration: Histogram<'kind' | 'state'>;
}

/** Seconds: a warm fork is well under a second, a cold phase 1 with reboots many minutes. */
const FORK_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
const CLAIM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];
const PHASE1_BUCKETS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
const COPY_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const TASK_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

let processRegistry: Registry | undefined;

/**
 * prom-client's default metrics of this process (`process_*`, `nodejs_*`: CPU, memory, file descriptors, event loop
 * lag, GC), made once per process: they describe the process, not an app, and each set starts monitors (event loop
 * delay, a GC observer) that live as long as the process does.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function defineMetrics(): VmforkMetrics {
  const own = new Registry();
  const registers = [own];
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> => new Gauge({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> => new Histogram({ name, help, labelNames, buckets, registers });
  const metrics: Omit<VmforkMetrics, 'registry'> = {
    pools: gauge('vmfork_pools', 'Pools per pool state', ['state']),
    poolState: gauge('vmfork_pool_state', "1 for a pool's current state, 0 for the others", ['pool', 'state']),
    poolChildren: gauge('vmfork_pool_children', "A pool's children per VM state", ['pool', 'state']),
    poolReadyChildren: gauge('vmfork_pool_ready_children', 'Children a claim could take now: unclaimed running spares, warm and registered children', ['pool']),
    poolSpareChildren: gauge('vmfork_pool_spare_children', 'Unclaimed running children: handed out at once by a claim', ['pool']),
    poolClaims: gauge('vmfork_pool_claims', "A pool's children per claim state (claimed, releasing)", ['pool', 'state']),
    poolSize: gauge('vmfork_pool_size', "A pool's size bounds from its spec (max, min, spares, warm)", ['pool', 'bound']),
    poolReservations: gauge('vmfork_pool_reservations', 'Resize reservations held (a resize checked and not yet carried out)', []),
    poolReservedMax: gauge('vmfork_pool_reserved_max', 'The size a pending resize reserved', ['pool']),
    vms: gauge('vmfork_vms', 'VM records per state and role', ['state', 'role']),
    tasks: gauge('vmfork_tasks', 'Task records per state and kind', ['state', 'kind']),
    hostUp: gauge('vmfork_host_up', '1 when the host is up (its agent heartbeats; the local host always), else 0', ['host']),
    hostMemory: gauge('vmfork_host_memory_bytes', "A host's memory: total, reserved by its VMs as placement counts them, free for new children", ['host', 'kind']),
    hostVcpus: gauge('vmfork_host_vcpus', "A host's vCPUs: total (CPUs x allocation ratio), reserved by its VMs, free", ['host', 'kind']),
    datastoreBytes: gauge('vmfork_datastore_bytes', "A datastore's filesystem: size and free bytes", ['host', 'datastore', 'kind']),
    qemuProcesses: gauge('vmfork_qemu_processes', 'QEMU processes recorded as running, per host', ['host']),
    qemuResident: gauge('vmfork_qemu_resident_bytes', "Resident memory (VmRSS) of a VM's QEMU on this server's host", ['vm']),
    qemuPss: gauge('vmfork_qemu_pss_bytes', "Proportional set size of a VM's QEMU on this server's host (shared template pages split between children)", ['vm']),
    forkReady: histogram('vmfork_fork_ready_seconds', 'Seconds from the start of a child\'s fork to the ready child (identity and phase 2 done), per pool (empty: outside any pool)', ['pool'], FORK_BUCKETS),
    claim: histogram('vmfork_claim_seconds', 'Seconds to answer a claim served by this process (outcome: claimed, refused, failed)', ['pool', 'outcome'], CLAIM_BUCKETS),
    phase1: histogram('vmfork_phase1_seconds', 'Seconds of phase 1 (customization with reboots) of a replica made on a host', ['host'], PHASE1_BUCKETS),
    replicaCopy: histogram('vmfork_replica_copy_seconds', 'Seconds of the full copy that made a replica on a host', ['host'], COPY_BUCKETS),
    taskDuration: histogram('vmfork_task_duration_seconds', 'Seconds from a task being queued to its end', ['kind', 'state'], TASK_BUCKETS),
  };
  // merged once every metric is on `own`: a merge takes the metrics its registries hold at that moment
  return { ...metrics, registry: Registry.merge([own, processMetrics()]) };
}

/**
 * Garbage collection: what crashes left in this data dir (processes, overlays and directories, sockets and
 * pidfiles, taps, namespaces, leases, records, replicas and templates nothing references) found by a scan, decided
 * by a plan and removed by apply (docs/gc.md).
 */
export { runGc, startGcTimer, type GcOptions, type GcTimer } from './run.js';
export { GcActionViewSchema, GcReportSchema, type GcReport } from './report.js';

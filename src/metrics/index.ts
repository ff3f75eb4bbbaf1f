/**
 * `GET /metrics` (docs/metrics.md): pools, children, VMs, tasks, hosts and QEMU memory as Prometheus reads them,
 * collected from the store at each scrape; fork, claim, phase-1, copy and task durations as histograms. Authorized
 * by the API token, the scrape token (`<home>/metrics-token`) or a console session.
 */
export { registerMetrics, type MetricsOptions } from './register.js';
export { ensureMetricsToken, metricsTokenPath } from './token.js';
export type { SessionCheck } from './scrape-auth.js';

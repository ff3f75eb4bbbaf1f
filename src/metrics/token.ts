import { join } from 'node:path';
import { ensureTokenFile, type HomeLayout } from '../config/index.js';

/** `<home>/metrics-token`: the scrape token, for a Prometheus that may read metrics and nothing else. */
export function metricsTokenPath(home: HomeLayout): string {
  return join(home.root, 'metrics-token');
}

/**
 * The scrape token, made at the first start and kept exactly as the API token is (ensureTokenFile). It lets a
 * Prometheus scrape `GET /metrics` without holding the API token, which could drive every VM.
 */
export async function ensureMetricsToken(home: HomeLayout): Promise<{ token: string; path: string }> {
  return ensureTokenFile(metricsTokenPath(home), 'scrape token');
}

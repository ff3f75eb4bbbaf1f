import { withContext } from '../errors.js';
import { DEFAULT_NETWORK } from '../network/index.js';
import { requireImage, requireNetwork, type Db } from '../store/index.js';
import { requireDatastore } from '../host/index.js';
import type { PoolSpec } from './spec.js';

/**
 * Checks that what a valid spec names exists before anything is made for it: the image, the network (the default
 * one is created on first use, so it may be missing) and the datastore. The error is the resource's own (404),
 * naming the spec field at fault in its message and `details.problems`.
 */
export async function checkPoolRefs(db: Db, spec: PoolSpec): Promise<void> {
  const checks: [string, () => Promise<unknown>][] = [
    ['image', () => requireImage(db, spec.image)],
    ['network', () => (spec.network === DEFAULT_NETWORK.name ? Promise.resolve() : requireNetwork(db, spec.network))],
    // a placed pool's datastore is on each of its hosts (placement.ts checks them), not on this one
    ...(spec.placement ? [] : ([['datastore', () => requireDatastore(db, spec.datastore)]] as [string, () => Promise<unknown>][])),
  ];
  for (const [field, check] of checks) {
    try {
      await check();
    } catch (err) {
      const e = withContext(err, `pool spec: ${field}`);
      throw withContext(err, `pool spec: ${field}`, { details: { problems: [{ path: field, message: e.detail ?? e.message }] } });
    }
  }
}

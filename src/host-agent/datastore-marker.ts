import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';

const MARKER = '.vmfork-datastore';

interface Marker {
  host: string;
  datastore: string;
}

async function readMarker(path: string): Promise<Marker | undefined> {
  const text = await readFile(join(path, MARKER), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const m = JSON.parse(text) as Partial<Marker>;
    return typeof m.host === 'string' && typeof m.datastore === 'string' ? { host: m.host, datastore: m.datastore } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A datastore directory says whose it is in a marker file. Two hosts must never write one directory (shared
 * storage, or two test hosts on one machine given one path): each would destroy the other's replicas. A path string
 * alone cannot tell (two machines may each have /var/lib/vmfork/datastores/default, rightly); the marker is in the
 * directory itself, so it is seen by whoever shares it. Checked for every datastore before any is claimed.
 */
export async function checkDatastoreMarkers(host: string, datastores: readonly { name: string; path: string }[]): Promise<void> {
  for (const d of datastores) {
    const m = await readMarker(d.path);
    if (m && m.host !== host) {
      throw new VmforkError('VMFORK_DATASTORE_TAKEN', `${d.path} is datastore "${m.datastore}" of host "${m.host}" (its ${MARKER} says so): give host "${host}" a directory of its own`, {
        details: { path: d.path, host: m.host, datastore: m.datastore },
      });
    }
  }
}

/** Makes each datastore's directory and writes its marker (atomically: a crash leaves the old one or the new one). */
export async function claimDatastores(host: string, datastores: readonly { name: string; path: string }[]): Promise<void> {
  for (const d of datastores) {
    await mkdir(d.path, { recursive: true, mode: 0o700 });
    const tmp = join(d.path, `${MARKER}.${process.pid}`);
    await writeFile(tmp, `${JSON.stringify({ host, datastore: d.name })}\n`, { mode: 0o600 });
    await rename(tmp, join(d.path, MARKER));
  }
}

import { hostname } from 'node:os';
import type { Db } from './db.js';
import type { DatastoreRow, HostRow, NewDatastore } from './schema.js';

/** Records (or refreshes) a host's hostname; the store inserts the local host when it opens. */
export async function upsertHost(db: Db, id: string, name: string = hostname()): Promise<void> {
  await db
    .insertInto('hosts')
    .values({ id, hostname: name, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.column('id').doUpdateSet({ hostname: name }))
    .execute();
}

export async function listHostRows(db: Db): Promise<HostRow[]> {
  return db.selectFrom('hosts').selectAll().orderBy('id').execute();
}

/** Adds a datastore to a host unless one of that name exists (its path is then left as first recorded). */
export async function ensureDatastore(db: Db, row: NewDatastore): Promise<void> {
  await db
    .insertInto('datastores')
    .values(row)
    .onConflict((oc) => oc.columns(['host_id', 'name']).doNothing())
    .execute();
}

export async function listDatastores(db: Db, hostId?: string): Promise<DatastoreRow[]> {
  let q = db.selectFrom('datastores').selectAll();
  if (hostId) q = q.where('host_id', '=', hostId);
  return q.orderBy('host_id').orderBy('name').execute();
}

export async function getDatastore(db: Db, hostId: string, name: string): Promise<DatastoreRow | undefined> {
  return db.selectFrom('datastores').selectAll().where('host_id', '=', hostId).where('name', '=', name).executeTakeFirst();
}

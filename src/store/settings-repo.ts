import type { Db } from './db.js';

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  return (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
}

/**
 * The value of `key`, set to `initial()` the first time anyone asks. Insert-or-ignore then read: of two processes
 * asking at once, both get the value the first insert wrote.
 */
export async function settingOnce(db: Db, key: string, initial: () => string): Promise<string> {
  await db
    .insertInto('settings')
    .values({ key, value: initial() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  return (await getSetting(db, key)) as string;
}

/** Sets `key` (insert or replace). */
export async function putSetting(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

export async function deleteSetting(db: Db, key: string): Promise<void> {
  await db.deleteFrom('settings').where('key', '=', key).execute();
}

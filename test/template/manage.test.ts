import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { homeLayout } from '../../src/config/index.js';
import { getTemplate, insertImage, insertTemplate, templatesOn, type Db } from '../../src/store/index.js';
import { listTemplates, removeTemplate } from '../../src/template/index.js';
import { createLogger } from '../../src/util/index.js';
import { testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { openTestStore } from '../helpers/store.js';

async function readyTemplate(db: Db, root: string, name: string, parent: string | null): Promise<void> {
  const now = new Date().toISOString();
  const dir = join(root, 'templates', name);
  mkdirSync(dir, { recursive: true });
  await insertTemplate(db, { name, image_name: 'img', state: 'ready', dir, spec_json: '{}', record_json: null, replica_id: null, parent_name: parent, last_error: null, created_at: now, updated_at: now }, await testActor('template-create'));
}

test(
  'the template tree: a template made from a child of another stands on it; the parent cannot go first, list shows it',
  withTempDir('vmfork-tree-', async (root) => {
    const db = await openTestStore();
    const deps = { db, home: homeLayout(root), log: createLogger(undefined) };
    try {
      const now = new Date().toISOString();
      await insertImage(db, { name: 'img', source: 'imported', state: 'ready', disk_path: '/x', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now }, await testActor('image-import'));
      await readyTemplate(db, root, 'base', null);
      await readyTemplate(db, root, 'dev', 'base');
      assert.deepEqual(await templatesOn(db, 'base'), ['dev']);
      const parents = (await listTemplates(deps)).map((t) => [t.name, t.parent]);
      assert.deepEqual(parents, [['base', null], ['dev', 'base']]);

      await assert.rejects(removeTemplate(deps, 'base'), (err: { code: string; details: { templates: string[] } }) => {
        assert.equal(err.code, 'VMFORK_TEMPLATE_IN_USE');
        assert.deepEqual(err.details.templates, ['dev']);
        return true;
      });
      assert.equal((await getTemplate(db, 'base'))?.state, 'ready', 'the refusal changed nothing');
      assert.ok(existsSync(join(root, 'templates', 'base')));

      // leaves first: then the parent goes too
      await removeTemplate(deps, 'dev');
      await removeTemplate(deps, 'base');
      assert.deepEqual(await listTemplates(deps), []);
      assert.equal(existsSync(join(root, 'templates', 'base')), false);
    } finally {
      await db.destroy();
    }
  }),
);

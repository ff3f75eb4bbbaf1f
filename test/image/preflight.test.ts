import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkBuildHost } from '../../src/image/preflight.js';
import { withTempDir } from '../helpers/temp-dir.js';

test('a build refuses early: not root, then not enough space (measured on the nearest existing dir)', withTempDir('vmfork-preflight-', async (dir) => {
  await assert.rejects(checkBuildHost({ imagesDir: dir, uid: 1000 }), { code: 'VMFORK_NOT_ROOT' });
  const notYet = join(dir, 'images', 'not', 'created');
  await assert.rejects(checkBuildHost({ imagesDir: notYet, uid: 0, needBytes: 2 ** 60 }), (err: { code: string; details: { path: string } }) => {
    assert.equal(err.code, 'VMFORK_NO_SPACE');
    assert.equal(err.details.path, dir);
    return true;
  });
  await checkBuildHost({ imagesDir: notYet, uid: 0, needBytes: 1 }); // this host has the build programs
}));

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isVmforkError } from '../../src/errors.js';
import { assertRoom, bytesToMove, type ChainLayer } from '../../src/vm/promote-plan.js';

const MiB = 1024 ** 2;
const layer = (actualMiB: number, virtualMiB = 2048): ChainLayer => ({ path: `/x/${actualMiB}`, virtualSize: virtualMiB * MiB, actualSize: actualMiB * MiB, subclusters: true });

test('a stream moves the backing layers\' data, a mirror the whole chain\'s, never more than the disk\'s size', () => {
  const chain = [layer(3), layer(600), layer(700)];
  assert.equal(bytesToMove(chain, 'stream'), 1300 * MiB);
  assert.equal(bytesToMove(chain, 'mirror'), 1303 * MiB);
  assert.equal(bytesToMove([layer(3, 1024), layer(900, 1024), layer(900, 1024)], 'mirror'), 1024 * MiB);
  assert.equal(bytesToMove([layer(3)], 'stream'), 0);
});

test('room: the data plus a metadata margin must fit, else VMFORK_NO_SPACE naming what is needed and free', () => {
  assert.doesNotThrow(() => assertRoom(100 * MiB, 200 * MiB, 'datastore d', {}));
  assert.throws(
    () => assertRoom(100 * MiB, 150 * MiB, 'datastore d', { datastore: 'd' }),
    (err: unknown) => isVmforkError(err) && err.code === 'VMFORK_NO_SPACE' && /datastore d/.test(err.message) && err.details?.freeBytes === 150 * MiB && err.details.datastore === 'd',
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { withTempDir } from '../helpers/temp-dir.js';

const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

test('vmfork serve: prints its URL, the console\'s and the token file (never the token), answers with the token (pools through the engine), stops cleanly on SIGTERM', withTempDir('vmfork-serve-cli-', async (dir) => {
  const child = spawn(process.execPath, [MAIN, '--home', dir, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    // the banner's lines, whole (a chunk can end inside the URL); an exit before them fails at once
    const url = await new Promise<string>((resolve, reject) => {
      const look = (): void => {
        const m = /serving (http:\/\/\S+)\n\s+token: .*\n\s+console: .*\n/.exec(out);
        if (m) resolve(m[1] as string);
      };
      child.stdout.on('data', look);
      exited.then((code) => reject(new Error(`serve exited (${code}) before it was serving: ${out}`)), reject);
    });
    assert.match(out, new RegExp(`token: ${join(dir, 'api-token')}\n`));
    // the console's address, and the token's file (never the token itself: stdout ends up in logs)
    assert.ok(out.includes(`console: ${url}/  (log in with the token in ${join(dir, 'api-token')})\n`), out);
    assert.equal(statSync(join(dir, 'api-token')).mode & 0o777, 0o600);
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    assert.ok(!out.includes(token), 'the token is not printed');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const hosts = await fetch(`${url}/v1/hosts`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(hosts.status, 200);
    assert.equal(((await hosts.json()) as { datastores: { name: string }[] }[])[0]?.datastores[0]?.name, 'default');
    // the provisioning engine is wired in: pools answer (none yet) instead of 501
    const pools = await fetch(`${url}/v1/pools`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(pools.status, 200);
    assert.deepEqual(await pools.json(), []);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);
  assert.match(out, /SIGTERM: stopping; QEMU processes stay up/);
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  applySharedMode,
  ensurePrivateDir,
  homeLayout,
  PRIVATE_FILE_MODE,
  PROCESS_UMASK,
  privateFileProblem,
  readTokenFile,
  SEALED_FILE_MODE,
  SHARED_MODES,
  withUmask,
} from '../../src/config/index.js';
import { ensureApiToken } from '../../src/api/index.js';
import { isVmforkError } from '../../src/errors.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { qemuConfinement } from '../../src/config/index.js';

const mode = (p: string): number => statSync(p).mode & 0o777;
const uid = process.getuid?.() ?? 0;
const PRIVATE_FILES_JS = new URL('../../src/config/private-files.js', import.meta.url).pathname;

/** The refusal every unsafe token file gets: its own code, naming the file. */
async function refused(path: string, why: RegExp): Promise<void> {
  await assert.rejects(readTokenFile(path), (err: unknown) => {
    assert.ok(isVmforkError(err), String(err));
    assert.equal(err.code, 'VMFORK_TOKEN_FILE_UNSAFE');
    assert.match(err.message, why);
    assert.equal(err.details?.path, path);
    return true;
  });
}

test('ensurePrivateDir: makes a missing data dir (and parents) 0700; tightens an existing 0755 one and says from what', withTempDir('vmfork-priv-', async (dir) => {
  const fresh = join(dir, 'a', 'home');
  assert.deepEqual(ensurePrivateDir(fresh), { created: true });
  assert.equal(mode(fresh), 0o700);
  assert.deepEqual(ensurePrivateDir(fresh), { created: false }, 'already private: nothing to say');
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o755 });
  execFileSync('chmod', ['0755', open]);
  assert.deepEqual(ensurePrivateDir(open), { created: false, tightenedFrom: 0o755 });
  assert.equal(mode(open), 0o700);
  // another user's open dir: said, not fatal (nobody cannot chmod root's dir)
  const theirs = join(dir, 'theirs');
  mkdirSync(theirs);
  execFileSync('chmod', ['0755', theirs]);
  const asNobody = (code: string): ReturnType<typeof spawnSync> => spawnSync(process.execPath, ['--input-type=module', '-e', code], { uid: 65534, gid: 65534, encoding: 'utf8' });
  // a checkout under a private directory hides the module from nobody: then only root's side is checked above
  if (uid === 0 && asNobody(`await import(${JSON.stringify(PRIVATE_FILES_JS)})`).status === 0) {
    execFileSync('chmod', ['0711', dir]); // nobody may pass through to root's open dir, not own it
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { ensurePrivateDir } from ${JSON.stringify(PRIVATE_FILES_JS)}; process.stdout.write(JSON.stringify(ensurePrivateDir(${JSON.stringify(theirs)})))`], { uid: 65534, gid: 65534, encoding: 'utf8' });
    assert.equal(r.status, 0, String(r.stderr));
    assert.deepEqual(JSON.parse(r.stdout), { created: false, looseNotOurs: 0o755 });
  }
}));

test('the process umask makes files 0600 and dirs 0700; withUmask restores the previous one even on failure', withTempDir('vmfork-umask-', async (dir) => {
  const before = process.umask(PROCESS_UMASK);
  try {
    writeFileSync(join(dir, 'f'), 'x');
    mkdirSync(join(dir, 'd'));
    assert.equal(mode(join(dir, 'f')), PRIVATE_FILE_MODE);
    assert.equal(mode(join(dir, 'd')), 0o700);
    await assert.rejects(withUmask(0o022, async () => {
      writeFileSync(join(dir, 'guest'), 'x');
      throw new Error('a failing build step');
    }));
    assert.equal(mode(join(dir, 'guest')), 0o644, 'a guest rootfs file gets its usual mode');
    assert.equal(process.umask(), PROCESS_UMASK, 'restored');
  } finally {
    process.umask(before);
  }
}));

test('applySharedMode: each kind gets its row of the one table (sealed template files 0400, base images 0600); with QEMU confined, root:vmfork-qemu and the group may read (a dir: search)', withTempDir('vmfork-shared-', async (dir) => {
  const c = await qemuConfinement();
  const group = (file: boolean): number => (c.on ? (file ? 0o040 : 0o010) : 0);
  const f = join(dir, 'ram');
  writeFileSync(f, 'x', { mode: 0o644 });
  await applySharedMode(f, 'template-file');
  assert.equal(mode(f), SEALED_FILE_MODE | group(true));
  await applySharedMode(f, 'base-image');
  assert.equal(mode(f), SHARED_MODES['base-image'].file | group(true));
  await applySharedMode(dir, 'base-image', 'dir');
  assert.equal(mode(dir), 0o700 | group(false));
  if (c.on) assert.equal(statSync(f).gid, c.gid, 'the QEMU group');
  for (const [kind, m] of Object.entries(SHARED_MODES)) assert.equal(m.file & 0o077, 0, `${kind}: no kind is shared with other, and with the group only while QEMU is confined`);
}));

test('ensurePrivateDir: a data dir the QEMU group may only search (0710) is left so', withTempDir('vmfork-priv-', async (dir) => {
  chmodSync(dir, 0o710);
  assert.deepEqual(ensurePrivateDir(dir), { created: false });
  assert.equal(mode(dir), 0o710);
}));

test('privateFileProblem: only a regular file of this uid without group/other bits passes', () => {
  const st = (isFile: boolean, m: number, u: number): Parameters<typeof privateFileProblem>[0] => ({ isFile: () => isFile, mode: m, uid: u });
  assert.equal(privateFileProblem(st(true, 0o100600, 7), 7), undefined);
  assert.equal(privateFileProblem(st(true, 0o100400, 7), 7), undefined);
  assert.match(privateFileProblem(st(false, 0o40700, 7), 7) ?? '', /not a regular file/);
  assert.match(privateFileProblem(st(true, 0o100600, 8), 7) ?? '', /owned by uid 8, not this process's uid 7/);
  assert.match(privateFileProblem(st(true, 0o100640, 7), 7) ?? '', /mode 0640: group or other/);
  assert.match(privateFileProblem(st(true, 0o100602, 7), 7) ?? '', /mode 0602/);
});

test('readTokenFile: reads a private token; refuses a symlink (not followed), a group-readable file, another uid\'s file, a dir, a FIFO', withTempDir('vmfork-token-', async (dir) => {
  const good = join(dir, 'good');
  writeFileSync(good, 'secret-token-value\n', { mode: 0o600 });
  assert.equal(await readTokenFile(good), 'secret-token-value');

  const link = join(dir, 'link');
  symlinkSync(good, link);
  await refused(link, /is a symlink \(refused, not followed\)/);

  const loose = join(dir, 'loose');
  writeFileSync(loose, 'secret-token-value\n', { mode: 0o600 });
  execFileSync('chmod', ['0644', loose]);
  await refused(loose, /mode 0644/);
  assert.equal(mode(loose), 0o644, 'refused, not silently tightened');

  await refused(dir, /not a regular file/);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  await refused(fifo, /not a regular file/);

  const theirs = join(dir, 'theirs');
  writeFileSync(theirs, 'secret-token-value\n', { mode: 0o600 });
  // only root can give a file away; elsewhere the pure check above covers another uid
  if (uid === 0) {
    chownSync(theirs, 4242, 4242);
    await refused(theirs, /owned by uid 4242/);
  }
  await assert.rejects(readTokenFile(join(dir, 'missing')), { code: 'ENOENT' });
}));

test('ensureApiToken: makes a private token once; a token path planted as a symlink (even dangling) is refused, its target untouched', withTempDir('vmfork-token-home-', async (dir) => {
  const home = homeLayout(join(dir, 'home'));
  const first = await ensureApiToken(home);
  assert.equal(mode(first.path), 0o600);
  assert.equal((await ensureApiToken(home)).token, first.token, 'the same token at the next start');

  const planted = homeLayout(join(dir, 'planted'));
  mkdirSync(planted.root, { mode: 0o700 });
  const target = join(dir, 'attacker-file');
  symlinkSync(target, join(planted.root, 'api-token'));
  await assert.rejects(ensureApiToken(planted), { code: 'VMFORK_TOKEN_FILE_UNSAFE' });
  assert.throws(() => readFileSync(target), { code: 'ENOENT' }, 'nothing was written through the link');
}));

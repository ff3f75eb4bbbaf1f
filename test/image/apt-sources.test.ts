import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostDebianMirror, parseDeb822Sources, parseOneLineSources, pickMirror, readAptSources } from '../../src/image/apt-sources.js';
import { withTempDir } from '../helpers/temp-dir.js';

// a Debian 12 host's /etc/apt/sources.list.d/debian.sources as installed, with example hosts for the real mirrors
const HOST_DEB822 = `Types: deb
# http://snapshot.mirror.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.mirror.example/archive/debian-security/20250520T000000Z
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

test('deb822: the stanza serving bookworm main wins, not bookworm-security', () => {
  const sources = parseDeb822Sources(HOST_DEB822);
  assert.equal(sources.length, 2);
  assert.deepEqual(sources[0]?.suites, ['bookworm', 'bookworm-updates']);
  assert.equal(pickMirror(sources, 'bookworm'), 'http://mirror.example/debian');
});

test('deb822: deb-src, Enabled: no, continuation lines and several URIs', () => {
  const text = `Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: https://secure.example/debian/
 http://mirror.example/debian/
Suites: bookworm
Components: contrib
  main non-free-firmware
`;
  const sources = parseDeb822Sources(text);
  assert.equal(sources.length, 1);
  assert.deepEqual(sources[0]?.uris, ['https://secure.example/debian/', 'http://mirror.example/debian/']);
  assert.deepEqual(sources[0]?.components, ['contrib', 'main', 'non-free-firmware']);
  // http is preferred (debootstrap has no CA certificates in the target yet); the trailing slash goes
  assert.equal(pickMirror(sources, 'bookworm'), 'http://mirror.example/debian');
});

test('one-line: options in brackets, deb-src and comments skipped, suite and component must match', () => {
  const text = `# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://de.mirror.example/debian/ bookworm-updates main
deb [ arch=amd64 ] http://de.mirror.example/debian/ bookworm contrib
deb http://security.mirror.example/debian-security bookworm-security main
deb https://deb.example/debian bookworm main non-free # trailing comment
`;
  const sources = parseOneLineSources(text, 'sources.list');
  assert.equal(sources.length, 4);
  assert.equal(sources[0]?.file, 'sources.list');
  assert.equal(pickMirror(sources, 'bookworm'), 'https://deb.example/debian');
  assert.equal(pickMirror(sources, 'trixie'), undefined);
});

test('readAptSources reads both syntaxes and only the suffixes apt reads', withTempDir('vmfork-apt-', async (etc) => {
  mkdirSync(join(etc, 'sources.list.d'));
  writeFileSync(join(etc, 'sources.list'), 'deb http://one-line.example/debian bookworm main\n');
  writeFileSync(join(etc, 'sources.list.d', 'debian.sources'), HOST_DEB822);
  writeFileSync(join(etc, 'sources.list.d', 'old.list.disabled'), 'deb http://ignored.example/debian bookworm main\n');
  const sources = await readAptSources(etc);
  assert.deepEqual(sources.map((s) => s.uris[0]), ['http://one-line.example/debian', 'http://mirror.example/debian', 'http://mirror.example/debian-security']);
  assert.equal(await hostDebianMirror('bookworm', etc), 'http://one-line.example/debian');
  await assert.rejects(hostDebianMirror('trixie', etc), { code: 'VMFORK_IMAGE_BUILD_FAILED' });
}));

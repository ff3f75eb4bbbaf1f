import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageRecipe } from '../../src/image/compose-recipe.js';
import { compileGuestAgent, defaultGuestAgentDir, guestAgentRecipe, parseAgentVersion } from '../../src/image/guest-agent.js';
import { BASE_RECIPE, recipeHash } from '../../src/image/recipe.js';
import { run } from '../../src/util/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

test('the default recipe carries vmfork-guest; without it the recipe is the base one (the image built before the agent)', async () => {
  const withAgent = await imageRecipe();
  assert.equal(withAgent.guestAgent?.protocolVersion, 1);
  assert.match(withAgent.guestAgent?.sourceDigest ?? '', /^[0-9a-f]{64}$/);
  assert.ok(withAgent.packages.includes('libssl3'));
  assert.ok(withAgent.packages.includes('libpam-systemd'), 'logins reach logind, whose sessions WATCH reports');
  assert.notEqual(recipeHash(withAgent), recipeHash(BASE_RECIPE));
  assert.equal(recipeHash(await imageRecipe({ guestAgent: false })), recipeHash(BASE_RECIPE));
});

test('the agent\'s sources are part of the recipe: a code change rebuilds, prose and build outputs do not', withTempDir('vmfork-agent-src-', async (dir) => {
  const copy = join(dir, 'guest');
  cpSync(defaultGuestAgentDir(), copy, { recursive: true });
  const before = (await guestAgentRecipe(copy)).sourceDigest;
  appendFileSync(join(copy, 'PROTOCOL.md'), '\nmore prose\n');
  mkdirSync(join(copy, 'build'), { recursive: true });
  writeFileSync(join(copy, 'build', 'vmfork-guest'), 'a binary');
  assert.equal((await guestAgentRecipe(copy)).sourceDigest, before);
  appendFileSync(join(copy, 'src', 'main.c'), '\n/* a change */\n');
  assert.notEqual((await guestAgentRecipe(copy)).sourceDigest, before);
}));

test('compiled from a snapshot of its sources, the binary says what the sources say', withTempDir('vmfork-agent-build-', async (dir) => {
  const binary = await compileGuestAgent(defaultGuestAgentDir(), dir);
  const said = parseAgentVersion((await run(binary, ['--version'])).stdout);
  const recipe = await guestAgentRecipe();
  assert.deepEqual(said, { version: recipe.version, protocolVersion: recipe.protocolVersion });
  assert.equal(parseAgentVersion('vmfork-guest 0.1.0'), undefined);
}));

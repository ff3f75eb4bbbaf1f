import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandWord } from '../../src/cli/commands/index.js';

test('the command group a command line names: past global options and their values, none for help alone', () => {
  const argv = (...rest: string[]): string[] => ['/usr/bin/node', '/x/vmfork', ...rest];
  assert.equal(commandWord(argv('fork', 'tpl', '--count', '1')), 'fork');
  assert.equal(commandWord(argv('--home', '/data/vmfork', 'template', 'warm', 'tpl')), 'template');
  assert.equal(commandWord(argv('--db', 'postgres://vmfork@db.example/vmfork', 'host-agent', '--host', 'a')), 'host-agent');
  assert.equal(commandWord(argv('--home', '/d', '--db', 'postgres://db.example/v', 'host', 'list')), 'host');
  assert.equal(commandWord(argv('--home=/data/vmfork', 'vm', 'list')), 'vm');
  assert.equal(commandWord(argv('--help')), undefined);
  assert.equal(commandWord(argv()), undefined);
  assert.equal(commandWord(argv('--', 'fork')), undefined);
});

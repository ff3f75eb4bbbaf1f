import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands/index.js';

/** `vm list`-style path of every command under `cmd`, with its description. */
function walk(cmd: Command, prefix: string[] = []): { path: string; group: string; description: string }[] {
  return cmd.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return [{ path: path.join(' '), group: path[0] as string, description: c.description() }, ...walk(c, path)];
  });
}

/** Lower-case like most of them, or an acronym (`VMs …`); never a capitalized word (`Pools …`). */
const conforms = (d: string): boolean => /^[a-z]/.test(d) || /^[A-Z]{2,}/.test(d);

test('every command in vmfork --help has a description that starts lower-case (or with an acronym)', async () => {
  const program = new Command();
  await registerCommands(program);
  const all = walk(program);
  assert.ok(all.length > 30, `expected every group's commands, found ${all.length}`);
  const wrong = all.filter((c) => !conforms(c.description)).map((c) => `${c.path}: "${c.description}"`);
  assert.deepEqual(wrong, []);
});

#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';
import { reportError } from './output.js';

/**
 * Builds the CLI; kept apart from `main` so tests can drive it without spawning a process. With `argv`, only the
 * command group it names is loaded (see commands/index.ts); without, all of them.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command();
  program
    .name('vmfork')
    .description('Provision pools of customized QEMU/KVM VMs by forking a frozen template, without rebooting them')
    .version('0.1.0')
    .option('--home <dir>', 'data dir for all state (env VMFORK_HOME; default /var/lib/vmfork as root, else ~/.local/share/vmfork)')
    .option('--db <url>', 'keep the records in PostgreSQL at this postgres:// URL (env VMFORK_DB; default the SQLite file vmfork.db in the data dir; docs/postgres.md)')
    .showHelpAfterError()
    .exitOverride();
  await registerCommands(program, argv);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version exit through here with code 0; usage errors were already printed by commander
      return err.exitCode;
    }
    return reportError(err, argv.includes('--json'));
  }
}

const code = await main(process.argv);
process.exitCode = code;

import type { Command } from 'commander';

/** Every command group registers itself here; one line per group keeps merge conflicts trivial. */
export function registerCommands(program: Command): void {
  void program;
}

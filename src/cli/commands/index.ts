import type { Command } from 'commander';
import { registerDoctorCommands } from './doctor.js';

/** Every command group registers itself here; one line per group keeps merge conflicts trivial. */
export function registerCommands(program: Command): void {
  registerDoctorCommands(program);
}

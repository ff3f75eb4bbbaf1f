import type { Command } from 'commander';
import { registerDoctorCommands } from './doctor.js';
import { registerNetworkCommands } from './network.js';
import { registerVmCommands } from './vm.js';

/** Every command group registers itself here; one line per group keeps merge conflicts trivial. */
export function registerCommands(program: Command): void {
  registerDoctorCommands(program);
  registerNetworkCommands(program);
  registerVmCommands(program);
}

import type { Command } from 'commander';
import { registerDemoCommands } from './demo.js';
import { registerDoctorCommands } from './doctor.js';
import { registerNetworkCommands } from './network.js';
import { registerVerifyCommands } from './verify.js';
import { registerVmCommands } from './vm.js';

/** Every command group registers itself here; one line per group keeps merge conflicts trivial. */
export function registerCommands(program: Command): void {
  registerDoctorCommands(program);
  registerNetworkCommands(program);
  registerVmCommands(program);
  registerVerifyCommands(program);
  registerDemoCommands(program);
}

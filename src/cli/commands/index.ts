import type { Command } from 'commander';
import { registerDemoCommands } from './demo.js';
import { registerDoctorCommands } from './doctor.js';
import { registerForkCommands } from './fork.js';
import { registerImageCommands } from './image.js';
import { registerNetworkCommands } from './network.js';
import { registerPoolCommands } from './pool.js';
import { registerReplicaCommands } from './replica.js';
import { registerServeCommands } from './serve.js';
import { registerTaskCommands } from './task.js';
import { registerSshCommands } from './ssh.js';
import { registerTemplateCommands } from './template.js';
import { registerVerifyCommands } from './verify.js';
import { registerVmCommands } from './vm.js';

/** Every command group registers itself here; one line per group keeps merge conflicts trivial. */
export function registerCommands(program: Command): void {
  registerDoctorCommands(program);
  registerImageCommands(program);
  registerNetworkCommands(program);
  registerVmCommands(program);
  registerTemplateCommands(program);
  registerForkCommands(program);
  registerVerifyCommands(program);
  registerSshCommands(program);
  registerDemoCommands(program);
  registerServeCommands(program);
  registerPoolCommands(program);
  registerTaskCommands(program);
  registerReplicaCommands(program);
}

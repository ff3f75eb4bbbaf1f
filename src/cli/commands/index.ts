import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Every command group: its top-level command and how to load its module. A group's module imports the rooms it
 * drives, and loading every room costs a command ~0.3 s of module loading before it does anything (fastify and the
 * provisioning engine for `serve` alone ~0.1 s), so a command loads only its own group; help and unknown commands
 * load them all. One line per group keeps merge conflicts trivial.
 */
const GROUPS: readonly { command: string; load: () => Promise<Register> }[] = [
  { command: 'doctor', load: async () => (await import('./doctor.js')).registerDoctorCommands },
  { command: 'image', load: async () => (await import('./image.js')).registerImageCommands },
  { command: 'network', load: async () => (await import('./network.js')).registerNetworkCommands },
  { command: 'vm', load: async () => (await import('./vm.js')).registerVmCommands },
  { command: 'template', load: async () => (await import('./template.js')).registerTemplateCommands },
  { command: 'fork', load: async () => (await import('./fork.js')).registerForkCommands },
  { command: 'verify', load: async () => (await import('./verify.js')).registerVerifyCommands },
  { command: 'ssh', load: async () => (await import('./ssh.js')).registerSshCommands },
  { command: 'serve', load: async () => (await import('./serve.js')).registerServeCommands },
  { command: 'pool', load: async () => (await import('./pool.js')).registerPoolCommands },
  { command: 'task', load: async () => (await import('./task.js')).registerTaskCommands },
  { command: 'replica', load: async () => (await import('./replica.js')).registerReplicaCommands },
  { command: 'gc', load: async () => (await import('./gc.js')).registerGcCommands },
  { command: 'host', load: async () => (await import('./host.js')).registerHostCommands },
  { command: 'host-agent', load: async () => (await import('./host.js')).registerHostAgentCommand },
];

/** Global options that take a value (the command name is the first word that is neither one nor its value). */
const GLOBAL_WITH_VALUE = new Set(['--home', '--db']);

/** The command word of `argv` (after node and the script), or undefined (none, or only options). */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return a;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
  }
  return undefined;
}

/**
 * Registers the command group `argv` names, or every group when it names none of them (help, a typo: commander then
 * lists or suggests from all of them), in the order of GROUPS.
 */
export async function registerCommands(program: Command, argv?: readonly string[]): Promise<void> {
  const word = argv ? commandWord(argv) : undefined;
  const one = GROUPS.find((g) => g.command === word);
  for (const register of await Promise.all((one ? [one] : GROUPS).map((g) => g.load()))) register(program);
}

import type { Command } from 'commander';
import { DEFAULT_LISTEN, startServer } from '../../api/index.js';
import { createProvisionService, drainTasks } from '../../provision/index.js';
import { action } from '../action.js';

/** How long a stopping server lets its tasks finish before it leaves them to the next start. */
const DRAIN_MS = 5_000;

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run the REST API server on this data dir (docs/api.md): re-adopts running VMs, resumes interrupted tasks; Ctrl-C or SIGTERM stops it, VMs stay up')
    .option('--listen <host:port>', 'address to listen on (keep it on loopback unless a proxy with TLS is in front)', DEFAULT_LISTEN)
    .action(
      action(async (ctx, opts: { listen: string }) => {
        const deps = await ctx.deps();
        const server = await startServer(deps, { listen: opts.listen, provision: createProvisionService(deps) });
        process.stdout.write(`vmfork: serving ${server.url}\n  token: ${server.tokenPath}\n  ${server.adopted} running VM(s) re-adopted\n`);
        for (const r of server.recovered) {
          process.stdout.write(`  task ${r.id} (${r.kind} ${r.target}; server pid ${r.deadOwnerPid ?? '?'} died while ${r.state}): ${r.action}\n`);
        }
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        process.stdout.write(`vmfork: ${signal}: stopping; QEMU processes stay up and are re-adopted at the next start\n`);
        await server.close();
        if (!(await drainTasks(DRAIN_MS))) {
          // like a kill: their records stay running with this process as owner, and the next start resumes them
          process.stdout.write('vmfork: tasks still running are left to the next start, which resumes them\n');
          process.exit(0);
        }
      }),
    );
}

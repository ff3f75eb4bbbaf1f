import type { Command } from 'commander';
import { DEFAULT_LISTEN, startServer } from '../../api/index.js';
import { createProvisionService, setDiskOvercommit } from '../../pool/index.js';
import { DEMO_POOL, demoPoolSpec, runDemoPool } from '../demo-pool.js';
import { drainTasks } from '../../task/index.js';
import type { VmDeps } from '../../vm/index.js';
import { printTable } from '../output.js';
import { isPostgresUrl, redactUrl } from '../../util/index.js';
import { action } from '../action.js';

/** `serve --demo`: the main job's pool, its table and its times, while the server keeps serving. */
async function showDemo(deps: VmDeps, provision: ReturnType<typeof createProvisionService>, image: string): Promise<void> {
  const r = await runDemoPool(deps, provision, demoPoolSpec(image), (line) => void process.stderr.write(`${line}\n`));
  printTable(r.rows, ['name', 'ip', 'mac', 'state', 'reboots', 'secondsToReady']);
  const lines = [
    '',
    r.phase1 ? `phase 1 (once, on an internal clone): ${r.phase1.seconds.toFixed(1)} s, ${r.phase1.reboots} reboot(s)` : '',
    r.phase1 ? `replica (full copy on the datastore): ${r.phase1.copySeconds.toFixed(1)} s` : '',
    r.template ? `replica frozen into a template:       ${r.template.bootSeconds.toFixed(1)} s boot + ${r.template.cutMs} ms cut (${r.template.accel})` : '',
    r.fork ? `fork of ${r.fork.children} desktops:                 ${r.fork.seconds.toFixed(1)} s in all, 0 boots` : '',
    `verify: ${r.collisions} collision(s), ${r.problems} problem(s); the server keeps serving (Ctrl-C stops it, the desktops stay up)`,
  ].filter(Boolean);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** How long a stopping server lets its tasks finish before it leaves them to the next start. */
const DRAIN_MS = 5_000;

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run the REST API server on this data dir (docs/api.md): re-adopts running VMs, resumes interrupted tasks; Ctrl-C or SIGTERM stops it, VMs stay up')
    .option('--listen <host:port>', 'address to listen on (keep it on loopback unless a proxy with TLS is in front)', DEFAULT_LISTEN)
    .option('--demo', 'also make (or show) the pool `demo` of 5 persistent desktops and print its table: what `npm start` runs')
    .option('--demo-image <name>', 'image of the demo pool', 'default')
    .option('--disk-overcommit <ratio>', 'how far the disks of all pools on a datastore, each counted at its full size, may exceed the datastore (kept in the store; default 1.0; docs/pools.md, Capacity)')
    .action(
      action(async (ctx, opts: { listen: string; demo?: boolean; demoImage: string; diskOvercommit?: string }) => {
        const deps = await ctx.deps();
        if (opts.diskOvercommit !== undefined) await setDiskOvercommit(deps.db, opts.diskOvercommit);
        const provision = createProvisionService(deps);
        const server = await startServer(deps, { listen: opts.listen, provision });
        const store = isPostgresUrl(ctx.home.db) ? `PostgreSQL ${redactUrl(ctx.home.db)}` : ctx.home.db;
        // the console's address with the demo pool's page, and where the token is: never the token itself
        const consoleUrl = `${server.url}/${opts.demo ? `pools/${DEMO_POOL}` : ''}`;
        process.stdout.write(
          `vmfork: serving ${server.url}\n  token: ${server.tokenPath}\n  console: ${consoleUrl}  (log in with the token in ${server.tokenPath})\n  store: ${store}\n  ${server.adopted} running VM(s) re-adopted\n`,
        );
        if (opts.demo) {
          try {
            await showDemo(deps, provision, opts.demoImage);
          } catch (err) {
            // the store closes with this command's error: a server left listening on it would answer nothing right
            await server.close();
            await drainTasks(DRAIN_MS);
            throw err;
          }
        }
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

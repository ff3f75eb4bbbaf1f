import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { sshArgv, sshTarget } from '../../vm/index.js';
import { action } from '../action.js';

/**
 * `vmfork ssh NAME [-- CMD]`: a real OpenSSH session to a forked child, from the host, through the child's network
 * namespace, with its host key pinned to the one it reported when forked. For users reaching their desktops
 * (`vm exec` is the operators' back door through the guest agent).
 */
export function registerSshCommands(program: Command): void {
  program
    .command('ssh <name> [command...]')
    .description("open an OpenSSH session to a forked child through its network namespace (its host key checked against the one it reported when forked); put the remote command after --")
    .option('-i, --identity <file>', 'private key to log in with (default: your ssh agent and ~/.ssh keys)')
    .option('-l, --user <user>', 'user to log in as', 'root')
    .action(
      action(async (ctx, name: string, command: string[], opts: { identity?: string; user: string }) => {
        const target = await sshTarget(await ctx.deps(), name);
        const argv = sshArgv(target, { user: opts.user, ...(opts.identity ? { identity: opts.identity } : {}), command });
        // stdio is the user's: an interactive session, or a command whose output and exit code pass through
        const child = spawn('ip', argv, { stdio: 'inherit' });
        return new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
      }),
    );
}

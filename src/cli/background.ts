import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** This CLI's entry point, for commands it runs in the background. */
const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * Runs `vmfork --home HOME ARGS…` detached: its own session, no stdio (it logs to the data dir's log like any
 * command), not waited for — the calling command exits at once. What it does is owned like any command's work
 * (records in transitional states name it), so if it dies the next command heals it.
 */
export function runDetached(home: string, args: readonly string[]): number | undefined {
  const child = spawn(process.execPath, [CLI_MAIN, '--home', home, ...args], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return child.pid;
}

import type { Command } from 'commander';
import { createContext, type CliContext } from './context.js';
import { reportError } from './output.js';

/**
 * Wraps a command action: builds the context from the root program's global options, runs, reports a failure
 * with its stable code and sets a non-zero exit code, and always closes the store.
 */
export function action<A extends unknown[]>(
  fn: (ctx: CliContext, ...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    let root: Command = cmd;
    while (root.parent) root = root.parent;
    const opts = cmd.opts<{ json?: boolean }>();
    const ctx = createContext(root);
    try {
      const code = await fn(ctx, ...args);
      if (typeof code === 'number' && code !== 0) process.exitCode = code;
    } catch (err) {
      ctx.log.error({ err }, 'command failed');
      process.exitCode = reportError(err, Boolean(opts.json));
    } finally {
      await ctx.close();
    }
  };
}

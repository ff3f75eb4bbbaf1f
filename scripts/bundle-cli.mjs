// Bundles the compiled CLI (dist/src/cli/main.js, from `tsc`) into dist/cli/: the `vmfork` binary (package.json
// "bin"). Node 20 loads ~700 small ES modules for one command otherwise (kysely alone is 280 files, ~0.1 s): a
// bundle in a few chunks loads in ~0.1 s instead of ~0.4 s (docs/forking.md, "The CLI's own cost"). Each command
// group stays its own chunk (src/cli/commands/index.ts imports them lazily). Native and server-only packages stay
// external: better-sqlite3 (a native addon) and fastify with its plugins (only `vmfork serve` loads them).
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'cli');
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'dist', 'src', 'cli', 'main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['better-sqlite3', 'fastify', '@fastify/*'],
  // bundled CommonJS packages call require() for node builtins: give every chunk one
  banner: { js: "import { createRequire as __vmforkCreateRequire } from 'node:module'; const require = __vmforkCreateRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});

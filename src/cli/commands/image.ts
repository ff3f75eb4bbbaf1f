import type { Command } from 'commander';
import { buildImage, checkBuiltName, imageGuestAgent, imageRecipe, importImage, listImages, recipeHash, registerBuiltImage, removeImage, showImage, type ImageManifest } from '../../image/index.js';
import type { ImageRow } from '../../store/index.js';
import { formatBytes } from '../../util/index.js';
import { action } from '../action.js';
import { printJson, printTable } from '../output.js';

/** The parts of a manifest worth printing (the full one is at manifest_path). */
function manifestSummary(m: ImageManifest): Record<string, unknown> {
  return {
    source: m.source,
    createdAt: m.createdAt,
    disk: m.disk,
    cmdline: m.cmdline,
    files: m.files,
    // the fallback decision reads this: with an agent, forks take the agent path; without, the identity script
    guestAgent: imageGuestAgent(m) ?? null,
    ...(m.build
      ? {
          recipeHash: m.build.recipeHash,
          suite: m.build.suite,
          mirror: m.build.mirror,
          kernel: m.build.kernel,
          packages: m.build.packages.length,
          modules: m.build.modules,
          hygiene: m.build.hygiene,
          hooks: (m.build.recipe as { hooks?: unknown }).hooks ?? null,
          buildSeconds: m.build.seconds,
          steps: m.build.steps,
        }
      : {}),
    ...(m.import ? { importedFrom: m.import.originalPath } : {}),
  };
}

function agentLine(m: ImageManifest): string {
  const a = imageGuestAgent(m);
  return a ? `vmfork-guest ${a.version} (protocol ${a.protocolVersion})` : 'none (forks use the identity script through qemu-ga)';
}

function row(r: ImageRow): Record<string, unknown> {
  return { ...r, size: formatBytes(r.file_size), virtual: formatBytes(r.virtual_size) };
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('guest images: build (debootstrap), import, list, show, rm');

  image
    .command('build')
    .description('build the minimal Debian guest image (cached by recipe: a second build only registers the name)')
    .option('--name <name>', 'name to register the image under', 'default')
    .option('--mirror <url>', "Debian mirror (default: the host's apt source serving the suite)")
    .option('--hooks <dir>', 'copy this directory (common/, per-child/ scripts) to /usr/local/lib/vmfork/ in the image')
    .option('--no-guest-agent', 'leave vmfork-guest out (its forks use the identity script through qemu-ga)')
    .option('--no-serial-autologin', 'keep a login prompt on the serial console instead of a root shell (docs/console.md)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { name: string; mirror?: string; hooks?: string; guestAgent: boolean; serialAutologin: boolean; json?: boolean }) => {
        const db = await ctx.db();
        // validate the name and read the trees (agent sources, hooks) before minutes of work
        const sources = opts.hooks ? { hooksDir: opts.hooks } : {};
        const recipe = await imageRecipe({ guestAgent: opts.guestAgent, serialAutologin: opts.serialAutologin, ...sources });
        await checkBuiltName(db, opts.name, recipeHash(recipe));
        const built = await buildImage({
          imagesDir: ctx.home.images,
          recipe,
          sources,
          ...(opts.mirror ? { mirror: opts.mirror } : {}),
          onProgress: (line) => process.stderr.write(`[image] ${line}\n`),
        });
        const rec = await registerBuiltImage(db, opts.name, built);
        ctx.log.info({ image: rec.name, recipeHash: built.recipeHash, cached: built.cached, seconds: built.seconds }, 'image build');
        if (opts.json) return printJson({ image: rec, manifest: manifestSummary(built.manifest), cached: built.cached, seconds: built.seconds });
        process.stdout.write(
          `image "${rec.name}" → ${built.dir}${built.cached ? ' (cached)' : ''} in ${built.seconds.toFixed(1)} s\n` +
            `  disk ${formatBytes(rec.file_size)} (virtual ${formatBytes(rec.virtual_size)}), kernel ${built.manifest.build?.kernel.version}\n` +
            `  guest agent ${agentLine(built.manifest)}\n`,
        );
      }),
    );

  image
    .command('import <file>')
    .description('register an existing disk image (copied into the image dir; the original is left alone)')
    .option('--name <name>', 'image name (default: from the file name)')
    .option('--kernel <file>', 'kernel for direct -kernel boot')
    .option('--initrd <file>', 'initrd for the kernel')
    .option('--cmdline <line>', 'kernel command line for the kernel')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, file: string, opts: { name?: string; kernel?: string; initrd?: string; cmdline?: string; json?: boolean }) => {
        const r = await importImage(await ctx.db(), { imagesDir: ctx.home.images, file, ...opts });
        ctx.log.info({ image: r.row.name, dir: r.dir }, 'image import');
        if (opts.json) return printJson({ image: r.row, manifest: manifestSummary(r.manifest) });
        process.stdout.write(`image "${r.row.name}" imported → ${r.row.disk_path} (${r.manifest.disk.format}, virtual ${formatBytes(r.row.virtual_size)})\n`);
      }),
    );

  image
    .command('list')
    .description('list the images registered in this data dir')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const rows = await listImages(await ctx.db());
        if (opts.json) return printJson(rows);
        printTable(rows.map(row), ['name', 'source', 'size', 'virtual', 'recipe_hash', 'created_at']);
      }),
    );

  image
    .command('show <name>')
    .description('show an image: record, manifest summary and whether its files still match the manifest')
    .option('--deep', 'also verify every sha256 (reads all bytes)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { deep?: boolean; json?: boolean }) => {
        const { image: rec, manifest, problems } = await showImage(await ctx.db(), name, { deep: Boolean(opts.deep) });
        const out = { image: rec, manifest: manifest ? manifestSummary(manifest) : null, verified: problems.length === 0, problems };
        if (opts.json) return printJson(out);
        const lines = Object.entries(row(rec)).map(([k, v]) => `${k.padEnd(14)} ${v ?? '-'}`);
        if (manifest?.cmdline) lines.push(`${'cmdline'.padEnd(14)} ${manifest.cmdline}`);
        if (manifest?.build) lines.push(`${'kernel'.padEnd(14)} ${manifest.build.kernel.version} (CONFIG_VMGENID=${manifest.build.kernel.config.CONFIG_VMGENID})`);
        if (manifest) lines.push(`${'guest agent'.padEnd(14)} ${agentLine(manifest)}`);
        lines.push(`${'verified'.padEnd(14)} ${problems.length === 0 ? (opts.deep ? 'yes (sha256)' : 'yes (sizes)') : `NO: ${problems.join('; ')}`}`);
        process.stdout.write(`${lines.join('\n')}\n`);
        return problems.length === 0 ? 0 : 1;
      }),
    );

  image
    .command('rm <name>')
    .description('unregister an image; its files go too unless another record uses them (built images stay cached unless --purge)')
    .option('--purge', 'also delete the cached files of a built image (other homes sharing the cache lose them)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { purge?: boolean; json?: boolean }) => {
        const r = await removeImage(await ctx.db(), ctx.home.images, name, { purge: Boolean(opts.purge) });
        if (opts.json) return printJson(r);
        process.stdout.write(`image "${name}" removed${r.filesRemoved ? `, files deleted (${r.dir})` : `; files kept in ${r.dir} (${r.keptBecause})`}\n`);
      }),
    );
}

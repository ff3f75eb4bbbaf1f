import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { VmforkError } from '../errors.js';
import { sha256File } from '../util/index.js';

export const MANIFEST_FILE = 'manifest.json';

const digest = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });
const fileName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'must be a plain file name inside the image dir');

/** What was built: only in manifests of built images. */
const buildInfo = z.object({
  recipeHash: z.string(),
  recipe: z.record(z.string(), z.unknown()),
  mirror: z.string(),
  suite: z.string(),
  seconds: z.number(),
  steps: z.array(z.object({ name: z.string(), seconds: z.number() })),
  packages: z.array(z.object({ name: z.string(), version: z.string(), arch: z.string() })),
  kernel: z.object({ version: z.string(), config: z.record(z.string(), z.string()) }),
  modules: z.object({ kept: z.number(), dropped: z.number(), bytesBefore: z.number(), bytesAfter: z.number() }),
  hygiene: z.object({ machineIdBytes: z.number(), sshHostKeys: z.array(z.string()), randomSeed: z.boolean() }),
  rootfsBytes: z.number(),
  /** vmfork-guest as installed and as it described itself when run in the rootfs; absent: no agent (script path). */
  guestAgent: z.object({ version: z.string(), protocolVersion: z.number().int(), sha256: z.string(), bytes: z.number() }).optional(),
});

/**
 * manifest.json beside an image's files. Other modules need only `disk`, `kernel`, `initrd` and `cmdline`
 * (see resolveImageBoot in image-registry.ts); `files` makes the directory verifiable.
 */
export const manifestSchema = z.object({
  formatVersion: z.literal(1),
  source: z.enum(['built', 'imported']),
  createdAt: z.string(),
  disk: z.object({ file: fileName, format: z.string(), virtualSize: z.number().int().positive() }),
  kernel: fileName.nullable(),
  initrd: fileName.nullable(),
  /** Kernel command line for -kernel boots; null when the image boots from its own bootloader. */
  cmdline: z.string().nullable(),
  files: z.record(fileName, digest),
  build: buildInfo.optional(),
  import: z.object({ originalPath: z.string() }).optional(),
});

export type ImageManifest = z.infer<typeof manifestSchema>;

/** What an image says about its guest agent: the fallback decision (agent path or script path) reads this. */
export interface ImageGuestAgent {
  version: string;
  protocolVersion: number;
}

/** The image's vmfork-guest, or undefined when it has none (imported images, builds with --no-guest-agent). */
export function imageGuestAgent(manifest: ImageManifest): ImageGuestAgent | undefined {
  const a = manifest.build?.guestAgent;
  return a ? { version: a.version, protocolVersion: a.protocolVersion } : undefined;
}
export type BuildInfo = z.infer<typeof buildInfo>;
export type FileDigest = z.infer<typeof digest>;

export async function digestFile(path: string): Promise<FileDigest> {
  const [sha256, st] = await Promise.all([sha256File(path), stat(path)]);
  return { sha256, size: st.size };
}

/** Writes the manifest atomically (temp file + rename), so a reader never sees half of it. */
export async function writeManifest(dir: string, manifest: ImageManifest): Promise<string> {
  const path = join(dir, MANIFEST_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify(manifestSchema.parse(manifest), null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}

/** Reads and validates `<dir>/manifest.json`; VMFORK_IMAGE_INVALID when missing or malformed. */
export async function readManifest(dir: string): Promise<ImageManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `${path} is not JSON`, { cause: err, details: { path } });
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `${path} is malformed: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
      details: { path },
    });
  }
  return result.data;
}

export interface VerifyOptions {
  /** Also recompute every sha256 (reads every byte: ~1 s per 500 MB). Without it only sizes are compared. */
  deep?: boolean;
}

/**
 * Checks that the files a manifest lists exist with the recorded size (and digest when `deep`), and that the
 * disk, kernel and initrd it names are among them. Returns the problems found; empty means the dir is good.
 */
export async function verifyManifest(dir: string, manifest: ImageManifest, options: VerifyOptions = {}): Promise<string[]> {
  const problems: string[] = [];
  for (const f of [manifest.disk.file, manifest.kernel, manifest.initrd]) {
    if (f && !manifest.files[f]) problems.push(`${f} is not listed in files`);
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      problems.push(`${name} is missing`);
      continue;
    }
    if (size !== want.size) {
      problems.push(`${name} has ${size} bytes, manifest says ${want.size}`);
    } else if (options.deep && (await sha256File(path)) !== want.sha256) {
      problems.push(`${name} does not match its sha256`);
    }
  }
  return problems;
}

/** readManifest + verifyManifest; undefined when the dir is missing or anything is wrong with it. */
export async function loadVerifiedManifest(dir: string, options: VerifyOptions = {}): Promise<ImageManifest | undefined> {
  try {
    const manifest = await readManifest(dir);
    return (await verifyManifest(dir, manifest, options)).length === 0 ? manifest : undefined;
  } catch {
    return undefined;
  }
}

import { resolve } from 'node:path';
import { isVmforkError, VmforkError } from '../errors.js';
import { QEMU_IMG_BINARY, qemuProgramVersion, runQemuTool, type QemuVersion } from '../host/index.js';
import type { RunResult } from '../util/index.js';

/**
 * A thin typed wrapper over `qemu-img`. Every path is made absolute before it is passed: qemu-img reads
 * `name:rest` as a protocol prefix (`nbd:`, `ssh:` …) when there is no slash before the colon, and records a
 * relative backing file relative to the overlay, not to our cwd.
 * Failures are VMFORK_QEMU_IMG_FAILED with qemu-img's stderr; a missing qemu-img is VMFORK_QEMU_MISSING.
 */

export type ImageFormat = 'qcow2' | 'raw';

export interface ImageInfo {
  format: string;
  /** Size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on the host filesystem. */
  actualSize: number;
  /** Backing file as recorded in the image (may be relative to the image); undefined without one. */
  backingFilename?: string;
  /** The backing file resolved by qemu-img. */
  fullBackingFilename?: string;
  backingFormat?: string;
  /** qcow2 `dirty-flag`: the image was not closed cleanly (lazy refcounts). */
  dirty: boolean;
}

/**
 * What `check` found. It returns this rather than throwing: an importer wants to refuse a corrupt image
 * (VMFORK_IMAGE_INVALID, see `assertImageUsable`), while a leak only wastes space and is worth a warning.
 * - `clean`: no problems.
 * - `leaks`: clusters allocated but unused (harmless; `qemu-img check -r leaks` reclaims them).
 * - `corrupt`: metadata is inconsistent; data may be lost.
 * - `unsupported`: the format has no consistency check (raw).
 */
export type CheckStatus = 'clean' | 'leaks' | 'corrupt' | 'unsupported';

export interface CheckResult {
  status: CheckStatus;
  corruptions: number;
  leaks: number;
  /** Errors that stopped the check itself from completing. */
  checkErrors: number;
}

async function qemuImg(args: string[], timeoutMs = 10 * 60_000): Promise<RunResult> {
  return runQemuTool(QEMU_IMG_BINARY, args, { errorCode: 'VMFORK_QEMU_IMG_FAILED', timeoutMs });
}

/**
 * Creates a qcow2 overlay whose reads fall through to `backing` until written: every VM and child gets one, so
 * the base image and a template's disk are never written again. extended_l2 splits each 64 KiB cluster into 32
 * subclusters: a guest's small scattered writes (a forked child writes ~45 of them while taking its identity)
 * then allocate 2 KiB each instead of copying up a whole 64 KiB cluster from the backing file.
 */
export async function createOverlay(backing: string, path: string, options: { backingFormat: ImageFormat; subclusters?: boolean }): Promise<void> {
  // a backing read over NBD is named by its URL (`nbd+unix:///…`), not a path; copy-on-read wants no subclusters
  const from = backing.includes('://') ? backing : resolve(backing);
  const opts = options.subclusters === false ? [] : ['-o', 'extended_l2=on'];
  await qemuImg(['create', '-q', '-f', 'qcow2', ...opts, '-F', options.backingFormat, '-b', from, resolve(path)]);
}

/** Creates an empty image of `sizeBytes` (sparse for raw, metadata-only for qcow2). */
export async function createImage(path: string, options: { format: ImageFormat; sizeBytes: number }): Promise<void> {
  await qemuImg(['create', '-q', '-f', options.format, resolve(path), String(options.sizeBytes)]);
}

/**
 * Reads an image's metadata. `forceShare` (-U) reads an image a running QEMU holds locked — the numbers may then
 * be slightly stale, which is fine for reporting sizes.
 */
export async function info(path: string, options: { forceShare?: boolean } = {}): Promise<ImageInfo> {
  const r = await qemuImg(['info', '--output=json', ...(options.forceShare ? ['-U'] : []), resolve(path)], 60_000);
  const j = parseJson(r.stdout, 'info') as Record<string, unknown>;
  const out: ImageInfo = {
    format: String(j.format),
    virtualSize: Number(j['virtual-size']),
    actualSize: Number(j['actual-size'] ?? 0),
    dirty: j['dirty-flag'] === true,
  };
  if (typeof j['backing-filename'] === 'string') out.backingFilename = j['backing-filename'];
  if (typeof j['full-backing-filename'] === 'string') out.fullBackingFilename = j['full-backing-filename'];
  if (typeof j['backing-filename-format'] === 'string') out.backingFormat = j['backing-filename-format'];
  return out;
}

/** Checks an image's consistency. Throws only when the check could not run (unreadable, not that format). */
export async function check(path: string, options: { format?: ImageFormat } = {}): Promise<CheckResult> {
  const args = ['check', '--output=json', ...(options.format ? ['-f', options.format] : []), resolve(path)];
  // exit codes: 0 clean, 2 corruptions, 3 leaks, 63 no check for this format; 1 means the check itself failed
  const r = await runQemuTool(QEMU_IMG_BINARY, args, { allowFailure: true, timeoutMs: 10 * 60_000 });
  if (r.code === 63) return { status: 'unsupported', corruptions: 0, leaks: 0, checkErrors: 0 };
  if (![0, 2, 3].includes(r.code)) {
    throw new VmforkError('VMFORK_QEMU_IMG_FAILED', `qemu-img check ${path} exited ${r.code}: ${tail(r.stderr)}`, {
      details: { path, exitCode: r.code },
    });
  }
  const j = parseJson(r.stdout, 'check') as Record<string, unknown>;
  const corruptions = Number(j.corruptions ?? 0);
  const leaks = Number(j.leaks ?? 0);
  const checkErrors = Number(j['check-errors'] ?? 0);
  const status: CheckStatus = corruptions > 0 || checkErrors > 0 ? 'corrupt' : leaks > 0 ? 'leaks' : 'clean';
  return { status, corruptions, leaks, checkErrors };
}

/** For importers: an image that is unreadable or corrupt is VMFORK_IMAGE_INVALID; leaks are accepted. */
export async function assertImageUsable(path: string): Promise<{ info: ImageInfo; check: CheckResult }> {
  try {
    const i = await info(path);
    const c = await check(path);
    if (c.status === 'corrupt') {
      throw new VmforkError('VMFORK_IMAGE_INVALID', `${path}: qemu-img check found ${c.corruptions} corruptions and ${c.checkErrors} check errors`, {
        details: { path, ...c },
      });
    }
    return { info: i, check: c };
  } catch (err) {
    if (isVmforkError(err) && err.code === 'VMFORK_QEMU_IMG_FAILED') {
      throw new VmforkError('VMFORK_IMAGE_INVALID', `${path} is not a readable disk image`, { cause: err, details: { path } });
    }
    throw err;
  }
}

/** Converts (and with `compress`, qcow2-compresses) an image; `dst` is written whole. */
export async function convert(src: string, dst: string, options: { outFormat: ImageFormat; compress?: boolean; srcFormat?: ImageFormat }): Promise<void> {
  if (options.compress && options.outFormat !== 'qcow2') {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'only qcow2 output can be compressed');
  }
  const args = ['convert', '-q', '-O', options.outFormat];
  if (options.srcFormat) args.push('-f', options.srcFormat);
  if (options.compress) args.push('-c');
  await qemuImg([...args, resolve(src), resolve(dst)]);
}

/** The qemu-img version (e.g. `7.2.22`) and its full build line. */
export async function version(): Promise<QemuVersion> {
  return qemuProgramVersion(QEMU_IMG_BINARY);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new VmforkError('VMFORK_QEMU_IMG_FAILED', `qemu-img ${what} printed no JSON: ${text.slice(0, 200)}`, { cause: err });
  }
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n');
}

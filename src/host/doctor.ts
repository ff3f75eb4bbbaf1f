import { access, constants } from 'node:fs/promises';
import type { HomeLayout } from '../config/index.js';
import { isVmforkError, toVmforkError } from '../errors.js';
import { formatBytes, which } from '../util/index.js';
import type { CgroupSys } from './cgroup-detect.js';
import { confinementLayers, type ConfinementLayer } from './confinement.js';
import { detectAccel, readHostFacts, type Accel, type AccelChoice, type HostFacts } from './accel.js';
import { freeSpace } from './disk-space.js';
import { probeNetworking } from './net-probe.js';
import { QEMU_IMG_BINARY, QEMU_PACKAGES, QEMU_SYSTEM_BINARY, qemuProgramVersion, type QemuVersion } from './qemu-binary.js';

/** Template RAM lives in /dev/shm; below one default-sized guest (512 MiB) no template fits. */
export const SHM_MIN_BYTES = 512 * 1024 ** 2;
/** A guest image build needs ~1 GiB of debootstrap tree, a 2 GiB raw filesystem and the ~650 MiB qcow2. */
export const DATA_DIR_MIN_BYTES = 4 * 1024 ** 3;

export interface DoctorCheck {
  /** Stable identifier: qemu-system, qemu-img, accel, shm, data-dir, network, root, guest-image, debootstrap. */
  name: string;
  ok: boolean;
  /** A failed required check makes the whole report fail (non-zero exit). */
  required: boolean;
  detail: string;
  /** What to do when the check failed; null when it passed. */
  fix: string | null;
}

export interface DoctorReport {
  /** True when every required check passed. */
  ok: boolean;
  accel: Accel;
  accelReason: string;
  qemuVersion: string | null;
  qemuBuild: string | null;
  qemuImgVersion: string | null;
  shmFreeBytes: number | null;
  dataDirFreeBytes: number | null;
  root: boolean;
  /** Each layer confining QEMU, on or off and why; also a `confine-<layer>` check each (not required). */
  confinement: ConfinementLayer[];
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  home: HomeLayout;
  /** The images registered in the data dir (name and base disk); the host layer does not read the store itself. */
  images: () => Promise<readonly { name: string; disk_path: string }[]>;
  /** `--accel`: a forced `kvm` that cannot work fails the accel check. @default 'auto' */
  accel?: AccelChoice;
  /** Host facts for accelerator detection. @default readHostFacts() */
  facts?: HostFacts;
  /** The cgroup fs to probe. @default the host's */
  cgroups?: CgroupSys;
}

/** Checks everything vmfork needs from this host. Never throws for a missing piece: that is a failed check. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const root = process.getuid?.() === 0;
  const [qemu, qemuImg, accel, shm, data, network, image, debootstrap, confinement] = await Promise.all([
    checkQemu(QEMU_SYSTEM_BINARY),
    checkQemu(QEMU_IMG_BINARY),
    checkAccel(options),
    checkSpace('shm', '/dev/shm', SHM_MIN_BYTES, 'template memory files'),
    checkSpace('data-dir', options.home.root, DATA_DIR_MIN_BYTES, 'images, overlays and templates'),
    probeNetworking(),
    checkImage(options.images),
    which('debootstrap'),
    confinementLayers(options.cgroups ? { cgroups: options.cgroups } : {}),
  ]);
  const checks: DoctorCheck[] = [
    qemu.check,
    qemuImg.check,
    accel.check,
    shm.check,
    data.check,
    { name: 'network', ok: network.ok, required: true, detail: network.detail, fix: network.ok ? null : (network.fix ?? null) },
    {
      name: 'root',
      ok: root,
      required: false,
      detail: root ? 'running as root' : `running as uid ${process.getuid?.() ?? '?'}: image builds and tap networking need root`,
      fix: root ? null : 'run vmfork as root (sudo)',
    },
    image,
    {
      name: 'debootstrap',
      ok: debootstrap !== undefined,
      required: false,
      detail: debootstrap ? `found at ${debootstrap}` : 'not found: needed only to build guest images (vmfork image build)',
      fix: debootstrap ? null : 'apt-get install debootstrap',
    },
    ...confinement.map((c) => ({ name: `confine-${c.layer}`, ok: c.on, required: false, detail: `${c.on ? 'on' : 'off'}: ${c.why}`, fix: c.fix })),
  ];
  return {
    ok: checks.every((c) => c.ok || !c.required),
    accel: accel.accel,
    accelReason: accel.reason,
    qemuVersion: qemu.version?.version ?? null,
    qemuBuild: qemu.version?.build ?? null,
    qemuImgVersion: qemuImg.version?.version ?? null,
    shmFreeBytes: shm.freeBytes,
    dataDirFreeBytes: data.freeBytes,
    root,
    confinement,
    checks,
  };
}

async function checkQemu(binary: string): Promise<{ check: DoctorCheck; version?: QemuVersion }> {
  const name = binary === QEMU_IMG_BINARY ? 'qemu-img' : 'qemu-system';
  try {
    const version = await qemuProgramVersion(binary);
    return { version, check: { name, ok: true, required: true, detail: version.build, fix: null } };
  } catch (err) {
    const e = toVmforkError(err);
    const fix = e.code === 'VMFORK_QEMU_MISSING' ? `apt-get install ${QEMU_PACKAGES[binary]}` : `check that ${binary} runs`;
    return { check: { name, ok: false, required: true, detail: e.message, fix } };
  }
}

async function checkAccel(options: DoctorOptions): Promise<{ accel: Accel; reason: string; check: DoctorCheck }> {
  const facts = options.facts ?? (await readHostFacts());
  try {
    const chosen = detectAccel(facts, options.accel ?? 'auto');
    return { ...chosen, check: { name: 'accel', ok: true, required: true, detail: `${chosen.accel}: ${chosen.reason}`, fix: null } };
  } catch (err) {
    if (!isVmforkError(err)) throw err;
    // report what auto would pick, so a failed forced choice still says what would work
    const auto = detectAccel(facts, 'auto');
    const fix = 'use --accel auto (or tcg); KVM needs vmx/svm in /proc/cpuinfo, kvm_intel/kvm_amd loaded and a usable /dev/kvm';
    return { ...auto, check: { name: 'accel', ok: false, required: true, detail: err.message, fix } };
  }
}

async function checkSpace(
  name: string,
  path: string,
  minBytes: number,
  purpose: string,
): Promise<{ freeBytes: number | null; check: DoctorCheck }> {
  try {
    const { measured, freeBytes } = await freeSpace(path);
    const ok = freeBytes >= minBytes;
    const where = measured === path ? path : `${path} (measured on ${measured})`;
    return {
      freeBytes,
      check: {
        name,
        ok,
        required: true,
        detail: `${formatBytes(freeBytes)} free in ${where} for ${purpose}; at least ${formatBytes(minBytes)} needed`,
        fix: ok ? null : `free space in ${measured}${name === 'data-dir' ? ' or point --home / VMFORK_HOME elsewhere' : ' (or enlarge the tmpfs)'}`,
      },
    };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { freeBytes: null, check: { name, ok: false, required: true, detail: `cannot measure ${path}: ${msg}`, fix: `check that ${path} exists` } };
  }
}

async function checkImage(listImages: DoctorOptions['images']): Promise<DoctorCheck> {
  const name = 'guest-image';
  const fix = 'vmfork image build --name default';
  try {
    const images = await listImages();
    const usable: string[] = [];
    for (const img of images) if (await readable(img.disk_path)) usable.push(img.name);
    const chosen = usable.includes('default') ? 'default' : usable[0];
    if (chosen) {
      const path = images.find((i) => i.name === chosen)?.disk_path ?? '';
      return { name, ok: true, required: false, detail: `image "${chosen}" at ${path} (${usable.length} usable)`, fix: null };
    }
    const detail = images.length === 0 ? 'no guest image registered' : `registered images have no readable disk: ${images.map((i) => `${i.name} (${i.disk_path})`).join(', ')}`;
    return { name, ok: false, required: false, detail, fix };
  } catch (err) {
    return { name, ok: false, required: false, detail: `cannot read the image list: ${toVmforkError(err).message}`, fix };
  }
}

async function readable(path: string): Promise<boolean> {
  return access(path, constants.R_OK).then(
    () => true,
    () => false,
  );
}

import { z } from 'zod';
import { VmforkError } from '../errors.js';
import { isValidName } from '../util/index.js';

/**
 * The typed description of one QEMU VM: everything `buildQemuArgv` turns into a command line, and what
 * `vms.spec_json` stores (always the parsed shape, every default applied). Cold-booted VMs, template parents and
 * forked children all use it; they differ only in memory backing (`share`), `kernel` and `incoming`.
 *
 * A spec is parsed once, where it is made (a boot or template plan, a child's spec) or read back from the store;
 * everything below takes the branded `VmSpec`, which only `parseVmSpec` produces.
 */

// Newlines and NULs: a path with a newline would corrupt the line-oriented logs and state files that name it, and
// no real VM file needs one. Relative paths would resolve against QEMU's cwd, not ours.
const absPath = z
  .string()
  .min(2)
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => !/[\n\r\0]/.test(p), 'must not contain newlines or NUL');

/** QEMU ids must start with a letter; kept lower-case so layouts compare byte-for-byte. */
const deviceId = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be a lower-case letter then letters, digits or -, at most 31 characters');

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const guid = z.string().regex(GUID, 'must be a GUID like 8f3b6a52-6f0e-4b4e-9a1e-4b5ad8d5b1c1');

// The low bit of the first octet marks a multicast address, which a NIC cannot own.
const mac = z
  .string()
  .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'must be a MAC like 52:54:00:12:34:56')
  .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, 'must be a unicast MAC (first octet even)')
  .transform((m) => m.toLowerCase());

const memoryBacking = z.discriminatedUnion('kind', [
  /** Plain anonymous RAM: cold-booted VMs that will never be forked. */
  z.strictObject({ kind: z.literal('anonymous') }),
  /**
   * RAM in a file. A template parent maps it `share: true`, so its RAM lands in the file and the migration
   * stream can skip it (x-ignore-shared); a child maps the same file `share: false` (MAP_PRIVATE, copy-on-write).
   */
  z.strictObject({ kind: z.literal('file'), path: absPath, share: z.boolean() }),
  /**
   * Anonymous RAM under the backend id a template's file has (`mem`): a child whose memory arrives by postcopy
   * migration (src/qemu/postcopy.ts) — the RAM block keeps the template's name, and userfaultfd serves its pages.
   */
  z.strictObject({ kind: z.literal('ram') }),
]);

const diskSpec = z.strictObject({
  id: deviceId,
  path: absPath,
  format: z.enum(['qcow2', 'raw']),
  readOnly: z.boolean().default(false),
  /** QEMU's own default; `none` needs O_DIRECT, which tmpfs refuses. */
  cache: z.enum(['writeback', 'writethrough', 'none', 'directsync', 'unsafe']).default('writeback'),
  /** virtio-blk serial: the guest finds the disk as /dev/disk/by-id/virtio-<serial> whatever its PCI slot. */
  serial: z.string().regex(/^[a-z0-9-]{1,20}$/, 'must be 1-20 of [a-z0-9-]').optional(),
  /**
   * Copy what is read from the backing file into this image (a lazy child's disk over NBD: what the guest reads
   * once is local from then on). Guest-invisible; the image must not have subclusters (QEMU 7.2 asserts).
   */
  copyOnRead: z.boolean().optional(),
});

const nicSpec = z.strictObject({
  id: deviceId,
  mac,
  backend: z.discriminatedUnion('kind', [
    /** A tap (created beforehand, usually inside the VM's network namespace); IFNAMSIZ allows 15 characters. */
    z.strictObject({ kind: z.literal('tap'), ifname: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'must be a valid interface name (1-15 characters)') }),
    /** QEMU's user-mode network: no root needed, no inbound connections. */
    z.strictObject({ kind: z.literal('user') }),
  ]),
});

const kernelBoot = z.strictObject({
  kernel: absPath,
  initrd: absPath.optional(),
  cmdline: z.string().refine((c) => !/[\n\r\0]/.test(c), 'must not contain newlines'),
});

/** Ids the argv builder uses for its own objects; a disk or NIC may not take them. */
export const RESERVED_DEVICE_IDS = ['mem', 'vserial0', 'agent0', 'vfg0', 'vmgenid0', 'qmp0', 'serial0', 'vga0'] as const;

export const vmSpecSchema = z
  .strictObject({
    name: z.string().refine(isValidName, 'must be an RFC 1123 label'),
    accel: z.enum(['kvm', 'tcg']),
    /** TCG translation-block cache in MiB (QEMU's default is 1 GiB of address space, ~26 MiB touched idle). */
    tbSizeMiB: z.number().int().min(1).max(4096).optional(),
    machine: z.literal('q35').default('q35'),
    /** @default `max` under TCG, `host` under KVM */
    cpuModel: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'must be a QEMU CPU model name').optional(),
    cpus: z.number().int().min(1).max(255).default(1),
    memoryMiB: z.number().int().min(64).max(1024 * 1024),
    memory: memoryBacking.default({ kind: 'anonymous' }),
    /** Direct kernel boot; children resume a running guest and need none. */
    kernel: kernelBoot.optional(),
    disks: z.array(diskSpec).default([]),
    nics: z.array(nicSpec).default([]),
    /** Unix socket of the guest agent's virtio-serial port. */
    agentSocket: absPath.optional(),
    /**
     * Unix socket of vmfork-guest's own virtio-serial port (docs/guest-agent.md): set for VMs of images that carry
     * the agent, absent otherwise (the device layout of specs without it is unchanged).
     */
    vmforkAgentSocket: absPath.optional(),
    /** Unix socket of the QMP monitor; vmfork controls every VM through it. */
    qmpSocket: absPath,
    /**
     * The guest's serial console goes to this file: written by QEMU itself (unbounded: specs recorded before issue
     * 13), or, with `serialSocket`, by the VM's capped serial logger (src/vm/serial-logger.ts).
     */
    serialLog: absPath.optional(),
    /** QEMU serves the serial port on this unix socket; the serial logger copies it into `serialLog`. */
    serialSocket: absPath.optional(),
    pidfile: absPath.optional(),
    /**
     * A VGA display device with this much video memory (MiB; QEMU takes 1 to 256 and rounds up to a power of 2).
     * Guest-visible: part of the device layout, so a child has it exactly when its template has. Absent: no display
     * device at all (`-nodefaults`), the command line of every VM made before screens existed.
     */
    vga: z.strictObject({ memMiB: z.number().int().min(1).max(256) }).optional(),
    /**
     * QEMU serves the VGA screen over VNC on this unix socket (no VNC auth: the socket's mode and the API's session
     * are the guard; docs/console.md). Not guest-visible: a child may listen where its template did not.
     */
    vncSocket: absPath.optional(),
    /** VM generation id: a new one per child makes the guest reseed its RNG after a fork. */
    vmgenid: guid.optional(),
    /** SMBIOS system UUID. */
    uuid: guid.optional(),
    /** `defer`: start paused, waiting for `migrate-incoming` (forked children). */
    incoming: z.literal('defer').optional(),
    /**
     * The device (and RAM) state file a `defer` QEMU loads: vmfork opens it and hands QEMU the descriptor at spawn
     * (`migrate-incoming fd:3`, src/qemu/migration-state.ts), so a sandboxed QEMU that may not exec `cat` still reads it.
     */
    incomingState: absPath.optional(),
    /** QEMU stays up (paused) when the guest powers off, so a VM being customized can be started again. */
    noShutdown: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    if (s.cpuModel === 'host' && s.accel !== 'kvm') {
      ctx.addIssue({ code: 'custom', path: ['cpuModel'], message: 'cpu model "host" needs accel kvm (use "max" under TCG)' });
    }
    if (s.tbSizeMiB !== undefined && s.accel !== 'tcg') {
      ctx.addIssue({ code: 'custom', path: ['tbSizeMiB'], message: 'the translation cache size only applies to accel tcg' });
    }
    if (s.vncSocket !== undefined && s.vga === undefined) {
      ctx.addIssue({ code: 'custom', path: ['vncSocket'], message: 'a VNC server needs a display: give vga too' });
    }
    const seen = new Set<string>(RESERVED_DEVICE_IDS);
    for (const [list, items] of [['disks', s.disks], ['nics', s.nics]] as const) {
      items.forEach((item, i) => {
        if (seen.has(item.id)) ctx.addIssue({ code: 'custom', path: [list, i, 'id'], message: `device id "${item.id}" is reserved or already used` });
        seen.add(item.id);
      });
    }
  })
  .transform((s) => ({ ...s, cpuModel: s.cpuModel ?? defaultCpuModel(s.accel) }))
  .brand<'VmSpec'>();

/** What callers write (defaults may be left out). */
export type VmSpecInput = z.input<typeof vmSpecSchema>;
/** A validated spec with every default applied; only `parseVmSpec` makes one. */
export type VmSpec = z.output<typeof vmSpecSchema>;

/** `max` exposes every feature TCG can emulate; `host` passes the real CPU through and exists only under KVM. */
export function defaultCpuModel(accel: 'kvm' | 'tcg'): string {
  return accel === 'kvm' ? 'host' : 'max';
}

/**
 * Validates a spec and applies its defaults. Throws VMFORK_INVALID_ARGUMENT naming every bad field. A parsed spec
 * is valid input again (what the store keeps is read back through here).
 */
export function parseVmSpec(input: unknown): VmSpec {
  const r = vmSpecSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || 'spec'}: ${i.message}`);
  throw new VmforkError('VMFORK_INVALID_ARGUMENT', `invalid VM spec: ${problems.join('; ')}`, { details: { problems } });
}

/** Reads back a spec the store kept as JSON (`vms.spec_json`, `templates.spec_json`). */
export function decodeVmSpec(json: string): VmSpec {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new VmforkError('VMFORK_STORE_FAILED', `a stored VM spec is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseVmSpec(value);
}

import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { VmforkError } from '../errors.js';
import type { ChildCustomizer } from '../fork/index.js';
import { redactText, shQuote } from '../util/index.js';

/**
 * Phase 2 of a pool child, after its identity: the pool's `perChild` hooks (scripts in the image, root-owned, run
 * as root with their args and a deadline — like Horizon's post-synchronization scripts) and its machine password.
 *
 * The password is drawn per child, handed ONCE to the hooks through the guest agent's stdin of a single exec (the
 * runner reads it into a shell variable and pipes it to each hook's stdin), and forgotten: the host keeps only a
 * salted scrypt hash of its sha256 — enough to check a value later, never enough to recover it. It never appears in
 * a command line, the store, a log, a task event or the data dir.
 */

/** One per-child hook of a pool spec: a script in the image, its args and its deadline. */
export interface PerChildHook {
  path: string;
  args: Record<string, string>;
  timeoutSeconds: number;
}

/** What phase 2 needs of a pool spec (the pool room's PoolSpec has it). */
export interface Phase2Spec {
  name: string;
  customize: { perChild: readonly PerChildHook[]; machinePassword: boolean };
}

/** Per-child hooks get their args as `--key=value` (keys in order), plus the child and pool in the environment. */
export function hookArgs(args: Record<string, string>): string[] {
  return Object.keys(args)
    .sort()
    .map((k) => `--${k}=${args[k] ?? ''}`);
}

/** The one script the agent runs for a child's hooks; the password (if any) is the first line of its stdin. */
export function hooksRunner(hooks: readonly PerChildHook[], withPassword: boolean): string {
  const lines = [
    'set -u',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    withPassword ? "IFS= read -r VMFORK_PW || VMFORK_PW=''" : "VMFORK_PW=''",
    // each hook gets the password on stdin (or nothing), its own deadline, and reports its exit status
    'run_hook() {',
    '  t=$1; p=$2; shift 2',
    `  if [ -n "$VMFORK_PW" ]; then printf '%s\\n' "$VMFORK_PW" | timeout --kill-after=2 "$t" "$p" "$@"; else timeout --kill-after=2 "$t" "$p" "$@" < /dev/null; fi`,
    '  rc=$?',
    "  printf '@@hook %s rc=%s\\n' \"$p\" \"$rc\"",
    '  return $rc',
    '}',
  ];
  for (const h of hooks) lines.push(`run_hook ${h.timeoutSeconds} ${shQuote(h.path)} ${hookArgs(h.args).map(shQuote).join(' ')} || exit $?`);
  lines.push('VMFORK_PW=', 'exit 0');
  return lines.join('\n');
}

/** A fresh machine password: 24 random bytes, base64url (32 characters). */
export function newMachinePassword(): string {
  return randomBytes(24).toString('base64url');
}

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;

/** `scrypt$N$r$p$<salt hex>$<hash hex>` of sha256(password): what the store keeps. */
export function hashMachinePassword(password: string, salt: Buffer = randomBytes(16)): string {
  return hashSha256(createHash('sha256').update(password).digest('hex'), salt);
}

function hashSha256(sha256Hex: string, salt: Buffer): string {
  const hash = scryptSync(sha256Hex, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('hex')}$${hash.toString('hex')}`;
}

/** True when `sha256Hex` is the sha256 of the password whose hash was stored (what a guest-side check reports). */
export function machinePasswordMatches(stored: string, sha256Hex: string): boolean {
  const parts = stored.split('$');
  const [kind, , , , salt, hash] = parts;
  if (kind !== 'scrypt' || parts.length !== 6 || !salt || !hash) return false;
  const candidate = Buffer.from(hashSha256(sha256Hex.toLowerCase(), Buffer.from(salt, 'hex')).split('$')[5] ?? '', 'hex');
  const want = Buffer.from(hash, 'hex');
  return candidate.length === want.length && timingSafeEqual(candidate, want);
}

/**
 * The fork engine's per-child customization for a pool: runs the perChild hooks (with the machine password when the
 * spec asks for one) and returns the password's hash for the child's record. A hook that fails or overruns fails
 * the child with its stderr tail.
 */
export function poolCustomizer(spec: Phase2Spec): ChildCustomizer | undefined {
  const { perChild, machinePassword } = spec.customize;
  if (perChild.length === 0 && !machinePassword) return undefined;
  return async (agent, child) => {
    const password = machinePassword ? newMachinePassword() : undefined;
    const deadline = perChild.reduce((sum, h) => sum + h.timeoutSeconds + 3, 10) * 1000;
    if (perChild.length > 0) {
      const r = await agent.exec('/bin/sh', ['-c', hooksRunner(perChild, password !== undefined)], {
        timeoutMs: deadline,
        ...(password !== undefined ? { input: `${password}\n` } : {}),
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', VMFORK_CHILD: child.name, VMFORK_POOL: spec.name, VMFORK_CHILD_IP: child.ip },
      });
      if (r.exitCode !== 0) {
        const failed = /@@hook (\S+) rc=(\d+)/g;
        // a hook run with `set -x` prints the password it was handed: no output leaves this function in clear
        const [stdout, stderr] = [r.stdout, r.stderr].map((b) => redactText(b.toString(), [password]));
        const last = [...(stdout ?? '').matchAll(failed)].pop();
        const rc = Number(last?.[2] ?? r.exitCode);
        const tail = (stderr ?? '').trim().split('\n').slice(-10).join('\n');
        const why = rc === 124 ? 'did not finish in time' : `exited ${rc}`;
        throw new VmforkError('VMFORK_CUSTOMIZE_FAILED', `per-child hook ${last?.[1] ?? '?'} ${why}${tail ? `:\n${tail}` : ''}`, {
          details: { hook: last?.[1], exitCode: rc, stderrTail: tail },
        });
      }
    }
    return password !== undefined ? { secretHash: hashMachinePassword(password) } : {};
  };
}

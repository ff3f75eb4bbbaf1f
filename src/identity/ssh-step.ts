import { createHash } from 'node:crypto';
import { fact, factList, failed, passed } from './facts.js';
import { shQuote } from '../util/index.js';
import type { IdentityStep, StepFacts } from './types.js';

/**
 * Key types generated per child: ed25519 only, like the image's own first boot (docs/image.md). Every key costs
 * an ssh-keygen run in the guest (~0.12-0.2 s each on a fresh child under TCG; RSA 3072 takes seconds), and every
 * current OpenSSH client speaks ed25519.
 */
export const SSH_KEY_TYPES = ['ed25519'] as const;
/** Records which machine id the keys in /etc/ssh were generated for. */
export const SSH_KEY_MARKER = '/etc/ssh/vmfork-host-keys.machine-id';

/**
 * Fresh host keys per child. Keys a booted template generated (its ssh.service makes an ed25519 key) are
 * inherited by every child, so keys are regenerated unless the marker says they were made for this very machine
 * id — which keeps a second run with the same identity from changing them. In the epilogue sshd is sent SIGHUP,
 * exactly what `systemctl reload ssh` does after its config test: sshd re-execs and loads the new keys, sessions
 * survive, and neither systemctl (~50 ms to start under TCG) nor ExecStartPre runs. Fingerprints are computed
 * host-side from the public keys the guest prints.
 */
/** Prints the pid of the running sshd listener (from its pid file, checked against /proc); false when none. */
const SSHD_PID = 'sshd_pid() { read_first _p /run/sshd.pid; read_first _c "/proc/${_p:-0}/comm"; if [ -n "$_p" ] && [ "$_c" = sshd ]; then echo "$_p"; else return 1; fi; }';

export const sshHostKeysStep: IdentityStep = {
  name: 'ssh-host-keys',
  script: (id) =>
    [
      SSHD_PID,
      `mid=${shQuote(id.machineId)}`,
      'gen=0',
      'if ! ssh_keys_current /etc/ssh "$mid"; then',
      // no other host key (another type, a stray file) may outlive the template; rm is an exec (~0.1 s on a fresh
      // child), so it runs only for such a file, and the key being regenerated is overwritten instead
      '  for f in /etc/ssh/ssh_host_*; do',
      `    case $f in ${SSH_KEY_TYPES.map((t) => `/etc/ssh/ssh_host_${t}_key|/etc/ssh/ssh_host_${t}_key.pub`).join('|')}) ;; *) if [ -e "$f" ]; then rm -f "$f"; fi ;; esac`,
      '  done',
      // ssh-keygen asks before overwriting an existing key (the template's): "y" from a here-document (no fork, unlike
      // a pipe), the question to /dev/null. The private key file keeps its mode 600 (ssh-keygen made it so).
      ...SSH_KEY_TYPES.flatMap((t) => [`  ssh-keygen -q -t ${t} -N '' -C ${shQuote(`root@${id.hostname}`)} -f /etc/ssh/ssh_host_${t}_key > /dev/null <<'VMFORK_Y'`, 'y', 'VMFORK_Y']),
      `  put_line ${SSH_KEY_MARKER} "$mid"`,
      '  gen=1',
      'fi',
      'fact generated "$gen"',
      'if [ "$gen" = 1 ] || ! sshd_pid > /dev/null; then defer sshd; fact sshd reload-deferred; else fact sshd running; fi',
      `read_first v ${SSH_KEY_MARKER}; fact marker "$v"`,
      'for k in /etc/ssh/ssh_host_*_key.pub; do',
      '  if [ -e "$k" ]; then read_first v "$k"; fact pubkey "$v"; fi',
      'done',
    ].join('\n'),
  // sshd's re-exec competes for the vCPU like any restart: after the other steps
  epilogue: () =>
    [
      SSHD_PID,
      'if take_deferred sshd; then',
      '  if pid=$(sshd_pid); then kill -HUP "$pid"; fact sshd reloaded',
      // not running (never started, or stopped): ssh.service's ExecStartPre will also add an RSA key, in the background
      '  else queue_unit ssh.service; fact sshd starting; fi',
      'fi',
    ].join('\n'),
  verify(facts, ctx) {
    const marker = fact(facts, 'marker');
    if (marker !== ctx.identity.machineId) return failed(`key marker is ${JSON.stringify(marker)}, expected the machine id`);
    const fps = sshFingerprints(facts);
    const missing = SSH_KEY_TYPES.filter((t) => !fps.some((f) => f.startsWith(`${t.toUpperCase()} SHA256:`)));
    if (missing.length > 0) return failed(`no ${missing.join(', ')} host key (have: ${fps.join('; ') || 'none'})`);
    const generated = fact(facts, 'generated') === '1';
    const stray = fps.filter((f) => !SSH_KEY_TYPES.some((t) => f.startsWith(`${t.toUpperCase()} SHA256:`)));
    if (generated && stray.length > 0) return failed(`host keys not made for this child are left: ${stray.join('; ')}`);
    const sshd = fact(facts, 'sshd') ?? 'unknown';
    if (!['reloaded', 'running', 'starting'].includes(sshd)) return failed(`sshd: ${sshd}`);
    return passed(`${generated ? 'generated' : 'kept (already made for this machine id)'}; sshd ${sshd}`);
  },
};

const KEY_TYPE_LABELS: Readonly<Record<string, string>> = {
  'ssh-ed25519': 'ED25519',
  'ssh-rsa': 'RSA',
  'ssh-dss': 'DSA',
};

/**
 * The fingerprint `ssh-keygen -lf` prints for an OpenSSH public key line: SHA256 of the key blob, base64 without
 * padding, labelled with the key type (`ED25519 SHA256:…`). Undefined for a line that is not a public key.
 */
export function sshFingerprint(publicKeyLine: string): string | undefined {
  const [type, b64] = publicKeyLine.trim().split(/\s+/);
  if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  // the blob starts with its own type as an SSH string (uint32 length, bytes): anything else is not a key
  const blob = Buffer.from(b64, 'base64');
  if (blob.length < 4 || blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') !== type) return undefined;
  const label = KEY_TYPE_LABELS[type] ?? (type.startsWith('ecdsa-') ? 'ECDSA' : type.toUpperCase());
  const digest = createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
  return `${label} SHA256:${digest}`;
}

/** Fingerprints of every host public key the guest printed; lines that are not keys are kept whole, marked. */
export function sshFingerprints(facts: StepFacts): string[] {
  return factList(facts, 'pubkey').map((line) => sshFingerprint(line) ?? `unparsed: ${line.trim()}`);
}

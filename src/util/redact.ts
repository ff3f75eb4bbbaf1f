/**
 * Task inputs, events and results are stored and streamed to users; a secret must never reach them in clear (issue 7:
 * not the DB, logs, argv or task events). Runners are expected not to pass secrets at all; this is the net under
 * them: any string under a key that names a secret is replaced. Booleans and numbers stay (`machinePassword: true`
 * is a setting, not a password).
 */
const SECRET_KEY = /pass(word|phrase)?|secret|token|private.?key|credential/i;
export const REDACTED = '[redacted]';

export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map(redactSecrets) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' && SECRET_KEY.test(k) ? REDACTED : redactSecrets(v)]),
    ) as T;
  }
  return value;
}

/**
 * Replaces every occurrence of each secret in `text` (a hook's stdout/stderr tail, say: a script run with `set -x`
 * prints the password it was handed) before the text becomes an error, an event or a log line.
 */
export function redactText(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join(REDACTED);
  return out;
}

/** A URL without its password (`postgres://u:***@host/db`): what messages and logs may carry. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/** `postgres://` and `postgresql://` (libpq's two spellings) name a PostgreSQL store; anything else is a SQLite file. */
export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target);
}

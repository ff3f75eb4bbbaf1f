import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Fields that may carry secrets are censored wherever they appear, so a stray `log.info({ req })` cannot leak a
 * machine password or API token into the log file.
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  '*.password',
  '*.token',
  '*.secret',
  'headers.authorization',
  '*.headers.authorization',
  // the web console's session: its cookie, the CSRF token derived from it (src/api/session.ts), and their answers
  'csrf',
  '*.csrf',
  'headers.cookie',
  '*.headers.cookie',
  'headers["x-vmfork-csrf"]',
  '*.headers["x-vmfork-csrf"]',
  'headers["set-cookie"]',
  '*.headers["set-cookie"]',
];

/** A pino logger writing JSON lines to `<logs>/vmfork.log` (stderr stays for humans). */
export function createLogger(logDir: string | undefined, level = process.env.VMFORK_LOG_LEVEL ?? 'info'): Logger {
  if (!logDir) return pino({ level: 'silent' });
  mkdirSync(logDir, { recursive: true });
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } },
    pino.destination({ dest: join(logDir, 'vmfork.log'), mkdir: true, sync: true }),
  );
}

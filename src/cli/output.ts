import { isVmforkError, toVmforkError } from '../errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as an aligned text table (headers upper-cased). */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const row of cells) process.stdout.write(`${line(row)}\n`);
}

function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return String(v);
}

/**
 * Prints an error the way every command does: `error VMFORK_CODE: message` on stderr, or a JSON object on stdout
 * when `--json` was asked, and returns the exit code.
 */
export function reportError(err: unknown, json: boolean): number {
  const e = toVmforkError(err);
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: e.toJSON() }, null, 2)}\n`);
  } else {
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    if (!isVmforkError(err) && process.env.VMFORK_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  }
  return 1;
}

/** How the console writes numbers, sizes and times: compact, the same on every page. */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

/** An ISO time as local `YYYY-MM-DD HH:MM:SS` (sortable, no locale guessing). */
export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (x: number): string => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function seconds(s: number | null | undefined): string {
  return s === null || s === undefined ? '—' : `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
}

export function orDash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === '' ? '—' : String(v);
}

/** `{ running: 3, registered: 2 }` → `running 3, registered 2` (zero counts left out). */
export function counts(c: Record<string, number | undefined>): string {
  const parts = Object.entries(c).filter(([, n]) => (n ?? 0) > 0).map(([state, n]) => `${state} ${n ?? 0}`);
  return parts.length ? parts.join(', ') : 'none';
}

/**
 * Child names of a pool: a pattern with one `{n}` (1, 2, …) or `{n:WIDTH}` (zero-padded: `desk-{n:3}` → desk-001),
 * or an explicit list. Names double as guest hostnames, so every name a pattern can make must be an RFC 1123 label;
 * the checks live here, the messages are worded for the spec's field paths.
 */
export interface NamePattern {
  prefix: string;
  /** 0: no padding. */
  width: number;
  suffix: string;
}

const PLACEHOLDER = /\{n(?::(\d+))?\}/g;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_CHARS = /^[a-z0-9-]*$/;

/** Parses a pattern, or says what is wrong with it. */
export function parseNamePattern(pattern: string): NamePattern | { problem: string } {
  const found = [...pattern.matchAll(PLACEHOLDER)];
  if (found.length !== 1) return { problem: `must contain exactly one {n} or {n:WIDTH}, found ${found.length}` };
  const m = found[0] as RegExpMatchArray;
  const width = m[1] === undefined ? 0 : Number(m[1]);
  if (m[1] !== undefined && (width < 1 || width > 9)) return { problem: `{n:WIDTH}: WIDTH must be 1 to 9, got ${m[1]}` };
  const prefix = pattern.slice(0, m.index);
  const suffix = pattern.slice((m.index ?? 0) + m[0].length);
  if (!LABEL_CHARS.test(prefix) || !LABEL_CHARS.test(suffix)) {
    return { problem: 'outside {n}, only lower-case letters, digits and "-" (names are RFC 1123 labels)' };
  }
  return { prefix, width, suffix };
}

export function formatName(p: NamePattern, n: number): string {
  return `${p.prefix}${String(n).padStart(p.width, '0')}${p.suffix}`;
}

/** Why `name` cannot be a child name, or undefined when it can. */
export function labelProblem(name: string): string | undefined {
  if (LABEL.test(name)) return undefined;
  return `"${name}" is not an RFC 1123 label (lower-case letters, digits and "-", 1-63 characters, no leading or trailing "-")`;
}

/** Names 1..count of a pattern; the first problem found in the ones it makes (the first and the longest). */
export function patternNames(p: NamePattern, count: number): { names: string[]; problem?: string } {
  const names = Array.from({ length: count }, (_, i) => formatName(p, i + 1));
  // the first name has the shortest number, the last the longest: if both are labels, all are
  const problem = labelProblem(names[0] ?? formatName(p, 1)) ?? labelProblem(names[names.length - 1] ?? formatName(p, 1));
  return problem ? { names, problem } : { names };
}

import { FACT_PREFIX } from './shell.js';
import type { StepFacts, StepVerdict } from './types.js';

/** Parsed guest output: step name → its facts. Lines that are not facts (stray program output) are ignored. */
export type IdentityOutput = ReadonlyMap<string, StepFacts>;

const LINE = /^@@step=([a-z][a-z0-9-]*) ([a-z][a-z0-9_]*)=(.*)$/;

export function parseIdentityOutput(stdout: string): IdentityOutput {
  const out = new Map<string, Map<string, string[]>>();
  for (const raw of stdout.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(FACT_PREFIX)) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const [, step = '', key = '', value = ''] = m;
    let facts = out.get(step);
    if (!facts) out.set(step, (facts = new Map()));
    const values = facts.get(key);
    if (values) values.push(value);
    else facts.set(key, [value]);
  }
  return out;
}

/** The last value printed under `key` (a step prints each single-valued fact once), or undefined. */
export function fact(facts: StepFacts, key: string): string | undefined {
  const values = facts.get(key);
  return values === undefined ? undefined : values[values.length - 1];
}

/** Every value printed under `key`, in order. */
export function factList(facts: StepFacts, key: string): readonly string[] {
  return facts.get(key) ?? [];
}

/** `a/b` addresses in `ip -o addr` lines, e.g. `2: eth0    inet6 fe80::1/64 scope link \ valid_lft…`. */
export function addressesIn(lines: readonly string[], family: 'inet' | 'inet6'): { address: string; prefix: number }[] {
  const re = new RegExp(`\\s${family}\\s+([0-9a-fA-F:.]+)/(\\d+)\\s`);
  const found: { address: string; prefix: number }[] = [];
  for (const line of lines) {
    const m = re.exec(`${line} `);
    if (m?.[1] && m[2]) found.push({ address: m[1].toLowerCase(), prefix: Number(m[2]) });
  }
  return found;
}

export function passed(detail?: string): StepVerdict {
  return detail === undefined ? { ok: true } : { ok: true, detail };
}

export function failed(detail: string): StepVerdict {
  return { ok: false, detail };
}

/** For the common "the guest reports X, we asked for Y" check. */
export function expectFact(facts: StepFacts, key: string, want: string, what: string): StepVerdict | undefined {
  const got = fact(facts, key);
  if (got === undefined) return failed(`the guest did not report ${what}`);
  if (got !== want) return failed(`${what} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  return undefined;
}

import fc from 'fast-check';

/** One change to a valid value: a node replaced by junk, a field dropped or added, a node buried deep, a string or number blown up. */
export type Mutation =
  | { kind: 'junk'; at: number; value: unknown }
  | { kind: 'drop'; at: number }
  | { kind: 'unknown'; at: number; key: string; value: unknown }
  | { kind: 'deep'; at: number; depth: number; as: 'array' | 'object' };

const HUGE_STRING = 'x'.repeat(200_000);

/** Values of every wrong type and at every edge: what a careless or hostile client sends. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 2 ** 64, Number.MAX_VALUE, Number.MIN_VALUE, '', ' ', '\u0000', '\ud800', '..', '../../etc/passwd', 'a/b', '%2F', '😀'.repeat(100), HUGE_STRING, [], {}, [[]], { a: {} }, ['default'], { name: 'default' }, '1e999', 'NaN', '-1', '0x10', '1T', '9999999999999999T') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('junk' as const), at: fc.nat(), value: junkValue }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('unknown' as const), at: fc.nat(), key: fc.oneof(fc.constantFrom('colour', '__proto__', 'constructor', 'prototype', '', ' ', 'name ', 'NAME', '$ref'), fc.string({ maxLength: 12 })), value: junkValue }),
  fc.record({ kind: fc.constant('deep' as const), at: fc.nat(), depth: fc.oneof(fc.integer({ min: 2, max: 64 }), fc.constantFrom(200, 500)), as: fc.constantFrom('array' as const, 'object' as const) }),
);

type Node = { parent: Record<string, unknown> | unknown[] | null; key: string | number | null; value: unknown };

function nodes(value: unknown, parent: Node['parent'] = null, key: Node['key'] = null, out: Node[] = []): Node[] {
  out.push({ parent, key, value });
  if (Array.isArray(value)) value.forEach((v, i) => nodes(v, value, i, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) nodes(v, value as Record<string, unknown>, k, out);
  return out;
}

function bury(value: unknown, depth: number, as: 'array' | 'object'): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = as === 'array' ? [v] : { a: v };
  return v;
}

/** The value with one mutation applied (on a deep copy; `at` picks the node, modulo their count). */
export function mutate(value: unknown, m: Mutation): unknown {
  const root = { v: structuredClone(value) as unknown };
  const all = nodes(root.v, root as unknown as Record<string, unknown>, 'v');
  const node = all[m.at % all.length] as Node;
  const set = (v: unknown): void => {
    if (node.parent && node.key !== null) (node.parent as Record<string | number, unknown>)[node.key] = v;
  };
  switch (m.kind) {
    case 'junk':
      set(m.value);
      break;
    case 'drop':
      if (Array.isArray(node.parent) && typeof node.key === 'number') node.parent.splice(node.key, 1);
      else if (node.parent && node.parent !== (root as unknown) && node.key !== null) delete (node.parent as Record<string, unknown>)[node.key];
      else set(undefined);
      break;
    case 'unknown':
      if (node.value && typeof node.value === 'object' && !Array.isArray(node.value)) Object.defineProperty(node.value, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
      else set({ [m.key]: m.value });
      break;
    case 'deep':
      set(bury(node.value, m.depth, m.as));
      break;
  }
  return root.v;
}

import fc from 'fast-check';

/** A JSON Schema node as the API's OpenAPI document has it (generated from the routes' zod schemas). */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  description?: string;
}

/**
 * Names the fuzzer's store has (or will have): a name drawn from here reaches a real record, so the handlers past
 * validation are fuzzed too, not only the 404 of an unknown name.
 */
export const KNOWN_NAMES = ['default', 'desk', 'desk-1', 'desk-2', 'lab', 'lab-1', 'lab-2', 'fuzz', 'fuzz-1'];

/** Values for patterns fast-check cannot draw from (lookaheads) and for free-form fields whose meaning has a grammar. */
const SAMPLES: { when: (s: JsonSchema, key: string) => boolean; values: unknown[] }[] = [
  { when: (s) => s.pattern?.includes('vmfork') === true, values: ['/usr/local/lib/vmfork/hooks/setup.sh', '/usr/local/lib/vmfork/a/b.sh', '/usr/local/lib/vmfork/x'] },
  { when: (s) => s.description?.startsWith('a size') === true, values: ['64M', '128M', '256M', '1G', '1T', '0M', '64', '99999999T', '1.5G'] },
  { when: (_s, key) => key === 'pattern', values: ['desk-{n}', 'desk-{n:2}', 'x-{n:9}', '{n}', 'nonum'] },
];

function hasLookaround(pattern: string): boolean {
  return /\(\?<?[=!]/.test(pattern);
}

function stringArb(s: JsonSchema, key: string): fc.Arbitrary<string> {
  const sample = SAMPLES.find((x) => x.when(s, key));
  if (sample) return fc.constantFrom(...(sample.values as string[]));
  if (s.pattern && !hasLookaround(s.pattern)) {
    const matching = fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity));
    // a name-shaped string: now and then one the store knows
    return s.pattern.startsWith('^[a-z0-9]') ? fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_NAMES), weight: 2 }, { arbitrary: matching, weight: 1 }) : matching;
  }
  return fc.oneof(fc.constantFrom(...KNOWN_NAMES), fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 24, 24) }));
}

function numberArb(s: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (integer ? 1 : Number.EPSILON) : integer ? -1000 : -1e6);
  const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - (integer ? 1 : Number.EPSILON) : integer ? 1000 : 1e6);
  if (integer) {
    const lo = Math.max(min, Number.MIN_SAFE_INTEGER);
    const hi = Math.min(max, Number.MAX_SAFE_INTEGER);
    // small values most of the time (a pool of 3 is created; a pool of 10,000 is mostly refused for room), the bounds now and then
    return fc.oneof({ arbitrary: fc.integer({ min: lo, max: Math.min(hi, lo + 4) }), weight: 4 }, { arbitrary: fc.integer({ min: lo, max: hi }), weight: 1 }, { arbitrary: fc.constantFrom(lo, hi), weight: 1 });
  }
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
}

/**
 * An arbitrary of values valid for a JSON Schema node: the shape the schema says, within its bounds (cross-field
 * rules and references to the store are not known here: a mutation or a store lookup answers 4xx for those).
 */
export function schemaArbitrary(schema: JsonSchema, resolve: (ref: string) => JsonSchema, key = '', depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) return schemaArbitrary(resolve(schema.$ref), resolve, key, depth);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((a) => schemaArbitrary(a, resolve, key, depth)));
  if (schema.allOf?.length === 1 && schema.allOf[0]) return schemaArbitrary(schema.allOf[0], resolve, key, depth);
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => schemaArbitrary({ ...schema, type: t }, resolve, key, depth)));
  switch (types[0]) {
    case 'string':
      return stringArb(schema, key);
    case 'integer':
      return numberArb(schema, true);
    case 'number':
      return numberArb(schema, false);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const item = schema.items ? schemaArbitrary(schema.items, resolve, key, depth + 1) : fc.anything();
      const minLength = schema.minItems ?? 0;
      return fc.array(item, { minLength, maxLength: Math.max(minLength, Math.min(schema.maxItems ?? 4, 4)) });
    }
    case 'object':
      return objectArb(schema, resolve, depth);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function objectArb(schema: JsonSchema, resolve: (ref: string) => JsonSchema, depth: number): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.fromEntries(Object.entries(props).map(([k, s]) => [k, schemaArbitrary(s, resolve, k, depth + 1)]));
  const known = Object.keys(props).length
    ? fc.record(fields, { requiredKeys: Object.keys(props).filter((k) => required.has(k)) })
    : fc.constant({} as Record<string, unknown>);
  if (typeof schema.additionalProperties !== 'object' || depth > 3) return known;
  // a map (hook args): keys from its propertyNames, values from its additionalProperties
  const keyArb = schema.propertyNames ? (schemaArbitrary(schema.propertyNames, resolve, '', depth + 1) as fc.Arbitrary<string>) : fc.string({ maxLength: 8 });
  const extra = fc.dictionary(keyArb, schemaArbitrary(schema.additionalProperties, resolve, '', depth + 1), { maxKeys: 3 });
  return fc.tuple(known, extra).map(([a, b]) => ({ ...b, ...a }));
}

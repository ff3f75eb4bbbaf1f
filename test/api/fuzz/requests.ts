import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { mutate, mutationArb, type Mutation } from './mutations.js';
import { schemaArbitrary, type JsonSchema } from './schema-arbitrary.js';

/** One documented operation, read from the API's own OpenAPI document. */
export interface FuzzRoute {
  method: string;
  /** OpenAPI style: `/v1/vms/{name}`. */
  path: string;
  params: { name: string; in: 'path' | 'query'; schema: JsonSchema }[];
  body: JsonSchema | undefined;
  /** Takes the pool spec, which may come as YAML (see YAML_TYPES in src/api/app.ts). */
  yaml: boolean;
}

/** A request as `inject` takes it, with the tag of how it was made (for the per-kind counts). */
export interface FuzzRequest {
  route: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  how: string;
}

export type Doc = {
  paths: Record<string, Record<string, { parameters?: FuzzRoute['params']; requestBody?: { content: Record<string, { schema: JsonSchema }> }; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, JsonSchema> };
};

/**
 * Streams whose valid request never answers to the end: `inject` would wait on it for ever. Their refusals are
 * tested where the stream is (test/api/events.test.ts).
 */
const ENDLESS = new Set(['/v1/events']);

/**
 * Whether a request reaches an endless stream. `inject` resolves dot segments as a URL does, `%2e%2e` included (a
 * server on a socket gets the raw path), so a mutated `/v1/tasks/%2e%2e/events` lands on `/v1/events`.
 */
export function reachesEndlessStream(method: string, url: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  try {
    return ENDLESS.has(new URL(url, 'http://fuzz.invalid').pathname.replace(/\/+$/, ''));
  } catch {
    return false;
  }
}

export function routesOf(doc: Doc): FuzzRoute[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).filter(([method]) => !reachesEndlessStream(method.toUpperCase(), path)).map(([method, op]) => {
      const body = op.requestBody?.content['application/json']?.schema;
      return { method: method.toUpperCase(), path, params: op.parameters ?? [], body, yaml: body?.$ref === '#/components/schemas/PoolSpec' };
    }),
  );
}

export function resolverOf(doc: Doc): (ref: string) => JsonSchema {
  return (ref) => {
    const schema = doc.components.schemas[ref.replace('#/components/schemas/', '')];
    if (!schema) throw new Error(`unknown $ref ${ref}`);
    return schema;
  };
}

/** Path segments as they go on the wire (already encoded): traversal, encoded slashes, bad escapes, control bytes. */
const HOSTILE_SEGMENTS = ['..', '.', '..%2F..%2Fetc%2Fpasswd', '%2F', 'a%2Fb', '%2e%2e', '%2e%2e%2f', '..%5C..%5Cwin', '%00', 'desk%00', '%', '%ZZ', '%C3%A9', '%FF%FE', '%E2%80%AE', 'desk%20', '+', 'DESK', `${'a'.repeat(64)}`, 'x'.repeat(5_000), '%252F', '~root', 'desk;rm', '%0Aset'];

const segment = (schema: JsonSchema, resolve: (ref: string) => JsonSchema): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: schemaArbitrary(schema, resolve).map((v) => encodeURIComponent(String(v))) },
    { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent) },
  );

function queryArb(route: FuzzRoute, resolve: (ref: string) => JsonSchema): fc.Arbitrary<string> {
  const known = route.params.filter((p) => p.in === 'query').map((p) =>
    fc.option(
      fc.oneof(
        { weight: 4, arbitrary: schemaArbitrary(p.schema, resolve).map((v) => [`${p.name}=${encodeURIComponent(String(v))}`]) },
        { weight: 1, arbitrary: fc.constantFrom('-1', '1e999', '1.5', '', 'x', '9007199254740993', '%', '%00').map((v) => [`${p.name}=${v}`]) },
        // a repeated key is an array to the parser
        { weight: 1, arbitrary: fc.constant([`${p.name}=a`, `${p.name}=b`]) },
        { weight: 1, arbitrary: fc.constant([`${p.name}[x]=1`]) },
      ),
      { freq: 2 },
    ),
  );
  // an unknown key is refused on every route: in one request of seven, so the others reach past the query check
  const unknown = fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('colour=blue', '__proto__[x]=1', 'constructor=1', `q=${'x'.repeat(10_000)}`) });
  return fc.tuple(fc.tuple(...known), unknown).map(([parts, extra]) => {
    const all = [...parts.filter((p): p is string[] => p !== null).flat(), ...(extra ? [extra] : [])];
    return all.length ? `?${all.join('&')}` : '';
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const YAML_TYPE = { 'content-type': 'application/yaml' };
const LIMIT = 1024 * 1024;

/** Bodies no serializer makes: bad UTF-8, numbers JSON cannot hold, prototype keys, nesting past any stack, past the size limit. */
const RAW_BODIES: { how: string; headers: Record<string, string>; payload: string | Buffer }[] = [
  { how: 'raw bad utf-8', headers: JSON_TYPE, payload: Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]) },
  { how: 'raw lone surrogate', headers: JSON_TYPE, payload: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]) },
  { how: 'raw 1e999', headers: JSON_TYPE, payload: '{"name":"fuzz","image":"default","size":{"max":1e999},"disks":{"disposable":"64M"},"rateMiBs":1e999,"ttlSeconds":1e999}' },
  { how: 'raw __proto__', headers: JSON_TYPE, payload: '{"__proto__":{"polluted":true},"name":"fuzz"}' },
  { how: 'raw constructor.prototype', headers: JSON_TYPE, payload: '{"constructor":{"prototype":{"polluted":true}}}' },
  { how: 'raw truncated', headers: JSON_TYPE, payload: '{"name":' },
  { how: 'raw empty json', headers: JSON_TYPE, payload: '' },
  { how: 'raw null', headers: JSON_TYPE, payload: 'null' },
  { how: 'raw array', headers: JSON_TYPE, payload: '[]' },
  { how: 'raw string', headers: JSON_TYPE, payload: '"x"' },
  { how: 'raw number', headers: JSON_TYPE, payload: '12' },
  { how: 'raw bom', headers: JSON_TYPE, payload: '\ufeff{}' },
  { how: 'raw duplicate keys', headers: JSON_TYPE, payload: '{"dryRun":true,"dryRun":false,"max":1,"max":2}' },
  { how: 'raw deep arrays', headers: JSON_TYPE, payload: `${'['.repeat(50_000)}${']'.repeat(50_000)}` },
  { how: 'raw deep objects', headers: JSON_TYPE, payload: `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}` },
  { how: 'raw past the limit', headers: JSON_TYPE, payload: `{"name":"${'x'.repeat(LIMIT + 10)}"}` },
  { how: 'raw past the limit, yaml', headers: YAML_TYPE, payload: `name: ${'x'.repeat(LIMIT + 10)}\n` },
  { how: 'raw text/plain', headers: { 'content-type': 'text/plain' }, payload: 'hello' },
  { how: 'raw form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=desk' },
  { how: 'raw multipart', headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\n\r\n--x--' },
  { how: 'raw charset', headers: { 'content-type': 'application/json; charset=latin1' }, payload: '{}' },
  { how: 'raw bad content-type', headers: { 'content-type': ';;;/' }, payload: '{}' },
  { how: 'raw gzip claimed', headers: { ...JSON_TYPE, 'content-encoding': 'gzip' }, payload: '{}' },
];

/** YAML that a JSON client cannot send: anchors and aliases (a billion laughs, a cycle, an unknown one), merge keys, tags, several documents. */
const laughs = (levels: number, width: number): string => {
  const lines = ['a0: &a0 ["lol"]'];
  for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: width }, () => `*a${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\nname: fuzz\nimage: default\nsize: {max: 1}\ndisks: {disposable: 64M}\n`;
};
const RAW_YAML: { how: string; payload: string }[] = [
  { how: 'yaml billion laughs', payload: laughs(9, 9) },
  { how: 'yaml laughs in a field', payload: 'l0: &l0 [x, x, x, x, x, x, x, x, x, x]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\nname: fuzz\nimage: default\nsize: {max: 1}\ndisks: {disposable: 64M}\ncustomize: {perChild: [{path: /usr/local/lib/vmfork/x, args: {a: *l1}}]}\n' },
  { how: 'yaml cycle', payload: 'name: &n [*n]\n' },
  { how: 'yaml cyclic map', payload: '&top\nname: fuzz\nself: *top\n' },
  { how: 'yaml unknown alias', payload: 'name: *nope\n' },
  { how: 'yaml merge key', payload: 'base: &b {image: default, disks: {disposable: 64M}}\n<<: *b\nname: fuzz\nsize: {max: 1}\n' },
  { how: 'yaml anchored fields', payload: 'name: &n fuzz\nimage: default\nsize: {max: 1}\ndisks: &d {disposable: 64M}\nnaming: {names: [*n]}\n' },
  { how: 'yaml tags', payload: 'name: !!binary aGVsbG8=\nimage: !!js/function "function(){}"\nsize: !!set {max}\ndisks: !!timestamp 2001-12-14\n' },
  { how: 'yaml float tags', payload: 'name: fuzz\nimage: default\nsize: {max: .inf}\ndisks: {disposable: 64M}\ncpus: .nan\n' },
  { how: 'yaml documents', payload: 'name: a\n---\nname: b\n' },
  { how: 'yaml duplicate keys', payload: 'name: a\nname: b\n' },
  { how: 'yaml scalar', payload: 'just a string' },
  { how: 'yaml empty', payload: '' },
  { how: 'yaml bad indent', payload: 'name: a\n  - b\n c:' },
  { how: 'yaml huge int', payload: 'name: fuzz\nimage: default\nsize: {max: 123456789012345678901234567890}\ndisks: {disposable: 64M}\n' },
  { how: 'yaml deep flow', payload: `name: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n` },
];

/** At most one burial, applied last: a value buried thousands deep is not walked again (the walk would blow the stack). */
function deepLast(ms: Mutation[]): Mutation[] {
  const deep = ms.find((m) => m.kind === 'deep');
  return [...ms.filter((m) => m.kind !== 'deep'), ...(deep ? [deep] : [])];
}

/** Stands for the path's name in a generated spec (a valid name itself, for routes without one). */
const PATH_NAME = 'path-name-here';

/**
 * A spec the engine accepts (the image and datastore the store has, a small size): its mutations probe the checks
 * past the schema (cross-field rules, references, capacity), which a spec drawn from the schema alone rarely reaches.
 */
const poolSpecArb: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    name: fc.oneof(fc.constantFrom('fuzz', 'fuzz-2', 'desk', 'lab'), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/)),
    image: fc.constant('default'),
    provisioning: fc.constantFrom('up-front', 'on-demand'),
    persistent: fc.boolean(),
    size: fc.record({ max: fc.integer({ min: 1, max: 3 }), min: fc.integer({ min: 0, max: 1 }), spares: fc.integer({ min: 0, max: 1 }) }, { requiredKeys: ['max'] }),
    disks: fc.record({ disposable: fc.constantFrom('64M', '128M'), userData: fc.constantFrom('64M', '256M'), swap: fc.constantFrom('16M', '32M') }, { requiredKeys: ['disposable'] }),
    memory: fc.constantFrom('256M', '384M', '512M'),
    cpus: fc.integer({ min: 1, max: 2 }),
    customize: fc.record({ perChild: fc.constant([{ path: '/usr/local/lib/vmfork/hooks/setup.sh', args: { greeting: 'hi' } }]) }),
  },
  { requiredKeys: ['name', 'image', 'size', 'disks'] },
);

/**
 * A claim told to wait for a child (`waitSeconds`) is a long poll by design: the fuzzer cannot wait an hour for each.
 * Its bounds are fuzzed (junk, negative, past the maximum); a wait the server would honour is cut to none.
 */
function noLongPoll(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const wait = (value as Record<string, unknown>).waitSeconds;
  return typeof wait === 'number' && wait > 0 && wait <= 3_600 ? { ...value, waitSeconds: 0 } : value;
}

function bodyArb(route: FuzzRoute, resolve: (ref: string) => JsonSchema): fc.Arbitrary<{ how: string; headers: Record<string, string>; payload?: string | Buffer }> {
  const fromSchema = route.body ? schemaArbitrary(route.body, resolve) : fc.constant(undefined);
  // a push (PUT /v1/pools/{name}) names its pool twice: the spec's name is the path's, half the time (filled in by requestArb)
  const spec = fc.tuple(poolSpecArb, fc.boolean()).map(([v, same]) => (same ? { ...v, name: PATH_NAME } : v));
  const valid = route.yaml ? fc.oneof(fromSchema, spec) : fromSchema;
  const value = fc.oneof(
    { weight: 3, arbitrary: valid.map((v) => ({ how: 'valid', v })) },
    { weight: 4, arbitrary: fc.tuple(valid, fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map(deepLast)).map(([v, ms]) => ({ how: `mutated ${ms.map((m) => m.kind).join('+')}`, v: ms.reduce((acc, m) => mutate(acc, m), v) })) },
  );
  const json = value.map(({ how, v }) => ({ how, v: noLongPoll(v) })).map(({ how, v }) => (v === undefined ? { how: `${how}, no body` } : { how: `${how}, json`, headers: JSON_TYPE, payload: JSON.stringify(v) }));
  const yaml = value.map(({ how, v }) => ({ how, v: noLongPoll(v) })).map(({ how, v }) => ({ how: `${how}, yaml`, headers: YAML_TYPE, payload: toYaml(v ?? null, { aliasDuplicateObjects: false }) }));
  const raw = fc.constantFrom(...RAW_BODIES);
  const rawYaml = fc.constantFrom(...RAW_YAML).map((y) => ({ how: y.how, headers: YAML_TYPE, payload: y.payload }));
  return fc.oneof(
    { weight: 6, arbitrary: json.map((b) => ({ ...b, headers: b.headers ?? {} })) },
    { weight: route.yaml ? 3 : 0, arbitrary: yaml },
    { weight: route.yaml ? 2 : 0, arbitrary: rawYaml },
    { weight: 2, arbitrary: raw },
  );
}

const authArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant('good') },
  { weight: 1, arbitrary: fc.constantFrom('none', 'wrong', 'basic', 'empty', 'long') },
);

function authHeader(kind: string, token: string): Record<string, string> {
  switch (kind) {
    case 'good': return { authorization: `Bearer ${token}` };
    case 'wrong': return { authorization: `Bearer ${token.slice(0, -1)}x` };
    case 'basic': return { authorization: 'Basic YTpi' };
    case 'empty': return { authorization: 'Bearer ' };
    case 'long': return { authorization: `Bearer ${'t'.repeat(100_000)}` };
    default: return {};
  }
}

/** Requests for one route: its path parameters, query and body each valid or hostile, mostly with the right token. */
export function requestArb(route: FuzzRoute, resolve: (ref: string) => JsonSchema, token: string, taskIds: readonly string[] = []): fc.Arbitrary<FuzzRequest> {
  const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  const param = (n: string): fc.Arbitrary<string> => {
    const any = segment(route.params.find((p) => p.name === n && p.in === 'path')?.schema ?? { type: 'string' }, resolve);
    // a task id is a UUID no generator guesses: the tasks the fuzzer's own pools started, half the time
    return route.path.startsWith('/v1/tasks/') && taskIds.length ? fc.oneof(fc.constantFrom(...taskIds), any) : any;
  };
  const segments = fc.tuple(...names.map(param));
  type Body = { how: string; headers: Record<string, string>; payload?: string | Buffer };
  const body: fc.Arbitrary<Body> = route.body || route.method !== 'GET' ? bodyArb(route, resolve) : fc.constant({ how: 'no body', headers: {} });
  return fc.tuple(segments, queryArb(route, resolve), body, authArb).map(([segs, query, b, auth]) => {
    let url = route.path;
    names.forEach((n, i) => (url = url.replace(`{${n}}`, segs[i] as string)));
    return {
      route: `${route.method} ${route.path}`,
      method: route.method,
      url: `${url}${query}`,
      headers: { ...b.headers, ...authHeader(auth, token) },
      ...(b.payload === undefined ? {} : { payload: typeof b.payload === 'string' ? b.payload.replaceAll(PATH_NAME, segs[0] ?? PATH_NAME) : b.payload }),
      how: auth === 'good' ? b.how : `auth ${auth}`,
    };
  });
}

/** Requests for no route at all: unknown paths, wrong methods, traversal out of /v1. */
export function strayRequestArb(token: string): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), fc.constantFrom('/v1/nothing', '/v1/../etc/passwd', '/v1/vms/a/b/c', '/v1/%2e%2e/%2e%2e/', '//v1//vms', '/v1/vms/', '/V1/VMS', '/v1/pools/desk/claim/x', `/${'a'.repeat(10_000)}`, '/v1/tasks/%ZZ/events', '/v1/images?name=%')).map(([method, url]) => ({
    route: 'stray', method, url, headers: authHeader('good', token), how: 'stray',
  }));
}

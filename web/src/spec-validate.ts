import { LineCounter, parseDocument } from 'yaml';

/**
 * Checks a pool spec as the user types it: YAML syntax first (each error at its `line:col`), then the JSON schema
 * of createPool's body (PoolSpec, from the server's OpenAPI document), each problem named by its field path in the
 * server's own words (`size.max: at most 10000`). Pure: no DOM, so it can be run by hand under Node.
 * The server checks more (cross-field rules such as size.max ≥ size.min, what the spec names exists, capacity):
 * those come back from the request as a 400 whose `details.problems` have the same shape.
 */
export interface SpecProblem {
  /** `size.max`, `customize.common[0].path`; `3:7` (line:column) for a YAML syntax error; `(spec)` for the whole. */
  path: string;
  message: string;
}

/** One error of a JSON schema validator, as ajv reports it. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  /** Set on the errors of a `propertyNames` check: the key at fault. */
  propertyName?: string;
}

/** A compiled JSON schema (ajv's ValidateFunction has this shape). */
export interface SchemaValidator {
  (data: unknown): boolean;
  errors?: SchemaError[] | null;
}

export interface SpecCheck {
  /** The parsed spec, when the YAML parsed (even if the schema refused it). */
  value: unknown;
  problems: SpecProblem[];
}

const ROOT = '(spec)';

/** `/customize/common/0/path` → `customize.common[0].path`. */
export function fieldPath(pointer: string, child?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const p of parts) {
    if (/^\d+$/.test(p)) out += `[${p}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out || ROOT;
}

/** Patterns of the server's schema said in words (by how they start: the rest may change); others are shown as they are. */
const PATTERN_WORDS: [prefix: string, words: string][] = [
  ['^[a-z0-9]([a-z0-9-]{0,61}', 'must be a lowercase name: a-z, 0-9 and inner dashes, at most 63 characters'],
  ['^\\/usr\\/local\\/lib\\/vmfork\\/', 'must be a path under /usr/local/lib/vmfork/ (letters, digits, . _ -; no ..)'],
  ['^[A-Za-z_][A-Za-z0-9_]', 'must be letters, digits and _, not starting with a digit'],
  ['^(ssh-ed25519|', 'must be one OpenSSH public key line (ssh-ed25519 AAAA… comment)'],
];

function patternWords(pattern: string): string {
  return PATTERN_WORDS.find(([prefix]) => pattern.startsWith(prefix))?.[1] ?? `must match ${pattern}`;
}

const article = (type: string): string => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

function plural(n: unknown, word: string): string {
  return `${String(n)} ${word}${n === 1 ? '' : 's'}`;
}

function message(e: SchemaError): string {
  const p = e.params;
  switch (e.keyword) {
    case 'maximum': return `at most ${String(p.limit)}`;
    case 'minimum': return `at least ${String(p.limit)}`;
    case 'maxLength': return `at most ${plural(p.limit, 'character')}`;
    case 'minLength': return p.limit === 1 ? 'must not be empty' : `at least ${plural(p.limit, 'character')}`;
    case 'maxItems': return `at most ${plural(p.limit, 'item')}`;
    case 'minItems': return `at least ${plural(p.limit, 'item')}`;
    case 'maxProperties': return `at most ${String(p.limit)} entries`;
    case 'enum': return `must be one of: ${(p.allowedValues as unknown[]).map((v) => String(v)).join(', ')}`;
    case 'type': return `must be ${String(p.type) === 'object' ? 'a mapping' : String(p.type) === 'array' ? 'a list' : article(String(p.type))}`;
    case 'pattern': return patternWords(String(p.pattern));
    case 'additionalProperties': return 'unknown field';
    case 'required': return 'required';
    default: return e.message ?? e.keyword;
  }
}

/** ajv's errors as the server words them: one per field, `anyOf` branches folded into one line. */
export function schemaProblems(errors: readonly SchemaError[]): SpecProblem[] {
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const byPath = new Map<string, string[]>();
  const add = (path: string, msg: string): void => {
    const list = byPath.get(path) ?? [];
    if (!list.includes(msg)) list.push(msg);
    byPath.set(path, list);
  };
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'propertyNames') continue;
    if (e.keyword === 'additionalProperties') add(fieldPath(e.instancePath, String(e.params.additionalProperty)), message(e));
    else if (e.keyword === 'required') add(fieldPath(e.instancePath, String(e.params.missingProperty)), message(e));
    else if (e.propertyName !== undefined) add(fieldPath(e.instancePath, e.propertyName), `not a valid name: ${message(e)}`);
    else if (anyOfAt.has(e.instancePath) && e.keyword === 'type') add(fieldPath(e.instancePath), `must be ${article(String(e.params.type))}`);
    else add(fieldPath(e.instancePath), message(e));
  }
  return [...byPath].map(([path, msgs]) => ({
    path,
    // the branches of an anyOf: "must be a string, a number or a boolean"
    message: msgs.length > 1 && msgs.every((m) => m.startsWith('must be ')) ? `must be ${msgs.map((m) => m.slice(8)).join(', ').replace(/, ([^,]*)$/, ' or $1')}` : msgs.join('; '),
  }));
}

/** Parses YAML text; syntax errors (and duplicate keys) at their `line:col`. */
export function parseSpecYaml(text: string): SpecCheck {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: 'silent' });
  if (doc.errors.length) {
    return {
      value: undefined,
      problems: doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { path: `${line}:${col}`, message: `YAML: ${e.message.split('\n')[0] ?? e.message}` };
      }),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { value: undefined, problems: [{ path: ROOT, message: `YAML: ${(err as Error).message}` }] };
  }
  if (value === null || value === undefined) return { value, problems: [{ path: ROOT, message: 'empty: write the pool spec as a YAML mapping' }] };
  return { value, problems: [] };
}

/** YAML text → the problems of the spec it holds (none: the schema accepts it). */
export function validateSpecText(text: string, validate: SchemaValidator): SpecCheck {
  const parsed = parseSpecYaml(text);
  if (parsed.problems.length) return parsed;
  if (validate(parsed.value)) return parsed;
  return { value: parsed.value, problems: schemaProblems(validate.errors ?? []) };
}

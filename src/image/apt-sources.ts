import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';

/** One `deb` entry of an apt source list, in either syntax. */
export interface AptSource {
  uris: string[];
  suites: string[];
  components: string[];
  /** The file it came from, for error messages. */
  file: string;
}

/**
 * Parses deb822 `.sources` text (stanzas separated by blank lines, `Key: value` fields, continuation lines start
 * with a space). Only `Types: deb` stanzas that are not `Enabled: no` are returned.
 */
export function parseDeb822Sources(text: string, file = '<text>'): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^[ \t]/.test(raw) && last) {
        // a continuation line extends the previous field; " ." stands for an empty line
        const cont = raw.trim();
        fields.set(last, `${fields.get(last) ?? ''} ${cont === '.' ? '' : cont}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m?.[1]) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2] ?? '');
    }
    const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb')) continue;
    if (/^(no|false|0)$/i.test((fields.get('enabled') ?? '').trim())) continue;
    out.push({ uris: words('uris'), suites: words('suites'), components: words('components'), file });
  }
  return out;
}

/** Parses one-line `sources.list` text: `deb [opts] URI SUITE COMPONENT…`; `deb-src` and comments are skipped. */
export function parseOneLineSources(text: string, file = '<text>'): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    // options may contain spaces inside the brackets: [ arch=amd64 signed-by=/k.gpg ]
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    out.push({ uris: [m[1]], suites: [m[2]], components: (m[3] ?? '').split(/\s+/).filter(Boolean), file });
  }
  return out;
}

/**
 * The first http(s) URI of an entry serving `suite` with `component` (`main`). http is preferred over https
 * because debootstrap's https needs CA certificates in the target before it has any.
 */
export function pickMirror(sources: readonly AptSource[], suite: string, component = 'main'): string | undefined {
  const serving = sources.filter((s) => s.suites.includes(suite) && s.components.includes(component));
  const uris = serving.flatMap((s) => s.uris).filter((u) => /^https?:\/\//.test(u));
  const chosen = uris.find((u) => u.startsWith('http://')) ?? uris[0];
  return chosen?.replace(/\/+$/, '');
}

/** Reads every file apt itself reads: sources.list, sources.list.d/*.list and *.sources (other suffixes are ignored by apt). */
export async function readAptSources(etcApt = '/etc/apt'): Promise<AptSource[]> {
  const files: string[] = [join(etcApt, 'sources.list')];
  try {
    const dir = join(etcApt, 'sources.list.d');
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(dir, name));
    }
  } catch {
    // no sources.list.d is fine
  }
  const out: AptSource[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    out.push(...(file.endsWith('.sources') ? parseDeb822Sources(text, file) : parseOneLineSources(text, file)));
  }
  return out;
}

/** The Debian mirror the host's apt uses for `suite` main; VMFORK_IMAGE_BUILD_FAILED when none serves it. */
export async function hostDebianMirror(suite: string, etcApt = '/etc/apt'): Promise<string> {
  const mirror = pickMirror(await readAptSources(etcApt), suite);
  if (!mirror) {
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `no apt source in ${etcApt} serves "${suite} main" over http(s); pass --mirror URL`, {
      details: { step: 'mirror', suite, etcApt },
    });
  }
  return mirror;
}

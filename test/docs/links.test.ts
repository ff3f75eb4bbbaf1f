import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/docs/ → the repository
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Link targets of a Markdown page: inline `[text](target)` and reference `[id]: target`, outside code. */
export function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
  const inline = [...prose.matchAll(/\]\(\s*(?:<([^>\n]+)>|([^)\s]+))(?:\s+"[^"]*")?\s*\)/g)].map((m) => (m[1] ?? m[2]) as string);
  const reference = [...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1] as string);
  return [...inline, ...reference];
}

/** A target that names a file of this repository (not a URL, not an anchor on the same page). */
const isRelative = (t: string): boolean => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#') && !t.startsWith('//');

test('linkTargets finds inline and reference links and skips code', () => {
  const md = '[a](docs/x.md) and [b](<y z.md> "t")\n`[c](no.md)`\n```\n[d](no.md)\n```\n[e]: ../f.md\n[g](https://h.example/)';
  assert.deepEqual(linkTargets(md), ['docs/x.md', 'y z.md', 'https://h.example/', '../f.md']);
});

test('every relative link in README.md and docs/*.md resolves to a file inside the repository', () => {
  const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
  assert.ok(pages.length > 10, `pages found: ${pages.length}`);
  const broken: string[] = [];
  for (const page of pages) {
    for (const target of linkTargets(readFileSync(join(ROOT, page), 'utf8')).filter(isRelative)) {
      const path = decodeURIComponent(target.split('#')[0] as string);
      if (isAbsolute(path)) {
        broken.push(`${page}: ${target} is an absolute path`);
        continue;
      }
      const resolved = join(ROOT, dirname(page), path);
      const inside = relative(ROOT, resolved);
      if (inside.startsWith('..') || isAbsolute(inside)) broken.push(`${page}: ${target} climbs out of the repository`);
      else if (!existsSync(resolved)) broken.push(`${page}: ${target} does not exist`);
    }
  }
  assert.deepEqual(broken, []);
});

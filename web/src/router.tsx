import type { AnchorHTMLAttributes, ComponentType, JSX, TargetedMouseEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/**
 * A tiny router on the history API (no package needed for a dozen flat routes): `navigate` pushes a path and
 * tells every `usePath`; links are real `<a href>` (open in a new tab, copy the address) whose plain clicks are
 * kept in the page.
 */
const listeners = new Set<() => void>();
const notify = (): void => listeners.forEach((l) => l());
window.addEventListener('popstate', notify);

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to !== location.pathname + location.search) history[options.replace ? 'replaceState' : 'pushState'](null, '', to);
  notify();
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = (): void => setPath(location.pathname);
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return path;
}

export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }): JSX.Element {
  const onClick = (e: TargetedMouseEvent<HTMLAnchorElement>): void => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || props.target) return;
    e.preventDefault();
    navigate(props.href);
  };
  return <a {...props} onClick={onClick} />;
}

/** `/pools/:name` against `/pools/desk` → `{ name: 'desk' }`; null when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/');
  const got = path.replace(/\/+$/, '').split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, w] of want.entries()) {
    const g = got[i] ?? '';
    if (w.startsWith(':')) {
      if (!g) return null;
      try {
        params[w.slice(1)] = decodeURIComponent(g);
      } catch {
        return null;
      }
    } else if (w !== g) return null;
  }
  return params;
}

/** A page loaded when first shown: xterm.js and noVNC stay out of the bundle every other page loads. */
export function lazyPage<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | undefined;
  return function LazyPage(props: P) {
    const [Page, setPage] = useState<ComponentType<P> | undefined>(() => loaded);
    const [failed, setFailed] = useState<string | null>(null);
    useEffect(() => {
      if (Page) return;
      load().then(
        (c) => { loaded = c; setPage(() => c); },
        (err: unknown) => setFailed(String(err)),
      );
    }, [Page]);
    if (failed) return <p role="alert">This page could not be loaded: {failed}. Reload to try again.</p>;
    return Page ? <Page {...props} /> : <p>Loading…</p>;
  };
}

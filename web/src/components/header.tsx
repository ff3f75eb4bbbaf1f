import type { JSX } from 'preact';
import { Link } from '../router';

const NAV = [
  ['Pools', '/pools'],
  ['Tasks', '/tasks'],
  ['Replicas', '/replicas'],
  ['Hosts', '/hosts'],
  ['Images', '/images'],
  ['Templates', '/templates'],
] as const;

export function Header({ path, onLogOut, busy }: { path: string; onLogOut(): void; busy: boolean }): JSX.Element {
  return (
    <header class="top">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <span class="brand">vmfork</span>
      <nav aria-label="Main">
        <ul>
          {NAV.map(([name, href]) => (
            <li key={href}>
              <Link href={href} aria-current={path === href || path.startsWith(`${href}/`) ? 'page' : undefined}>
                {name}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <button type="button" class="logout" onClick={onLogOut} disabled={busy}>
        Log out
      </button>
    </header>
  );
}

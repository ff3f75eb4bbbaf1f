import type { JSX } from 'preact';
import type { ApiError } from '../api';
import { Link } from '../router';

/** An API error: its code, message, each field at fault (a 400), and the way out. */
export function ErrorAlert({ error }: { error: ApiError | null }): JSX.Element | null {
  if (!error) return null;
  return (
    <div role="alert" class="alert">
      <p>
        <code class="code">{error.code}</code> {error.message}
      </p>
      {error.problems.length > 0 && (
        <ul>
          {error.problems.map((p) => (
            <li key={`${p.path}:${p.message}`}>
              {p.path}: {p.message}
            </li>
          ))}
        </ul>
      )}
      {error.hint && (
        <p class="hint">
          {error.hint} {error.status === 401 && <Link href="/login">Log in again</Link>}
        </p>
      )}
    </div>
  );
}

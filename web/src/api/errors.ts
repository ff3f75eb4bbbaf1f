/**
 * An API error as the console shows it: the registry code (`VMFORK_…`), the server's message, its details, and what
 * the user can do about it. Failures that are not the API's own answer get a code of the console's: `HTTP_<status>`
 * (a proxy's page), `NETWORK` (no answer at all).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** What to do next, by status. */
  get hint(): string | undefined {
    if (this.status === 401) return 'Your session has ended: log in again.';
    if (this.code === 'VMFORK_CSRF') return 'Reload the page to get a fresh session token.';
    if (this.status === 409) return 'The state changed meanwhile: refresh and try again.';
    if (this.status === 0) return 'The server did not answer: is `vmfork serve` running?';
    return undefined;
  }

  /** `details.problems` of a 400: each field at fault. */
  get problems(): { path: string; message: string }[] {
    const p = this.details.problems;
    return Array.isArray(p) ? p.filter((x): x is { path: string; message: string } => typeof x?.path === 'string' && typeof x?.message === 'string') : [];
  }
}

/** The `{ error: { code, message, details } }` body of an API error, or whatever else a failed request answered. */
export function apiErrorFrom(status: number, body: unknown): ApiError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (e && typeof e.code === 'string') {
    const details = e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : {};
    return new ApiError(status, e.code, typeof e.message === 'string' ? e.message : e.code, details);
  }
  const text = typeof body === 'string' && body.trim() ? body.trim().slice(0, 200) : `the server answered ${status}`;
  return new ApiError(status, `HTTP_${status}`, text);
}

export async function apiErrorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's page, kept as text
  }
  return apiErrorFrom(response.status, body);
}

export function networkError(err: unknown): ApiError {
  return new ApiError(0, 'NETWORK', `no answer from the server (${err instanceof Error ? err.message : String(err)})`);
}

/** Any thrown value as an ApiError (a bug in the page shows as one too, rather than nothing). */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof TypeError) return networkError(err);
  return new ApiError(-1, 'CONSOLE_ERROR', err instanceof Error ? err.message : String(err));
}

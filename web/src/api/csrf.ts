/**
 * The session's CSRF token, in this module's memory only: never in localStorage, sessionStorage or a cookie, so a
 * script of another page cannot find it, and a reload asks the server for it again (GET /v1/session).
 */
let token: string | null = null;

export function csrfToken(): string | null {
  return token;
}

export function setCsrfToken(value: string | null): void {
  token = value;
}

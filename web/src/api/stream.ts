import { createParser } from 'eventsource-parser';
import { type ApiError, apiErrorOf, networkError } from './errors';

/**
 * Server-sent events read with fetch rather than EventSource: a refused stream shows its API error (code and
 * message: an ended session is 401 VMFORK_SESSION_INVALID, not a silent retry loop), every event kind arrives
 * (a task's kinds are open-ended; EventSource only hands out the names it was told), and a stream that ends on
 * purpose (a finished task) is not reopened. Reconnects resume with Last-Event-ID.
 */
export interface StreamEvent {
  event: string;
  data: string;
  id?: string | undefined;
}

export interface StreamOptions {
  onEvent(event: StreamEvent): void;
  /** Connected (live) or not, and why not. */
  onStatus(live: boolean, error: ApiError | null): void;
  /** Called when the server ends the stream: true to open it again. @default always */
  resumeAfterEnd?(): boolean;
}

/** Statuses a retry cannot fix: the stream stays closed and shows why. */
const FINAL = new Set([400, 401, 403, 404]);
const MAX_BACKOFF_MS = 15_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** Opens the stream at `url` (same origin, the session cookie); returns the function that closes it. */
export function openStream(url: string, options: StreamOptions): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  let lastId: string | undefined;
  let failures = 0;
  const backoff = (): Promise<void> => sleep(Math.min(1000 * 2 ** failures++, MAX_BACKOFF_MS), signal);

  const readBody = async (body: ReadableStream<Uint8Array>): Promise<void> => {
    const parser = createParser({
      onEvent: (m) => {
        if (m.id) lastId = m.id;
        options.onEvent({ event: m.event ?? 'message', data: m.data, id: m.id });
      },
    });
    const reader = body.getReader();
    const utf8 = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(utf8.decode(value, { stream: true }));
    }
  };

  const run = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        const res = await fetch(url, {
          headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
          credentials: 'same-origin',
          cache: 'no-store',
          signal,
        });
        if (!res.ok || !res.body) {
          const err = await apiErrorOf(res);
          options.onStatus(false, err);
          if (FINAL.has(res.status)) return;
          await backoff();
          continue;
        }
        failures = 0;
        options.onStatus(true, null);
        await readBody(res.body);
        options.onStatus(false, null);
        if (options.resumeAfterEnd && !options.resumeAfterEnd()) return;
        await backoff();
      } catch (err) {
        if (signal.aborted) return;
        options.onStatus(false, networkError(err));
        await backoff();
      }
    }
  };
  void run();
  return () => controller.abort();
}

import { useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, openStream, type StreamEvent } from '../api';

/**
 * A server-sent event stream for as long as the component shows (`url` null: none). `onEvent` may change at every
 * render; the stream is opened once per url.
 */
export function useStream(url: string | null, onEvent: (e: StreamEvent) => void, resumeAfterEnd?: () => boolean): { live: boolean; error: ApiError | null } {
  const [live, setLive] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const handlers = useRef({ onEvent, resumeAfterEnd });
  handlers.current = { onEvent, resumeAfterEnd };
  useEffect(() => {
    if (!url) return;
    return openStream(url, {
      onEvent: (e) => handlers.current.onEvent(e),
      onStatus: (isLive, err) => {
        setLive(isLive);
        setError(err);
      },
      resumeAfterEnd: () => handlers.current.resumeAfterEnd?.() ?? true,
    });
  }, [url]);
  return { live, error };
}

/** JSON of an event's data, or undefined when it is not JSON. */
export function eventJson<T>(e: StreamEvent): T | undefined {
  try {
    return JSON.parse(e.data) as T;
  } catch {
    return undefined;
  }
}

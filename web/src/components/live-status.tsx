import type { JSX } from 'preact';
import type { ApiError } from '../api';
import { ErrorAlert } from './error-alert';

/** Whether a page's live stream is connected; its error when the server refused it. */
export function LiveStatus({ live, error }: { live: boolean; error: ApiError | null }): JSX.Element {
  return (
    <>
      <p class={`live ${live ? 'on' : 'off'}`}>{live ? 'Live' : error ? 'Not live' : 'Connecting…'}</p>
      <ErrorAlert error={error} />
    </>
  );
}

import type { JSX } from 'preact';

/** Reads a page's data again (lists without a live stream: replicas, hosts, images, templates). */
export function ReloadButton({ onClick, busy }: { onClick(): void; busy: boolean }): JSX.Element {
  return (
    <button type="button" class="secondary" onClick={onClick} disabled={busy}>
      Reload
    </button>
  );
}

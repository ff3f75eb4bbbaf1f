import type { JSX } from 'preact';

/** A progress bar with its number: role=progressbar with aria-valuenow, as assistive tools and the tests read it. */
export function ProgressBar({ label, percent, state }: { label: string; percent: number; state?: string | undefined }): JSX.Element {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  return (
    <span class="progress-wrap">
      <span role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={p} class={`progress ${state ?? ''}`}>
        <span class="progress-fill" style={{ width: `${p}%` }} />
      </span>
      <span class="progress-text">{p}%</span>
    </span>
  );
}

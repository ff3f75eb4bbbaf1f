import type { JSX } from 'preact';
import type { TaskAccepted } from '../api';
import { Link } from '../router';

/** What an accepted operation became: its task, linked, and what it waits behind. */
export function TaskNotice({ accepted, what }: { accepted: TaskAccepted | null; what?: string }): JSX.Element {
  return (
    <p role="status" class="notice">
      {accepted && (
        <>
          {what ?? 'Accepted'}: task <Link href={`/tasks/${encodeURIComponent(accepted.taskId)}`}>{accepted.taskId}</Link> {accepted.state ?? 'queued'}
          {accepted.queuedBehind ? ` behind ${accepted.queuedBehind}` : ''}.
        </>
      )}
    </p>
  );
}

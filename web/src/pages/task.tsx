import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, call, type TaskEvent, type TaskView } from '../api';
import { DataTable, ErrorAlert, eventJson, LiveStatus, orDash, Page, ProgressBar, time, useAction, useApi, useStream } from '../components';
import { Link } from '../router';

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * One task: its state and per-child progress, and its events as they happen (`/v1/tasks/{id}/events`: the replay,
 * then live, until the task ends; a reconnect resumes after the last event seen). Each event reads the task again.
 */
export function TaskPage({ id }: { id: string }): JSX.Element {
  const task = useApi(() => call(api.GET('/v1/tasks/{id}', { params: { path: { id } } })), id);
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const ended = useRef(false);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const stream = useStream(
    `/v1/tasks/${encodeURIComponent(id)}/events`,
    (e) => {
      const ev = eventJson<TaskEvent>(e);
      if (!ev) return;
      setEvents((list) => (list.some((x) => x.seq === ev.seq) ? list : [...list, ev]));
      if (ev.kind === 'state' && FINAL.has(String(ev.data?.state))) ended.current = true;
      pending.current ??= setTimeout(() => {
        pending.current = undefined;
        task.reload();
      }, 300);
    },
    () => !ended.current,
  );
  useEffect(() => () => clearTimeout(pending.current), []);
  const cancel = useAction();
  const t = task.data;

  return (
    <Page title={`Task ${id.slice(0, 12)}`}>
      <ErrorAlert error={task.error} />
      {t && <TaskSummary task={t} onCancel={() => void cancel.run(async () => { await call(api.POST('/v1/tasks/{id}/cancel', { params: { path: { id } } })); task.reload(); })} cancelling={cancel.busy} />}
      <ErrorAlert error={cancel.error} />
      <section aria-labelledby="events-heading">
        <h2 id="events-heading">Events</h2>
        {!(t && FINAL.has(t.state)) && <LiveStatus live={stream.live} error={stream.error} />}
        <ol aria-label="Task events" class="events">
          {events.map((e) => (
            <li key={e.seq}>
              <span class="mono">{time(e.at)}</span> <span class="kind">{e.kind}</span> {e.message}
            </li>
          ))}
        </ol>
      </section>
    </Page>
  );
}

function TaskSummary({ task: t, onCancel, cancelling }: { task: TaskView; onCancel(): void; cancelling: boolean }): JSX.Element {
  const children = Object.entries(t.children);
  return (
    <>
      <dl class="facts">
        <div><dt>Kind</dt><dd>{t.kind}</dd></div>
        <div><dt>Target</dt><dd>{t.target}</dd></div>
        <div><dt>State</dt><dd><span class={`state ${t.state}`}>{t.state}</span></dd></div>
        <div><dt>Step</dt><dd>{orDash(t.step)}</dd></div>
        <div><dt>Queued behind</dt><dd>{t.queuedBehind ? <Link href={`/tasks/${encodeURIComponent(t.queuedBehind)}`}>{t.queuedBehind}</Link> : '—'}</dd></div>
        <div><dt>Created</dt><dd>{time(t.createdAt)}</dd></div>
        <div><dt>Updated</dt><dd>{time(t.updatedAt)}</dd></div>
      </dl>
      <p>
        <ProgressBar label="Task progress" percent={t.percent} state={t.state} />{' '}
        <button type="button" class="danger" disabled={cancelling || FINAL.has(t.state) || t.state === 'cancelling'} onClick={onCancel}>
          Cancel task
        </button>
      </p>
      {t.lastError && (
        <div class="alert" role="alert">
          <p>
            <code class="code">{t.lastError.code}</code> {t.lastError.message}
          </p>
        </div>
      )}
      {children.length > 0 && (
        <DataTable label="Children progress" headers={['Child', 'State', 'Progress', 'Error']}>
          {children.map(([name, c]) => (
            <tr key={name} data-state={c.state}>
              <th scope="row">{name}</th>
              <td>
                <span class={`state ${c.state}`}>{c.state}</span>
              </td>
              <td>
                <ProgressBar label={`${name} progress`} percent={c.percent} state={c.state} />
              </td>
              <td>{orDash(c.error)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </>
  );
}

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, call, type TaskView } from '../api';
import { DataTable, ErrorAlert, LiveStatus, orDash, Page, ProgressBar, time, useApi, useStream } from '../components';
import { Link } from '../router';

const STATES = ['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
type TaskState = (typeof STATES)[number];

/**
 * Tasks, newest first. Every task runs on a pool or one of its VMs, and the pools' stream says when a pool's last
 * task moved: the list is read again then (at most every half second), never on a timer.
 */
export function TasksPage(): JSX.Element {
  const [state, setState] = useState<TaskState | ''>('');
  const tasks = useApi(() => call(api.GET('/v1/tasks', { params: { query: { limit: 200, ...(state ? { state } : {}) } } })), state);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  // the stream's first `pools` is the state at connect, which the list was just read in
  const seen = useRef(false);
  const stream = useStream('/v1/events', (e) => {
    if (e.event !== 'pools') return;
    if (!seen.current) return void (seen.current = true);
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = undefined;
      tasks.reload();
    }, 500);
  });
  useEffect(() => () => clearTimeout(pending.current), []);

  return (
    <Page title="Tasks">
      <LiveStatus live={stream.live} error={stream.error} />
      <p class="inline-field">
        <label for="task-state">State</label>
        <select id="task-state" value={state} onChange={(e) => setState(e.currentTarget.value as TaskState | '')}>
          <option value="">all</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </p>
      <ErrorAlert error={tasks.error} />
      {tasks.data ? <TaskTable tasks={tasks.data} /> : !tasks.error && <p>Loading…</p>}
    </Page>
  );
}

function TaskTable({ tasks }: { tasks: TaskView[] }): JSX.Element {
  return (
    <DataTable
      label="Tasks"
      headers={['Task', 'Kind', 'Target', 'State', 'Step', 'Progress', 'Created', 'Updated', 'Error']}
      empty="No tasks."
    >
      {tasks.map((t) => (
        <tr key={t.id} data-state={t.state}>
          <td>
            <Link href={`/tasks/${encodeURIComponent(t.id)}`} class="mono">
              {t.id.slice(0, 12)}
            </Link>
          </td>
          <td>{t.kind}</td>
          <td>{t.target}</td>
          <td>
            <span class={`state ${t.state}`}>{t.state}</span>
          </td>
          <td>{orDash(t.step)}</td>
          <td>
            <ProgressBar label={`Task ${t.id.slice(0, 12)} progress`} percent={t.percent} state={t.state} />
          </td>
          <td>{time(t.createdAt)}</td>
          <td>{time(t.updatedAt)}</td>
          <td>{t.lastError ? <code>{t.lastError.code}</code> : '—'}</td>
        </tr>
      ))}
    </DataTable>
  );
}

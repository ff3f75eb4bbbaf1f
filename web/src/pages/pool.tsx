import type { JSX, TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { api, type ApiError, apiErrorFrom, call, type PoolDetail, type TaskAccepted } from '../api';
import { counts, ErrorAlert, eventJson, LiveStatus, orDash, Page, ProgressBar, TaskNotice, time, useAction, useStream } from '../components';
import { Link, navigate } from '../router';
import { PoolChildren } from './pool-children';
import { PoolSpecForm } from './pool-spec-form';

/** One pool, live (`/v1/events?pool=`): its state, last task, children and what can be done to them. */
export function PoolPage({ name }: { name: string }): JSX.Element {
  const [pool, setPool] = useState<PoolDetail | undefined>(undefined);
  // the pool was removed while shown: the stream sends the error GET /v1/pools/{name} would answer
  const [gone, setGone] = useState<ApiError | null>(null);
  const stream = useStream(`/v1/events?pool=${encodeURIComponent(name)}`, (e) => {
    if (e.event !== 'pool') return;
    const view = eventJson<PoolDetail | { error: unknown }>(e);
    if (view && 'error' in view) {
      setGone(apiErrorFrom(404, view));
      setPool(undefined);
    } else if (view) {
      setGone(null);
      setPool(view);
    }
  });

  return (
    <Page title={name}>
      <LiveStatus live={stream.live} error={stream.error} />
      <ErrorAlert error={gone} />
      {pool ? <PoolBody pool={pool} /> : !gone && !stream.error && <p>Loading…</p>}
    </Page>
  );
}

function PoolBody({ pool }: { pool: PoolDetail }): JSX.Element {
  const { lastTask } = pool;
  return (
    <>
      <p class="pool-state">
        State: <span class={`state ${pool.state}`}>{pool.state}</span>
      </p>
      <dl class="facts">
        <div><dt>Children</dt><dd>{counts(pool.counts)}</dd></div>
        <div><dt>Size</dt><dd>max {pool.size.max}, min {pool.size.min}, spares {pool.size.spares}, warm {pool.size.warm}</dd></div>
        <div><dt>Image</dt><dd>{pool.image}</dd></div>
        <div><dt>Provisioning</dt><dd>{pool.provisioning}{pool.persistent ? ', persistent' : ''}</dd></div>
        <div><dt>Replica</dt><dd>{orDash(pool.replica)}</dd></div>
        <div><dt>Datastore</dt><dd>{pool.datastore}</dd></div>
        <div><dt>Created</dt><dd>{time(pool.createdAt)}</dd></div>
      </dl>
      <section aria-labelledby="task-heading" class="last-task">
        <h2 id="task-heading">Last task</h2>
        {lastTask ? (
          <p>
            <Link href={`/tasks/${encodeURIComponent(lastTask.id)}`}>{lastTask.kind}</Link> <span class={`state ${lastTask.state}`}>{lastTask.state}</span>
            {lastTask.step ? ` — ${lastTask.step}` : ''} <ProgressBar label="Task progress" percent={lastTask.percent} state={lastTask.state} />
          </p>
        ) : pool.lastTaskId ? (
          <p>
            <Link href={`/tasks/${encodeURIComponent(pool.lastTaskId)}`}>{pool.lastTaskId}</Link>
          </p>
        ) : (
          <p>None.</p>
        )}
      </section>
      <ResizeForm pool={pool} />
      <PoolChildren pool={pool} />
      <PoolSpecForm key={pool.name} pool={pool} />
      <RemovePool name={pool.name} />
    </>
  );
}

function ResizeForm({ pool }: { pool: PoolDetail }): JSX.Element {
  const [max, setMax] = useState(String(pool.size.max));
  const [accepted, setAccepted] = useState<TaskAccepted | null>(null);
  const action = useAction();
  const submit = async (e: TargetedSubmitEvent<HTMLFormElement>): Promise<void> => {
    e.preventDefault();
    setAccepted(null);
    const result = await action.run(() => call(api.PATCH('/v1/pools/{name}', { params: { path: { name: pool.name } }, body: { max: Number(max) } })));
    if (result) setAccepted(result);
  };
  return (
    <section aria-labelledby="resize-heading">
      <h2 id="resize-heading">Resize</h2>
      <form class="inline-form" onSubmit={(e) => void submit(e)}>
        <label for="pool-max">Pool size (max)</label>
        <input id="pool-max" type="number" min={1} max={10000} step={1} required value={max} onInput={(e) => setMax(e.currentTarget.value)} />
        <button type="submit" disabled={action.busy}>
          Resize
        </button>
      </form>
      <ErrorAlert error={action.error} />
      <TaskNotice accepted={accepted} what="Resize" />
    </section>
  );
}

/** Removing a pool destroys its children: the button asks once more, in the page (no browser dialog). */
function RemovePool({ name }: { name: string }): JSX.Element {
  const [asking, setAsking] = useState(false);
  const action = useAction();
  const remove = async (): Promise<void> => {
    const accepted = await action.run(() => call(api.DELETE('/v1/pools/{name}', { params: { path: { name } } })));
    if (accepted) navigate(`/tasks/${encodeURIComponent(accepted.taskId)}`);
  };
  return (
    <section aria-labelledby="remove-heading" class="danger-zone">
      <h2 id="remove-heading">Remove the pool</h2>
      {!asking ? (
        <button type="button" class="danger" onClick={() => setAsking(true)}>
          Remove pool
        </button>
      ) : (
        <p>
          Remove {name} and destroy all its children? Its replica stays for reuse.{' '}
          <button type="button" class="danger" disabled={action.busy} onClick={() => void remove()}>
            Remove {name}
          </button>{' '}
          <button type="button" class="secondary" onClick={() => setAsking(false)}>
            Keep it
          </button>
        </p>
      )}
      <ErrorAlert error={action.error} />
    </section>
  );
}

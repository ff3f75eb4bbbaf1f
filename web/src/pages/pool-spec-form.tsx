import type { JSX, TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { stringify } from 'yaml';
import { api, call, type PoolDetail, type PoolSpec, type TaskAccepted } from '../api';
import { ErrorAlert, SpecEditor, TaskNotice, useAction, useSpecCheck } from '../components';

/**
 * "Update the spec": the pool's current spec as YAML, edited and pushed with PUT /v1/pools/{name} (a task: the new
 * replica is made while the old one serves, then the children are moved; docs/lifecycle.md). The text is taken
 * from the pool once: live updates of the pool do not overwrite what is being typed.
 */
export function PoolSpecForm({ pool }: { pool: PoolDetail }): JSX.Element {
  const [text, setText] = useState(() => stringify(pool.spec));
  const [accepted, setAccepted] = useState<TaskAccepted | null>(null);
  const check = useSpecCheck(text);
  const action = useAction();
  const submit = async (e: TargetedSubmitEvent<HTMLFormElement>): Promise<void> => {
    e.preventDefault();
    if (check.problems.length) return;
    setAccepted(null);
    const result = await action.run(() =>
      call(api.PUT('/v1/pools/{name}', { params: { path: { name: pool.name }, query: {} }, body: check.value as PoolSpec })),
    );
    if (result) setAccepted(result);
  };
  return (
    <section aria-labelledby="spec-heading">
      <h2 id="spec-heading">Update the spec</h2>
      <form onSubmit={(e) => void submit(e)}>
        <SpecEditor id="pool-spec" value={text} onInput={setText} check={check} />
        <div class="form-actions">
          <button type="submit" disabled={action.busy || check.problems.length > 0}>
            Update spec
          </button>
          <button type="button" class="secondary" onClick={() => setText(stringify(pool.spec))}>
            Reset to the current spec
          </button>
        </div>
      </form>
      <ErrorAlert error={action.error} />
      <TaskNotice accepted={accepted} what="Spec update" />
    </section>
  );
}

import type { JSX, TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { api, call, type PoolSpec } from '../api';
import { ErrorAlert, Page, SpecEditor, useAction, useSpecCheck } from '../components';
import { navigate } from '../router';

const STARTER = `# A pool of desktops forked from a frozen template (docs/pools.md)
name: desk
image: default
provisioning: up-front
size: { max: 2, min: 0, spares: 0 }
naming: { pattern: "desk-{n:3}" }
disks: { disposable: 256M }
`;

/** A new pool from a YAML spec, checked as it is typed; created by POST /v1/pools, then its page. */
export function PoolNewPage(): JSX.Element {
  const [text, setText] = useState(STARTER);
  const check = useSpecCheck(text);
  const action = useAction();
  const submit = async (e: TargetedSubmitEvent<HTMLFormElement>): Promise<void> => {
    e.preventDefault();
    if (check.problems.length) return;
    const spec = check.value as PoolSpec;
    const accepted = await action.run(() => call(api.POST('/v1/pools', { body: spec })));
    if (accepted) navigate(`/pools/${encodeURIComponent(accepted.pool ?? spec.name)}`);
  };
  return (
    <Page title="New pool">
      <form onSubmit={(e) => void submit(e)}>
        <SpecEditor id="new-pool-spec" value={text} onInput={setText} check={check} />
        <div class="form-actions">
          <button type="submit" disabled={action.busy || check.problems.length > 0}>
            Create pool
          </button>
        </div>
      </form>
      <ErrorAlert error={action.error} />
    </Page>
  );
}

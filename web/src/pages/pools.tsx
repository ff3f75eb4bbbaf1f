import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { PoolSummary } from '../api';
import { counts, DataTable, eventJson, LiveStatus, Page, ProgressBar, useStream } from '../components';
import { Link } from '../router';

/** Every pool, live: the server pushes the list (`event: pools`) at connect and whenever it changes. */
export function PoolsPage(): JSX.Element {
  const [pools, setPools] = useState<PoolSummary[] | undefined>(undefined);
  const stream = useStream('/v1/events', (e) => {
    if (e.event === 'pools') setPools(eventJson<PoolSummary[]>(e));
  });

  return (
    <Page title="Pools" actions={<Link href="/pools/new" class="button">New pool</Link>}>
      <LiveStatus live={stream.live} error={stream.error} />
      {!pools ? (
        !stream.error && <p>Loading…</p>
      ) : (
        <DataTable
          label="Pools"
          headers={['Name', 'State', 'Children', 'Size (min / max)', 'Image', 'Replica', 'Last task']}
          empty="No pools yet: make one with “New pool”."
        >
          {pools.map((p) => (
            <tr key={p.name} data-state={p.state}>
              <td>
                <Link href={`/pools/${encodeURIComponent(p.name)}`}>{p.name}</Link>
              </td>
              <td>
                <span class={`state ${p.state}`}>{p.state}</span>
              </td>
              <td>{counts(p.counts)}</td>
              <td>
                {p.size.min} / {p.size.max}
              </td>
              <td>{p.image}</td>
              <td class="mono">{p.replica ?? '—'}</td>
              <td>
                {p.lastTask ? (
                  <span class="task-cell">
                    <Link href={`/tasks/${encodeURIComponent(p.lastTask.id)}`}>{p.lastTask.kind}</Link> {p.lastTask.state}
                    <ProgressBar label={`Last task of ${p.name}`} percent={p.lastTask.percent} state={p.lastTask.state} />
                  </span>
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </Page>
  );
}

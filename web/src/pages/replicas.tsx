import type { JSX } from 'preact';
import { api, call } from '../api';
import { bytes, DataTable, ErrorAlert, orDash, Page, ReloadButton, seconds, time, useApi } from '../components';
import { Link } from '../router';

/** The replica map: image version + phase-1 digest + host + datastore → replica, and the pools using each. */
export function ReplicasPage(): JSX.Element {
  const replicas = useApi(() => call(api.GET('/v1/replicas')), 'replicas');
  return (
    <Page title="Replicas" actions={<ReloadButton onClick={replicas.reload} busy={replicas.loading} />}>
      <ErrorAlert error={replicas.error} />
      {replicas.data && (
        <DataTable
          label="Replicas"
          headers={['Replica', 'State', 'Image', 'Host', 'Datastore', 'Template', 'Pools', 'Phase 1', 'Disks', 'Copied from', 'Created']}
          empty="No replicas: a pool's first task makes one."
        >
          {replicas.data.map((r) => (
            <tr key={r.id} data-state={r.state}>
              <th scope="row" class="mono">{r.id}</th>
              <td><span class={`state ${r.state}`}>{r.state}</span></td>
              <td title={`version ${r.imageVersion}`}>{r.image}</td>
              <td>{r.hostId}</td>
              <td>{r.datastore}</td>
              <td>{orDash(r.template)}</td>
              <td>
                {r.pools.length
                  ? r.pools.map((p, i) => (
                      <span key={p}>
                        {i > 0 && ', '}
                        <Link href={`/pools/${encodeURIComponent(p)}`}>{p}</Link>
                      </span>
                    ))
                  : '—'}
              </td>
              <td>{r.phase1 ? `${seconds(r.phase1.seconds)}, ${r.phase1.reboots} reboot(s), copy ${seconds(r.phase1.copySeconds)}` : '—'}</td>
              <td>{r.disks.length ? `${r.disks.length}: ${bytes(r.disks.reduce((a, d) => a + d.size, 0))}` : '—'}</td>
              <td>{r.copiedFrom ? `${r.copiedFrom.replica} on ${r.copiedFrom.host}` : '—'}</td>
              <td>{time(r.createdAt)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Page>
  );
}

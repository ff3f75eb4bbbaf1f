import type { JSX } from 'preact';
import { api, call, type Schemas } from '../api';
import { bytes, DataTable, ErrorAlert, orDash, Page, ReloadButton, time, useApi } from '../components';

type Host = Schemas['HostList'][number];

/**
 * The fleet's hosts: state, capacity as placement counts it (CPUs × the agent's allocation ratio, memory), the
 * accelerator QEMU runs with and why (KVM, or TCG when KVM is missing or unusable), and each datastore's free space.
 */
export function HostsPage(): JSX.Element {
  const hosts = useApi(() => call(api.GET('/v1/hosts')), 'hosts');
  return (
    <Page title="Hosts" actions={<ReloadButton onClick={hosts.reload} busy={hosts.loading} />}>
      <ErrorAlert error={hosts.error} />
      {hosts.data && (
        <>
          <HostTable hosts={hosts.data} />
          <h2>Datastores</h2>
          <DataTable label="Datastores" headers={['Host', 'Datastore', 'Path', { text: 'Free', class: 'num' }]}>
            {hosts.data.flatMap((h) =>
              h.datastores.map((d) => (
                <tr key={`${h.id}/${d.name}`}>
                  <td>{h.hostname}</td>
                  <th scope="row">{d.name}</th>
                  <td class="mono">{d.path}</td>
                  <td class="num">{bytes(d.freeBytes)}</td>
                </tr>
              )),
            )}
          </DataTable>
        </>
      )}
    </Page>
  );
}

function HostTable({ hosts }: { hosts: Host[] }): JSX.Element {
  return (
    <DataTable
      label="Hosts"
      headers={['Host', 'ID', 'State', 'vCPUs', 'Memory', 'Accelerator', 'Why', 'QEMU', 'Agent', 'Last heartbeat']}
      empty="No hosts."
    >
      {hosts.map((h) => {
        const a = h.agent;
        const m = h.machine;
        return (
          <tr key={h.id} data-state={h.state}>
            <th scope="row">
              {h.hostname}
              {h.local ? ' (this server)' : ''}
            </th>
            <td class="mono">{h.id}</td>
            <td>
              <span class={`state ${h.state}`}>{h.state}</span>
            </td>
            <td>{m ? `${m.cpus} CPUs × ${m.cpuAllocationRatio} = ${Math.floor(m.cpus * m.cpuAllocationRatio)}` : '—'}</td>
            <td>{m ? bytes(m.memoryBytes) : '—'}</td>
            <td>{m ? m.accel : '—'}</td>
            <td>{m ? orDash(m.accelWhy) : '—'}</td>
            <td>{m ? orDash(m.qemuVersion) : '—'}</td>
            <td>{a ? `${a.listen} (pid ${a.pid}, generation ${a.generation})` : 'none'}</td>
            <td>{a ? time(a.heartbeatAt) : '—'}</td>
          </tr>
        );
      })}
    </DataTable>
  );
}

import type { JSX } from 'preact';
import { api, call } from '../api';
import { DataTable, ErrorAlert, orDash, Page, ReloadButton, time, useApi } from '../components';

/** Frozen templates (the forked state children are made from) with their children counts. */
export function TemplatesPage(): JSX.Element {
  const templates = useApi(() => call(api.GET('/v1/templates')), 'templates');
  return (
    <Page title="Templates" actions={<ReloadButton onClick={templates.reload} busy={templates.loading} />}>
      <ErrorAlert error={templates.error} />
      {templates.data && (
        <DataTable
          label="Templates"
          headers={['Template', 'State', 'Image', 'Parent', 'Host', 'Children', 'Created', 'Last error']}
          empty="No templates."
        >
          {templates.data.map((t) => (
            <tr key={t.name} data-state={t.state}>
              <th scope="row">{t.name}</th>
              <td><span class={`state ${t.state}`}>{t.state}</span></td>
              <td>{t.image}</td>
              <td>{orDash(t.parent)}</td>
              <td>{t.hostId}</td>
              <td class="num">{t.children}</td>
              <td>{time(t.createdAt)}</td>
              <td>{orDash(t.lastError)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Page>
  );
}

import type { JSX } from 'preact';
import { api, call } from '../api';
import { bytes, DataTable, ErrorAlert, Page, ReloadButton, time, useApi } from '../components';

/** Registered images: built here or imported, their disk's virtual size and what it takes on disk. */
export function ImagesPage(): JSX.Element {
  const images = useApi(() => call(api.GET('/v1/images')), 'images');
  return (
    <Page title="Images" actions={<ReloadButton onClick={images.reload} busy={images.loading} />}>
      <ErrorAlert error={images.error} />
      {images.data && (
        <DataTable
          label="Images"
          headers={['Image', 'State', 'Source', 'Host', 'Virtual size', 'File size', 'Disk', 'Created']}
          empty={<>No images: build one with <code>vmfork image build</code>.</>}
        >
          {images.data.map((i) => (
            <tr key={i.name} data-state={i.state}>
              <th scope="row">{i.name}</th>
              <td><span class={`state ${i.state}`}>{i.state}</span></td>
              <td>{i.source}</td>
              <td>{i.hostId}</td>
              <td class="num">{bytes(i.virtualSize)}</td>
              <td class="num">{bytes(i.fileSize)}</td>
              <td class="mono">{i.diskPath}</td>
              <td>{time(i.createdAt)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Page>
  );
}

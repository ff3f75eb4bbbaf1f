import type { JSX } from 'preact';
import { Page } from '../components';
import { Link } from '../router';

export function NotFoundPage({ path }: { path: string }): JSX.Element {
  return (
    <Page title="Not found">
      <p>
        Nothing here at <code>{path}</code>. Go to the <Link href="/pools">pools</Link>.
      </p>
    </Page>
  );
}

import type { JSX, TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { logIn } from '../api';
import { ErrorAlert, Page, useAction } from '../components';

/**
 * Log in with the API token (`<home>/api-token`): it is sent once, for a session cookie the page cannot read;
 * the page keeps nothing of it. The field is a plain text box (a password box is no textbox to assistive tools)
 * whose characters are masked by CSS.
 */
export function LoginPage({ onLoggedIn }: { onLoggedIn(): void }): JSX.Element {
  const [token, setToken] = useState('');
  const action = useAction();
  const submit = async (e: TargetedSubmitEvent<HTMLFormElement>): Promise<void> => {
    e.preventDefault();
    const session = await action.run(() => logIn(token.trim()));
    if (session) {
      setToken('');
      onLoggedIn();
    }
  };
  return (
    <Page title="Log in to vmfork">
      <form class="login" onSubmit={(e) => void submit(e)}>
        <label for="api-token">API token</label>
        <input
          id="api-token"
          type="text"
          class="secret"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <button type="submit" disabled={action.busy}>
          Log in
        </button>
        <p class="help">
          The token is in <code>&lt;home&gt;/api-token</code> on the server (<code>cat ~/.local/share/vmfork/api-token</code>). The session lasts
          12 hours or until you log out.
        </p>
      </form>
      <ErrorAlert error={action.error} />
    </Page>
  );
}

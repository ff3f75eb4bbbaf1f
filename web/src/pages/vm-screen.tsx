import RFB from '@novnc/novnc';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ErrorAlert, Page, whyClosed, wsUrl } from '../components';

type Status = 'connecting' | 'connected' | 'closed';

/**
 * A VM's screen with noVNC over the WebSocket `/v1/vms/{name}/screen`. It starts view only: the server drops
 * input from a viewer, and the page does not send any. "Take control" reconnects with `?control=1`.
 */
export function VmScreenPage({ name }: { name: string }): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [control, setControl] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    if (!box.current) return;
    setStatus('connecting');
    setError(null);
    const url = wsUrl(`/v1/vms/${encodeURIComponent(name)}/screen${control ? '?control=1' : ''}`);
    const r = new RFB(box.current, url);
    r.viewOnly = !control;
    r.scaleViewport = true;
    r.background = '#1e1e1e';
    // a replaced connection (control taken or given back, reconnect) reports its end after the next one began:
    // only the current one's events count
    let current = true;
    let open = true;
    r.addEventListener('connect', () => current && setStatus('connected'));
    r.addEventListener('disconnect', (e) => {
      open = false;
      if (!current) return;
      setStatus('closed');
      if (!(e as CustomEvent<{ clean: boolean }>).detail.clean) {
        void whyClosed(name, new CloseEvent('close', { code: 1006, reason: '' })).then((err) => current && setError(err));
      }
    });
    r.addEventListener('securityfailure', (e) => {
      if (!current) return;
      const reason = (e as CustomEvent<{ reason?: string }>).detail.reason;
      setError(new ApiError(-1, 'VNC_SECURITY_FAILURE', reason ?? 'the VNC server refused the connection'));
    });
    rfb.current = r;
    return () => {
      current = false;
      rfb.current = null;
      if (open) r.disconnect();
    };
  }, [name, control, attempt]);

  return (
    <Page title={`Screen: ${name}`}>
      <p class="toolbar">
        <span class={`mode ${control ? 'control' : 'view'}`}>{control ? 'In control' : 'View only'}</span>{' '}
        <span role="status" class={`conn ${status}`}>
          {status === 'connected' ? 'Connected' : status === 'connecting' ? 'Connecting…' : 'Disconnected'}
        </span>{' '}
        <button type="button" onClick={() => setControl((c) => !c)}>
          {control ? 'Give back control' : 'Take control'}
        </button>{' '}
        <button type="button" class="secondary" onClick={() => setAttempt((a) => a + 1)} disabled={status === 'connecting'}>
          Reconnect
        </button>{' '}
        {control && (
          <button type="button" class="secondary" onClick={() => rfb.current?.sendCtrlAltDel()} disabled={status !== 'connected'}>
            Send Ctrl+Alt+Del
          </button>
        )}
      </p>
      <ErrorAlert error={error} />
      <div ref={box} class="screen" role="region" aria-label="Screen" />
    </Page>
  );
}

import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../api';
import { ErrorAlert, Page, whyClosed, wsUrl } from '../components';

type Status = 'connecting' | 'connected' | 'closed';

/**
 * A VM's serial console: xterm.js (its DOM renderer, so the text is in the page) over the WebSocket
 * `/v1/vms/{name}/console` — the port's bytes as they come (first the tail of its log), keystrokes back as UTF-8.
 */
export function VmConsolePage({ name }: { name: string }): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    if (!box.current) return;
    const t = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, fontFamily: 'ui-monospace, Menlo, Consolas, monospace' });
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(box.current);
    fit.fit();
    term.current = t;
    const resize = new ResizeObserver(() => fit.fit());
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      t.dispose();
      term.current = null;
    };
  }, []);

  useEffect(() => {
    const t = term.current;
    if (!t) return;
    // the server starts each connection with the tail of the serial log: a reconnect starts from a clean screen
    if (attempt > 0) t.reset();
    setStatus('connecting');
    setError(null);
    const ws = new WebSocket(wsUrl(`/v1/vms/${encodeURIComponent(name)}/console`));
    ws.binaryType = 'arraybuffer';
    const utf8 = new TextEncoder();
    const send = (bytes: Uint8Array): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
    };
    const typed = t.onData((d) => send(utf8.encode(d)));
    // onBinary: mouse reports and the like, one byte per character
    const binary = t.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
    ws.onopen = () => {
      setStatus('connected');
      t.focus();
    };
    ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => t.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
    ws.onclose = (e) => {
      setStatus('closed');
      t.write(`\r\n\x1b[2m[console closed${e.reason ? `: ${e.reason}` : ''}]\x1b[0m\r\n`);
      if (e.code !== 1000) void whyClosed(name, e).then(setError);
    };
    return () => {
      typed.dispose();
      binary.dispose();
      ws.onclose = null;
      ws.close();
    };
  }, [name, attempt]);

  return (
    <Page title={`Console: ${name}`}>
      <p class="toolbar">
        <span role="status" class={`conn ${status}`}>
          {status === 'connected' ? 'Connected' : status === 'connecting' ? 'Connecting…' : 'Disconnected'}
        </span>{' '}
        <button type="button" onClick={() => setAttempt((a) => a + 1)} disabled={status === 'connecting'}>
          Reconnect
        </button>
      </p>
      <ErrorAlert error={error} />
      <div ref={box} class="terminal" role="region" aria-label="Serial console" />
    </Page>
  );
}

import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { VmforkError } from '../errors.js';

/**
 * A TLS link between two agents keyed by a pre-shared key (the fleet's key, derived per use): how a lazy child's
 * memory stream crosses hosts (src/host-agent/lazy-steps.ts). Both ends prove they hold the key; nothing else is
 * trusted. Node's TLS-PSK is TLS 1.2 only (its 1.3 PSK is for resumption), with an AEAD PSK suite.
 */
const CIPHERS = 'PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256';
const IDENTITY = 'vmfork';
const TLS = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: CIPHERS } as const;

export interface PskListener {
  port: number;
  close(): void;
}

/** Listens on `host` (a free port) for one peer holding `key`; each accepted link goes to `onLink`. */
export async function listenPsk(host: string, key: Buffer, onLink: (link: TLSSocket) => void): Promise<PskListener> {
  const server = createServer({ ...TLS, pskCallback: (_socket, identity) => (identity === IDENTITY ? key : null) }, onLink);
  // a peer without the key fails its handshake: nothing of it reaches onLink
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** Opens a link to a peer listening with `key`. */
export async function dialPsk(host: string, port: number, key: Buffer, timeoutMs = 30_000): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    const socket = connect({ ...TLS, host, port, pskCallback: () => ({ psk: key, identity: IDENTITY }), checkServerIdentity: () => undefined });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new VmforkError('VMFORK_TIMEOUT', `no TLS link to ${host}:${port} within ${timeoutMs} ms`, { details: { host, port } }));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new VmforkError('VMFORK_HOST_JOB', `TLS link to ${host}:${port} failed: ${err.message}`, { cause: err, details: { host, port } }));
    });
  });
}

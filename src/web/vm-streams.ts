import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { VmDeps } from '../vm/index.js';
import { registerConsoleStream } from './console-stream.js';
import { registerScreenStream } from './screen-stream.js';

/** The largest frame a viewer may send: QEMU reads a clipboard of up to 1 MiB, every other message is tiny. */
const MAX_FRAME_BYTES = 2 * 1024 * 1024;

/**
 * The VMs' live streams as WebSockets (docs/console.md): @fastify/websocket and the routes
 * `GET /v1/vms/{name}/console` and `GET /v1/vms/{name}/screen`. They are /v1 routes like any other: the API's
 * onRequest hook authenticates them (bearer token, or the session cookie with a matching Origin) before the upgrade.
 * The subprotocol `binary` (noVNC's) is accepted, no other. A second call on the same app does nothing.
 */
export function registerVmStreams(app: FastifyInstance, deps: VmDeps): void {
  if (app.hasDecorator('vmforkVmStreams')) return;
  app.decorate('vmforkVmStreams', true);
  void app.register(fastifyWebsocket, {
    options: { maxPayload: MAX_FRAME_BYTES, handleProtocols: (offered: Set<string>) => (offered.has('binary') ? 'binary' : false) },
  });
  void app.register(async (scope) => {
    // an upgrade refused here (401, 404, 409: an HTTP answer) leaves its socket open: @fastify/websocket closes it
    // only when its own onRequest hook ran, which an auth hook that threw before it skips — and an open upgraded
    // socket would hold a closing server up
    scope.addHook('onResponse', async (req) => {
      if (req.headers.upgrade !== undefined) req.raw.socket.destroy();
    });
    registerConsoleStream(scope, deps);
    registerScreenStream(scope, deps);
  });
}

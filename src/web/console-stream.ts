import type { FastifyInstance, FastifyRequest } from 'fastify';
import { vmConsoleSocket, type VmDeps } from '../vm/index.js';
import { bridgeToUnix } from './unix-bridge.js';

/** The VM's checked socket, from the route's preHandler (which answers errors as HTTP) to its WebSocket handler. */
export type SocketOf = WeakMap<FastifyRequest, string>;

/**
 * `GET /v1/vms/{name}/console`: the VM's serial port as a WebSocket of binary frames (docs/console.md). The server
 * relays the VM's console hub (src/vm/serial-logger.ts), which sends each viewer the tail of the serial log, then
 * the live port; the viewer's bytes are the port's input. Any number of viewers, each on its own hub connection.
 * Before the upgrade: 404 VMFORK_VM_NOT_FOUND, 409 VMFORK_VM_ELSEWHERE (another host's VM), 409 VMFORK_VM_STATE (not
 * running, no console socket). Auth is the API's own onRequest hook, as for every /v1 route.
 */
export function registerConsoleStream(app: FastifyInstance, deps: VmDeps): void {
  const sockets: SocketOf = new WeakMap();
  app.get<{ Params: { name: string } }>('/v1/vms/:name/console', {
    websocket: true,
    preHandler: async (req) => {
      sockets.set(req, await vmConsoleSocket(deps, req.params.name));
    },
  }, (ws, req) => {
    const path = sockets.get(req);
    if (!path) return ws.close(1011, 'no console socket');
    const vm = req.params.name;
    req.log.info({ vm, stream: 'console' }, 'console viewer connected');
    bridgeToUnix(ws, { path, onEnd: (why) => req.log.info({ vm, stream: 'console', why }, 'console viewer gone') });
  });
}

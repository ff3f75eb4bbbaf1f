import type { FastifyInstance } from 'fastify';
import { vmConsoleSocket, type VmDeps } from '../vm/index.js';
import { bridgeToUnix } from './unix-bridge.js';
import { vmSocketRoute } from './vm-socket-route.js';

/**
 * `GET /v1/vms/{name}/console`: the VM's serial port as a WebSocket of binary frames (docs/console.md). The server
 * relays the VM's console hub (src/vm/serial-logger.ts), which sends each viewer the tail of the serial log, then
 * the live port; the viewer's bytes are the port's input. Any number of viewers, each on its own hub connection.
 * Before the upgrade: 404 VMFORK_VM_NOT_FOUND, 409 VMFORK_VM_ELSEWHERE (another host's VM), 409 VMFORK_VM_STATE (not
 * running, no console socket).
 */
export function registerConsoleStream(app: FastifyInstance, deps: VmDeps): void {
  vmSocketRoute(app, {
    url: '/v1/vms/:name/console',
    resolve: (vm) => vmConsoleSocket(deps, vm),
    connect: (ws, req, path) => {
      const vm = req.params.name;
      req.log.info({ vm, stream: 'console' }, 'console viewer connected');
      bridgeToUnix(ws, { path, onEnd: (why) => req.log.info({ vm, stream: 'console', why }, 'console viewer gone') });
    },
  });
}

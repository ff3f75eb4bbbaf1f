import type { FastifyInstance } from 'fastify';
import { vmScreenSocket, type VmDeps } from '../vm/index.js';
import { RfbInputFilter } from './rfb-input-filter.js';
import { bridgeToUnix } from './unix-bridge.js';
import { vmSocketRoute } from './vm-socket-route.js';

/**
 * `GET /v1/vms/{name}/screen[?control=1]`: the VM's screen as raw RFB (VNC) in binary WebSocket frames, relayed to
 * QEMU's VNC server on the VM's screen socket (noVNC speaks it; subprotocol `binary` accepted). Without `control=1`
 * the viewer's stream goes through RfbInputFilter: the handshake and display requests pass, keys, pointer,
 * clipboard, power and resize requests are dropped — read-only. QEMU's VNC has no password here: the socket's mode,
 * the API's token or session and this filter are the whole guard (docs/console.md). Errors before the upgrade as
 * for the console; 409 VMFORK_VM_STATE also for a VM without a screen.
 */
export function registerScreenStream(app: FastifyInstance, deps: VmDeps): void {
  vmSocketRoute<{ control?: string }>(app, {
    url: '/v1/vms/:name/screen',
    resolve: (vm) => vmScreenSocket(deps, vm),
    connect: (ws, req, path) => {
      const vm = req.params.name;
      const control = req.query.control === '1';
      const filter = control ? undefined : new RfbInputFilter();
      // who took control of a guest's screen, and what a viewer's filter dropped, are in the log
      req.log.info({ vm, stream: 'screen', control }, control ? 'screen viewer connected in control (its keys and pointer reach the guest)' : 'screen viewer connected (view only)');
      bridgeToUnix(ws, {
        path,
        ...(filter ? { inbound: (bytes: Buffer) => filter.push(bytes) } : {}),
        onEnd: (why) => req.log.info({ vm, stream: 'screen', control, why, ...(filter ? { dropped: filter.dropped } : {}) }, 'screen viewer gone'),
      });
    },
  });
}

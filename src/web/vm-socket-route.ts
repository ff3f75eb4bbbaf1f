import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';

export type VmStreamRequest<Q> = FastifyRequest<{ Params: { name: string }; Querystring: Q }>;

export interface VmSocketRoute<Q> {
  /** `/v1/vms/:name/<stream>`. */
  url: string;
  /** The VM's checked unix socket; its errors are the route's HTTP answer before any upgrade (404, 409). */
  resolve: (vm: string) => Promise<string>;
  /** Joins the upgraded WebSocket to that socket. */
  connect: (ws: WebSocket, req: VmStreamRequest<Q>, socket: string) => void;
}

/**
 * A VM's stream as a WebSocket route: the socket is resolved in a preHandler, so a VM that is missing, elsewhere or
 * without the stream gets a plain HTTP error instead of an upgrade that closes at once, and handed to the handler
 * through a WeakMap keyed by the request (the handler has no other way to receive it). Auth is the API's onRequest
 * hook, as for every /v1 route.
 */
export function vmSocketRoute<Q = Record<string, never>>(app: FastifyInstance, route: VmSocketRoute<Q>): void {
  const sockets = new WeakMap<FastifyRequest, string>();
  app.get<{ Params: { name: string }; Querystring: Q }>(route.url, {
    websocket: true,
    preHandler: async (req) => {
      sockets.set(req, await route.resolve(req.params.name));
    },
  }, (ws, req) => {
    const socket = sockets.get(req);
    if (!socket) return ws.close(1011, 'no socket resolved');
    route.connect(ws, req, socket);
  });
}

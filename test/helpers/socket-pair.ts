import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** Two connected TCP sockets on loopback: a link between two agents, or a QEMU's socket and vmfork's end of it. */
export async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const other = await accepted;
  server.close();
  return [client, other];
}

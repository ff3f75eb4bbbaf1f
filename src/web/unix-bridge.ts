import { connect, type Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';

/** A viewer's unsent bytes past which the VM's side is not read until they drain. */
const HIGH_WATER = 1024 * 1024;

export interface BridgeOptions {
  /** The unix socket of the VM's side (the console hub, QEMU's VNC server). */
  path: string;
  /**
   * What the viewer's bytes become on their way to the VM (a view-only screen's filter); throwing ends the bridge
   * with close code 1008 and the error's message.
   */
  inbound?: (bytes: Buffer) => Buffer;
  /** Called once when the bridge ends, with why (a log line). */
  onEnd?: (why: string) => void;
}

/** WebSocket close reasons are at most 123 bytes. */
function reason(text: string): string {
  const b = Buffer.from(text);
  return b.length <= 123 ? text : b.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '…';
}

function bytesOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Joins a viewer's WebSocket to a unix socket of the VM, bytes both ways, binary frames out (a text frame in is
 * taken as its UTF-8 bytes). Flow control both ways: a viewer that does not keep up stops the reading of the VM's
 * side (the console hub then drops it past its own 1 MiB; QEMU's VNC server sends less), and a VM's side that does
 * not take the viewer's bytes pauses the viewer. Either side closing or failing closes the other.
 */
export function bridgeToUnix(ws: WebSocket, options: BridgeOptions): void {
  let ended = false;
  const unix: Socket = connect(options.path);
  const end = (code: number, why: string): void => {
    if (ended) return;
    ended = true;
    unix.destroy();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason(why));
    options.onEnd?.(why);
  };
  unix.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, () => {
      if (unix.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) unix.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) unix.pause();
  });
  unix.on('end', () => end(1000, 'the VM side closed (the VM stopped)'));
  unix.on('close', () => end(1000, 'the VM side closed'));
  unix.on('error', (err: NodeJS.ErrnoException) => end(1011, `the VM side failed: ${err.code ?? err.message}`));
  ws.on('message', (data: RawData) => {
    if (ended) return;
    let bytes = bytesOf(data);
    try {
      if (options.inbound) bytes = options.inbound(bytes);
    } catch (err) {
      end(1008, (err as Error).message);
      return;
    }
    if (bytes.length === 0) return;
    if (!unix.write(bytes)) {
      ws.pause();
      unix.once('drain', () => ws.resume());
    }
  });
  ws.on('close', () => end(1000, 'the viewer left'));
  ws.on('error', () => end(1011, 'the viewer\'s connection failed'));
}

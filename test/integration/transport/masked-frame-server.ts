// A raw TCP server for client-side tests: it answers the opening handshake
// itself and parses every frame a client writes, requiring the MASK bit and
// unmasking with the frame's key (RFC 6455 5.3), so tests see exactly what the
// client put on the wire. It never writes frames of its own.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';

import { ms, withTimeout } from '../../helpers/peers.js';

export interface Frame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/** One server-side connection: its socket and the frames parsed so far (unmasked). */
export interface Peer {
  socket: net.Socket;
  frames: Frame[];
  /** Resolves once `n` frames have arrived. */
  waitFor(n: number): Promise<void>;
}

/** A TCP server that answers the opening handshake and parses the client's frames; every frame must be masked. */
export async function rawServer(): Promise<{ port: number; peers: Peer[]; close(): Promise<void> }> {
  const peers: Peer[] = [];
  const server = net.createServer((socket) => {
    const frames: Frame[] = [];
    const waiters: Array<{ n: number; resolve: () => void }> = [];
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /sec-websocket-key: *([^\r\n]+)/i.exec(buf.subarray(0, end).toString('latin1'))![1]!.trim();
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        buf = buf.subarray(end + 4);
        upgraded = true;
      }
      for (;;) {
        if (buf.length < 2) break;
        const b1 = buf[1]!;
        assert.ok((b1 & 0x80) !== 0, `frame ${frames.length} from the client is not masked`);
        let len = b1 & 0x7f;
        let p = 2;
        if (len === 126) {
          if (buf.length < 4) break;
          len = buf.readUInt16BE(2);
          p = 4;
        } else if (len === 127) {
          if (buf.length < 10) break;
          len = Number(buf.readBigUInt64BE(2));
          p = 10;
        }
        if (buf.length < p + 4 + len) break;
        const mask = buf.subarray(p, p + 4);
        const payload = Buffer.allocUnsafe(len);
        for (let i = 0; i < len; i++) payload[i] = buf[p + 4 + i]! ^ mask[i & 3]!;
        frames.push({ opcode: buf[0]! & 0x0f, fin: (buf[0]! & 0x80) !== 0, payload });
        buf = buf.subarray(p + 4 + len);
      }
      for (const w of waiters.splice(0)) if (frames.length >= w.n) w.resolve(); else waiters.push(w);
    });
    peers.push({
      socket,
      frames,
      waitFor: (n) => (frames.length >= n ? Promise.resolve() : withTimeout(new Promise<void>((resolve) => waiters.push({ n, resolve })), ms(10_000), `${n} frames`)),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A payload of n bytes whose content depends on (tag, n). */
export function bytes(n: number, tag: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + tag * 7 + n) & 0xff;
  return b;
}

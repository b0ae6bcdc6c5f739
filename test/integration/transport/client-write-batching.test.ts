// Write batching on the client (websocket.ts writeMaskedFrame): a client's
// small frames are masked straight into the shared slab, each socket with its
// own open segment, and flushed once per tick; larger ones get buffers of
// their own, and while a socket is congested its small frames do too (they
// are held). A raw TCP server here completes the handshake itself and parses
// what each client wrote: every frame must carry the MASK bit and a key, and
// unmask to exactly what was sent, in order (RFC 6455 5.3).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { rawServer, bytes, type Frame } from './masked-frame-server.js';
import { connect } from '../../../src/transport/node/client.js';
import type { ClientWebSocket } from '../../../src/transport/node/client.js';

// Around the slab's frame limit (SMALL_FRAME_MAX, 1024) and the bulk mask's threshold (BULK_MASK_MIN, 512).
const SIZES = [0, 1, 3, 125, 126, 511, 512, 513, 1024, 1025, 4096, 20_000];

describe('client write batching (masked frames in slab segments)', () => {
  it('clients taking turns within one tick, every size around the thresholds, text, binary and pings: each server peer unmasks exactly its sequence', async () => {
    const srv = await rawServer();
    const clients: ClientWebSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await connect(`ws://127.0.0.1:${srv.port}/`, { deflate: false }));
      const expected: Frame[][] = clients.map(() => []);
      // One tick: the clients alternate, so each one's segment is closed and reopened as another writes.
      for (let round = 0; round < 4; round++) {
        for (const n of SIZES) {
          clients.forEach((ws, k) => {
            const tag = round * 100 + k;
            if ((n + k) % 2 === 0) {
              ws.send(bytes(n, tag));
              expected[k]!.push({ opcode: 0x2, fin: true, payload: bytes(n, tag) });
            } else {
              const text = 'é'.repeat(n >> 1) + 'x'.repeat(n & 1);
              ws.send(text);
              expected[k]!.push({ opcode: 0x1, fin: true, payload: Buffer.from(text) });
            }
          });
        }
        clients.forEach((ws, k) => {
          ws.ping(`p${round}-${k}`);
          expected[k]!.push({ opcode: 0x9, fin: true, payload: Buffer.from(`p${round}-${k}`) });
        });
      }
      await Promise.all(srv.peers.map((p, k) => p.waitFor(expected[k]!.length)));
      srv.peers.forEach((p, k) => {
        assert.equal(p.frames.length, expected[k]!.length);
        p.frames.forEach((f, i) => {
          const e = expected[k]![i]!;
          assert.equal(f.opcode, e.opcode, `client ${k} frame ${i}: opcode`);
          assert.ok(f.payload.equals(e.payload), `client ${k} frame ${i}: ${e.payload.length} B payload`);
        });
      });
    } finally {
      for (const ws of clients) ws.terminate();
      await srv.close();
    }
  });

  it('a congested client (the server stops reading): small frames, text and binary, are held in buffers of their own, then all arrive in order, none lost', async () => {
    const srv = await rawServer();
    let ws: ClientWebSocket | null = null;
    try {
      // 128 KiB: over Node's own socket mark on every Node we run; marks under it are backpressure-marks.test.ts's.
      ws = await connect(`ws://127.0.0.1:${srv.port}/`, { deflate: false, highWaterMark: 128 * 1024 });
      const peer = srv.peers[0]!;
      peer.socket.pause();
      const expected: Frame[] = [];
      let refused = 0;
      // About 6 MB: more than loopback's socket buffers take, under the 16 MiB cap.
      for (let i = 0; i < 12_000; i++) {
        const n = SIZES[i % 10]! + (i % 7);
        // Every third one text (encoded into its frame), the others binary.
        const p = i % 3 === 0 ? 'é'.repeat(n >> 1) + String.fromCharCode(0x41 + (i % 26)).repeat(n & 1) : bytes(n, i);
        expected.push({ opcode: typeof p === 'string' ? 0x1 : 0x2, fin: true, payload: Buffer.from(p) });
        if (!ws.send(p)) refused++;
        // Let some flushes happen along the way, so that frames are written, queued and held.
        if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(refused > 0, 'send() reported backpressure: the socket was congested');
      peer.socket.resume();
      await peer.waitFor(expected.length);
      assert.equal(peer.frames.length, expected.length);
      peer.frames.forEach((f, i) => assert.ok(f.opcode === expected[i]!.opcode && f.payload.equals(expected[i]!.payload), `frame ${i} (${expected[i]!.payload.length} B)`));
    } finally {
      ws?.terminate();
      await srv.close();
    }
  });
});

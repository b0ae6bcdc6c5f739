// Write batching on the server (websocket.ts): small frames are encoded into a
// shared slab, one open segment per socket, and flushed once per tick. These
// tests interleave sends on several sockets within one tick (so segments are
// closed and reopened as sockets take turns), mix in frames that bypass the
// slab (large ones, pings, runs of pre-encoded frames from a FrameArena as the
// session layer sends them), cross slab boundaries, and hit the high-water mark
// mid-tick; a real `ws` client on each socket must see exactly what was sent,
// in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WsWebSocket from 'ws';

import { ms, once, withTimeout } from '../../helpers/peers.js';
import { WebSocketServer } from '../../../src/transport/node/server.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';
import { writeDataFrame } from '../../../src/protocol/connection.js';
import { frameHeaderSize } from '../../../src/protocol/frame.js';
import { FrameArena } from '../../../src/server/frame-arena.js';
import { maskedClientFrame } from '../../helpers/frames.js';

interface Got {
  text: string[];
  pings: number;
  pingPayloads: Buffer[];
  pongPayloads: Buffer[];
}

async function setup(n: number, highWaterMark?: number) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark });
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const serverSide: WebSocket[] = [];
  server.on('connection', (ws) => serverSide.push(ws));
  const clients: Array<{ ws: WsWebSocket; got: Got }> = [];
  for (let i = 0; i < n; i++) {
    const ws = new WsWebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    const got: Got = { text: [], pings: 0, pingPayloads: [], pongPayloads: [] };
    ws.on('message', (d: Buffer, isBinary: boolean) => got.text.push((isBinary ? 'b:' : 't:') + (d.length > 64 ? `${d.length}x${d[0]}` : d.toString())));
    ws.on('ping', (d: Buffer) => {
      got.pings++;
      got.pingPayloads.push(d);
    });
    ws.on('pong', (d: Buffer) => got.pongPayloads.push(d));
    await once(ws, 'open');
    clients.push({ ws, got });
  }
  while (serverSide.length < n) await new Promise((r) => setImmediate(r));
  return { server, serverSide, clients };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  await withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5));
    })(),
    ms(10_000),
    what,
  );
}

describe('server write batching (slab segments)', () => {
  for (const [name, hwm] of [['default high-water mark', undefined], ['16 KiB high-water mark (flushes mid-tick)', 16 * 1024]] as const) {
    it(`sockets taking turns within one tick, mixed sizes and pings: every client gets exactly its sequence (${name})`, async () => {
      const { server, serverSide, clients } = await setup(5, hwm);
      const expected: string[][] = serverSide.map(() => []);
      const pings = serverSide.map(() => 0);
      const arenas = serverSide.map(() => new FrameArena());
      // ~3,000 sends per socket in one synchronous loop: many slab segments and several slab replacements.
      for (let i = 0; i < 3000; i++) {
        for (let k = 0; k < serverSide.length; k++) {
          const ws = serverSide[k]!;
          if (i % 97 === 0) {
            const big = Buffer.alloc(2000, i & 0xff);
            ws.send(big);
            expected[k]!.push(`b:2000x${i & 0xff}`);
          } else if (i % 13 === 0) {
            ws.send(Buffer.from(`bin${i}`));
            expected[k]!.push(`b:bin${i}`);
          } else if (i % 31 === 0) {
            ws.ping('p');
            pings[k]!++;
          } else if (i % 5 <= 1) {
            // Encoded frames in a per-socket arena (the session layer's path):
            // consecutive ones extend one run; now and then one of 5,000 B.
            const t = i % 485 === 0 ? `e${i}`.padEnd(5000, 'z') : `enc${i}-${k}`;
            const dlen = Buffer.byteLength(t);
            const size = frameHeaderSize(dlen, false) + dlen;
            const chunk = arenas[k]!.reserve(size, i + 1, 0);
            const at = arenas[k]!.at;
            writeDataFrame(chunk, at, false, '', t, dlen);
            ws._sendEncoded(chunk, at, at + size);
            expected[k]!.push(dlen > 64 ? `t:${dlen}x${t.charCodeAt(0)}` : `t:${t}`);
          } else {
            const t = `m${i}-${k}` + (i % 7 === 0 ? 'é'.repeat(70) : '');
            ws.send(t);
            const b = Buffer.from(t);
            expected[k]!.push(b.length > 64 ? `t:${b.length}x${b[0]}` : `t:${t}`);
          }
        }
      }
      try {
        await until(() => clients.every((c, k) => c.got.text.length >= expected[k]!.length && c.got.pings >= pings[k]!), 'all messages');
        clients.forEach((c, k) => {
          assert.deepEqual(c.got.text, expected[k], `client ${k}`);
          assert.equal(c.got.pings, pings[k]);
        });
      } finally {
        await server.close({ timeout: ms(2000) });
      }
    });
  }

  it('a socket closed with an open segment does not disturb the others', async () => {
    const { server, serverSide, clients } = await setup(3);
    try {
      for (let i = 0; i < 50; i++) for (const ws of serverSide) ws.send(`a${i}`);
      // Terminated in the same tick, while its segment is open.
      serverSide[1]!.terminate();
      for (let i = 0; i < 50; i++) for (const k of [0, 2]) serverSide[k]!.send(`b${i}`);
      const want = [...Array.from({ length: 50 }, (_, i) => `t:a${i}`), ...Array.from({ length: 50 }, (_, i) => `t:b${i}`)];
      await until(() => clients[0]!.got.text.length >= 100 && clients[2]!.got.text.length >= 100, 'messages on the open sockets');
      assert.deepEqual(clients[0]!.got.text, want);
      assert.deepEqual(clients[2]!.got.text, want);
    } finally {
      await server.close({ timeout: ms(2000) });
    }
  });

  it('string ping and pong payloads are encoded into the batch byte for byte, their UTF-8 length checked against 125', async () => {
    const { server, serverSide, clients } = await setup(2);
    try {
      const payloads = ['1763800000123', '', 'h\u00e9llo \u2603', 'x'.repeat(125), '\u2603'.repeat(41) + 'ab'];
      // Interleaved with data frames on two sockets in one tick, so segments change hands.
      for (const p of payloads) {
        for (const ws of serverSide) {
          ws.ping(p);
          ws.send(`after ${Buffer.byteLength(p)}`);
          ws.pong(p);
        }
      }
      assert.throws(() => serverSide[0]!.ping('y'.repeat(126)), (err: Error & { code?: string }) => err.code === 'WS_ERR_CONTROL_TOO_LONG');
      // 42 snowmen are 126 bytes in UTF-8: the byte length counts, not the string's.
      assert.throws(() => serverSide[0]!.pong('\u2603'.repeat(42)), (err: Error & { code?: string }) => err.code === 'WS_ERR_CONTROL_TOO_LONG');
      await until(() => clients.every((c) => c.got.pongPayloads.length >= payloads.length && c.got.text.length >= payloads.length), 'pings and pongs');
      for (const c of clients) {
        assert.deepEqual(c.got.pingPayloads.map((b) => b.toString('utf8')), payloads);
        assert.deepEqual(c.got.pongPayloads.map((b) => b.toString('utf8')), payloads);
        assert.deepEqual(c.got.text, payloads.map((p) => `t:after ${Buffer.byteLength(p)}`));
      }
    } finally {
      await server.close({ timeout: ms(2000) });
    }
  });

  it('number pings and pongs go out as their decimal text; a shared encoded ping keeps its place among batched frames', async () => {
    const { server, serverSide, clients } = await setup(2);
    try {
      // Written digit by digit: 0, each digit-count boundary, past 2^31 (the
      // 32-bit division's limit) and the largest safe integer. What is not a
      // whole number >= 0 goes out as String() gives it.
      const numbers = [0, 9, 10, 99999, 100000, 999999999, 1e9, 2 ** 31 - 1, 2 ** 31, 1763800000123, Number.MAX_SAFE_INTEGER, -1, 1.5];
      const shared = Buffer.from([0x89, 4, 0x31, 0x32, 0x33, 0x34]);
      const want: string[] = [];
      for (const n of numbers) {
        for (const ws of serverSide) {
          ws.ping(n);
          ws.send(`after ${n}`);
          ws.pong(n);
          // The same bytes queued on both sockets, between frames encoded into the slab.
          ws._sendEncodedControl(shared);
        }
        want.push(String(n), '1234');
      }
      await until(() => clients.every((c) => c.got.pingPayloads.length >= want.length && c.got.pongPayloads.length >= numbers.length), 'pings and pongs');
      for (const c of clients) {
        assert.deepEqual(c.got.pingPayloads.map((b) => b.toString('latin1')), want);
        assert.deepEqual(c.got.pongPayloads.map((b) => b.toString('latin1')), numbers.map(String));
        assert.deepEqual(c.got.text, numbers.map((n) => `t:after ${n}`));
      }
      // The shared frame itself is never written into.
      assert.deepEqual([...shared], [0x89, 4, 0x31, 0x32, 0x33, 0x34]);
      // Counted as sent bytes like any frame: 2-byte headers, the digits, the shared frame whole.
      const bytes = numbers.reduce((sum, n) => sum + 2 * (2 + String(n).length) + 2 + `after ${n}`.length + shared.length, 0);
      for (const ws of serverSide) assert.equal(ws.counters.bytesOut, bytes);
    } finally {
      await server.close({ timeout: ms(2000) });
    }
  });

  it("what a read's handlers send is written when the read is done, before the next tick: one write per socket, a broadcast included", async () => {
    const { server, serverSide, clients } = await setup(3);
    try {
      const [a, b, c] = serverSide as [WebSocket, WebSocket, WebSocket];
      const writes = new Map<WebSocket, number>();
      for (const ws of serverSide) {
        const raw = ws.rawSocket!;
        const write = raw.write.bind(raw);
        writes.set(ws, 0);
        raw.write = ((...args: Parameters<typeof raw.write>) => {
          writes.set(ws, writes.get(ws)! + 1);
          return write(...args);
        }) as typeof raw.write;
      }
      const seenInHandler: number[] = [];
      a.on('message', (d: Buffer) => {
        a.send(`echo ${d}`);
        a.send(`again ${d}`);
        b.send(`from a: ${d}`);
        server.broadcast(`all: ${d}`);
        // Nothing is written while the handler runs.
        seenInHandler.push(writes.get(a)! + writes.get(b)! + writes.get(c)!);
      });
      // The read, delivered synchronously as the socket's 'data' event is.
      a.rawSocket!.emit('data', maskedClientFrame(0x1, Buffer.from('hi')));
      assert.deepEqual(seenInHandler, [0]);
      // Already written, without waiting for a tick: each socket's frames in one write.
      assert.deepEqual([writes.get(a), writes.get(b), writes.get(c)], [1, 1, 1]);
      await until(() => clients[0]!.got.text.length >= 3 && clients[1]!.got.text.length >= 2 && clients[2]!.got.text.length >= 1, 'the replies');
      assert.deepEqual(clients[0]!.got.text, ['t:echo hi', 't:again hi', 't:all: hi']);
      assert.deepEqual(clients[1]!.got.text, ['t:from a: hi', 't:all: hi']);
      assert.deepEqual(clients[2]!.got.text, ['t:all: hi']);
      // Sends outside a read still go out once per tick.
      a.send('x');
      a.send('y');
      assert.equal(writes.get(a), 1);
      await new Promise((r) => process.nextTick(r));
      assert.equal(writes.get(a), 2);
    } finally {
      for (const { ws } of clients) ws.terminate();
      server.close();
    }
  });
});

// WebSocketServer.broadcast() against real `ws` clients: every open client
// gets each message exactly once and in order, clients with permessage-deflate
// get it compressed through their own codec, closed clients are skipped, the
// filter is honoured, and a slow consumer's policy still applies per socket.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WsWebSocket from 'ws';

import { ms, once, withTimeout } from '../../helpers/peers.js';
import { WebSocketServer } from '../../../src/transport/node/server.js';
import { PreparedMessage } from '../../../src/protocol/connection.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';

interface Received {
  data: Buffer;
  isBinary: boolean;
}

interface Client {
  ws: WsWebSocket;
  got: Received[];
  /** Resolves when `n` messages have arrived. */
  waitFor(n: number): Promise<void>;
}

async function openClient(port: number, deflate: boolean): Promise<Client> {
  const ws = new WsWebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate });
  const got: Received[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    got.push({ data, isBinary });
    for (const w of waiters.splice(0)) if (got.length >= w.n) w.resolve(); else waiters.push(w);
  });
  await once(ws, 'open');
  return {
    ws,
    got,
    waitFor: (n) => (got.length >= n ? Promise.resolve() : withTimeout(new Promise<void>((resolve) => waiters.push({ n, resolve })), ms(5000), `${n} messages`)),
  };
}

describe('WebSocketServer.broadcast', () => {
  let server: WebSocketServer;
  let port: number;
  const plain: Client[] = [];
  const compressed: Client[] = [];
  const serverSide: WebSocket[] = [];

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1', deflate: { threshold: 0 } });
    server.on('connection', (ws) => serverSide.push(ws));
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
    for (let i = 0; i < 4; i++) plain.push(await openClient(port, false));
    for (let i = 0; i < 2; i++) compressed.push(await openClient(port, true));
  });

  after(async () => {
    await server.close({ timeout: ms(2000) });
  });

  it('reaches every client once, in order, text and binary, plain and deflate', async () => {
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    assert.equal(server.broadcast('first'), 6);
    assert.equal(server.broadcast(big), 6);
    assert.equal(server.broadcast(new PreparedMessage('third')), 6);
    assert.equal(server.broadcast(Buffer.from('as text'), { binary: false }), 6);
    for (const c of [...plain, ...compressed]) {
      await c.waitFor(4);
      assert.equal(c.got.length, 4);
      assert.deepEqual(c.got.map((m) => m.isBinary), [false, true, false, false]);
      assert.equal(c.got[0]!.data.toString(), 'first');
      assert.ok(c.got[1]!.data.equals(big));
      assert.equal(c.got[2]!.data.toString(), 'third');
      assert.equal(c.got[3]!.data.toString(), 'as text');
    }
    // The deflate clients really negotiated compression (so they took the per-socket path).
    for (const c of compressed) assert.match(c.ws.extensions, /permessage-deflate/);
    for (const ws of serverSide) assert.equal(ws.counters.messagesOut, 4);
  });

  it('honours the filter', async () => {
    const chosen = new Set(serverSide.slice(0, 3));
    const before = [...plain, ...compressed].map((c) => c.got.length);
    assert.equal(server.broadcast('some', { filter: (ws) => chosen.has(ws) }), 3);
    // One more to everyone: its arrival proves the filtered one would have come first.
    assert.equal(server.broadcast('all'), 6);
    const all = [...plain, ...compressed];
    for (let i = 0; i < all.length; i++) {
      const c = all[i]!;
      const isChosen = chosen.has(serverSide[i]!);
      await c.waitFor(before[i]! + (isChosen ? 2 : 1));
      const tail = c.got.slice(before[i]!).map((m) => m.data.toString());
      assert.deepEqual(tail, isChosen ? ['some', 'all'] : ['all'], `client ${i}`);
    }
  });

  it('skips clients that have closed', async () => {
    const leaving = plain.pop()!;
    const leavingServerSide = serverSide[plain.length]!;
    const closed = once(leavingServerSide, 'close');
    leaving.ws.close(1000);
    await closed;
    assert.equal(server.broadcast('after'), 5);
  });
});

describe('WebSocketServer.broadcast with a slow consumer', () => {
  it("applies the socket's drop-newest policy; other clients get everything", async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark: 16 * 1024, maxBufferedBytes: 64 * 1024, slowConsumer: 'drop-newest' });
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const conns: WebSocket[] = [];
    server.on('connection', (ws) => conns.push(ws));
    const fast = await openClient(port, false);
    const slow = await openClient(port, false);
    // The slow client stops reading: its kernel buffers fill, then ours.
    (slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    // 24 MiB in all: more than loopback's kernel buffers can absorb for the paused reader.
    const msg = Buffer.alloc(8 * 1024, 1);
    const n = 3000;
    try {
      for (let i = 0; i < n; i++) {
        server.broadcast(msg);
        // Paced by the fast reader, so only the paused one falls behind.
        if (i % 4 === 3) await fast.waitFor(i + 1);
      }
      await fast.waitFor(n);
      assert.equal(fast.got.length, n);
      assert.ok(conns[1]!.counters.dropped > 0, 'the slow consumer dropped messages by policy');
      assert.equal(conns[0]!.counters.dropped, 0);
    } finally {
      await server.close({ timeout: ms(1000) });
    }
  });
});

describe('WebSocketServer.broadcast and backpressure', () => {
  it("answers no backpressure per client (it returns a count): no 'drain' is owed; the client's own send() answers false and gets its 'drain'", async () => {
    const HWM = 16 * 1024;
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark: HWM, maxBufferedBytes: 256 * 1024 * 1024 });
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const accepted = once<WebSocket>(server, 'connection');
    const slow = await openClient(port, false);
    const ws = await accepted;
    const reader = (slow.ws as unknown as { _socket: import('node:net').Socket })._socket;
    let drains = 0;
    ws.on('drain', () => drains++);
    const msg = Buffer.alloc(64 * 1024, 3);
    let sent = 0;
    /** Broadcasts until the paused reader's socket holds more than the mark (the kernel's buffers take some first). */
    const congest = async (): Promise<void> => {
      reader.pause();
      for (let i = 0; ws.bufferedAmount <= HWM && i < 2000; i++) {
        assert.equal(server.broadcast(msg), 1);
        sent++;
        // A turn of the loop between broadcasts: the queued frames are written, and Node's buffer grows.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      assert.ok(ws.bufferedAmount > HWM, `over the mark after ${sent} broadcasts (bufferedAmount ${ws.bufferedAmount})`);
    };
    try {
      await congest();
      reader.resume();
      // All of it read by the client: the server's buffers were written out, and each 'drain' of its socket came before.
      await slow.waitFor(sent);
      assert.equal(drains, 0, "no 'drain': broadcast() answered no false");

      await congest();
      assert.equal(ws.send(Buffer.alloc(10)), false, "the client's own send() answers the backpressure");
      const drained = once(ws, 'drain', ms(20_000));
      reader.resume();
      await drained;
      assert.ok(ws.bufferedAmount <= HWM, `'drain' once under the mark (bufferedAmount ${ws.bufferedAmount})`);
      await slow.waitFor(sent + 1);
      assert.equal(slow.got.length, sent + 1, 'every broadcast and the send arrived, once each');
      assert.equal(drains, 1);
    } finally {
      slow.ws.terminate();
      await server.close({ timeout: ms(1000) });
    }
  });
});

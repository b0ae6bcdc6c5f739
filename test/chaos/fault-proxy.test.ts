// The fault injector itself, over real loopback sockets: plain net sockets on
// both ends (and our WebSocket server and client for the frame-aware cut).
//
// pass forwards both ways and counts; delay adds at least the delay and never
// reorders; throttle limits throughput and splits big chunks; blackhole 'drop'
// loses one direction while the other flows and nobody sees a close; 'hold'
// releases held bytes in order on pass(); cutRst resets both ends; cutAfterBytes
// forwards exactly n bytes; cutMidFrame cuts inside a WebSocket frame's payload;
// refuse() resets new connections; an unreachable target resets the client;
// close() is idempotent and tears down pending timers and sockets.

import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, test } from 'node:test';

import { connect } from '../../src/transport/node/client.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { freePort, ms, once, withTimeout } from '../helpers/peers.js';

// ------------------------------------------------------------------ helpers

/** Everything one socket read, and how it ended. */
class Reader {
  private chunks: Buffer[] = [];
  private length = 0;
  dataEvents = 0;
  ended = false;
  errorCode: string | null = null;
  readonly closed: Promise<string | null>;
  /** Resolves on the first of 'end' (FIN) or 'close'. */
  readonly gone: Promise<void>;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
      this.dataEvents++;
      this.waiters = this.waiters.filter((w) => (this.length >= w.n ? (w.resolve(), false) : true));
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.errorCode ??= err.code ?? err.message));
    this.closed = new Promise((resolve) => socket.on('close', () => resolve(this.errorCode)));
    this.gone = new Promise((resolve) => {
      socket.once('end', resolve);
      socket.once('close', resolve);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.bytes.toString();
  }

  /** Resolves with everything read once at least n bytes have arrived. */
  async atLeast(n: number, timeoutMs = ms(3000)): Promise<Buffer> {
    if (this.length < n) {
      await withTimeout(new Promise<void>((resolve) => this.waiters.push({ n, resolve })), timeoutMs, `${n} bytes (have ${this.length})`);
    }
    return this.bytes;
  }
}

/** A plain TCP server standing in for the real one; hands out accepted sockets in order. */
class Upstream {
  private readonly accepted: Reader[] = [];
  private readonly waiting: Array<(r: Reader) => void> = [];
  private readonly all = new Set<net.Socket>();
  private constructor(readonly server: net.Server) {}

  static async start(): Promise<Upstream> {
    let up!: Upstream;
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      up.all.add(s);
      s.on('close', () => up.all.delete(s));
      const r = new Reader(s);
      const w = up.waiting.shift();
      if (w) w(r);
      else up.accepted.push(r);
    });
    up = new Upstream(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return up;
  }

  get target(): { host: string; port: number } {
    return { host: '127.0.0.1', port: (this.server.address() as net.AddressInfo).port };
  }

  next(): Promise<Reader> {
    const r = this.accepted.shift();
    if (r) return Promise.resolve(r);
    return withTimeout(new Promise<Reader>((resolve) => this.waiting.push(resolve)), ms(3000), 'upstream connection');
  }

  /** Stops listening and destroys every accepted socket (a half-closed one would keep server.close() waiting). */
  close(): Promise<void> {
    for (const s of this.all) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** An upstream, a proxy in front of it, and a client connected through it. */
async function rig() {
  const upstream = await Upstream.start();
  const proxy = await FaultProxy.start(upstream.target);
  const client = new Reader(net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true }));
  cleanups.push(
    () => upstream.close(),
    () => proxy.close(),
    () => client.socket.destroy(),
  );
  const conn = await proxy.onConnection();
  const server = await upstream.next();
  return { upstream, proxy, conn, client, server };
}

// ------------------------------------------------------------------ tests

describe('FaultProxy', () => {
  test('pass forwards bytes both ways, counts them, and forwards FIN as FIN', async () => {
    const { proxy, conn, client, server } = await rig();
    assert.equal(proxy.url(), `ws://127.0.0.1:${proxy.port}/`);
    assert.equal(proxy.url('chat'), `ws://127.0.0.1:${proxy.port}/chat`);
    assert.deepEqual(proxy.connections, [conn]);

    client.socket.write('hello up');
    assert.equal((await server.atLeast(8)).toString(), 'hello up');
    server.socket.write('hello down!');
    assert.equal((await client.atLeast(11)).toString(), 'hello down!');

    assert.equal(proxy.counters.accepted, 1);
    assert.equal(proxy.counters.up.forwarded, 8);
    assert.equal(proxy.counters.down.forwarded, 11);
    assert.equal(conn.counters.up.received, 8);
    assert.equal(conn.counters.down.dropped, 0);

    client.socket.end();
    await withTimeout(once(server.socket, 'end'), ms(2000), 'FIN at the server');
    server.socket.end();
    const end = await withTimeout(conn.closed, ms(2000), 'connection closed');
    assert.deepEqual(end, { reason: 'ended', clientError: null, serverError: null });
    assert.deepEqual(proxy.connections, []);
  });

  test('delay adds at least the delay in one direction and never reorders bytes', async () => {
    const { proxy, conn, client, server } = await rig();
    const DELAY = ms(80);
    const JITTER = ms(30);
    proxy.delay(DELAY, JITTER, 'up');

    // 20 chunks, 5 ms apart: far less than the jitter, so independent timers would reorder them.
    const sent: Buffer[] = [];
    const t0 = performance.now();
    let firstArrival = 0;
    server.socket.once('data', () => (firstArrival = performance.now()));
    for (let i = 0; i < 20; i++) {
      const chunk = Buffer.from(`<${String(i).padStart(2, '0')}>`);
      sent.push(chunk);
      client.socket.write(chunk);
      await new Promise((r) => setTimeout(r, 5)); // pacing, not synchronisation
    }
    const all = Buffer.concat(sent);
    assert.equal((await server.atLeast(all.length, ms(5000))).toString(), all.toString());
    assert.ok(conn.counters.up.chunks >= 2, `the proxy saw ${conn.counters.up.chunks} chunks; the order check needs several`);
    const firstDelay = firstArrival - t0;
    assert.ok(firstDelay >= DELAY - JITTER - 2, `first chunk after ${firstDelay.toFixed(1)} ms, expected >= ${DELAY - JITTER}`);
    assert.ok(firstDelay < DELAY + JITTER + ms(1000), `first chunk after ${firstDelay.toFixed(1)} ms`);

    // 'down' was left alone: a round trip there is not held back by the delay.
    const t1 = performance.now();
    server.socket.write('x');
    await client.atLeast(1);
    assert.ok(performance.now() - t1 < DELAY - JITTER, 'down was delayed too');
  });

  test('throttle limits throughput and trickles a big chunk', async () => {
    const { proxy, conn, client, server } = await rig();
    const RATE = 64 * 1024;
    proxy.throttle(RATE, 'down');
    const payload = Buffer.alloc(32 * 1024, 7);
    const t0 = performance.now();
    server.socket.write(payload);
    await client.atLeast(payload.length, ms(5000));
    const seconds = (performance.now() - t0) / 1000;
    // 32 KiB at 64 KiB/s, minus the initial burst of 1/20 s: about 0.45 s.
    assert.ok(seconds >= 0.4, `32 KiB took ${seconds.toFixed(3)} s at 64 KiB/s`);
    assert.ok(seconds < 0.45 + ms(2000) / 1000, `32 KiB took ${seconds.toFixed(3)} s`);
    assert.ok(client.dataEvents >= 10, `arrived in ${client.dataEvents} pieces`);
    assert.equal(conn.counters.down.forwarded, payload.length);
    assert.ok(client.bytes.equals(payload));
  });

  test("blackhole('up') drops client->server bytes while down flows and both sockets stay open", async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.blackhole('up');
    client.socket.write('lost');
    await conn.waitFor('up', 'dropped', 4);

    server.socket.write('still here');
    assert.equal((await client.atLeast(10)).toString(), 'still here');
    assert.equal(server.bytes.length, 0, 'a blackholed byte reached the server');
    assert.equal(conn.state, 'open');
    for (const r of [client, server]) {
      assert.equal(r.ended, false);
      assert.equal(r.socket.destroyed, false);
    }

    // Dropped means gone: after pass() the server's first bytes are the new ones.
    proxy.pass('up');
    client.socket.write('found');
    assert.equal((await server.atLeast(5)).toString(), 'found');
    assert.equal(proxy.counters.up.dropped, 4);
  });

  test("blackhole('up', 'hold') stalls bytes and releases them in order on pass()", async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.blackhole('up', 'hold');
    client.socket.write('ab');
    await conn.waitFor('up', 'queued', 2);
    client.socket.write('cd');
    await conn.waitFor('up', 'received', 4);

    server.socket.write('ping');
    await client.atLeast(4);
    assert.equal(server.bytes.length, 0, 'held bytes leaked');
    assert.equal(conn.counters.up.queued, 4);

    proxy.pass('up');
    client.socket.write('ef');
    assert.equal((await server.atLeast(6)).toString(), 'abcdef');
    assert.equal(conn.counters.up.dropped, 0);
    assert.equal(conn.counters.up.queued, 0);
  });

  test('blackhole swallows FIN too: the server never learns the client left (half-open)', async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.blackhole('up');
    client.socket.end();
    // The client's FIN reached the proxy and was not passed on.
    await withTimeout(once(conn.client, 'end'), ms(2000), 'FIN at the proxy');
    server.socket.write('anyone?');
    assert.equal((await client.atLeast(7)).toString(), 'anyone?');
    assert.equal(server.ended, false);
    assert.equal(conn.state, 'open');
  });

  test('cutRst resets both ends', async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.cutRst();
    const [clientErr, serverErr] = await withTimeout(Promise.all([client.closed, server.closed]), ms(2000), 'both ends closed');
    assert.equal(clientErr, 'ECONNRESET');
    assert.equal(serverErr, 'ECONNRESET');
    assert.equal((await conn.closed).reason, 'cut');
    assert.equal(conn.state, 'closed');
  });

  test('cutAfterBytes forwards exactly n bytes, then resets both ends', async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.cutAfterBytes('up', 10);
    const payload = Buffer.from('0123456789abcdefghij'.repeat(5));
    client.socket.write(payload);
    const [clientErr, serverErr] = await withTimeout(Promise.all([client.closed, server.closed]), ms(2000), 'both ends closed');
    assert.equal(server.bytes.toString(), '0123456789');
    assert.equal(serverErr, 'ECONNRESET');
    assert.equal(clientErr, 'ECONNRESET');
    assert.equal(conn.counters.up.forwarded, 10);
    assert.equal((await conn.closed).reason, 'cut');
  });

  test('cutAfterBytes with { future: true } cuts each later connection after its own n bytes', async () => {
    const upstream = await Upstream.start();
    const proxy = await FaultProxy.start(upstream.target);
    cleanups.push(() => upstream.close(), () => proxy.close());
    proxy.cutAfterBytes('down', 3, { future: true });
    for (let i = 0; i < 2; i++) {
      const client = new Reader(net.connect(proxy.port, '127.0.0.1'));
      cleanups.push(() => client.socket.destroy());
      const server = await upstream.next();
      server.socket.write('abcdef');
      assert.equal(await withTimeout(client.closed, ms(2000), 'client reset'), 'ECONNRESET');
      assert.equal(client.text, 'abc');
    }
    proxy.pass('down');
    const client = new Reader(net.connect(proxy.port, '127.0.0.1'));
    cleanups.push(() => client.socket.destroy());
    (await upstream.next()).socket.write('abcdef');
    assert.equal((await client.atLeast(6)).toString(), 'abcdef');
  });

  test('refuse() resets new connections; refuse(false) lets them through', async () => {
    const upstream = await Upstream.start();
    const proxy = await FaultProxy.start(upstream.target);
    cleanups.push(() => upstream.close(), () => proxy.close());
    proxy.refuse();
    const refused = new Reader(net.connect(proxy.port, '127.0.0.1'));
    assert.equal(await withTimeout(refused.closed, ms(2000), 'refused client closed'), 'ECONNRESET');
    assert.equal(proxy.counters.accepted, 1);
    assert.deepEqual(proxy.connections, []);

    proxy.refuse(false);
    const client = new Reader(net.connect(proxy.port, '127.0.0.1'));
    cleanups.push(() => client.socket.destroy());
    await proxy.onConnection();
    (await upstream.next()).socket.write('ok');
    assert.equal((await client.atLeast(2)).toString(), 'ok');
  });

  test('an unreachable target resets the client', async () => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: await freePort() });
    cleanups.push(() => proxy.close());
    const client = new Reader(net.connect(proxy.port, '127.0.0.1'));
    const conn = await proxy.onConnection();
    const end = await withTimeout(conn.closed, ms(2000), 'connection closed');
    assert.equal(end.reason, 'upstream-failed');
    assert.equal(end.serverError, 'ECONNREFUSED');
    assert.equal(await client.closed, 'ECONNRESET');
  });

  test('close() tears down sockets and pending timers, and is idempotent', async () => {
    const { proxy, conn, client, server } = await rig();
    proxy.delay(ms(60_000), 0, 'up').blackhole('down', 'hold');
    client.socket.write('delayed');
    server.socket.write('held');
    await conn.waitFor('up', 'queued', 7);
    await conn.waitFor('down', 'queued', 4);
    const waiting = assert.rejects(proxy.onConnection(ms(60_000)), /closed/);
    await withTimeout(Promise.all([proxy.close(), proxy.close()]), ms(2000), 'close()');
    await proxy.close();
    assert.equal((await conn.closed).reason, 'proxy-closed');
    await waiting;
    await assert.rejects(proxy.onConnection(), /closed/);
    // close() destroys its sockets, so each end gets a FIN (they allow half-open, so they stay half-open).
    await withTimeout(Promise.all([client.gone, server.gone]), ms(2000), 'FIN at both ends');
    assert.ok(client.ended && server.ended);
    assert.equal(server.bytes.length, 0);
    assert.equal(client.bytes.length, 0);
    assert.equal(conn.counters.up.queued, 0);
  });
});

describe('FaultProxy with Lifeline WebSockets', () => {
  let wss: WebSocketServer;
  let proxy: FaultProxy;
  
  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => {
        if (data.toString() !== 'silent') ws.send(data, { binary: isBinary });
      });
    });
    await once(wss, 'listening');
    const port = (wss.address() as net.AddressInfo).port;
    proxy = await FaultProxy.start({ host: '127.0.0.1', port });
  });

  after(async () => {
    await proxy?.close();
    await wss?.close({ timeout: ms(500) });
  });

  test('messages pass; cutMidFrame cuts inside a frame so neither end gets the message', async () => {
    for (const direction of ['down', 'up'] as const) {
      const serverSide = once<WebSocket>(wss, 'connection');
      const ws = await connect(proxy.url('/x'));
      ws.on('error', () => {});
      const conn = await proxy.onConnection();
      const peer = await serverSide;

      ws.send('hello');
      const [echo] = await Promise.all([once<Buffer>(ws, 'message', ms(2000))]);
      assert.equal(echo.toString(), 'hello');

      const messages: string[] = [];
      ws.on('message', (d) => messages.push(d.toString()));
      peer.on('message', (d) => messages.push(`server got ${d.length}`));
      const before = { ...conn.counters[direction] };
      proxy.cutMidFrame(direction);
      const clientClose = once<number>(ws, 'close', ms(2000));
      const serverClose = once<number>(peer, 'close', ms(2000));
      const big = 'x'.repeat(1000);
      if (direction === 'down') peer.send(big);
      else ws.send('silent' + big); // the server does not echo it (it never gets it anyway)
      assert.equal(await clientClose, 1006, `${direction}: client close code`);
      assert.equal(await serverClose, 1006, `${direction}: server close code`);
      assert.deepEqual(messages, [], `${direction}: a cut message was delivered`);

      // Header (2 + 2 length bytes, + 4 mask bytes upward) and half the payload passed.
      const now = conn.counters[direction];
      const payload = direction === 'down' ? 1000 : 1006;
      const header = direction === 'down' ? 4 : 8;
      assert.equal(now.forwarded - before.forwarded, header + payload / 2, `${direction}: bytes forwarded`);
      assert.equal(now.frames - before.frames, 1, `${direction}: frame headers forwarded`);
      assert.equal((await conn.closed).reason, 'cut');
    }
  });

  // Regression (half-open leak, fixed in b3c44d2): sockets from http.Server's
  // 'upgrade' have allowHalfOpen = true, so the WebSocket must end its side itself
  // on 'end'; otherwise a client's FIN without a close frame (a crashed peer, or a
  // cut that libuv reports as EOF) leaves the server-side WebSocket 'open' forever.
  test('a FIN without a close frame, forwarded by the proxy, closes the server side with 1006', async () => {
    const serverSide = once<WebSocket>(wss, 'connection');
    const raw = net.connect(proxy.port, '127.0.0.1');
    raw.on('error', () => {});
    cleanups.push(() => raw.destroy());
    raw.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const head = await once<Buffer>(raw, 'data', ms(2000));
    assert.match(head.toString(), /^HTTP\/1\.1 101 /);
    const peer = await serverSide;
    const conn = await proxy.onConnection();
    const closed = once<number>(peer, 'close', ms(2000));
    raw.end();
    await withTimeout(once(conn.server, 'finish'), ms(2000), 'the proxy forwarding the FIN');
    assert.equal(await closed, 1006);
  });

  test('blackhole down: the client hears nothing and sees no close; pass() resumes', async () => {
    const serverSide = once<WebSocket>(wss, 'connection');
    const ws = await connect(proxy.url());
    ws.on('error', () => {});
    cleanups.push(() => ws.terminate());
    const conn = await proxy.onConnection();
    await serverSide;
    proxy.blackhole('down');
    ws.send('one');
    // The echo left the server and was dropped at the proxy.
    await conn.waitFor('down', 'dropped', 5);
    assert.equal(ws.readyState, 1);
    proxy.pass('down');
    ws.send('two');
    assert.equal((await once<Buffer>(ws, 'message', ms(2000))).toString(), 'two');
  });
});

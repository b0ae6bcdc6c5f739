// Server-side limits at their boundaries (docs/LIMITS.md, "Opening handshake"
// and "Per connection" / "Sessions" rows not covered by test/conformance,
// test/unit or test/integration/session):
// maxConnections (503 + Retry-After), upgradeRate (429 + Retry-After),
// maxHandshakeBytes (431), handshakeTimeout (408 for a trickled request),
// upgradeTimeout (503 when verifyUpgrade never answers), maxMessagesPerSecond
// (1008 'rate limit') and LifelineServer's helloTimeout (1008).
// After every rejection a healthy client still connects and gets an echo.
// Malformed and slow requests come from raw net sockets.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import http from 'node:http';
import type net from 'node:net';

import { WebSocketServer, type ServerOptions } from '../../../src/transport/node/server.js';
import { ClientWebSocket, connect } from '../../../src/transport/node/client.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';
import { LifelineServer } from '../../../src/server/lifeline-server.js';
import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { SUBPROTOCOL } from '../../../src/session/wire.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { echo, echoCheck, parseHead, rawUpgrade, readHead, socketClosed, tcpConnect, upgradeRequest, type HttpHead } from './helpers.js';

interface Rejection {
  status: number;
  code: string;
}

interface Started {
  wss: WebSocketServer;
  port: number;
  rejections: Rejection[];
  sockets: net.Socket[];
}

const started: Started[] = [];

async function startServer(options: Partial<ServerOptions>): Promise<Started> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await once(wss, 'listening', ms(5000));
  echo(wss);
  const rejections: Rejection[] = [];
  wss.on('upgrade-rejected', (status, err) => rejections.push({ status, code: (err as { code?: string }).code ?? '' }));
  const s = { wss, port: (wss.address() as { port: number }).port, rejections, sockets: [] };
  started.push(s);
  return s;
}

after(async () => {
  for (const s of started) {
    for (const sock of s.sockets) sock.destroy();
    await s.wss.close({ timeout: ms(1000) }).catch(() => {});
  }
});

/** Reads the whole response (the server closes after a rejection): head + body. */
async function readRejection(socket: net.Socket, timeoutMs = ms(5000)): Promise<HttpHead> {
  const head = await readHead(socket, timeoutMs);
  socket.resume();
  await socketClosed(socket, timeoutMs);
  return head;
}

interface Trickled {
  /** The server closed the connection before the guard ran out. */
  ended: boolean;
  took: number;
  head: HttpHead | null;
  summary: string;
}

/**
 * Sends a valid upgrade request one byte per 100 ms (slowloris), for at most
 * timeout + 1 s (+ scaling slack), and reports when and how the server ended it.
 */
async function trickle(port: number, timeout: number, sockets: net.Socket[]): Promise<Trickled> {
  const slack = ms(1000);
  const socket = await tcpConnect(port);
  sockets.push(socket);
  const req = Buffer.from(upgradeRequest(port));
  let got = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
  let sawClose = false;
  const closed = once(socket, 'close', timeout + slack + ms(500)).then(
    () => true,
    () => false,
  );
  socket.once('close', () => (sawClose = true));
  const t0 = performance.now();
  // Bounded by the request length and by the deadline.
  let sent = 0;
  for (; sent < req.length && !sawClose && performance.now() - t0 < timeout + slack; sent++) {
    socket.write(req.subarray(sent, sent + 1));
    await delay(100);
  }
  const ended = await closed;
  const took = performance.now() - t0;
  socket.destroy();
  const head = got.length > 0 ? parseHead(got) : null;
  const summary =
    `trickled ${sent}/${req.length} bytes; server ${ended ? `closed after ${took.toFixed(0)} ms` : `had not answered after ${took.toFixed(0)} ms`}` +
    `${head ? ` with ${head.status} ${head.statusText}` : got.length ? ` with ${JSON.stringify(got.toString('latin1').slice(0, 60))}` : ', no response'}`;
  return { ended, took, head, summary };
}

function assertCut(r: Trickled, timeout: number): void {
  assert.ok(r.ended, `the server cut a request still incomplete after ${r.took.toFixed(0)} ms (timeout ${timeout} ms): ${r.summary}`);
  assert.ok(r.took <= timeout + ms(1500), `cut within timeout + slack (${r.took.toFixed(0)} ms)`);
  assert.ok(r.took >= timeout - 50, `not before the timeout (${r.took.toFixed(0)} ms)`);
  if (r.head) assert.equal(r.head.status, 408);
}

async function openClient(port: number): Promise<ClientWebSocket> {
  const ws = await withTimeout(connect(`ws://127.0.0.1:${port}/`, { handshakeTimeout: ms(3000) }), ms(4000), 'client to connect');
  ws.on('error', () => {});
  return ws;
}

async function closeClient(ws: ClientWebSocket): Promise<void> {
  if (ws.readyState === 3) return;
  const closed = once(ws, 'close', ms(3000)).catch(() => ws.terminate());
  ws.close(1000);
  await closed;
}

describe('opening handshake limits', { timeout: ms(60000) }, () => {
  test('maxConnections: 3 -> the 4th upgrade gets 503 + Retry-After; after one closes, a new one is accepted', async () => {
    const s = await startServer({ maxConnections: 3 });
    const serverSide: WebSocket[] = [];
    s.wss.on('connection', (ws) => serverSide.push(ws));
    const clients = [await openClient(s.port), await openClient(s.port), await openClient(s.port)];
    try {
      assert.equal(s.wss.clients.size, 3);
      const { socket, head } = await rawUpgrade(s.port);
      s.sockets.push(socket);
      socket.resume();
      await socketClosed(socket);
      console.log(`[maxConnections] 4th upgrade: ${head.status} ${head.statusText}, Retry-After: ${head.headers['retry-after']}`);
      assert.equal(head.status, 503);
      assert.equal(head.headers['retry-after'], '5');
      assert.deepEqual(s.rejections.at(-1), { status: 503, code: 'WS_ERR_TOO_MANY_CONNECTIONS' });
      assert.equal(s.wss.clients.size, 3, 'the rejected one was never counted');

      // One leaves (server side has seen its close), then there is room for exactly one.
      const gone = once(serverSide[0]!, 'close', ms(3000));
      await closeClient(clients[0]!);
      await gone;
      assert.equal(s.wss.clients.size, 2);
      await echoCheck(s.port, 'a client after one left');
      // Full again with a fresh 3rd: the next is refused again.
      clients[0] = await openClient(s.port);
      const again = await rawUpgrade(s.port);
      s.sockets.push(again.socket);
      again.socket.resume();
      assert.equal(again.head.status, 503, 'at the limit again');
    } finally {
      for (const c of clients) await closeClient(c);
    }
    await echoCheck(s.port, 'a client after all closed');
  });

  test('upgradeRate {perSecond: 5, burst: 5}: the 6th rapid upgrade gets 429 + Retry-After; a token is back ~200 ms later', async () => {
    const s = await startServer({ upgradeRate: { perSecond: 5, burst: 5 } });
    // Six upgrades at once from 127.0.0.1.
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => rawUpgrade(s.port)));
    const spread = performance.now() - t0;
    for (const r of results) s.sockets.push(r.socket);
    const statuses = results.map((r) => r.head.status).sort();
    const limited = results.find((r) => r.head.status === 429);
    console.log(`[upgradeRate] 6 rapid upgrades (${spread.toFixed(0)} ms): ${statuses.join(',')}; Retry-After: ${limited?.head.headers['retry-after']}`);
    assert.deepEqual(statuses, [101, 101, 101, 101, 101, 429]);
    assert.ok(limited);
    const retryAfter = limited.head.headers['retry-after'];
    assert.match(retryAfter ?? '', /^[1-9]\d*$/, 'Retry-After is a positive number of seconds');
    assert.equal(retryAfter, '1', 'one token refills in 200 ms: rounded up to 1 s');
    assert.deepEqual(s.rejections.at(-1), { status: 429, code: 'WS_ERR_UPGRADE_RATE' });
    for (const r of results) r.socket.destroy();

    // Still limited right away.
    const now = await rawUpgrade(s.port);
    s.sockets.push(now.socket);
    now.socket.destroy();
    assert.equal(now.head.status, 429, 'no token yet');
    // A token refills every 200 ms: no event marks it, so real time passes here.
    await delay(300);
    await echoCheck(s.port, 'a client once a token refilled');
    const next = await rawUpgrade(s.port);
    s.sockets.push(next.socket);
    next.socket.destroy();
    assert.equal(next.head.status, 429, 'only one token had refilled');
  });

  test('maxHandshakeBytes: 4096 -> 8 KiB of request headers get 431; 3 KiB still upgrade', async () => {
    const s = await startServer({ maxHandshakeBytes: 4096 });
    const filler = (bytes: number) => Array.from({ length: Math.ceil(bytes / 1024) }, (_, i) => `X-Filler-${i}: ${'a'.repeat(1024 - 14)}`);

    const small = await rawUpgrade(s.port, { extra: filler(3 * 1024) });
    s.sockets.push(small.socket);
    assert.equal(small.head.status, 101, 'a request head under the limit upgrades');
    small.socket.destroy();

    const socket = await tcpConnect(s.port);
    s.sockets.push(socket);
    const req = upgradeRequest(s.port, { extra: filler(8 * 1024) });
    assert.ok(Buffer.byteLength(req) > 8 * 1024);
    socket.write(req);
    const head = await readRejection(socket);
    console.log(`[maxHandshakeBytes] ${Buffer.byteLength(req)}-byte request head: ${head.status} ${head.statusText}`);
    assert.equal(head.status, 431);
    await echoCheck(s.port, 'a client after the 431');
  });

  test('handshakeTimeout: 500 -> a request trickled one byte per 100 ms gets 408 (or is closed) within ~timeout + slack', async () => {
    const timeout = 500;
    const s = await startServer({ handshakeTimeout: timeout });
    const r = await trickle(s.port, timeout, s.sockets);
    console.log(`[handshakeTimeout] standalone: ${r.summary}`);
    assertCut(r, timeout);
    await echoCheck(s.port, 'a client after the slow request');
  });

  test("attached server with the same timeouts and Node's connectionsCheckingInterval: 408 in time, upgraded sockets unaffected", async () => {
    // What handshakeTimeout is meant to configure, done by hand on an attached
    // server (docs/LIMITS.md): it shows the expected behaviour, and that a
    // short request timeout does not touch connections already upgraded.
    const timeout = 500;
    const httpServer = http.createServer({ headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: 100 });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const wss = new WebSocketServer({ server: httpServer });
    echo(wss);
    const port = (httpServer.address() as { port: number }).port;
    const sockets: net.Socket[] = [];
    const client = await openClient(port);
    const openedAt = performance.now();
    try {
      const r = await trickle(port, timeout, sockets);
      console.log(`[handshakeTimeout] attached, connectionsCheckingInterval 100: ${r.summary}`);
      assertCut(r, timeout);
      // The WebSocket opened before the trickle lives on past 3x the request
      // timeout (nothing to await: real time must pass for the check to run).
      const age = performance.now() - openedAt;
      if (age < 3 * timeout) await delay(3 * timeout - age);
      assert.equal(client.readyState, 1, 'the upgraded connection outlives requestTimeout');
      const got = once<Buffer>(client, 'message', ms(3000));
      client.send('still here');
      assert.equal((await got).toString(), 'still here');
      await echoCheck(port, 'a client after the slow request');
    } finally {
      for (const sock of sockets) sock.destroy();
      await closeClient(client);
      await wss.close({ timeout: ms(1000) });
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
    }
  });

  test('upgradeTimeout: 300 with a verifyUpgrade that never answers -> 503 (WS_ERR_UPGRADE_TIMEOUT)', async () => {
    const timeout = ms(300);
    const s = await startServer({
      upgradeTimeout: timeout,
      // Hangs for /hang only, so a healthy client can still get in.
      verifyUpgrade: (req) => (req.url === '/hang' ? new Promise<void>(() => {}) : undefined),
    });
    const t0 = performance.now();
    const { socket, head } = await rawUpgrade(s.port, { path: '/hang' }, timeout + ms(3000));
    const took = performance.now() - t0;
    s.sockets.push(socket);
    socket.resume();
    await socketClosed(socket);
    console.log(`[upgradeTimeout] verifyUpgrade never answered: ${head.status} ${head.statusText} after ${took.toFixed(0)} ms`);
    assert.equal(head.status, 503);
    assert.deepEqual(s.rejections.at(-1), { status: 503, code: 'WS_ERR_UPGRADE_TIMEOUT' });
    assert.ok(took >= timeout - 20 && took <= timeout + ms(1000), `answered at about upgradeTimeout (${took.toFixed(0)} ms)`);
    await echoCheck(s.port, 'a client after the upgrade timeout');
  });

  test('upgradeTimeout: timed-out handshakes no longer count against maxConnections', async () => {
    const s = await startServer({
      maxConnections: 2,
      upgradeTimeout: ms(200),
      verifyUpgrade: (req) => (req.url === '/hang' ? new Promise<void>(() => {}) : undefined),
    });
    for (let i = 0; i < 3; i++) {
      const { socket, head } = await rawUpgrade(s.port, { path: '/hang' });
      s.sockets.push(socket);
      socket.destroy();
      assert.equal(head.status, 503);
    }
    assert.deepEqual(
      s.rejections.map((r) => r.code),
      ['WS_ERR_UPGRADE_TIMEOUT', 'WS_ERR_UPGRADE_TIMEOUT', 'WS_ERR_UPGRADE_TIMEOUT'],
    );
    const a = await openClient(s.port);
    try {
      await echoCheck(s.port, 'the 2nd of maxConnections 2');
    } finally {
      await closeClient(a);
    }
  });
});

describe('per-connection rate limit', { timeout: ms(30000) }, () => {
  test('maxMessagesPerSecond: 50 -> 100 messages at once close with 1008 rate limit; the server saw at most 50', async () => {
    const s = await startServer({ maxMessagesPerSecond: 50 });
    let seen = 0;
    const serverSide = once<WebSocket>(s.wss, 'connection', ms(3000));
    s.wss.on('connection', (ws) => ws.on('message', () => seen++));
    const client = await openClient(s.port);
    const server = await serverSide;
    let echoed = 0;
    client.on('message', () => echoed++);
    const closed = new Promise<[number, string]>((resolve) => client.once('close', (code, reason) => resolve([code, reason])));
    for (let i = 0; i < 100; i++) client.send(`m${i}`);
    const [code, reason] = await withTimeout(closed, ms(5000), 'the rate-limited client to be closed');
    if (server.readyState !== 3) await once(server, 'close', ms(3000));
    console.log(`[maxMessagesPerSecond] 100 sent at once: closed ${code} '${reason}'; server saw ${seen}, echoed back ${echoed}; server closeCause ${server.closeCause}`);
    assert.equal(code, 1008);
    assert.equal(reason, 'rate limit');
    assert.ok(seen <= 50, `the server's application saw at most 50 messages (${seen})`);
    assert.equal(seen, 50, 'all 50 within the window were delivered');
    await echoCheck(s.port, 'a client after the rate-limit close');
  });

  test('maxMessagesPerSecond: 50 -> exactly 50 at once are all delivered and the connection stays open', async () => {
    const s = await startServer({ maxMessagesPerSecond: 50 });
    const client = await openClient(s.port);
    try {
      let echoed = 0;
      const all = new Promise<void>((resolve) => client.on('message', () => ++echoed === 50 && resolve()));
      for (let i = 0; i < 50; i++) client.send(`m${i}`);
      await withTimeout(all, ms(5000), '50 echoes');
      assert.equal(client.readyState, 1, 'still open at exactly the limit');
    } finally {
      await closeClient(client);
    }
  });
});

describe('LifelineServer helloTimeout', { timeout: ms(30000) }, () => {
  test('helloTimeout: 300 -> a lifeline.v1 client that never sends hello is closed with 1008', async () => {
    const timeout = ms(300);
    const server = new LifelineServer({ port: 0, host: '127.0.0.1', helloTimeout: timeout, heartbeat: 'off' });
    try {
      await once(server, 'listening', ms(5000));
      const port = (server.address() as { port: number }).port;
      server.on('connection', (session) => {
        session.on('error', () => {});
        session.on('message', (data, isBinary) => session.send(data, { binary: isBinary }));
      });

      const silent = new ClientWebSocket(`ws://127.0.0.1:${port}/`, { protocols: [SUBPROTOCOL] });
      silent.on('error', () => {});
      await once(silent, 'open', ms(3000));
      assert.equal(silent.protocol, SUBPROTOCOL, 'lifeline.v1 was negotiated');
      const t0 = performance.now();
      const closed = new Promise<[number, string]>((resolve) => silent.once('close', (code, reason) => resolve([code, reason])));
      const [code, reason] = await withTimeout(closed, timeout + ms(3000), 'the hello timeout');
      const took = performance.now() - t0;
      console.log(`[helloTimeout] no hello: closed ${code} '${reason}' after ${took.toFixed(0)} ms (helloTimeout ${timeout})`);
      assert.equal(code, 1008);
      assert.match(reason, /hello/i);
      assert.ok(took >= timeout - 50 && took <= timeout + ms(1500), `closed at about helloTimeout (${took.toFixed(0)} ms)`);
      assert.equal(server.sessions.size, 0, 'no session was created');

      // A real lifeline client still gets a session and an echo.
      const client = new LifelineClient(`ws://127.0.0.1:${port}/`, { heartbeat: 'off', backoff: { base: 50, cap: 200 } });
      client.on('error', () => {});
      try {
        await once(client, 'open', ms(3000));
        const got = once<string | Uint8Array>(client, 'message', ms(3000));
        client.send('after-timeout');
        const data = await got;
        assert.equal(typeof data === 'string' ? data : Buffer.from(data).toString(), 'after-timeout');
      } finally {
        client.close();
      }
    } finally {
      await server.close({ timeout: ms(1000) });
    }
  });
});

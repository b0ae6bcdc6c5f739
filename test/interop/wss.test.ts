// wss:// (RFC 6455 3, 4.1: the handshake and frames over TLS), against peers
// we did not write: the `ws` package, as client of our server on a node:https
// server, and as server for our client; Debian's python3-websockets (Python's
// own ssl module) both ways too. Certificates are checked as a user's
// would be: the peers trust test/fixtures/tls/cert.pem (self-signed for
// localhost, 127.0.0.1 and ::1; a test fixture, its key is not a secret), and
// our client refuses the same server when it is not told to trust it.
//
// Also over TLS: backpressure with a high-water mark under the socket's own
// (websocket.ts watchFlush(): an empty write's callback stands in for Node's
// 'drain'; a TLS socket must call it back as a TCP one does), and a 1 MiB
// message each way, which TLS cuts into 16 KiB records.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WsWebSocket, { WebSocketServer as WsServer } from 'ws';

import { ms, once, peerAvailability, skipUnless, SYSTEM_PYTHON, withTimeout } from '../helpers/peers.js';
import { JsonLinePeer, PEERS_DIR, sha256 } from './helpers.js';
import { connect } from '../../src/transport/node/client.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tls');
const CERT = fs.readFileSync(path.join(FIXTURES, 'cert.pem'));
const KEY = fs.readFileSync(path.join(FIXTURES, 'key.pem'));

/** An https server on 127.0.0.1 with the fixture's certificate. */
async function httpsServer(): Promise<{ server: https.Server; port: number }> {
  const server = https.createServer({ cert: CERT, key: KEY });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function closeHttps(server: https.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The next message on a `ws` socket, as (data, isBinary). */
function wsNext(ws: WsWebSocket): Promise<[Buffer, boolean]> {
  return withTimeout(new Promise((resolve) => ws.once('message', (d: Buffer, isBinary: boolean) => resolve([d, isBinary]))), ms(10_000), 'a message');
}

describe('wss:// against ws', () => {
  it('ws client -> our server on node:https: text, binary and a 1 MiB message echo intact, with and without permessage-deflate', async () => {
    const { server, port } = await httpsServer();
    const wss = new WebSocketServer({ server, deflate: true });
    wss.on('connection', (ws: WebSocket) => ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(d, { binary: isBinary })));
    try {
      for (const perMessageDeflate of [false, true]) {
        const client = new WsWebSocket(`wss://127.0.0.1:${port}/`, { ca: CERT, perMessageDeflate });
        await once(client, 'open', ms(5000));
        assert.equal(client.extensions.includes('permessage-deflate'), perMessageDeflate);
        const text = 'héllo over TLS ✓';
        client.send(text);
        const [t, tBinary] = await wsNext(client);
        assert.equal(tBinary, false);
        assert.equal(t.toString('utf8'), text);
        const big = randomBytes(1024 * 1024);
        client.send(big);
        const [b, bBinary] = await wsNext(client);
        assert.equal(bBinary, true);
        assert.ok(b.equals(big), '1 MiB binary echoed intact');
        const closed = once<number>(client, 'close', ms(5000));
        client.close(1000, 'done');
        assert.equal(await closed, 1000);
      }
    } finally {
      await wss.close({ timeout: ms(1000) }).catch(() => {});
      await closeHttps(server);
    }
  });

  it('our client -> a ws server on node:https: echo intact; without the CA the handshake fails with a certificate error', async () => {
    const { server, port } = await httpsServer();
    const wsServer = new WsServer({ server, perMessageDeflate: true });
    wsServer.on('connection', (ws) => ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(d, { binary: isBinary })));
    try {
      for (const deflate of [false, true]) {
        const client = await connect(`wss://127.0.0.1:${port}/`, { tls: { ca: CERT }, deflate });
        assert.equal(client.extensions.includes('permessage-deflate'), deflate);
        const got = once<Buffer>(client, 'message', ms(10_000));
        const big = randomBytes(1024 * 1024);
        client.send(big);
        assert.ok((await got).equals(big), '1 MiB binary echoed intact');
        const closed = once<number>(client, 'close', ms(5000));
        client.close(1000);
        assert.equal(await closed, 1000);
      }
      // Not told to trust the self-signed certificate: refused, as TLS clients must.
      await assert.rejects(connect(`wss://127.0.0.1:${port}/`, { handshakeTimeout: ms(5000) }), (err: Error & { code?: string; cause?: Error & { code?: string } }) => {
        assert.equal(err.code, 'WS_ERR_CONNECTION_LOST');
        assert.match(err.message, /self[- ]signed certificate/);
        assert.equal(err.cause?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
        return true;
      });
    } finally {
      for (const c of wsServer.clients) c.terminate();
      await new Promise((resolve) => wsServer.close(resolve));
      await closeHttps(server);
    }
  });

  it("over TLS, a high-water mark under the socket's own still ends in 'drain', and every message arrives in order", async () => {
    const { server, port } = await httpsServer();
    const wss = new WebSocketServer({ server, highWaterMark: 4 * 1024, maxBufferedBytes: 64 * 1024 * 1024 });
    const accepted = once<WebSocket>(wss, 'connection', ms(5000));
    const peer = new WsWebSocket(`wss://127.0.0.1:${port}/`, { ca: CERT, perMessageDeflate: false });
    try {
      const TOTAL = 16_000;
      const got: number[] = [];
      let all!: () => void;
      const allArrived = new Promise<void>((resolve) => (all = resolve));
      peer.on('message', (d: Buffer) => {
        got.push(d.readUInt32BE(0));
        if (got.length === TOTAL) all();
      });
      await once(peer, 'open', ms(5000));
      peer.pause();
      const ws = await accepted;
      const pool = randomBytes(1 << 20);
      let drains = 0;
      let resumed = false;
      for (let i = 0; i < TOTAL; ) {
        const m = Buffer.from(pool.subarray((i * 997) % (pool.length - 1000), ((i * 997) % (pool.length - 1000)) + 1000));
        m.writeUInt32BE(i++, 0);
        if (ws.send(m)) continue;
        if (!resumed) {
          // The first backpressure: the peer starts reading.
          resumed = true;
          peer.resume();
        }
        await once(ws, 'drain', ms(10_000));
        drains++;
        assert.ok(ws.bufferedAmount <= 4 * 1024, `'drain' came with ${ws.bufferedAmount} B buffered`);
      }
      assert.ok(resumed && drains > 0, 'send() answered false, and drain followed');
      await withTimeout(allArrived, ms(20_000), `${TOTAL} messages`);
      assert.ok(got.every((s, i) => s === i), 'in order');
    } finally {
      peer.terminate();
      await wss.close({ timeout: ms(1000) }).catch(() => {});
      await closeHttps(server);
    }
  });
});

describe('wss:// against python3-websockets', skipUnless(peerAvailability().python3Websockets, 'python3-websockets (Debian package, /usr/bin/python3)'), () => {
  const PEER_SCRIPT = path.join(PEERS_DIR, 'py_websockets_peer.py');

  it('python client -> our server on node:https: 1 MiB each way, sha256 equal on both ends', async () => {
    const { server, port } = await httpsServer();
    const wss = new WebSocketServer({ server });
    const py = new JsonLinePeer(SYSTEM_PYTHON, [PEER_SCRIPT, 'client'], 'python-websockets client');
    try {
      await py.waitFor('ready', 'the python client to start', ms(20_000));
      const accepted = once<WebSocket>(wss, 'connection', ms(10_000));
      py.send({ op: 'connect', url: `wss://127.0.0.1:${port}/tls`, compression: null, ca: path.join(FIXTURES, 'cert.pem') });
      const opened = await py.waitFor((e) => e.event === 'open' || e.event === 'connect_error', 'the python client to connect', ms(10_000));
      assert.equal(opened.event, 'open', JSON.stringify(opened));
      const ours = await accepted;
      const id = opened.id as number;

      const got = once<Buffer>(ours, 'message', ms(20_000));
      py.send({ op: 'send_random', id, size: 1024 * 1024 });
      const sent = await py.waitForConn(id, 'sent', ms(20_000));
      assert.equal(sha256(await got), sent.sha256);

      const big = randomBytes(1024 * 1024);
      ours.send(big);
      const ev = await py.waitForConn(id, 'message', ms(20_000));
      assert.equal(ev.len, big.length);
      assert.equal(ev.sha256, sha256(big));
    } finally {
      await py.stop();
      await wss.close({ timeout: ms(1000) }).catch(() => {});
      await closeHttps(server);
    }
  });

  it('our client -> a python wss server: 1 MiB each way, sha256 equal on both ends; without the CA, refused', async () => {
    const py = new JsonLinePeer(SYSTEM_PYTHON, [PEER_SCRIPT, 'server', '--compression', 'none', '--tls', path.join(FIXTURES, 'cert.pem'), path.join(FIXTURES, 'key.pem')], 'python-websockets server');
    try {
      const port = (await py.waitFor('listening', 'the python server to listen', ms(20_000))).port as number;
      const opened = py.waitFor('open', 'the python server to accept', ms(10_000));
      const ours = await connect(`wss://127.0.0.1:${port}/tls`, { tls: { ca: CERT } });
      const id = (await opened).id as number;

      const big = randomBytes(1024 * 1024);
      ours.send(big);
      const ev = await py.waitForConn(id, 'message', ms(20_000));
      assert.equal(ev.sha256, sha256(big));

      const got = once<Buffer>(ours, 'message', ms(20_000));
      py.send({ op: 'send_random', id, size: 1024 * 1024 });
      const sent = await py.waitForConn(id, 'sent', ms(20_000));
      assert.equal(sha256(await got), sent.sha256);
      ours.close(1000);
      assert.equal((await py.waitForConn(id, 'closed', ms(10_000))).code, 1000);

      await assert.rejects(connect(`wss://127.0.0.1:${port}/tls`, { handshakeTimeout: ms(5000) }), (err: Error & { cause?: Error & { code?: string } }) => {
        assert.equal(err.cause?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
        return true;
      });
    } finally {
      await py.stop();
    }
  });
});

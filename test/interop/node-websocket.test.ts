// Interop with Node's built-in WebSocket client (undici's WHATWG WebSocket)
// against our server, with permessage-deflate off and on. The client runs in a
// child process (test/interop/peers/node-websocket-peer.mjs): on Node 20 the
// global WebSocket needs --experimental-websocket; on Node >= 22 it is always
// there. The browser API cannot send fragments, pings or raw bytes, so those
// scenarios run in the directions it allows.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';

import { frame } from '../helpers/recording.js';
import { ms, skipUnless, withTimeout } from '../helpers/peers.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import type { DeflateOptions } from '../../src/protocol/deflate.js';
import { BIG, JsonLinePeer, PEERS_DIR, UNICODE_TEXT, closeOf, compressibleText, messagesOf, nextMessage, pongOf, randomPayload, sha256, type PeerEvent } from './helpers.js';

const PEER_SCRIPT = path.join(PEERS_DIR, 'node-websocket-peer.mjs');
const BIG_TIMEOUT = ms(60_000);

/**
 * The node arguments that give the child a global WebSocket, or null if this
 * Node has none: no flag when WebSocket is already global (Node >= 22), the
 * flag when this Node knows it (Node 20/21), checked by running a child.
 */
function builtinWebSocketArgs(): string[] | null {
  const candidates: string[][] = [];
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function') candidates.push([]);
  if (process.allowedNodeEnvironmentFlags.has('--experimental-websocket')) candidates.push(['--experimental-websocket']);
  candidates.push([]);
  for (const args of candidates) {
    const r = spawnSync(process.execPath, [...args, '-e', "process.exit(typeof WebSocket === 'function' ? 0 : 3)"], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) return args;
  }
  return null;
}

const nodeArgs = builtinWebSocketArgs();
let nextConnId = 0;

async function startServer(deflate: boolean, extra: { fragmentSize?: number; deflate?: DeflateOptions | false } = {}): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', deflate, subprotocols: ['chat.v1'], ...extra });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    }),
    ms(5000),
    'our server to listen',
  );
  return wss;
}

function b64(data: Buffer | string): string {
  return Buffer.from(data).toString('base64');
}

describe(`Node's built-in WebSocket client (${process.version}) -> our server`, skipUnless(nodeArgs !== null, "Node's built-in WebSocket"), () => {
  let peer: JsonLinePeer;
  let undici = '';

  before(async () => {
    peer = new JsonLinePeer(process.execPath, [...(nodeArgs ?? []), PEER_SCRIPT], 'node built-in WebSocket client');
    const ready = await peer.waitFor((e) => e.event === 'ready' || e.event === 'unavailable', 'the node client to start', ms(20_000));
    assert.equal(ready.event, 'ready', `the child has no global WebSocket with args ${JSON.stringify(nodeArgs)}`);
    undici = String(ready.undici);
  });
  after(async () => {
    await peer?.stop();
  });

  for (const deflate of [false, true]) {
    describe(`permessage-deflate ${deflate ? 'on' : 'off'} on our server`, () => {
      let wss: WebSocketServer;
      let fragmenting: WebSocketServer;
      let noCompress: WebSocketServer;
      let narrow: WebSocketServer;
      const opened: WebSocket[] = [];

      before(async () => {
        wss = await startServer(deflate);
        fragmenting = await startServer(deflate, { fragmentSize: 4096 });
        noCompress = await startServer(deflate, { deflate: deflate && { threshold: 64 * 1024 * 1024 } });
        narrow = await startServer(deflate, { deflate: deflate && { serverNoContextTakeover: true, serverMaxWindowBits: 10 } });
      });
      afterEach(() => {
        for (const ws of opened.splice(0)) ws.terminate();
      });
      after(async () => {
        await wss?.close({ timeout: ms(2000) });
        await fragmenting?.close({ timeout: ms(2000) });
        await noCompress?.close({ timeout: ms(2000) });
        await narrow?.close({ timeout: ms(2000) });
      });

      async function open(server = wss, protocols = ['chat.v1']): Promise<{ ours: WebSocket; id: number; ev: PeerEvent }> {
        const port = (server.address() as { port: number }).port;
        const accepted = withTimeout(
          new Promise<WebSocket>((resolve) =>
            server.once('connection', (ws) => {
              opened.push(ws); // torn down after the test whatever the client does
              resolve(ws);
            }),
          ),
          ms(5000),
          "our server's 'connection'",
        );
        const id = ++nextConnId;
        peer.send({ op: 'connect', id, url: `ws://127.0.0.1:${port}/interop`, protocols });
        const ev = await peer.waitFor((e) => e.id === id && ['open', 'error', 'close', 'connect_error'].includes(e.event), `connection ${id} to open`, ms(5000));
        const ours = await accepted;
        assert.equal(ev.event, 'open', JSON.stringify(ev));
        return { ours, id: ev.id as number, ev };
      }

      test(`handshake: the client offers permessage-deflate; we ${deflate ? 'accept it' : 'decline it'}`, async () => {
        const headers = withTimeout(
          new Promise<Record<string, unknown>>((resolve) => wss.once('connection', (_ws, req) => resolve(req.headers))),
          ms(5000),
          'the upgrade request',
        );
        const { ours, ev } = await open();
        const h = await headers;
        assert.match(String(h['sec-websocket-extensions']), /permessage-deflate/, `undici ${undici} offers permessage-deflate`);
        if (deflate) {
          assert.match(ours.extensions, /^permessage-deflate\b/);
          assert.match(String(ev.extensions), /^permessage-deflate\b/);
        } else {
          assert.equal(ours.extensions, '');
          assert.equal(ev.extensions, '');
        }
        assert.equal(ev.protocol, 'chat.v1');
        assert.equal(ours.protocol, 'chat.v1');
      });

      test('a subprotocol we do not speak: we answer without one, the client fails the handshake', async () => {
        const port = (wss.address() as { port: number }).port;
        const accepted = withTimeout(new Promise<WebSocket>((resolve) => wss.once('connection', resolve)), ms(5000), "our server's 'connection'");
        const id = ++nextConnId;
        peer.send({ op: 'connect', id, url: `ws://127.0.0.1:${port}/interop`, protocols: ['nope.v9'] });
        const ours = await accepted;
        opened.push(ours);
        assert.equal(ours.protocol, '', 'RFC 6455 4.2.2: the server may select none of the offered subprotocols');
        const ev = await peer.waitFor((e) => e.id === id && ['open', 'error', 'close'].includes(e.event), `connection ${id} to fail`, ms(5000));
        // WHATWG: a response without any of the requested subprotocols fails the connection.
        assert.equal(ev.event, 'error', JSON.stringify(ev));
      });

      test('text with non-ASCII characters round-trips both ways', async () => {
        const { ours, id } = await open();
        const got = nextMessage(ours);
        peer.send({ op: 'send', id, text: UNICODE_TEXT });
        const m = await got;
        assert.equal(m.isBinary, false);
        assert.equal(m.data.toString('utf8'), UNICODE_TEXT);

        ours.send(UNICODE_TEXT);
        const ev = await peer.waitForConn(id, 'message');
        assert.equal(ev.binary, false);
        assert.equal(ev.text, UNICODE_TEXT);
      });

      test(`a 256 KiB compressible text reaches the client ${deflate ? 'compressed' : 'uncompressed'}, and comes back`, async (t) => {
        const { ours, id } = await open();
        const text = compressibleText(256 * 1024);
        const bytes = Buffer.byteLength(text);
        const out0 = ours.counters.bytesOut;
        ours.send(text);
        const ev = await peer.waitForConn(id, 'message');
        assert.equal(ev.binary, false);
        assert.equal(ev.sha256, sha256(text));
        const wireOut = ours.counters.bytesOut - out0;
        if (deflate) assert.ok(wireOut < bytes / 10, `sent ${wireOut} wire bytes for ${bytes} bytes: not compressed`);
        else assert.ok(wireOut >= bytes);

        // undici inflates but never compresses what it sends; it must arrive intact either way.
        const in0 = ours.counters.bytesIn;
        const got = nextMessage(ours);
        peer.send({ op: 'send', id, text });
        const m = await got;
        assert.equal(m.isBinary, false);
        assert.equal(sha256(m.data), sha256(text));
        t.diagnostic(`client -> us: ${ours.counters.bytesIn - in0} wire bytes for ${bytes} bytes of text`);
      });

      test('binary with every byte value round-trips both ways', async () => {
        const { ours, id } = await open();
        const data = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff));
        const got = nextMessage(ours);
        peer.send({ op: 'send', id, b64: b64(data) });
        const m = await got;
        assert.equal(m.isBinary, true);
        assert.deepEqual(m.data, data);

        ours.send(data);
        const ev = await peer.waitForConn(id, 'message');
        assert.equal(ev.binary, true);
        assert.equal(ev.b64, b64(data));
      });

      test(`a 16 MiB binary message goes through in each direction${deflate ? ' (ours sent uncompressed: undici inflates at most 4 MiB)' : ''}`, { timeout: 3 * BIG_TIMEOUT }, async () => {
        // undici (Node 20.20 / undici 6.x) never compresses what it sends, and
        // refuses to inflate a message beyond 4 MiB (kDefaultMaxDecompressedSize,
        // not configurable): so with deflate on, our 16 MiB goes through a server
        // whose compression threshold is above 16 MiB.
        const { ours, id } = await open(deflate ? noCompress : wss);
        const got = nextMessage(ours, BIG_TIMEOUT);
        peer.send({ op: 'send_random', id, size: BIG });
        const sent = await peer.waitForConn(id, 'sent', BIG_TIMEOUT);
        const m = await got;
        assert.equal(m.isBinary, true);
        assert.equal(m.data.length, BIG);
        assert.equal(sha256(m.data), sent.sha256);

        const data = randomPayload(BIG);
        ours.send(data);
        const ev = await peer.waitForConn(id, 'message', BIG_TIMEOUT);
        assert.equal(ev.binary, true);
        assert.equal(ev.len, BIG);
        assert.equal(ev.sha256, sha256(data));
      });

      if (deflate) {
        test("a 4 MiB compressed binary message (undici's inflate cap) reaches the client", { timeout: 2 * BIG_TIMEOUT }, async () => {
          const { ours, id } = await open();
          const data = randomPayload(4 * 1024 * 1024);
          ours.send(data);
          const ev = await peer.waitForConn(id, 'message', BIG_TIMEOUT);
          assert.equal(ev.binary, true);
          assert.equal(ev.len, data.length);
          assert.equal(ev.sha256, sha256(data));
        });
      }

      test('our fragmented messages are reassembled by the client (text split inside a UTF-8 sequence, and binary)', async () => {
        const { ours, id } = await open();
        const rocket = Buffer.from('🚀', 'utf8');
        const parts = [Buffer.concat([Buffer.from('frag-1 héllo '), rocket.subarray(0, 2)]), Buffer.concat([rocket.subarray(2), Buffer.from(' frag-2 ')]), Buffer.from('wörld')];
        ours.sendFragments(parts, { binary: false });
        const ev = await peer.waitForConn(id, 'message');
        assert.equal(ev.binary, false);
        assert.equal(ev.text, Buffer.concat(parts).toString('utf8'));

        const bin = [Buffer.from([0, 1, 2]), Buffer.alloc(0), Buffer.from([0xfd, 0xfe, 0xff])];
        ours.sendFragments(bin, { binary: true });
        const ev2 = await peer.waitForConn(id, 'message');
        assert.equal(ev2.binary, true);
        assert.equal(ev2.b64, b64(Buffer.concat(bin)));
      });

      test(`our auto-fragmented messages (fragmentSize 4096${deflate ? ', compressed: RSV1 on the first frame only' : ''}) are reassembled by the client`, async () => {
        const { ours, id } = await open(fragmenting);
        const text = compressibleText(200 * 1024);
        ours.send(text);
        const ev = await peer.waitForConn(id, 'message');
        assert.equal(ev.binary, false);
        assert.equal(ev.sha256, sha256(text));
        const data = randomPayload(100 * 1024);
        ours.send(data);
        const ev2 = await peer.waitForConn(id, 'message');
        assert.equal(ev2.binary, true);
        assert.equal(ev2.sha256, sha256(data));
      });

      test('several compressible messages in a row (context takeover) arrive intact', async () => {
        const { ours, id } = await open();
        const texts = [0, 1, 2, 3].map((i) => `${i}: ${compressibleText(8 * 1024)}`);
        for (const t of texts) ours.send(t);
        for (const t of texts) {
          const ev = await peer.waitForConn(id, 'message');
          assert.equal(ev.sha256, sha256(t));
        }
      });

      if (deflate) {
        test('no context takeover and a 10-bit server window: several compressible messages arrive intact', async () => {
          const { ours, id } = await open(narrow);
          assert.match(ours.extensions, /server_no_context_takeover/);
          assert.match(ours.extensions, /server_max_window_bits=10/);
          const texts = [0, 1, 2, 3].map((i) => `${i}: ${compressibleText(8 * 1024)}`);
          for (const t of texts) ours.send(t);
          for (const t of texts) {
            const ev = await peer.waitForConn(id, 'message');
            assert.equal(ev.sha256, sha256(t));
          }
        });
      }

      test('we ping, the client answers with a pong carrying the same payload', async () => {
        const { ours } = await open();
        const pong = pongOf(ours);
        ours.ping('lifeline-ping ✓');
        assert.equal((await pong).toString('utf8'), 'lifeline-ping ✓');
      });

      test('the client closes with 4001 "bye": we see 4001 "bye", the client a clean close', async () => {
        const { ours, id } = await open();
        const closed = closeOf(ours);
        peer.send({ op: 'close', id, code: 4001, reason: 'bye' });
        assert.deepEqual(await closed, { code: 4001, reason: 'bye' });
        const ev = await peer.waitForConn(id, 'close');
        assert.equal(ev.wasClean, true);
        assert.equal(ev.code, 4001, "the client reports the server's echo of its code");
      });

      test('we close with 4002 "ciao ✓": the client sees 4002 "ciao ✓", cleanly', async () => {
        const { ours, id } = await open();
        const closed = closeOf(ours);
        ours.close(4002, 'ciao ✓');
        const ev = await peer.waitForConn(id, 'close');
        assert.equal(ev.code, 4002);
        assert.equal(ev.reason, 'ciao ✓');
        assert.equal(ev.wasClean, true);
        assert.equal((await closed).code, 4002);
      });

      // undici fails the connection by half-closing TCP (FIN) without sending a
      // close frame. RFC 6455 7.1.5: our end must then report 1006 and free the
      // connection. Server-side sockets come from http.Server, which sets
      // allowHalfOpen: true, so Node does not end our side by itself.
      test('we break the protocol (RSV2 set, not negotiated): the client fails the connection and we notice', async () => {
        const { ours, id } = await open();
        const closed = closeOf(ours, ms(3000));
        ours.rawSocket!.write(frame(0x1, 'rsv2', { rsv: 2, mask: null }));
        const ev = await peer.waitForConn(id, 'close');
        // WHATWG "fail the WebSocket connection": the page sees 1006, not clean.
        assert.equal(ev.code, 1006);
        assert.equal(ev.wasClean, false);
        const mine = await closed.catch((err: Error) => {
          throw new Error(`the client sent TCP FIN (no close frame) but our server socket never emitted 'close': ${err.message}`);
        });
        // RFC 6455 7.1.7: the client SHOULD send a close frame (1002) first; undici does not.
        assert.ok(mine.code === 1002 || mine.code === 1006, `we saw ${mine.code}`);
      });

      test('we send a text message with invalid UTF-8: the client fails the connection and we notice', async () => {
        const { ours, id } = await open();
        const closed = closeOf(ours, ms(3000));
        ours.rawSocket!.write(frame(0x1, Buffer.from([0x68, 0x69, 0xc3, 0x28]), { mask: null }));
        const ev = await peer.waitForConn(id, 'close');
        assert.equal(ev.wasClean, false);
        assert.ok(ev.code === 1006 || ev.code === 1007, `client saw ${ev.code}`);
        const mine = await closed.catch((err: Error) => {
          throw new Error(`the client sent TCP FIN (no close frame) but our server socket never emitted 'close': ${err.message}`);
        });
        assert.ok(mine.code === 1007 || mine.code === 1006, `we saw ${mine.code}`);
      });

      test('many messages in both directions arrive in order', async () => {
        const { ours, id } = await open();
        const n = 200;
        const got = messagesOf(ours, n, ms(10_000));
        for (let i = 0; i < n; i++) peer.send({ op: 'send', id, text: `m${i} ✓` });
        const msgs = await got;
        assert.deepEqual(
          msgs.map((m) => m.data.toString('utf8')),
          Array.from({ length: n }, (_, i) => `m${i} ✓`),
        );
        for (let i = 0; i < n; i++) ours.send(`s${i} ✓`);
        for (let i = 0; i < n; i++) {
          const ev = await peer.waitForConn(id, 'message');
          assert.equal(ev.text, `s${i} ✓`);
        }
      });
    });
  }
});

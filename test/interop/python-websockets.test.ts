// Interop with Debian's python3-websockets 10.4 (asyncio API), both ways:
// python client -> our server, our client -> python server, each with
// permessage-deflate off and on. The python side is
// test/interop/peers/py_websockets_peer.py, driven by JSON lines on stdin and
// reporting JSON lines on stdout (sha256 of every message, close codes...).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';

import { frame } from '../helpers/recording.js';
import { ms, peerAvailability, skipUnless, SYSTEM_PYTHON, withTimeout } from '../helpers/peers.js';
import { connect } from '../../src/transport/node/client.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import type { DeflateOptions } from '../../src/protocol/deflate.js';
import {
  BIG,
  JsonLinePeer,
  PEERS_DIR,
  UNICODE_TEXT,
  closeOf,
  compressibleText,
  errorOf,
  messagesOf,
  nextMessage,
  pongOf,
  randomPayload,
  sha256,
  type PeerEvent,
} from './helpers.js';

const peers = peerAvailability();
const PEER_SCRIPT = path.join(PEERS_DIR, 'py_websockets_peer.py');
const BIG_TIMEOUT = ms(60_000);

/** One open connection: our end, and the python end's connection id. */
interface Pair {
  ours: WebSocket;
  id: number;
  open: PeerEvent;
}

/** Per-connection options for our end (for the server end: a dedicated server is started with them). */
interface OurOptions {
  deflate?: boolean | DeflateOptions;
  fragmentSize?: number;
}

interface Side {
  py: () => JsonLinePeer;
  openPair: (opts?: OurOptions) => Promise<Pair>;
  ourRole: 'server' | 'client';
  deflate: boolean;
}

/** Frames as the python end must send them: masked when it is the client. */
function peerFrame(side: Side, opcode: number, payload: Buffer | string, opts: { rsv?: number } = {}): Buffer {
  return frame(opcode, payload, side.ourRole === 'server' ? opts : { ...opts, mask: null });
}

/** Frames as our end must send them: masked when we are the client. */
function ourFrame(side: Side, opcode: number, payload: Buffer | string, opts: { rsv?: number } = {}): Buffer {
  return frame(opcode, payload, side.ourRole === 'client' ? opts : { ...opts, mask: null });
}

function b64(data: Buffer | string): string {
  return Buffer.from(data).toString('base64');
}

/** The same scenarios for both directions; `side` says who is server. */
function scenarios(side: Side): void {
  const opened: WebSocket[] = [];
  const open = async (opts?: OurOptions): Promise<Pair> => {
    const pair = await side.openPair(opts);
    opened.push(pair.ours);
    return pair;
  };
  afterEach(() => {
    for (const ws of opened.splice(0)) ws.terminate();
  });

  test(`permessage-deflate is ${side.deflate ? 'negotiated' : 'not negotiated'} on both ends`, async () => {
    const { ours, open: ev } = await open();
    if (side.deflate) {
      assert.match(ours.extensions, /^permessage-deflate\b/);
      assert.deepEqual(ev.extensions, ['permessage-deflate']);
    } else {
      assert.equal(ours.extensions, '');
      assert.deepEqual(ev.extensions, []);
    }
  });

  test('text with non-ASCII characters round-trips both ways', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const got = nextMessage(ours);
    py.send({ op: 'send', id, text: UNICODE_TEXT });
    const m = await got;
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString('utf8'), UNICODE_TEXT);

    ours.send(UNICODE_TEXT);
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, false);
    assert.equal(ev.text, UNICODE_TEXT);
  });

  test(`a 256 KiB compressible text message round-trips ${side.deflate ? 'compressed' : 'uncompressed'} on the wire`, async () => {
    const { ours, id } = await open();
    const py = side.py();
    const text = compressibleText(256 * 1024);
    const bytes = Buffer.byteLength(text);

    const before = ours.counters.bytesOut;
    ours.send(text);
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, false);
    assert.equal(ev.len, bytes);
    assert.equal(ev.sha256, sha256(text));
    const wireOut = ours.counters.bytesOut - before;
    if (side.deflate) assert.ok(wireOut < bytes / 10, `sent ${wireOut} wire bytes for ${bytes} bytes of text: not compressed`);
    else assert.ok(wireOut >= bytes, `sent ${wireOut} wire bytes for ${bytes} bytes of text`);

    const beforeIn = ours.counters.bytesIn;
    const got = nextMessage(ours);
    py.send({ op: 'send', id, text });
    const m = await got;
    assert.equal(m.isBinary, false);
    assert.equal(m.data.length, bytes);
    assert.equal(sha256(m.data), sha256(text));
    const wireIn = ours.counters.bytesIn - beforeIn;
    if (side.deflate) assert.ok(wireIn < bytes / 10, `received ${wireIn} wire bytes for ${bytes} bytes of text: not compressed`);
    else assert.ok(wireIn >= bytes, `received ${wireIn} wire bytes for ${bytes} bytes of text`);
  });

  test('binary with every byte value round-trips both ways', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const data = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff));
    ours.send(data);
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, true);
    assert.equal(ev.b64, b64(data));

    const got = nextMessage(ours);
    py.send({ op: 'send', id, b64: b64(data) });
    const m = await got;
    assert.equal(m.isBinary, true);
    assert.deepEqual(m.data, data);
  });

  test('a 16 MiB binary message goes through in each direction', { timeout: 3 * BIG_TIMEOUT }, async () => {
    const { ours, id } = await open();
    const py = side.py();
    const data = randomPayload(BIG);
    ours.send(data);
    const ev = await py.waitForConn(id, 'message', BIG_TIMEOUT);
    assert.equal(ev.binary, true);
    assert.equal(ev.len, BIG);
    assert.equal(ev.sha256, sha256(data));

    const got = nextMessage(ours, BIG_TIMEOUT);
    py.send({ op: 'send_random', id, size: BIG });
    const sent = await py.waitForConn(id, 'sent', BIG_TIMEOUT);
    const m = await got;
    assert.equal(m.isBinary, true);
    assert.equal(m.data.length, BIG);
    assert.equal(sha256(m.data), sent.sha256);
  });

  test('our fragmented messages are reassembled by python (text split inside a UTF-8 sequence, and binary)', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const rocket = Buffer.from('🚀', 'utf8'); // 4 bytes: split 2 + 2 across frames
    const parts = [Buffer.concat([Buffer.from('frag-1 héllo '), rocket.subarray(0, 2)]), Buffer.concat([rocket.subarray(2), Buffer.from(' frag-2 ')]), Buffer.from('wörld')];
    ours.sendFragments(parts, { binary: false });
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, false);
    assert.equal(ev.text, Buffer.concat(parts).toString('utf8'));

    const bin = [Buffer.from([0, 1, 2]), Buffer.alloc(0), Buffer.from([0xfd, 0xfe, 0xff])];
    ours.sendFragments(bin, { binary: true });
    const ev2 = await py.waitForConn(id, 'message');
    assert.equal(ev2.binary, true);
    assert.equal(ev2.b64, b64(Buffer.concat(bin)));
  });

  test("python's fragmented messages (send() of an iterable) arrive as one message", async () => {
    const { ours, id } = await open();
    const py = side.py();
    const textParts = ['frag-1 ', 'ünï', 'cödé 🚀', ' end'];
    const got = messagesOf(ours, 2);
    py.send({ op: 'send_fragments', id, text: textParts });
    const binParts = [Buffer.from([1, 2, 3]), Buffer.from([4]), Buffer.from([0xff, 0x00])];
    py.send({ op: 'send_fragments', id, b64: binParts.map((p) => b64(p)) });
    const [t, b] = await got;
    assert.equal(t!.isBinary, false);
    assert.equal(t!.data.toString('utf8'), textParts.join(''));
    assert.equal(b!.isBinary, true);
    assert.deepEqual(b!.data, Buffer.concat(binParts));
  });

  test('our message sent as 66 frames (sendFragments) is reassembled by python', async () => {
    // More frames than python's receive queue (max_queue=32) holds.
    const { ours, id } = await open();
    const py = side.py();
    const text = compressibleText(64 * 1024);
    const raw = Buffer.from(text, 'utf8');
    const parts: Buffer[] = [];
    for (let i = 0; i < raw.length; i += 997) parts.push(raw.subarray(i, Math.min(raw.length, i + 997)));
    ours.sendFragments(parts, { binary: false });
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, false);
    assert.equal(ev.len, raw.length);
    assert.equal(ev.sha256, sha256(raw));
  });

  test(`our auto-fragmented messages (fragmentSize 4096${side.deflate ? ', compressed: RSV1 on the first frame only' : ''}) are reassembled by python`, async () => {
    const { ours, id } = await open({ deflate: side.deflate, fragmentSize: 4096 });
    const py = side.py();
    const text = compressibleText(200 * 1024);
    ours.send(text);
    const ev = await py.waitForConn(id, 'message');
    assert.equal(ev.binary, false);
    assert.equal(ev.sha256, sha256(text));
    const data = randomPayload(100 * 1024);
    ours.send(data);
    const ev2 = await py.waitForConn(id, 'message');
    assert.equal(ev2.binary, true);
    assert.equal(ev2.sha256, sha256(data));
  });

  if (side.deflate) {
    test('non-default deflate parameters (no context takeover both ways, 10-bit windows) negotiate and round-trip', async () => {
      const params: DeflateOptions = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 };
      const { ours, id, open: ev } = await open({ deflate: params });
      const py = side.py();
      assert.match(ours.extensions, /server_no_context_takeover/);
      assert.match(ours.extensions, /client_no_context_takeover/);
      assert.match(ours.extensions, /server_max_window_bits=10/);
      assert.match(String(ev.extensions_header), /server_no_context_takeover/);
      // Several messages in a row: a context-takeover mismatch would corrupt the second one.
      for (let i = 0; i < 3; i++) {
        const text = `${i}: ${compressibleText(20 * 1024)}`;
        ours.send(text);
        const got = await py.waitForConn(id, 'message');
        assert.equal(got.sha256, sha256(text), `message ${i} from us`);
        const mine = nextMessage(ours);
        py.send({ op: 'send', id, text });
        assert.equal(sha256((await mine).data), sha256(text), `message ${i} from python`);
      }
    });
  }

  test('ping/pong both ways, payloads echoed', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const pong = pongOf(ours);
    ours.ping('lifeline-ping ✓');
    assert.equal((await pong).toString('utf8'), 'lifeline-ping ✓');

    const pinged = withTimeout(new Promise<Buffer>((resolve) => ours.once('ping', resolve)), ms(5000), "our 'ping'");
    py.send({ op: 'ping', id, b64: b64('python-ping') });
    assert.equal((await pinged).toString(), 'python-ping');
    await py.waitForConn(id, 'pong');
  });

  test('python closes with 4001 "bye": we see 4001 "bye", python sees it echoed', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const closed = closeOf(ours);
    py.send({ op: 'close', id, code: 4001, reason: 'bye' });
    assert.deepEqual(await closed, { code: 4001, reason: 'bye' });
    const ev = await py.waitForConn(id, 'closed');
    assert.equal(ev.sent_code, 4001);
    assert.equal(ev.sent_reason, 'bye');
    assert.equal(ev.code, 4001, 'python received our echo of its close code');
  });

  test('we close with 4002 "ciao ✓": python sees 4002 "ciao ✓"', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const closed = closeOf(ours);
    ours.close(4002, 'ciao ✓');
    const ev = await py.waitForConn(id, 'closed');
    assert.equal(ev.code, 4002);
    assert.equal(ev.reason, 'ciao ✓');
    const mine = await closed;
    assert.equal(mine.code, 4002, 'python echoes the close code');
  });

  test('python breaks the protocol (reserved opcode 0x3): we fail with 1002 and python sees 1002', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const err = errorOf(ours);
    const closed = closeOf(ours);
    py.send({ op: 'raw', id, b64: b64(peerFrame(side, 0x3, 'reserved')) });
    const e = await err;
    assert.equal(e.closeCode, 1002);
    assert.equal(e.code, 'WS_ERR_INVALID_OPCODE');
    const ev = await py.waitForConn(id, 'closed');
    assert.equal(ev.code, 1002, 'python received our 1002 close frame');
    await closed;
  });

  test('python sends a text message with invalid UTF-8: we fail with 1007', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const err = errorOf(ours);
    const closed = closeOf(ours);
    py.send({ op: 'raw', id, b64: b64(peerFrame(side, 0x1, Buffer.from([0x68, 0x69, 0xc3, 0x28]))) });
    const e = await err;
    assert.equal(e.closeCode, 1007);
    const ev = await py.waitForConn(id, 'closed');
    assert.equal(ev.code, 1007, 'python received our 1007 close frame');
    await closed;
  });

  test('we break the protocol (RSV2 set, no extension negotiated it): python fails with 1002', async () => {
    const { ours, id } = await open();
    const py = side.py();
    const closed = closeOf(ours);
    ours.rawSocket!.write(ourFrame(side, 0x1, 'rsv2', { rsv: 2 }));
    const ev = await py.waitForConn(id, 'closed');
    assert.equal(ev.sent_code, 1002, `python's close frame: ${JSON.stringify(ev)}`);
    const mine = await closed;
    assert.equal(mine.code, 1002);
  });
}

async function startServer(opts: OurOptions): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
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

describe('python-websockets 10.4 interop', skipUnless(peers.python3Websockets, 'python3-websockets (Debian package, /usr/bin/python3)'), () => {
  for (const deflate of [false, true]) {
    const label = deflate ? 'permessage-deflate on' : 'permessage-deflate off';

    describe(`python client -> our server, ${label}`, () => {
      let wss: WebSocketServer;
      let py: JsonLinePeer;
      const extraServers = new Map<string, WebSocketServer>();

      before(async () => {
        wss = await startServer({ deflate });
        py = new JsonLinePeer(SYSTEM_PYTHON, [PEER_SCRIPT, 'client'], 'python-websockets client');
        await py.waitFor('ready', 'the python client to start', ms(20_000));
      });
      after(async () => {
        await py?.stop();
        await wss?.close({ timeout: ms(2000) });
        for (const s of extraServers.values()) await s.close({ timeout: ms(2000) });
      });

      scenarios({
        py: () => py,
        ourRole: 'server',
        deflate,
        openPair: async (opts) => {
          let server = wss;
          if (opts) {
            const key = JSON.stringify(opts);
            if (!extraServers.has(key)) extraServers.set(key, await startServer(opts));
            server = extraServers.get(key)!;
          }
          const port = (server.address() as { port: number }).port;
          const accepted = withTimeout(new Promise<WebSocket>((resolve) => server.once('connection', resolve)), ms(10_000), "our server's 'connection'");
          py.send({ op: 'connect', url: `ws://127.0.0.1:${port}/interop`, compression: deflate ? 'deflate' : null });
          const openEv = py.waitFor((e) => e.event === 'open' || e.event === 'connect_error', 'the python client to connect', ms(10_000));
          const [ours, ev] = await Promise.all([accepted, openEv]);
          assert.equal(ev.event, 'open', JSON.stringify(ev));
          return { ours, id: ev.id as number, open: ev };
        },
      });
    });

    describe(`our client -> python server, ${label}`, () => {
      let py: JsonLinePeer;
      let port = 0;

      before(async () => {
        py = new JsonLinePeer(SYSTEM_PYTHON, [PEER_SCRIPT, 'server', '--compression', deflate ? 'deflate' : 'none'], 'python-websockets server');
        const ev = await py.waitFor('listening', 'the python server to listen', ms(20_000));
        port = ev.port as number;
      });
      after(async () => {
        await py?.stop();
      });

      scenarios({
        py: () => py,
        ourRole: 'client',
        deflate,
        openPair: async (opts) => {
          const openEv = py.waitFor('open', 'the python server to accept', ms(10_000));
          const ours = await withTimeout(connect(`ws://127.0.0.1:${port}/interop`, { deflate, ...opts }), ms(10_000), 'our client to open');
          const ev = await openEv;
          return { ours, id: ev.id as number, open: ev };
        },
      });
    });
  }
});

// Interop with the `ws` npm package (v8), both ways: `ws` client -> our
// server, our client -> `ws` server, each with permessage-deflate off and on.
// `ws` runs in this process; every wait has a timeout guard.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import WsWebSocket, { WebSocketServer as WsServer } from 'ws';

import { frame } from '../helpers/recording.js';
import { ms, withTimeout } from '../helpers/peers.js';
import { connect } from '../../src/transport/node/client.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import type { DeflateOptions } from '../../src/protocol/deflate.js';
import { BIG, UNICODE_TEXT, closeOf, compressibleText, errorOf, messagesOf, nextMessage, pongOf, randomPayload, sha256 } from './helpers.js';

const BIG_TIMEOUT = ms(60_000);

/** Options for our end; for the server end a dedicated server is started with them. */
interface OurOptions {
  deflate?: boolean | DeflateOptions;
  fragmentSize?: number;
}

interface Pair {
  ours: WebSocket;
  theirs: WsWebSocket;
}

interface Side {
  ourRole: 'server' | 'client';
  deflate: boolean;
  openPair: (opts?: OurOptions) => Promise<Pair>;
}

interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

function wsMessages(ws: WsWebSocket, count: number, timeoutMs = ms(5000)): Promise<WsMessage[]> {
  const got: WsMessage[] = [];
  let onMessage!: (data: Buffer, isBinary: boolean) => void;
  const p = new Promise<WsMessage[]>((resolve) => {
    onMessage = (data, isBinary) => {
      got.push({ data: Buffer.from(data), isBinary });
      if (got.length === count) resolve(got);
    };
    ws.on('message', onMessage);
  });
  return withTimeout(p, timeoutMs, `${count} message(s) at the ws end (got ${got.length})`).finally(() => ws.off('message', onMessage));
}

async function wsMessage(ws: WsWebSocket, timeoutMs = ms(5000)): Promise<WsMessage> {
  return (await wsMessages(ws, 1, timeoutMs))[0]!;
}

function wsClose(ws: WsWebSocket, timeoutMs = ms(5000)): Promise<{ code: number; reason: string }> {
  return withTimeout(
    new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') }))),
    timeoutMs,
    "the ws end's 'close'",
  );
}

function wsError(ws: WsWebSocket, timeoutMs = ms(5000)): Promise<Error & { code?: string }> {
  return withTimeout(new Promise((resolve) => ws.once('error', resolve)), timeoutMs, "the ws end's 'error'");
}

/** `ws` has no public API for raw bytes; its socket is `_socket` (tests only). */
function wsRawSocket(ws: WsWebSocket): { write(b: Buffer): boolean } {
  return (ws as unknown as { _socket: { write(b: Buffer): boolean } })._socket;
}

function scenarios(side: Side): void {
  const opened: Array<{ ours: WebSocket; theirs: WsWebSocket }> = [];
  const open = async (opts?: OurOptions): Promise<Pair> => {
    const pair = await side.openPair(opts);
    opened.push(pair);
    return pair;
  };
  afterEach(() => {
    for (const p of opened.splice(0)) {
      p.ours.terminate();
      p.theirs.terminate();
    }
  });
  /** Frames as each end must send them: masked from the client. */
  const theirFrame = (opcode: number, payload: Buffer | string, opts: { rsv?: number } = {}) =>
    frame(opcode, payload, side.ourRole === 'server' ? opts : { ...opts, mask: null });
  const ourFrame = (opcode: number, payload: Buffer | string, opts: { rsv?: number } = {}) =>
    frame(opcode, payload, side.ourRole === 'client' ? opts : { ...opts, mask: null });

  test(`permessage-deflate is ${side.deflate ? 'negotiated' : 'not negotiated'} on both ends`, async () => {
    const { ours, theirs } = await open();
    if (side.deflate) {
      assert.match(ours.extensions, /^permessage-deflate\b/);
      assert.equal(theirs.extensions, 'permessage-deflate');
    } else {
      assert.equal(ours.extensions, '');
      assert.equal(theirs.extensions, '');
    }
  });

  test('text with non-ASCII characters round-trips both ways', async () => {
    const { ours, theirs } = await open();
    const atThem = wsMessage(theirs);
    ours.send(UNICODE_TEXT);
    const m = await atThem;
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString('utf8'), UNICODE_TEXT);

    const atUs = nextMessage(ours);
    theirs.send(UNICODE_TEXT);
    const m2 = await atUs;
    assert.equal(m2.isBinary, false);
    assert.equal(m2.data.toString('utf8'), UNICODE_TEXT);
  });

  test(`a 256 KiB compressible text round-trips ${side.deflate ? 'compressed' : 'uncompressed'} on the wire`, async () => {
    const { ours, theirs } = await open();
    const text = compressibleText(256 * 1024);
    const bytes = Buffer.byteLength(text);
    const out0 = ours.counters.bytesOut;
    const atThem = wsMessage(theirs);
    ours.send(text);
    const m = await atThem;
    assert.equal(m.isBinary, false);
    assert.equal(sha256(m.data), sha256(text));
    const wireOut = ours.counters.bytesOut - out0;
    if (side.deflate) assert.ok(wireOut < bytes / 10, `sent ${wireOut} wire bytes for ${bytes} bytes: not compressed`);
    else assert.ok(wireOut >= bytes, `sent ${wireOut} wire bytes for ${bytes} bytes`);

    const in0 = ours.counters.bytesIn;
    const atUs = nextMessage(ours);
    theirs.send(text);
    const m2 = await atUs;
    assert.equal(m2.isBinary, false);
    assert.equal(sha256(m2.data), sha256(text));
    const wireIn = ours.counters.bytesIn - in0;
    if (side.deflate) assert.ok(wireIn < bytes / 10, `received ${wireIn} wire bytes for ${bytes} bytes: not compressed`);
    else assert.ok(wireIn >= bytes, `received ${wireIn} wire bytes for ${bytes} bytes`);
  });

  test('binary with every byte value round-trips both ways', async () => {
    const { ours, theirs } = await open();
    const data = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff));
    const atThem = wsMessage(theirs);
    ours.send(data);
    const m = await atThem;
    assert.equal(m.isBinary, true);
    assert.deepEqual(m.data, data);

    const atUs = nextMessage(ours);
    theirs.send(data);
    const m2 = await atUs;
    assert.equal(m2.isBinary, true);
    assert.deepEqual(m2.data, data);
  });

  test('a 16 MiB binary message goes through in each direction', { timeout: 3 * BIG_TIMEOUT }, async () => {
    const { ours, theirs } = await open();
    const data = randomPayload(BIG);
    const atThem = wsMessage(theirs, BIG_TIMEOUT);
    ours.send(data);
    const m = await atThem;
    assert.equal(m.isBinary, true);
    assert.equal(m.data.length, BIG);
    assert.equal(sha256(m.data), sha256(data));

    const back = randomPayload(BIG);
    const atUs = nextMessage(ours, BIG_TIMEOUT);
    theirs.send(back);
    const m2 = await atUs;
    assert.equal(m2.isBinary, true);
    assert.equal(m2.data.length, BIG);
    assert.equal(sha256(m2.data), sha256(back));
  });

  test('our fragmented messages are reassembled by ws (text split inside a UTF-8 sequence, and binary)', async () => {
    const { ours, theirs } = await open();
    const rocket = Buffer.from('🚀', 'utf8');
    const parts = [Buffer.concat([Buffer.from('frag-1 héllo '), rocket.subarray(0, 2)]), Buffer.concat([rocket.subarray(2), Buffer.from(' frag-2 ')]), Buffer.from('wörld')];
    const bin = [Buffer.from([0, 1, 2]), Buffer.alloc(0), Buffer.from([0xfd, 0xfe, 0xff])];
    const atThem = wsMessages(theirs, 2);
    ours.sendFragments(parts, { binary: false });
    ours.sendFragments(bin, { binary: true });
    const [t, b] = await atThem;
    assert.equal(t!.isBinary, false);
    assert.equal(t!.data.toString('utf8'), Buffer.concat(parts).toString('utf8'));
    assert.equal(b!.isBinary, true);
    assert.deepEqual(b!.data, Buffer.concat(bin));
  });

  test(`ws's fragmented messages (send with fin:false${side.deflate ? ', compressed' : ''}) arrive as one message`, async () => {
    const { ours, theirs } = await open();
    const textParts = ['frag-1 ', 'ünï', 'cödé 🚀', compressibleText(4096)];
    const binParts = [Buffer.from([1, 2, 3]), randomPayload(3000), Buffer.from([0xff, 0x00])];
    const atUs = messagesOf(ours, 2);
    textParts.forEach((p, i) => theirs.send(p, { fin: i === textParts.length - 1, binary: false, compress: side.deflate }));
    binParts.forEach((p, i) => theirs.send(p, { fin: i === binParts.length - 1, binary: true, compress: side.deflate }));
    const [t, b] = await atUs;
    assert.equal(t!.isBinary, false);
    assert.equal(t!.data.toString('utf8'), textParts.join(''));
    assert.equal(b!.isBinary, true);
    assert.deepEqual(b!.data, Buffer.concat(binParts));
  });

  test(`our auto-fragmented messages (fragmentSize 4096${side.deflate ? ', compressed: RSV1 on the first frame only' : ''}) are reassembled by ws`, async () => {
    const { ours, theirs } = await open({ deflate: side.deflate, fragmentSize: 4096 });
    const text = compressibleText(200 * 1024);
    const data = randomPayload(100 * 1024);
    const atThem = wsMessages(theirs, 2);
    ours.send(text);
    ours.send(data);
    const [t, b] = await atThem;
    assert.equal(t!.isBinary, false);
    assert.equal(sha256(t!.data), sha256(text));
    assert.equal(b!.isBinary, true);
    assert.equal(sha256(b!.data), sha256(data));
  });

  if (side.deflate) {
    test('non-default deflate parameters (no context takeover both ways, 10-bit windows) negotiate and round-trip', async () => {
      const params: DeflateOptions = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 };
      const { ours, theirs } = await open({ deflate: params });
      assert.match(ours.extensions, /server_no_context_takeover/);
      assert.match(ours.extensions, /client_no_context_takeover/);
      assert.match(ours.extensions, /server_max_window_bits=10/);
      for (let i = 0; i < 3; i++) {
        const text = `${i}: ${compressibleText(20 * 1024)}`;
        const atThem = wsMessage(theirs);
        ours.send(text);
        assert.equal(sha256((await atThem).data), sha256(text), `message ${i} from us`);
        const atUs = nextMessage(ours);
        theirs.send(text);
        assert.equal(sha256((await atUs).data), sha256(text), `message ${i} from ws`);
      }
    });
  }

  test('ping/pong both ways, payloads echoed', async () => {
    const { ours, theirs } = await open();
    const pong = pongOf(ours);
    ours.ping('lifeline-ping ✓');
    assert.equal((await pong).toString('utf8'), 'lifeline-ping ✓');

    const pinged = withTimeout(new Promise<Buffer>((resolve) => ours.once('ping', resolve)), ms(5000), "our 'ping'");
    const theirPong = withTimeout(new Promise<Buffer>((resolve) => theirs.once('pong', resolve)), ms(5000), "ws's 'pong'");
    theirs.ping('ws-ping');
    assert.equal((await pinged).toString(), 'ws-ping');
    assert.equal((await theirPong).toString(), 'ws-ping');
  });

  test('ws closes with 4001 "bye": we see 4001 "bye", ws sees it echoed', async () => {
    const { ours, theirs } = await open();
    const mine = closeOf(ours);
    const theirsClosed = wsClose(theirs);
    theirs.close(4001, 'bye');
    assert.deepEqual(await mine, { code: 4001, reason: 'bye' });
    assert.equal((await theirsClosed).code, 4001);
  });

  test('we close with 4002 "ciao ✓": ws sees 4002 "ciao ✓"', async () => {
    const { ours, theirs } = await open();
    const mine = closeOf(ours);
    const theirsClosed = wsClose(theirs);
    ours.close(4002, 'ciao ✓');
    assert.deepEqual(await theirsClosed, { code: 4002, reason: 'ciao ✓' });
    assert.equal((await mine).code, 4002);
  });

  test('ws end breaks the protocol (reserved opcode 0x3): we fail with 1002, ws sees 1002', async () => {
    const { ours, theirs } = await open();
    const err = errorOf(ours);
    const mine = closeOf(ours);
    const theirsClosed = wsClose(theirs);
    wsRawSocket(theirs).write(theirFrame(0x3, 'reserved'));
    const e = await err;
    assert.equal(e.code, 'WS_ERR_INVALID_OPCODE');
    assert.equal(e.closeCode, 1002);
    assert.equal((await theirsClosed).code, 1002);
    await mine;
  });

  test('ws end sends invalid UTF-8 in a text frame: we fail with 1007, ws sees 1007', async () => {
    const { ours, theirs } = await open();
    const err = errorOf(ours);
    const mine = closeOf(ours);
    const theirsClosed = wsClose(theirs);
    wsRawSocket(theirs).write(theirFrame(0x1, Buffer.from([0x68, 0x69, 0xc3, 0x28])));
    const e = await err;
    assert.equal(e.closeCode, 1007);
    assert.equal((await theirsClosed).code, 1007);
    await mine;
  });

  test('we break the protocol (RSV2 set, not negotiated): ws fails with 1002 and we see 1002', async () => {
    const { ours, theirs } = await open();
    const theirErr = wsError(theirs);
    const mine = closeOf(ours);
    ours.rawSocket!.write(ourFrame(0x1, 'rsv2', { rsv: 2 }));
    const e = await theirErr;
    assert.equal(e.code, 'WS_ERR_UNEXPECTED_RSV_2_3');
    assert.equal((await mine).code, 1002);
  });

  test('a frame masked the wrong way: the receiving end fails with 1002', async () => {
    // Server frames must not be masked, client frames must be (RFC 6455 5.1).
    const { ours, theirs } = await open();
    if (side.ourRole === 'server') {
      // ws client receives a masked frame from us.
      const theirErr = wsError(theirs);
      const mine = closeOf(ours);
      ours.rawSocket!.write(frame(0x1, 'masked'));
      const e = await theirErr;
      assert.equal(e.code, 'WS_ERR_UNEXPECTED_MASK');
      assert.equal((await mine).code, 1002);
    } else {
      // We (client) receive a masked frame from the ws server.
      const err = errorOf(ours);
      const theirsClosed = wsClose(theirs);
      wsRawSocket(theirs).write(frame(0x1, 'masked'));
      const e = await err;
      assert.equal(e.code, 'WS_ERR_UNEXPECTED_MASK');
      assert.equal(e.closeCode, 1002);
      assert.equal((await theirsClosed).code, 1002);
    }
  });
}

async function startOurServer(opts: OurOptions): Promise<WebSocketServer> {
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

describe('ws (npm) interop', () => {
  for (const deflate of [false, true]) {
    const label = deflate ? 'permessage-deflate on' : 'permessage-deflate off';

    describe(`ws client -> our server, ${label}`, () => {
      const servers = new Map<string, WebSocketServer>();
      const serverFor = async (opts: OurOptions) => {
        const key = JSON.stringify(opts);
        if (!servers.has(key)) servers.set(key, await startOurServer(opts));
        return servers.get(key)!;
      };
      before(async () => {
        await serverFor({ deflate });
      });
      after(async () => {
        for (const s of servers.values()) await s.close({ timeout: ms(2000) });
      });

      scenarios({
        ourRole: 'server',
        deflate,
        openPair: async (opts) => {
          const server = await serverFor(opts ?? { deflate });
          const port = (server.address() as { port: number }).port;
          const accepted = withTimeout(new Promise<WebSocket>((resolve) => server.once('connection', resolve)), ms(5000), "our server's 'connection'");
          const theirs = new WsWebSocket(`ws://127.0.0.1:${port}/interop`, { perMessageDeflate: deflate });
          theirs.on('error', () => {}); // asserted where expected; never crash the run
          const opened = withTimeout(new Promise<void>((resolve, reject) => {
            theirs.once('open', () => resolve());
            theirs.once('error', reject);
          }), ms(5000), "the ws client's 'open'");
          const [ours] = await Promise.all([accepted, opened]);
          return { ours, theirs };
        },
      });
    });

    describe(`our client -> ws server, ${label}`, () => {
      let wss: WsServer;
      let port = 0;
      before(async () => {
        wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate });
        await withTimeout(new Promise<void>((resolve) => wss.once('listening', () => resolve())), ms(5000), 'the ws server to listen');
        port = (wss.address() as { port: number }).port;
        wss.on('connection', (ws) => {
          ws.on('error', () => {}); // asserted where expected; never crash the run
        });
      });
      after(async () => {
        for (const c of wss.clients) c.terminate();
        await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), ms(5000), 'the ws server to close');
      });

      scenarios({
        ourRole: 'client',
        deflate,
        openPair: async (opts) => {
          const next = withTimeout(new Promise<WsWebSocket>((resolve) => wss.once('connection', resolve)), ms(5000), "the ws server's 'connection'");
          const ours = await withTimeout(connect(`ws://127.0.0.1:${port}/interop`, { deflate, ...opts }), ms(5000), 'our client to open');
          const theirs = await next;
          return { ours, theirs };
        },
      });
    });
  }
});

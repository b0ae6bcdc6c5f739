/**
 * Bad-input suite (hardening acceptance): >= 40 distinct malformed or hostile
 * inputs, each sent over a raw TCP socket to ONE long-lived WebSocketServer
 * (deflate on, maxMessageSize 1 MiB, handshakeTimeout 1000 ms), each answered
 * with the right close code (parsed from the close frame the server writes) or
 * HTTP status; after every case a healthy `ws` client connects and echoes.
 *
 * Scaling note: "a handshake trickled one byte per second" is run as one byte
 * per 200 ms against handshakeTimeout 1000 ms (same shape, 5x faster).
 *
 * "Masked server frames" is a client-side case: it runs against our
 * ClientWebSocket with a raw net server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import NodeWs from 'ws';
import { WebSocketServer } from '../../src/transport/node/server.js';
import { ClientWebSocket } from '../../src/transport/node/client.js';
import type { WebSocket as LlWebSocket } from '../../src/transport/node/websocket.js';
import { frame } from '../helpers/recording.js';
import { ms, withTimeout } from '../helpers/peers.js';

const MAX_MESSAGE = 1024 * 1024;
const HANDSHAKE_TIMEOUT = 1000;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

let wss: WebSocketServer;
let port = 0;
/** Per-connection error codes the server reported (peer input) and server-level errors (must stay empty). */
const serverErrors: string[] = [];
const wssErrors: string[] = [];

interface Row {
  name: string;
  expected: string;
  got: string;
  /** For measured rows (got is a number with a unit). Default: got === expected. */
  pass?: boolean;
}
const summary: Row[] = [];

before(async () => {
  wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    deflate: true,
    maxMessageSize: MAX_MESSAGE,
    handshakeTimeout: HANDSHAKE_TIMEOUT,
  });
  wss.on('error', (e) => wssErrors.push(String(e)));
  wss.on('connection', (ws: LlWebSocket) => {
    ws.on('error', (e: Error & { code?: string }) => serverErrors.push(String(e.code)));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (ws.readyState === 1) ws.send(data, { binary: isBinary });
    });
  });
  await withTimeout(new Promise<void>((r) => wss.once('listening', () => r())), ms(5000), 'server listening');
  port = (wss.address() as net.AddressInfo).port;
});

after(async () => {
  await wss.close({ timeout: 2000 });
  const w = Math.max(...summary.map((r) => r.name.length), 4);
  const e = Math.max(...summary.map((r) => r.expected.length), 8);
  const lines = [`${'case'.padEnd(w)} | ${'expected'.padEnd(e)} | got`, `${'-'.repeat(w)}-|-${'-'.repeat(e)}-|-----`];
  for (const r of summary) lines.push(`${r.name.padEnd(w)} | ${r.expected.padEnd(e)} | ${r.got}${(r.pass ?? r.expected === r.got) ? '' : '   <-- MISMATCH'}`);
  const ok = summary.filter((r) => r.pass ?? r.expected === r.got).length;
  lines.push(`${ok}/${summary.length} cases answered as expected`);
  const codes = new Map<string, number>();
  for (const c of serverErrors) codes.set(c, (codes.get(c) ?? 0) + 1);
  lines.push(`server-side error codes: ${[...codes].map(([k, v]) => `${k} x${v}`).join(', ')}`);
  console.log('\nBad-input summary\n' + lines.join('\n'));
});

// ------------------------------------------------------------------ helpers

interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
}

/** Parses complete frames from `buf` (masked or not); stops at an incomplete one. */
function parseFrames(buf: Buffer): ParsedFrame[] {
  const out: ParsedFrame[] = [];
  let p = 0;
  while (buf.length - p >= 2) {
    const b0 = buf[p]!;
    const b1 = buf[p + 1]!;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      if (buf.length - p < 4) break;
      len = buf.readUInt16BE(p + 2);
      h = 4;
    } else if (len === 127) {
      if (buf.length - p < 10) break;
      len = Number(buf.readBigUInt64BE(p + 2));
      h = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskAt = p + h;
    if (masked) h += 4;
    if (buf.length - p < h + len) break;
    const payload = Buffer.from(buf.subarray(p + h, p + h + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ buf[maskAt + (i & 3)]!;
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, payload });
    p += h + len;
  }
  return out;
}

function handshakeRequest(opts: { deflate?: boolean } = {}): string {
  return (
    'GET / HTTP/1.1\r\n' +
    `Host: 127.0.0.1:${port}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${KEY}\r\n` +
    'Sec-WebSocket-Version: 13\r\n' +
    (opts.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '') +
    '\r\n'
  );
}

/** A raw socket that records everything it receives until the peer closes. */
class RawPeer {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed: Promise<void>;
  private waiters: Array<() => void> = [];
  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((r) => socket.once('close', () => r()));
    this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static connect(): Promise<RawPeer> {
    return withTimeout(
      new Promise<RawPeer>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('error', reject);
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(new RawPeer(s));
        });
      }),
      ms(5000),
      'raw connect',
    );
  }
  /** Resolves when `pred(received)` holds or the socket closed. */
  async until(pred: (b: Buffer) => boolean, what: string, timeout = ms(10_000)): Promise<void> {
    await withTimeout(
      (async () => {
        for (;;) {
          if (pred(this.received) || this.socket.destroyed) return;
          await new Promise<void>((r) => this.waiters.push(r));
        }
      })(),
      timeout,
      what,
    );
  }
  write(b: Buffer | string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(b);
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a raw WebSocket connection by hand; returns the peer positioned after the 101 head. */
async function rawWebSocket(opts: { deflate?: boolean } = {}): Promise<{ peer: RawPeer; head: string; offset: number }> {
  const peer = await RawPeer.connect();
  peer.write(handshakeRequest(opts));
  await peer.until((b) => b.includes('\r\n\r\n'), 'handshake response');
  const end = peer.received.indexOf('\r\n\r\n') + 4;
  const head = peer.received.subarray(0, end).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 /, 'hand-made handshake accepted');
  if (opts.deflate) assert.match(head, /sec-websocket-extensions: *permessage-deflate/i, 'permessage-deflate negotiated');
  return { peer, head, offset: end };
}

/** Sends `bytes` after a hand-made handshake; returns the close code in the server's close frame ('none' if none). */
async function closeCodeFor(bytes: Buffer | Buffer[], opts: { deflate?: boolean } = {}): Promise<string> {
  const { peer, offset } = await rawWebSocket(opts);
  try {
    for (const b of Array.isArray(bytes) ? bytes : [bytes]) peer.write(b);
    const closeOf = (b: Buffer) => parseFrames(b.subarray(offset)).find((f) => f.opcode === 8);
    await peer.until((b) => closeOf(b) !== undefined, 'server close frame');
    const c = closeOf(peer.received);
    if (!c) return 'none';
    // Finish the closing handshake politely (the server may already be gone).
    peer.write(frame(8, c.payload));
    await withTimeout(peer.closed, ms(5000), 'server closes TCP');
    return c.payload.length >= 2 ? String(c.payload.readUInt16BE(0)) : 'no-status';
  } finally {
    peer.destroy();
  }
}

/** Sends raw HTTP bytes; returns the status code of the server's answer ('closed' if it closed without one). */
async function statusFor(send: (peer: RawPeer) => Promise<void> | void, timeout = ms(10_000)): Promise<string> {
  const peer = await RawPeer.connect();
  try {
    await send(peer);
    await peer.until((b) => b.includes('\r\n'), 'status line', timeout);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(peer.received.toString('latin1'));
    return m ? m[1]! : 'closed';
  } finally {
    peer.destroy();
  }
}

/** A healthy client (the `ws` package) connects and gets an echo back. */
async function assertHealthy(tag: string): Promise<void> {
  const c = new NodeWs(`ws://127.0.0.1:${port}/`);
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        c.once('error', reject);
        c.once('open', () => c.send(`healthy after ${tag}`));
        c.once('message', (d: Buffer) => {
          if (d.toString() === `healthy after ${tag}`) resolve();
          else reject(new Error(`wrong echo ${d.toString()}`));
        });
      }),
      ms(5000),
      `healthy echo after ${tag}`,
    );
  } finally {
    c.terminate();
  }
}

async function runCase(name: string, expected: string, fn: () => Promise<string>): Promise<void> {
  let got: string;
  try {
    got = await fn();
  } catch (e) {
    got = `error: ${(e as Error).message}`;
  }
  summary.push({ name, expected, got });
  await assertHealthy(name);
  assert.equal(got, expected, name);
}

// ------------------------------------------------------------------ frame cases

const M = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
/** A raw masked header with a chosen length encoding. */
function rawHeader(b0: number, lenBytes: number[], mask = true): Buffer {
  return Buffer.from([b0, ...(mask ? [lenBytes[0]! | 0x80, ...lenBytes.slice(1)] : lenBytes), ...(mask ? M : [])]);
}
const closeWith = (code: number, reason: Buffer = Buffer.alloc(0)) => {
  const p = Buffer.alloc(2 + reason.length);
  p.writeUInt16BE(code, 0);
  reason.copy(p, 2);
  return frame(8, p);
};
const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

function deflateRaw(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(out.subarray(-4), Buffer.from([0, 0, 0xff, 0xff]));
  return out.subarray(0, -4);
}

const frameCases: Array<{ name: string; expected: number; bytes: () => Buffer | Buffer[]; deflate?: boolean }> = [
  // masking
  { name: 'unmasked text frame', expected: 1002, bytes: () => frame(1, 'hi', { mask: null }) },
  { name: 'unmasked binary frame', expected: 1002, bytes: () => frame(2, Buffer.from([1, 2, 3]), { mask: null }) },
  { name: 'unmasked ping', expected: 1002, bytes: () => frame(9, 'p', { mask: null }) },
  { name: 'unmasked close', expected: 1002, bytes: () => frame(8, Buffer.from([0x03, 0xe8]), { mask: null }) },
  // lengths
  { name: 'non-minimal 16-bit length (5 as 126+u16)', expected: 1002, bytes: () => Buffer.concat([rawHeader(0x82, [126, 0, 5]), Buffer.alloc(5)]) },
  { name: 'non-minimal 64-bit length (200 as 127+u64)', expected: 1002, bytes: () => Buffer.concat([rawHeader(0x82, [127, 0, 0, 0, 0, 0, 0, 0, 200]), Buffer.alloc(200)]) },
  { name: '64-bit length with top bit set', expected: 1002, bytes: () => rawHeader(0x82, [127, 0x80, 0, 0, 0, 0, 0, 0, 1]) },
  { name: '64-bit length 0xffff.. (all bits)', expected: 1002, bytes: () => rawHeader(0x82, [127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) },
  { name: '64-bit length 2^53 (MSB clear)', expected: 1009, bytes: () => rawHeader(0x82, [127, 0, 0x20, 0, 0, 0, 0, 0, 0]) },
  { name: 'oversized frame header (2 MiB > max 1 MiB)', expected: 1009, bytes: () => rawHeader(0x82, [127, 0, 0, 0, 0, 0, 0x20, 0, 0]) },
  {
    name: 'oversized fragmented message (2 x 600 KiB)',
    expected: 1009,
    bytes: () => [frame(2, Buffer.alloc(600 * 1024), { fin: false }), frame(0, Buffer.alloc(600 * 1024))],
  },
  // opcodes
  { name: 'reserved data opcode 0x3', expected: 1002, bytes: () => frame(3, 'x') },
  { name: 'reserved data opcode 0x7', expected: 1002, bytes: () => frame(7, 'x') },
  { name: 'reserved control opcode 0xB', expected: 1002, bytes: () => frame(0xb, 'x') },
  { name: 'reserved control opcode 0xF', expected: 1002, bytes: () => frame(0xf, '') },
  { name: 'continuation with no message', expected: 1002, bytes: () => frame(0, 'x') },
  { name: 'new text frame inside fragmented message', expected: 1002, bytes: () => [frame(1, 'a', { fin: false }), frame(1, 'b')] },
  // control frames
  { name: 'fragmented ping (FIN=0)', expected: 1002, bytes: () => frame(9, 'p', { fin: false }) },
  { name: 'fragmented close (FIN=0)', expected: 1002, bytes: () => frame(8, Buffer.from([0x03, 0xe8]), { fin: false }) },
  { name: 'ping with 126-byte payload', expected: 1002, bytes: () => frame(9, Buffer.alloc(126)) },
  { name: 'close with 1-byte payload', expected: 1002, bytes: () => frame(8, Buffer.from([0x03])) },
  // RSV bits
  { name: 'RSV2 set', expected: 1002, bytes: () => frame(1, 'x', { rsv: 2 }) },
  { name: 'RSV3 set', expected: 1002, bytes: () => frame(1, 'x', { rsv: 1 }) },
  { name: 'RSV1 without permessage-deflate', expected: 1002, bytes: () => frame(1, 'x', { rsv: 4 }) },
  { name: 'RSV1 on a ping (deflate on)', expected: 1002, deflate: true, bytes: () => frame(9, 'x', { rsv: 4 }) },
  {
    name: 'RSV1 on a continuation (deflate on)',
    expected: 1002,
    deflate: true,
    bytes: () => [frame(2, deflateRaw(Buffer.from('abc')), { fin: false, rsv: 4 }), frame(0, deflateRaw(Buffer.from('def')), { rsv: 4 })],
  },
  // invalid UTF-8, by position class
  { name: 'utf8: invalid start byte 0xFF', expected: 1007, bytes: () => frame(1, hex('41 ff 42')) },
  { name: 'utf8: lone continuation byte 0x80 at start', expected: 1007, bytes: () => frame(1, hex('80 41')) },
  { name: 'utf8: overlong 2-byte (C0 AF)', expected: 1007, bytes: () => frame(1, hex('c0 af')) },
  { name: 'utf8: overlong 3-byte (E0 80 AF)', expected: 1007, bytes: () => frame(1, hex('e0 80 af')) },
  { name: 'utf8: surrogate U+D800 (ED A0 80)', expected: 1007, bytes: () => frame(1, hex('ed a0 80')) },
  { name: 'utf8: above U+10FFFF (F4 90 80 80)', expected: 1007, bytes: () => frame(1, hex('f4 90 80 80')) },
  { name: 'utf8: truncated at end of message (E2 82)', expected: 1007, bytes: () => frame(1, hex('41 e2 82')) },
  { name: 'utf8: invalid in middle of 2nd fragment', expected: 1007, bytes: () => [frame(1, 'ok', { fin: false }), frame(0, hex('41 fe 41'))] },
  { name: 'utf8: sequence split across fragments, bad tail', expected: 1007, bytes: () => [frame(1, hex('41 e2'), { fin: false }), frame(0, hex('28 a1'))] },
  { name: 'utf8: message ends mid-sequence after fragments', expected: 1007, bytes: () => [frame(1, 'ab', { fin: false }), frame(0, hex('f0 9f'))] },
  { name: 'utf8: invalid close reason', expected: 1007, bytes: () => closeWith(1000, hex('ff')) },
  { name: 'utf8: invalid in compressed text', expected: 1007, deflate: true, bytes: () => frame(1, deflateRaw(hex('41 ff 41')), { rsv: 4 }) },
  // close codes
  { name: 'close code 0', expected: 1002, bytes: () => closeWith(0) },
  { name: 'close code 999', expected: 1002, bytes: () => closeWith(999) },
  { name: 'close code 1004 (reserved)', expected: 1002, bytes: () => closeWith(1004) },
  { name: 'close code 1005 (never on wire)', expected: 1002, bytes: () => closeWith(1005) },
  { name: 'close code 1006 (never on wire)', expected: 1002, bytes: () => closeWith(1006) },
  { name: 'close code 1015 (TLS, never on wire)', expected: 1002, bytes: () => closeWith(1015) },
  { name: 'close code 2999', expected: 1002, bytes: () => closeWith(2999) },
  { name: 'close code 5000', expected: 1002, bytes: () => closeWith(5000) },
  { name: 'close code 65535', expected: 1002, bytes: () => closeWith(65535) },
  // compression
  { name: 'garbage compressed data (RSV1)', expected: 1007, deflate: true, bytes: () => frame(2, hex('ff ff ff ff 00 01 02'), { rsv: 4 }) },
];

for (const c of frameCases) {
  test(`frame: ${c.name} -> ${c.expected}`, async () => {
    await runCase(c.name, String(c.expected), () => closeCodeFor(c.bytes(), { deflate: c.deflate }));
  });
}

// ------------------------------------------------------------------ deflate bomb & ping flood

test('deflate bomb: 100 MiB of zeros inflated -> 1009, RSS growth small', async () => {
  // Build the bomb with a streaming deflater from one reused 1 MiB buffer, so
  // this process never holds 100 MiB itself.
  const bomb = await new Promise<Buffer>((resolve, reject) => {
    const d = zlib.createDeflateRaw({ level: 9 });
    const chunks: Buffer[] = [];
    d.on('data', (c: Buffer) => chunks.push(c));
    d.on('error', reject);
    const zeros = Buffer.alloc(1024 * 1024);
    let i = 0;
    const pump = () => {
      while (i < 100) {
        i++;
        if (!d.write(zeros)) return void d.once('drain', pump);
      }
      d.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve(Buffer.concat(chunks)));
    };
    pump();
  });
  assert.deepEqual(bomb.subarray(-4), Buffer.from([0, 0, 0xff, 0xff]));
  const payload = bomb.subarray(0, -4);
  assert.ok(payload.length < MAX_MESSAGE, `compressed bomb is ${payload.length} bytes`);
  const rss0 = process.memoryUsage().rss;
  let peakGrowth = 0;
  const sampler = setInterval(() => {
    peakGrowth = Math.max(peakGrowth, process.memoryUsage().rss - rss0);
  }, 5);
  try {
    await runCase(`deflate bomb (${payload.length} B -> 100 MiB)`, '1009', () => closeCodeFor(frame(2, payload, { rsv: 4 }), { deflate: true }));
  } finally {
    clearInterval(sampler);
  }
  peakGrowth = Math.max(peakGrowth, process.memoryUsage().rss - rss0);
  summary.push({ name: 'deflate bomb: peak RSS growth', expected: '< 48 MiB', got: `${(peakGrowth / 2 ** 20).toFixed(1)} MiB`, pass: peakGrowth < 48 * 2 ** 20 });
  assert.ok(peakGrowth < 48 * 2 ** 20, `RSS grew ${(peakGrowth / 2 ** 20).toFixed(1)} MiB`);
});

test('flood of 10,000 pings in one write: every ping answered with a pong, process responsive', async () => {
  const N = 10_000;
  const { peer, offset } = await rawWebSocket();
  try {
    const pings: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(i, 0);
      pings.push(frame(9, p));
    }
    // Event loop stays responsive while the server chews through the flood.
    let maxLag = 0;
    let last = performance.now();
    const lagTimer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    peer.write(Buffer.concat(pings));
    const pongs = () => parseFrames(peer.received.subarray(offset)).filter((f) => f.opcode === 10);
    // Counting re-parses; fine at this size, and bounded by the timeout.
    await peer.until((b) => b.length - offset >= N * 6, 'pongs', ms(15_000));
    clearInterval(lagTimer);
    const got = pongs();
    const inOrder = got.every((f, i) => f.payload.length === 4 && f.payload.readUInt32BE(0) === i);
    // Then the connection still works: echo, and a clean close.
    peer.write(frame(1, 'after flood'));
    await peer.until((b) => parseFrames(b.subarray(offset)).some((f) => f.opcode === 1), 'echo after flood');
    const echo = parseFrames(peer.received.subarray(offset)).find((f) => f.opcode === 1);
    summary.push({ name: 'ping flood: pongs for 10,000 pings', expected: String(N), got: String(got.length) });
    summary.push({ name: 'ping flood: max event-loop lag', expected: '< 1000 ms', got: `${maxLag.toFixed(0)} ms`, pass: maxLag < 1000 });
    await assertHealthy('ping flood');
    assert.equal(got.length, N);
    assert.ok(inOrder, 'pongs echo the ping payloads in order');
    assert.equal(echo?.payload.toString(), 'after flood');
    assert.ok(maxLag < 1000, `event loop lag ${maxLag} ms`);
  } finally {
    peer.destroy();
  }
});

// ------------------------------------------------------------------ handshake cases

const req = (lines: string[]) => lines.join('\r\n') + '\r\n\r\n';
const goodLines = () => [
  'GET / HTTP/1.1',
  `Host: 127.0.0.1:${port}`,
  'Upgrade: websocket',
  'Connection: Upgrade',
  `Sec-WebSocket-Key: ${KEY}`,
  'Sec-WebSocket-Version: 13',
];
const without = (prefix: string) => goodLines().filter((l) => !l.toLowerCase().startsWith(prefix.toLowerCase()));

const httpCases: Array<{ name: string; expected: string; send: (p: RawPeer) => Promise<void> | void }> = [
  { name: 'garbage bytes instead of HTTP', expected: '400', send: (p) => p.write(Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a])) },
  { name: 'garbage request line', expected: '400', send: (p) => p.write('HELLO WORLD\r\n\r\n') },
  { name: 'header line without a colon', expected: '400', send: (p) => p.write(req([...goodLines(), 'NoColonHere'])) },
  { name: 'NUL byte in a header value', expected: '400', send: (p) => p.write(req([...goodLines(), 'X-Bad: a\u0000b'])) },
  { name: 'POST upgrade', expected: '405', send: (p) => p.write(req(['POST / HTTP/1.1', ...goodLines().slice(1)])) },
  { name: 'HTTP/1.0 upgrade', expected: '400', send: (p) => p.write(req(['GET / HTTP/1.0', ...goodLines().slice(1)])) },
  { name: 'missing Host', expected: '400', send: (p) => p.write(req(without('Host:'))) },
  { name: 'missing Sec-WebSocket-Key', expected: '400', send: (p) => p.write(req(without('Sec-WebSocket-Key:'))) },
  { name: 'Sec-WebSocket-Key not 16 bytes', expected: '400', send: (p) => p.write(req([...without('Sec-WebSocket-Key:'), 'Sec-WebSocket-Key: c2hvcnQ='])) },
  { name: 'duplicate Sec-WebSocket-Key', expected: '400', send: (p) => p.write(req([...goodLines(), 'Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=='])) },
  { name: 'Sec-WebSocket-Version 8', expected: '426', send: (p) => p.write(req([...without('Sec-WebSocket-Version:'), 'Sec-WebSocket-Version: 8'])) },
  { name: 'Upgrade: h2c (not websocket)', expected: '400', send: (p) => p.write(req([...without('Upgrade:'), 'Upgrade: h2c'])) },
  { name: 'malformed Sec-WebSocket-Extensions', expected: '400', send: (p) => p.write(req([...goodLines(), 'Sec-WebSocket-Extensions: permessage-deflate; =;;"'])) },
  { name: 'plain GET (no upgrade)', expected: '426', send: (p) => p.write(req([`GET / HTTP/1.1`, `Host: 127.0.0.1:${port}`])) },
  {
    name: '1 MiB of headers',
    expected: '431',
    send: (p) => {
      const line = `X-Filler: ${'a'.repeat(1000)}\r\n`;
      p.write(goodLines().join('\r\n') + '\r\n');
      for (let i = 0; i < 1048; i++) p.write(line); // 1048 x 1012 B ~ 1 MiB
      p.write('\r\n');
    },
  },
  {
    name: 'truncated handshake, then silence',
    expected: '408',
    send: (p) => p.write(goodLines().slice(0, 3).join('\r\n') + '\r\nSec-WebSocket-K'),
  },
  {
    // Node's HTTP parser answers a head cut short by EOF with 400 Bad Request.
    name: 'truncated handshake, then FIN',
    expected: '400',
    send: (p) => {
      p.write(goodLines().slice(0, 3).join('\r\n') + '\r\nSec-WebSocket-K');
      p.socket.end();
    },
  },
];

for (const c of httpCases) {
  test(`handshake: ${c.name} -> ${c.expected}`, async () => {
    await runCase(c.name, c.expected, () => statusFor(c.send));
  });
}

test('handshake: trickled one byte per 200 ms (scaled from 1 B/s) -> 408 within the handshake timeout', async () => {
  const t0 = performance.now();
  let sent = 0;
  await runCase('handshake trickled 1 byte / 200 ms', '408', () =>
    statusFor(async (p) => {
      const bytes = Buffer.from(handshakeRequest());
      const timer = setInterval(() => {
        if (sent < bytes.length && !p.socket.destroyed) p.write(bytes.subarray(sent, ++sent));
        else clearInterval(timer);
      }, 200);
      p.closed.then(() => clearInterval(timer));
      await p.until((b) => b.length > 0, 'answer to trickle', ms(10_000)).finally(() => clearInterval(timer));
    }),
  );
  const elapsed = performance.now() - t0;
  summary.push({ name: 'trickle: given up before the head was complete', expected: 'yes', got: `${sent}/${handshakeRequest().length} B in ${elapsed.toFixed(0)} ms`, pass: sent < handshakeRequest().length });
  assert.ok(sent < handshakeRequest().length, 'the server gave up before the trickle finished');
  assert.ok(elapsed < HANDSHAKE_TIMEOUT * 3 + 1000, `took ${elapsed} ms`);
});

// ------------------------------------------------------------------ client-side cases (raw server)

/** Runs a raw server that accepts the handshake and then writes `bytes`; returns the code of the client's close frame. */
async function clientCloseCodeFor(bytes: Buffer): Promise<{ wire: string; event: string }> {
  const srv = net.createServer();
  const sockets = new Set<net.Socket>();
  let client: ClientWebSocket | undefined;
  try {
    const wire = new Promise<string>((resolve) => {
      srv.on('connection', (s) => {
        sockets.add(s);
        s.on('error', () => {});
        let buf = Buffer.alloc(0);
        let upgraded = false;
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (!upgraded) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const key = /sec-websocket-key: *(\S+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? '';
            const accept = createHash('sha1').update(key + GUID).digest('base64');
            s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
            buf = buf.subarray(end + 4);
            upgraded = true;
            s.write(bytes);
          }
          const c = parseFrames(buf).find((f) => f.opcode === 8);
          if (c) {
            resolve(c.payload.length >= 2 ? String(c.payload.readUInt16BE(0)) : 'no-status');
            s.end();
          }
        });
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const p = (srv.address() as net.AddressInfo).port;
    client = new ClientWebSocket(`ws://127.0.0.1:${p}/`);
    client.on('error', () => {});
    const closed = new Promise<string>((r) => client!.once('close', (code: number) => r(String(code))));
    const w = await withTimeout(wire, ms(5000), 'client close frame');
    const ev = await withTimeout(closed, ms(10_000), 'client close event');
    return { wire: w, event: ev };
  } finally {
    client?.terminate();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('client: masked server frame -> client closes with 1002', async () => {
  const r = await clientCloseCodeFor(frame(1, 'masked', { mask: Buffer.from([1, 2, 3, 4]) }));
  summary.push({ name: 'client: masked server frame (close frame sent)', expected: '1002', got: r.wire });
  assert.equal(r.wire, '1002');
});

test('client: server frame with 64-bit length top bit set -> client closes with 1002', async () => {
  const r = await clientCloseCodeFor(Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]));
  summary.push({ name: 'client: 64-bit length top bit (server frame)', expected: '1002', got: r.wire });
  assert.equal(r.wire, '1002');
});

test('at least 40 distinct hostile inputs, server still serving', async () => {
  await assertHealthy('all cases');
  const distinct = new Set(summary.map((r) => r.name));
  assert.ok(distinct.size >= 40, `${distinct.size} cases`);
  assert.ok(wss.clients.size <= 1, `leftover server connections: ${wss.clients.size}`);
  assert.deepEqual(wssErrors, [], 'no server-level errors');
});

// Headless Chromium's native WebSocket against our server (RFC 6455 + RFC 7692).
//
// A node http server on 127.0.0.1 serves test/browser/page.html; our
// WebSocketServers attach to the same http server, one per path. The page's
// `window.lt` object drives the browser's WebSocket; page.evaluate calls it.
// Big payloads never cross page.evaluate: the page generates them from a seed
// and reports SHA-256 digests, and Node checks the same pattern on its side.
//
// Every scenario runs with permessage-deflate off and on. And over wss://: our
// server on node:https with test/fixtures/tls's self-signed certificate, which
// the browser accepts only in a context that ignores certificate errors
// (playwright's ignoreHTTPSErrors; the launch flags stay as they are).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { WebSocketServer, type ServerOptions } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import { ms, once, peerAvailability, skipUnless, withTimeout } from '../helpers/peers.js';

const PAGE_HTML = readFileSync(new URL('./page.html', import.meta.url));
const TLS_CERT = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url));
const TLS_KEY = readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url));
const MiB = 1024 * 1024;
const BIG = 16 * MiB;
const CALL_TIMEOUT = ms(10_000);
const BIG_TIMEOUT = ms(60_000);

// ------------------------------------------------------------- page API

type Described =
  | { kind: 'text'; data: string }
  | { kind: 'binary'; length: number; sha256: string; bytes: number[] | null };

interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
  errorFired: boolean;
}

interface OpenResult {
  id: number;
  opened: boolean;
  protocol: string;
  extensions: string;
  url: string;
  close?: CloseInfo;
}

/** What page.html puts on window.lt (see there). */
interface PageApi {
  open(url: string, protocols?: string[]): OpenResult;
  info(id: number): { readyState: number; protocol: string; extensions: string; bufferedAmount: number };
  sendText(id: number, text: string): void;
  sendBytes(id: number, bytes: number[]): void;
  sendPattern(id: number, length: number, seed: number, mask: number): string;
  next(id: number): Described;
  pending(id: number): number;
  close(id: number, code?: number, reason?: string): void;
  closed(id: number): CloseInfo;
  origin(): string;
}

/** Calls window.lt[name](...args) in the page, with a timeout guard. */
function call<K extends keyof PageApi>(
  page: Page,
  name: K,
  args: Parameters<PageApi[K]>,
  timeoutMs: number = CALL_TIMEOUT,
): Promise<ReturnType<PageApi[K]>> {
  const run = page.evaluate(
    ([n, a]) => (globalThis as any).lt[n](...a),
    [name, args] as [string, unknown[]],
  ) as Promise<ReturnType<PageApi[K]>>;
  return withTimeout(run, timeoutMs, `lt.${name}() in the page`);
}

// ------------------------------------------------------------- data

/** xorshift32 bytes, the same stream as pattern() in page.html. */
function pattern(length: number, seed: number, mask: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & mask;
  }
  return out;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// Texts that must survive a round trip unchanged: ASCII, 2/3/4-byte UTF-8,
// emoji sequences with joiners, a NUL, and one long enough to be compressed
// (above the default 1024-byte deflate threshold).
const TEXTS = [
  '',
  'hello',
  'héllo wörld, ça va?',
  'Ελληνικά русский 日本語テキスト 한국어',
  '🎉🚀 emoji 👩‍👩‍👧 family, 🇩🇪 flag, 👍🏽 skin tone',
  'nul\u0000inside',
  '\uFEFFbom first, U+FFFF last \uFFFF',
  'Grüße aus 🌍 und 日本! '.repeat(3000),
];

// ------------------------------------------------------------- fixture

/** A WebSocketServer on the shared http server, handing out accepted sockets in order. */
class Endpoint {
  readonly wss: WebSocketServer;
  private readonly accepted: WebSocket[] = [];
  private readonly waiters: Array<(ws: WebSocket) => void> = [];
  readonly rejected: Array<{ status: number; error: Error }> = [];

  constructor(http: HttpServer, options: ServerOptions) {
    this.wss = new WebSocketServer({ ...options, server: http });
    this.wss.on('connection', (ws: WebSocket) => {
      const w = this.waiters.shift();
      if (w) w(ws);
      else this.accepted.push(ws);
    });
    this.wss.on('upgrade-rejected', (status: number, error: Error, _req: IncomingMessage) => {
      this.rejected.push({ status, error });
    });
  }

  /** The next socket this server accepts. */
  next(timeoutMs: number = CALL_TIMEOUT): Promise<WebSocket> {
    const ws = this.accepted.shift();
    if (ws) return Promise.resolve(ws);
    return withTimeout(new Promise<WebSocket>((resolve) => this.waiters.push(resolve)), timeoutMs, `a connection on ${this.wss.options.path}`);
  }

  /** Terminates whatever a test left open, and forgets queued sockets. */
  reset(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.accepted.length = 0;
    this.waiters.length = 0;
    this.rejected.length = 0;
  }
}

/** Makes `ws` echo every message back with the same type. */
function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

/** Collects 'close' as [code, reason] (listener added right away, so nothing is missed). */
function closeEvent(ws: WebSocket, timeoutMs: number = CALL_TIMEOUT): Promise<[number, string]> {
  return withTimeout(
    new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason]))),
    timeoutMs,
    "the server socket's 'close'",
  );
}

/** The next `n` messages on a server socket. */
function collect(ws: WebSocket, n: number, timeoutMs: number = CALL_TIMEOUT): Promise<Array<[Buffer, boolean]>> {
  const got: Array<[Buffer, boolean]> = [];
  return withTimeout(
    new Promise((resolve) => {
      const on = (data: Buffer, isBinary: boolean) => {
        got.push([data, isBinary]);
        if (got.length === n) {
          ws.off('message', on);
          resolve(got);
        }
      };
      ws.on('message', on);
    }),
    timeoutMs,
    `${n} message(s) on the server socket`,
  );
}

const peers = peerAvailability();

describe('headless Chromium native WebSocket <-> lifeline server', skipUnless(peers.chromium !== null, 'chromium'), () => {
  let http: HttpServer;
  let origin: string;
  let browser: Browser;
  let page: Page;
  const endpoints: Endpoint[] = [];

  function endpoint(options: ServerOptions): Endpoint {
    const e = new Endpoint(http, options);
    endpoints.push(e);
    return e;
  }

  function wsUrl(path: string): string {
    return `ws://127.0.0.1:${(http.address() as AddressInfo).port}${path}`;
  }

  before(async () => {
    http = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/' || req.url === '/page.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': PAGE_HTML.length, 'Cache-Control': 'no-store' });
        res.end(PAGE_HTML);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
      res.end('not found\n');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening', ms(5000));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    browser = await withTimeout(
      chromium.launch({
        executablePath: peers.chromium!,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
      }),
      ms(30_000),
      'Chromium to launch',
    );
  });

  after(async () => {
    await browser?.close();
    for (const e of endpoints) await e.wss.close({ timeout: ms(1000) });
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  beforeEach(async () => {
    page = await browser.newPage();
    await withTimeout(page.goto(`${origin}/`), ms(10_000), 'the test page to load');
    assert.equal(await call(page, 'origin', []), origin);
  });

  afterEach(async () => {
    await page?.close();
    for (const e of endpoints) e.reset();
  });

  for (const deflate of [false, true]) {
    describe(`permessage-deflate ${deflate ? 'on' : 'off'}`, () => {
      let ep: Endpoint;
      const path = deflate ? '/deflate' : '/plain';

      before(() => {
        ep = endpoint({ path, deflate, subprotocols: ['c', 'b'] });
      });

      /** Opens a browser socket and returns it with the server's end; checks the extension negotiation. */
      async function openPair(protocols?: string[]): Promise<{ id: number; sws: WebSocket; opened: OpenResult }> {
        const accepted = ep.next();
        const opened = await call(page, 'open', protocols === undefined ? [wsUrl(path)] : [wsUrl(path), protocols]);
        assert.equal(opened.opened, true, `the browser's socket did not open: ${JSON.stringify(opened)}`);
        const sws = await accepted;
        if (deflate) {
          assert.match(opened.extensions, /^permessage-deflate(\s*;|$)/, `browser ws.extensions: ${opened.extensions}`);
        } else {
          assert.equal(opened.extensions, '');
        }
        assert.equal(sws.extensions, opened.extensions, 'server and browser disagree on the negotiated extensions');
        return { id: opened.id, sws, opened };
      }

      test(`extensions are ${deflate ? "'permessage-deflate…' on both ends" : "'' on both ends"}`, async () => {
        const { id, sws } = await openPair();
        const info = await call(page, 'info', [id]);
        assert.equal(info.readyState, 1);
        if (deflate) assert.match(info.extensions, /^permessage-deflate/);
        else assert.equal(info.extensions, '');
        assert.equal(info.protocol, '');
        assert.equal(sws.protocol, '');
      });

      test('text round trip, including non-ASCII and emoji', async () => {
        const { id, sws } = await openPair();
        const atServer = collect(sws, TEXTS.length);
        echo(sws);
        for (const t of TEXTS) await call(page, 'sendText', [id, t]);
        const received = await atServer;
        assert.deepEqual(
          received.map(([, isBinary]) => isBinary),
          TEXTS.map(() => false),
          'the server saw a text message as binary',
        );
        received.forEach(([data], i) => assert.equal(data.toString('utf8'), TEXTS[i], `server got text #${i} wrong`));
        for (let i = 0; i < TEXTS.length; i++) {
          const m = await call(page, 'next', [id]);
          assert.equal(m.kind, 'text', `echo #${i} arrived as ${m.kind}`);
          assert.equal(m.kind === 'text' && m.data, TEXTS[i], `browser got echo #${i} wrong`);
        }
      });

      test('binary round trip (ArrayBuffer, binaryType arraybuffer)', async () => {
        const { id, sws } = await openPair();
        echo(sws);
        // Small explicit bytes first, then sizes around the 7/16/64-bit length boundaries.
        const small = [0, 1, 2, 127, 128, 254, 255];
        const atServer = collect(sws, 1);
        await call(page, 'sendBytes', [id, small]);
        const [[data, isBinary]] = (await atServer) as [[Buffer, boolean]];
        assert.equal(isBinary, true);
        assert.deepEqual([...data], small);
        const back = await call(page, 'next', [id]);
        assert.equal(back.kind, 'binary');
        assert.deepEqual(back.kind === 'binary' && back.bytes, small);

        const sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537, 200_000];
        for (const [i, size] of sizes.entries()) {
          for (const mask of [0xff, 0x0f]) {
            const seed = 1000 + i * 2 + (mask === 0xff ? 0 : 1);
            const expected = pattern(size, seed, mask);
            const got = collect(sws, 1);
            const pageSha = await call(page, 'sendPattern', [id, size, seed, mask]);
            assert.equal(pageSha, sha256(expected), 'page and node patterns differ (test bug)');
            const [[d, bin]] = (await got) as [[Buffer, boolean]];
            assert.equal(bin, true, `size ${size}: server saw binary as text`);
            assert.equal(d.length, size, `size ${size}: server got ${d.length} bytes`);
            assert.ok(d.equals(expected), `size ${size} mask ${mask}: server got different bytes`);
            const m = await call(page, 'next', [id]);
            assert.equal(m.kind, 'binary');
            if (m.kind !== 'binary') return;
            assert.equal(m.length, size, `size ${size}: echo came back with ${m.length} bytes`);
            assert.equal(m.sha256, pageSha, `size ${size} mask ${mask}: echo differs`);
          }
        }
      });

      for (const [label, mask] of [
        ['compressible', 0x0f],
        ['incompressible', 0xff],
      ] as const) {
        test(`16 MiB ${label} binary message, browser -> server -> echo -> browser`, { timeout: ms(120_000) }, async () => {
          const { id, sws } = await openPair();
          const seed = mask === 0x0f ? 16 : 17;
          const expectedSha = sha256(pattern(BIG, seed, mask));
          const atServer = collect(sws, 1, BIG_TIMEOUT);
          const before = sws.counters;
          const pageSha = await call(page, 'sendPattern', [id, BIG, seed, mask], BIG_TIMEOUT);
          assert.equal(pageSha, expectedSha, 'page and node patterns differ (test bug)');
          const [[data, isBinary]] = (await atServer) as [[Buffer, boolean]];
          assert.equal(isBinary, true);
          assert.equal(data.length, BIG);
          assert.equal(sha256(data), expectedSha, 'the server received different bytes');
          const wireIn = sws.counters.bytesIn - before.bytesIn;
          sws.send(data);
          const m = await call(page, 'next', [id], BIG_TIMEOUT);
          assert.equal(m.kind, 'binary');
          if (m.kind !== 'binary') return;
          assert.equal(m.length, BIG);
          assert.equal(m.sha256, expectedSha, 'the browser received different bytes');
          const wireOut = sws.counters.bytesOut - before.bytesOut;
          if (deflate && mask === 0x0f) {
            // 4 bits of entropy per byte: deflate must roughly halve it on the wire, both ways.
            assert.ok(wireIn < BIG * 0.75, `browser -> server was not compressed: ${wireIn} wire bytes`);
            assert.ok(wireOut < BIG * 0.75, `server -> browser was not compressed: ${wireOut} wire bytes`);
          } else if (!deflate) {
            assert.ok(wireIn > BIG, `only ${wireIn} wire bytes in for a 16 MiB uncompressed message`);
            assert.ok(wireOut > BIG, `only ${wireOut} wire bytes out for a 16 MiB uncompressed message`);
          }
        });
      }

      test('server sends fragmented messages (sendFragments); the browser receives them whole', async () => {
        const { id, sws } = await openPair();
        const emojiText = Buffer.from('héllo 🌍 wörld — 日本', 'utf8');
        // Split inside multi-byte characters: after the 1st byte of 'é' (offset 2),
        // after 2 bytes of '🌍' (offset 9), inside '—' and inside '日'.
        const cuts = [2, 9, 10, 19, 22, emojiText.length - 2];
        const pieces: Buffer[] = [];
        let start = 0;
        for (const c of cuts) {
          pieces.push(emojiText.subarray(start, c));
          start = c;
        }
        pieces.push(emojiText.subarray(start));
        const oneByteEach = [...Buffer.from('a€𝄞z', 'utf8')].map((b) => Buffer.from([b]));
        const bigBinary = pattern(MiB, 42, 0xff);
        const bigFragments: Buffer[] = [];
        for (let o = 0; o < bigBinary.length; o += 64 * 1024) bigFragments.push(bigBinary.subarray(o, o + 64 * 1024));

        sws.sendFragments(['frag', 'mented ', 'text'], { binary: false });
        sws.sendFragments(pieces, { binary: false });
        sws.sendFragments(oneByteEach, { binary: false });
        sws.sendFragments(['', 'empty first and last fragments', ''], { binary: false });
        sws.sendFragments(['only one fragment'], { binary: false });
        sws.sendFragments([Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.from([4, 5])], { binary: true });
        sws.sendFragments(bigFragments, { binary: true });

        const expectText = ['fragmented text', emojiText.toString('utf8'), 'a€𝄞z', 'empty first and last fragments', 'only one fragment'];
        for (const [i, want] of expectText.entries()) {
          const m = await call(page, 'next', [id]);
          assert.deepEqual(m, { kind: 'text', data: want }, `fragmented text #${i}`);
        }
        const small = await call(page, 'next', [id]);
        assert.equal(small.kind, 'binary');
        assert.deepEqual(small.kind === 'binary' && small.bytes, [1, 2, 3, 4, 5]);
        const big = await call(page, 'next', [id]);
        assert.equal(big.kind, 'binary');
        assert.equal(big.kind === 'binary' && big.length, MiB);
        assert.equal(big.kind === 'binary' && big.sha256, sha256(bigBinary));
        // Still usable afterwards: a plain message in the other direction.
        const got = collect(sws, 1);
        await call(page, 'sendText', [id, 'after fragments']);
        assert.equal((await got)[0]![0].toString(), 'after fragments');
      });

      test('server fragmentSize auto-fragments text (frames split inside characters)', async () => {
        const fragEp = endpoint({ path: `${path}-fragmentsize`, deflate, fragmentSize: 7 });
        const accepted = fragEp.next();
        const opened = await call(page, 'open', [wsUrl(`${path}-fragmentsize`)]);
        assert.equal(opened.opened, true);
        const sws = await accepted;
        const texts = ['🌍🌍🌍 héllo wörld 日本語', 'x'.repeat(5000) + '🎉'.repeat(500)];
        for (const t of texts) sws.send(t);
        for (const t of texts) assert.deepEqual(await call(page, 'next', [opened.id]), { kind: 'text', data: t });
      });

      test("subprotocol: browser offers ['a','b'], server picks 'b'", async () => {
        const { id, sws, opened } = await openPair(['a', 'b']);
        assert.equal(opened.protocol, 'b');
        assert.equal((await call(page, 'info', [id])).protocol, 'b');
        assert.equal(sws.protocol, 'b');
      });

      test("browser closes with 4001 'bye-from-browser': the server sees code and reason", async () => {
        const { id, sws } = await openPair();
        const atServer = closeEvent(sws);
        await call(page, 'close', [id, 4001, 'bye-from-browser']);
        assert.deepEqual(await atServer, [4001, 'bye-from-browser']);
        const c = await call(page, 'closed', [id]);
        // RFC 6455 5.5.1: the server echoes the status code; the close was clean.
        assert.equal(c.code, 4001);
        assert.equal(c.wasClean, true);
        assert.equal(c.errorFired, false);
      });

      test('browser closes with a non-ASCII reason: the server decodes it', async () => {
        const { id, sws } = await openPair();
        const atServer = closeEvent(sws);
        const reason = 'ciao 👋 tschüß';
        await call(page, 'close', [id, 4010, reason]);
        assert.deepEqual(await atServer, [4010, reason]);
        assert.equal((await call(page, 'closed', [id])).wasClean, true);
      });

      test('browser closes without a code: the server sees 1005', async () => {
        const { id, sws } = await openPair();
        const atServer = closeEvent(sws);
        await call(page, 'close', [id]);
        const [code] = await atServer;
        assert.equal(code, 1005);
        const c = await call(page, 'closed', [id]);
        assert.equal(c.wasClean, true);
      });

      test("server closes with 4002 'bye-from-server': the browser sees code, reason, wasClean", async () => {
        const { id, sws } = await openPair();
        const atServer = closeEvent(sws);
        sws.close(4002, 'bye-from-server');
        const c = await call(page, 'closed', [id]);
        assert.deepEqual(c, { code: 4002, reason: 'bye-from-server', wasClean: true, errorFired: false });
        // RFC 6455 5.5.1: the answer "typically echos the status code it received";
        // Chromium echoes code and reason, and the server's 'close' reports the answer.
        assert.deepEqual(await atServer, [4002, 'bye-from-server']);
      });

      test('server closes with a 123-byte non-ASCII reason: the browser sees it exactly', async () => {
        const { id, sws } = await openPair();
        const reason = 'ü'.repeat(60) + 'abc'; // 123 bytes, the most a close frame can carry
        assert.equal(Buffer.byteLength(reason), 123);
        sws.close(4003, reason);
        assert.deepEqual(await call(page, 'closed', [id]), { code: 4003, reason, wasClean: true, errorFired: false });
      });

      test('server closes without a code: the browser sees 1005', async () => {
        const { id, sws } = await openPair();
        sws.close();
        const c = await call(page, 'closed', [id]);
        assert.equal(c.code, 1005);
        assert.equal(c.reason, '');
        assert.equal(c.wasClean, true);
      });

      test('server terminate(): the browser sees 1006, wasClean false', async () => {
        const { id, sws } = await openPair();
        const atServer = closeEvent(sws);
        sws.terminate();
        const c = await call(page, 'closed', [id]);
        assert.equal(c.code, 1006);
        assert.equal(c.wasClean, false);
        assert.deepEqual(await atServer, [1006, '']);
      });

      test('server sends 1001 going away: the browser sees 1001', async () => {
        const { id, sws } = await openPair();
        sws.close(1001, 'going away');
        assert.deepEqual(await call(page, 'closed', [id]), { code: 1001, reason: 'going away', wasClean: true, errorFired: false });
      });

      test('wss.close() shuts down with 1001: the browser sees it', async () => {
        const path2 = `${path}-shutdown`;
        const tmp = endpoint({ path: path2, deflate });
        const accepted = tmp.next();
        const opened = await call(page, 'open', [wsUrl(path2)]);
        assert.equal(opened.opened, true);
        await accepted;
        const closing = tmp.wss.close({ timeout: ms(5000) });
        const c = await call(page, 'closed', [opened.id]);
        await closing;
        assert.equal(c.code, 1001);
        assert.equal(c.wasClean, true);
        assert.equal(tmp.wss.clients.size, 0);
      });
    });
  }

  describe('origin check', () => {
    test("origin: ['http://127.0.0.1:PORT'] accepts the page's socket", async () => {
      const ep = endpoint({ path: '/origin-ok', origin: [origin] });
      const accepted = ep.next();
      const opened = await call(page, 'open', [wsUrl('/origin-ok')]);
      assert.equal(opened.opened, true, JSON.stringify(opened));
      const sws = await accepted;
      const got = collect(sws, 1);
      await call(page, 'sendText', [opened.id, 'allowed']);
      assert.equal((await got)[0]![0].toString(), 'allowed');
      assert.deepEqual(ep.rejected, []);
    });

    test('a server allowing another origin rejects it: 403, and the browser sees 1006 + error', async () => {
      const ep = endpoint({ path: '/origin-bad', origin: ['http://example.com'] });
      const opened = await call(page, 'open', [wsUrl('/origin-bad')]);
      assert.equal(opened.opened, false);
      assert.deepEqual(opened.close, { code: 1006, reason: '', wasClean: false, errorFired: true });
      assert.equal(ep.wss.clients.size, 0);
      assert.equal(ep.rejected.length, 1);
      assert.equal(ep.rejected[0]!.status, 403);
    });
  });

  describe('over wss:// (TLS)', () => {
    let https: ReturnType<typeof createHttpsServer>;
    let tlsEndpoint: WebSocketServer;
    const accepted: WebSocket[] = [];

    before(async () => {
      https = createHttpsServer({ cert: TLS_CERT, key: TLS_KEY });
      https.listen(0, '127.0.0.1');
      await once(https, 'listening', ms(5000));
      tlsEndpoint = new WebSocketServer({ server: https, deflate: true });
      tlsEndpoint.on('connection', (ws: WebSocket) => {
        accepted.push(ws);
        echo(ws);
      });
    });

    after(async () => {
      await tlsEndpoint?.close({ timeout: ms(1000) });
      if (https) {
        https.closeAllConnections();
        await new Promise<void>((resolve) => https.close(() => resolve()));
      }
    });

    const tlsUrl = () => `wss://127.0.0.1:${(https.address() as AddressInfo).port}/tls`;

    test('text and a 1 MiB binary message echo intact over wss with permessage-deflate', async () => {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      try {
        const p = await context.newPage();
        await withTimeout(p.goto(`${origin}/`), ms(10_000), 'the test page to load');
        const opened = await call(p, 'open', [tlsUrl()]);
        assert.equal(opened.opened, true, `the browser's wss socket did not open: ${JSON.stringify(opened)}`);
        assert.match(opened.extensions, /^permessage-deflate/);
        assert.equal(accepted.at(-1)!.extensions, opened.extensions);
        const text = TEXTS[4]!;
        await call(p, 'sendText', [opened.id, text]);
        const t = await call(p, 'next', [opened.id]);
        assert.ok(t.kind === 'text' && t.data === text, 'text echoed intact');
        const digest = await call(p, 'sendPattern', [opened.id, MiB, 7, 0xff]);
        assert.equal(digest, sha256(pattern(MiB, 7, 0xff)));
        const b = await call(p, 'next', [opened.id], BIG_TIMEOUT);
        assert.ok(b.kind === 'binary' && b.length === MiB && b.sha256 === digest, '1 MiB binary echoed intact');
      } finally {
        await context.close();
      }
    });

    test('a browser context that checks certificates refuses the self-signed server (1006), and no connection reaches it', async () => {
      const before = accepted.length;
      const opened = await call(page, 'open', [tlsUrl()]);
      assert.equal(opened.opened, false);
      assert.equal(opened.close?.code, 1006);
      assert.equal(accepted.length, before);
    });
  });
});


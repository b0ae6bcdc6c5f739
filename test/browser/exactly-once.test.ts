// Exactly-once, in-order delivery both ways for the browser LifelineClient
// (dist/browser/lifeline.bundle.mjs over headless Chromium's native WebSocket)
// while a fault injector keeps cutting the connection.
//
//   Chromium page (exactly-once.html)          Node
//   LifelineClient --ws--> FaultProxy --tcp--> LifelineServer (fast heartbeat)
//
// Both sides send numbered messages at a steady rate (a few ms apart; sizes,
// characters and frame types vary with the number, every 50th is ~20-32 KB so
// large frames are in flight) and check that each arrives exactly once and in
// order. Node cuts the current connection at random moments, each cut waiting
// for the client to be 'open' again first:
//   rst        both TCP sockets reset (FaultConnection.cutRst)
//   blackhole  the connection goes silent both ways, bytes, FIN and RST dropped,
//              until the client's heartbeat declares it dead ('heartbeat-timeout')
//   midframe   reset in the middle of the next frame, up or down, while a burst
//              of messages is in flight (FaultConnection.cutMidFrame)
//   terminate  the server drops the session's socket (ServerSession.terminate)
// At the end both sides stop (topped up to the same count), wait until each has
// everything the other sent and every message is acknowledged, and the test
// asserts 0 lost, 0 duplicated, 0 out of order, 0 session-lost.
//
// Knobs: LIFELINE_CHAOS_SEED (default: random, printed), LIFELINE_CHAOS_CUTS
// (default 60, at least 50 are required for the acceptance criterion),
// LIFELINE_CHAOS_KINDS (default all four; the acceptance run uses all four).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { chromium, type Browser, type Page } from 'playwright-core';

import { LifelineServer, type ServerSession } from '../../src/server/lifeline-server.js';
import { seededRandom } from '../../src/session/backoff.js';
import { FaultProxy, type Direction, type FaultConnection } from '../helpers/fault-proxy.js';
import { ms, once, peerAvailability, skipUnless, withTimeout } from '../helpers/peers.js';
import { frame } from '../helpers/recording.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE = path.join(ROOT, 'dist/browser/lifeline.bundle.mjs');
const BUILD_SCRIPT = path.join(ROOT, 'scripts/build-browser.mjs');
const PAGE_HTML = readFileSync(new URL('./exactly-once.html', import.meta.url));
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const CALL_TIMEOUT = ms(10_000);

// A fast heartbeat: a blackholed connection is declared dead within ~0.5 s.
const HEARTBEAT = { interval: ms(200), timeoutFloor: ms(80), timeoutCeiling: ms(300), timeoutInitial: ms(300) };
const SESSION_TTL = 30_000;
const BACKOFF = { base: 10, cap: 100 };
/** Both sides send one message this often, ms. */
const SEND_EVERY = 5;
/** Messages sent at once around a mid-frame cut, so several frames are in flight. */
const BURST = 12;

const CUTS = Number(process.env.LIFELINE_CHAOS_CUTS ?? 60);
const SEED = Number(process.env.LIFELINE_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ALL_KINDS = ['rst', 'blackhole', 'midframe', 'terminate'] as const;
type CutKind = (typeof ALL_KINDS)[number];
/** LIFELINE_CHAOS_KINDS=rst,terminate restricts the cut kinds (to bisect a failure); default: all four. */
const KINDS: readonly CutKind[] = process.env.LIFELINE_CHAOS_KINDS
  ? process.env.LIFELINE_CHAOS_KINDS.split(',').map((k) => {
      if (!(ALL_KINDS as readonly string[]).includes(k)) throw new Error(`LIFELINE_CHAOS_KINDS: unknown kind ${k}`);
      return k as CutKind;
    })
  : ALL_KINDS;

// ------------------------------------------------------------- bundle

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const m = entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (m > newest) newest = m;
  }
  return newest;
}

/** Builds dist/browser/lifeline.bundle.mjs when it is missing or older than src/ or the build script. */
function ensureBundle(): void {
  const sourcesAt = Math.max(newestMtime(path.join(ROOT, 'src')), statSync(BUILD_SCRIPT).mtimeMs);
  if (existsSync(BUNDLE) && statSync(BUNDLE).mtimeMs >= sourcesAt) return;
  const out = execFileSync(process.execPath, [BUILD_SCRIPT], { cwd: ROOT, encoding: 'utf8', timeout: ms(60_000) });
  console.log(out.trim());
}

// ------------------------------------------------------------- messages (the same functions as in exactly-once.html)

function payloadLength(n: number): number {
  return n % 50 === 0 ? 20000 + (n % 13) * 1000 : (n * 7919) % 180;
}
function payloadChar(n: number): string {
  return n % 11 === 5 ? 'é' : String.fromCharCode(97 + (n % 26));
}
function isBinary(n: number): boolean {
  return n % 7 === 3;
}
function payload(n: number): string {
  return `${n}:${payloadChar(n).repeat(payloadLength(n))}`;
}

/** Receive-side bookkeeping of one direction: each number once, in order, with the right content. */
class Receiver {
  last = 0;
  distinct = 0;
  duplicates = 0;
  outOfOrder = 0;
  gaps = 0;
  wrongType = 0;
  readonly corrupt: string[] = [];
  private readonly seen = new Set<number>();

  accept(data: Buffer, binary: boolean): void {
    const text = data.toString('utf8');
    const colon = text.indexOf(':');
    const n = Number(text.slice(0, colon));
    if (colon < 1 || !Number.isSafeInteger(n) || n < 1) {
      this.corrupt.push(`unparsable message ${JSON.stringify(text.slice(0, 40))}`);
      return;
    }
    if (text !== payload(n)) this.corrupt.push(`message ${n}: wrong content (${text.length} chars)`);
    if (binary !== isBinary(n)) this.wrongType++;
    if (this.seen.has(n)) {
      this.duplicates++;
      return;
    }
    this.seen.add(n);
    this.distinct++;
    if (n !== this.last + 1) {
      this.outOfOrder++;
      if (n > this.last + 1) this.gaps += n - this.last - 1;
    }
    if (n > this.last) this.last = n;
  }
}

// ------------------------------------------------------------- page API

interface PageCounters {
  state: string;
  opens: number;
  sent: number;
  received: number;
  last: number;
  duplicates: number;
  outOfOrder: number;
  gaps: number;
  corrupt: string[];
  corruptCount: number;
  wrongType: number;
  sendErrors: string[];
  sendErrorCount: number;
  sessionLost: unknown[];
  errors: string[];
  closeInfo: unknown;
  recent: LogEntry[];
  stats: {
    state: string;
    reconnects: number;
    resumes: number;
    sessionsLost: number;
    duplicatesDropped: number;
    replayed: number;
    outbox: number;
    closes: Record<string, number>;
    heartbeat: unknown;
  } | null;
}

interface LogEntry {
  i: number;
  t: number;
  ev: string;
  [k: string]: unknown;
}

/** What exactly-once.html puts on window.eo. */
interface PageApi {
  start(url: string, options: Record<string, unknown>, timeoutMs: number): PageCounters;
  startSending(everyMs: number): void;
  stopSending(): number;
  burst(count: number): number;
  mark(): { opens: number; events: number; state: string };
  waitOpenAfter(opensBefore: number, timeoutMs: number): PageCounters;
  waitReconnecting(from: number, timeoutMs: number): LogEntry;
  counters(): PageCounters;
  waitClosed(timeoutMs: number): PageCounters;
  close(): void;
}

function call<K extends keyof PageApi>(
  page: Page,
  name: K,
  args: Parameters<PageApi[K]>,
  timeoutMs: number = CALL_TIMEOUT,
): Promise<Awaited<ReturnType<PageApi[K]>>> {
  const run = page.evaluate(([n, a]) => (globalThis as any).eo[n](...a), [name, args] as [string, unknown[]]) as Promise<
    Awaited<ReturnType<PageApi[K]>>
  >;
  return withTimeout(run, timeoutMs + ms(2000), `eo.${name}() in the page`);
}

// ------------------------------------------------------------- the server's side

/** The one session the page's client should have, sending and checking numbered messages. */
class ServerSide {
  session: ServerSession | null = null;
  /** 'connection' events: more than one means the session was not resumed. */
  sessions = 0;
  sessionLost: string[] = [];
  sent = 0;
  readonly sendErrors: string[] = [];
  readonly errors: string[] = [];
  readonly recv = new Receiver();
  readonly detached: Record<string, number> = {};
  resumed = 0;
  closed: unknown = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(server: LifelineServer) {
    server.on('connection', (s) => {
      this.sessions++;
      this.session = s;
      s.on('message', (data, binary) => this.recv.accept(data, binary));
      s.on('detached', (cause) => (this.detached[cause] = (this.detached[cause] ?? 0) + 1));
      s.on('resumed', () => this.resumed++);
      s.on('error', (err) => this.errors.length < 50 && this.errors.push(err.message));
      s.on('close', (info) => (this.closed = info));
    });
    server.on('session-lost', (info) => this.sessionLost.push(info.reason));
  }

  sendOne(): void {
    const s = this.session;
    if (!s) return;
    const n = this.sent + 1;
    const text = payload(n);
    try {
      if (isBinary(n)) s.send(Buffer.from(text, 'utf8'), { binary: true });
      else s.send(text);
      this.sent = n;
    } catch (err) {
      if (this.sendErrors.length < 50) this.sendErrors.push((err as Error).message);
    }
  }

  startSending(everyMs: number): void {
    this.timer ??= setInterval(() => this.sendOne(), everyMs);
  }

  stopSending(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

// ------------------------------------------------------------- helpers

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** One server + fault proxy + page: what each test runs against. */
class Rig {
  private constructor(
    readonly server: LifelineServer,
    readonly proxy: FaultProxy,
    readonly side: ServerSide,
    readonly page: Page,
  ) {}

  static async start(browser: Browser, origin: string): Promise<Rig> {
    const server = new LifelineServer({ port: 0, host: '127.0.0.1', heartbeat: HEARTBEAT, sessionTtl: SESSION_TTL });
    let proxy: FaultProxy | undefined;
    let page: Page | undefined;
    try {
      await once(server, 'listening', ms(5000));
      const side = new ServerSide(server);
      proxy = await FaultProxy.start({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
      page = await browser.newPage();
      await withTimeout(page.goto(`${origin}/`), ms(10_000), 'the test page to load');
      await withTimeout(page.waitForFunction(() => typeof (globalThis as any).eo === 'object'), ms(10_000), 'window.eo');
      return new Rig(server, proxy, side, page);
    } catch (err) {
      await page?.close().catch(() => {});
      await proxy?.close();
      await server.close({ timeout: ms(1000) });
      throw err;
    }
  }

  /** The proxied connection the server's session is using now, if it is still up. */
  findConnection(): FaultConnection | undefined {
    const port = this.side.session?.socket.rawSocket?.remotePort;
    if (port === undefined) return undefined;
    return this.proxy.connections.find((c) => c.server.localPort === port && c.state === 'open');
  }

  /**
   * Waits until the client is open on a live connection; returns the page's
   * marks and that connection. A connection that went down on its own (not
   * cut by the test) is waited out too; the summary reports such reconnects.
   */
  async readyForCut(): Promise<{ mark: { opens: number; events: number }; conn: FaultConnection }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const mark = await call(this.page, 'mark', []);
      const conn = mark.state === 'open' ? this.findConnection() : undefined;
      if (conn) return { mark, conn };
      await call(this.page, 'waitOpenAfter', [mark.opens, ms(10_000)], ms(10_000));
    }
    assert.fail(`the client did not stay open on a live connection; live: ${this.proxy.connections.map((c) => `#${c.id}:${c.server.localPort}:${c.state}`).join(' ')}`);
  }

  /**
   * After a blackhole: the client's next 'reconnecting' event (logged at or
   * after `fromEvent`), which must come within `limit` ms. On a timeout the
   * failure carries the client's heartbeat statistics.
   */
  async blackholeDetected(fromEvent: number, limit: number): Promise<LogEntry> {
    try {
      return await call(this.page, 'waitReconnecting', [fromEvent, limit], limit);
    } catch (err) {
      const c = await call(this.page, 'counters', []);
      assert.fail(
        `the streaming client did not notice the blackhole within ${limit} ms (the server did: detached ${JSON.stringify(this.side.detached)}); ` +
          `client state ${c.state}, heartbeat ${JSON.stringify(c.stats?.heartbeat)}; ${(err as Error).message.slice(0, 160)}`,
      );
    }
  }

  /** What the page and the server saw lately, for failure messages. */
  async diagnose(): Promise<string> {
    const c = await call(this.page, 'counters', []).catch((err: Error) => ({ error: err.message }) as const);
    const s = this.side.session;
    return (
      `server: sessions ${this.side.sessions}, session ${s ? s.state : 'none'}, detached ${JSON.stringify(this.side.detached)}, resumed ${this.side.resumed}, ` +
      `proxy connections ${this.proxy.connections.map((x) => `#${x.id}:${x.state}`).join(' ')}; ` +
      ('error' in c
        ? `page: ${c.error}`
        : `client: state ${c.state}, closes ${JSON.stringify(c.stats?.closes)}, errors ${JSON.stringify(c.errors)}, recent events ${JSON.stringify(c.recent)}`)
    );
  }

  /** Starts the page's client and both senders; resolves once the session is open. */
  async startStreaming(): Promise<void> {
    const first = await call(this.page, 'start', [this.proxy.url('/eo'), { backoff: BACKOFF }, CALL_TIMEOUT], CALL_TIMEOUT);
    assert.equal(first.state, 'open');
    assert.equal(this.side.sessions, 1);
    await call(this.page, 'startSending', [SEND_EVERY]);
    this.side.startSending(SEND_EVERY);
  }

  /** Ends the session cleanly, then closes page, proxy and server; every step bounded, all attempted. */
  async close(): Promise<void> {
    this.side.stopSending();
    let firstError: unknown = null;
    const step = async (what: string, run: () => Promise<unknown>, timeoutMs: number) => {
      try {
        await withTimeout(run(), timeoutMs, what);
      } catch (err) {
        firstError ??= err;
      }
    };
    // The server ends the session ('bye' without a retry hint): the client stops for good.
    const s = this.side.session;
    if (s && s.state === 'open') {
      await step('the page to stop sending', () => call(this.page, 'stopSending', []), ms(5000));
      s.close(1000, 'done');
      await step('the client to close', () => call(this.page, 'waitClosed', [ms(3000)], ms(3000)), ms(5000));
    }
    await step('eo.close() in the page', () => this.page.evaluate(() => (globalThis as any).eo?.close()), ms(5000));
    await step('the page to close', () => this.page.close(), ms(10_000));
    await step('the fault proxy to close', () => this.proxy.close(), ms(10_000));
    await step('the LifelineServer to close', () => this.server.close({ timeout: ms(1000) }), ms(10_000));
    if (firstError) throw firstError;
  }
}

const peers = peerAvailability();

describe('browser LifelineClient: exactly-once under connection cuts', skipUnless(peers.chromium !== null, 'chromium'), () => {
  let http: HttpServer | undefined;
  let origin: string;
  let browser: Browser | undefined;
  let bundle: Buffer;

  before(async () => {
    ensureBundle();
    bundle = readFileSync(BUNDLE);
    http = createServer((req, res) => {
      const url = req.url ?? '/';
      if (req.method === 'GET' && (url === '/' || url === '/exactly-once.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': PAGE_HTML.length, 'Cache-Control': 'no-store' });
        res.end(PAGE_HTML);
        return;
      }
      if (req.method === 'GET' && url === '/lifeline.bundle.mjs') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': bundle.length, 'Cache-Control': 'no-store' });
        res.end(bundle);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
      res.end('not found\n');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening', ms(5000));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    browser = await withTimeout(
      chromium.launch({ executablePath: peers.chromium!, headless: true, args: CHROMIUM_FLAGS }),
      ms(30_000),
      'Chromium to launch',
    );
  });

  after(async () => {
    if (browser) await withTimeout(browser.close(), ms(15_000), 'Chromium to close');
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http!.close(() => resolve()));
    }
  });

  // The chaos test's blackhole cuts rest on this: a client that keeps sending
  // must still notice a connection that went silent (interval + timeout).
  test('a client that keeps sending notices a blackholed connection (heartbeat-timeout) and resumes', { timeout: ms(30_000) }, async () => {
    const rig = await Rig.start(browser!, origin);
    try {
      await rig.startStreaming();
      await sleep(300); // let traffic flow both ways first
      const { mark, conn } = await rig.readyForCut();
      const cutAt = performance.now();
      conn.blackhole('both', 'drop');
      // Dead after at most interval + timeoutCeiling of silence; allow scheduling slack on top.
      const limit = HEARTBEAT.interval + HEARTBEAT.timeoutCeiling + ms(1500);
      const ev = await rig.blackholeDetected(mark.events, limit);
      const detectedIn = performance.now() - cutAt;
      assert.equal(ev.reason, 'heartbeat-timeout');
      await call(rig.page, 'waitOpenAfter', [mark.opens, ms(5000)], ms(5000));
      console.log(`[exactly-once] streaming client detected the blackhole in ${Math.round(detectedIn)} ms`);
      const c = await call(rig.page, 'counters', []);
      assert.deepEqual(c.sessionLost, []);
      assert.equal(rig.side.sessions, 1);
    } finally {
      await rig.close();
    }
  });

  test(`${CUTS} random cuts (${KINDS.join(', ')}) while both sides stream: every message once, in order`, { timeout: ms(150_000) }, async () => {
    assert.ok(CUTS >= 4, 'LIFELINE_CHAOS_CUTS must be at least 4 (one of each kind)');
    const rig = await Rig.start(browser!, origin);
    try {
      await chaos(rig);
    } finally {
      await rig.close();
    }
  });

  async function chaos(rig: Rig): Promise<void> {
    const p = rig.page;
    const px = rig.proxy;
    const ss = rig.side;
    const server = rig.server;
    const random = seededRandom(SEED);
    console.log(`[exactly-once] seed ${SEED} (LIFELINE_CHAOS_SEED=${SEED} to replay the same cut schedule), ${CUTS} cuts`);
    const t0 = performance.now();

    // ---- connect, then both sides start streaming
    await rig.startStreaming();

    // ---- the cut schedule: every kind equally often, shuffled
    const plan: CutKind[] = Array.from({ length: CUTS }, (_, i) => KINDS[i % KINDS.length]!);
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }

    const done: Record<CutKind, number> = { rst: 0, blackhole: 0, midframe: 0, terminate: 0 };
    if (KINDS !== ALL_KINDS) console.log(`[exactly-once] NOTE: only ${KINDS.join(', ')} cuts (LIFELINE_CHAOS_KINDS)`);
    const recovery: Record<CutKind, number[]> = { rst: [], blackhole: [], midframe: [], terminate: [] };
    const midframeDirs: Record<Direction, number> = { up: 0, down: 0 };
    const detection: number[] = [];
    let cutsMade = 0;

    try {
      for (const [i, kind] of plan.entries()) {
        // A random moment: sometimes at once after the (re)open, while the replay is still in flight.
        const r = random();
        const wait = r < 0.2 ? 0 : Math.floor(random() * 300);
        if (wait > 0) await sleep(wait);
        const { mark, conn } = await rig.readyForCut();
        const cutAt = performance.now();
        switch (kind) {
          case 'rst':
            conn.cutRst();
            break;
          case 'blackhole': {
            conn.blackhole('both', 'drop');
            const ev = await rig.blackholeDetected(mark.events, HEARTBEAT.interval + HEARTBEAT.timeoutCeiling + ms(1500));
            assert.equal(ev.reason, 'heartbeat-timeout', `cut #${i + 1} (blackhole): the client reconnected for ${String(ev.reason)}`);
            detection.push(performance.now() - cutAt);
            break;
          }
          case 'midframe': {
            const dir: Direction = random() < 0.5 ? 'up' : 'down';
            midframeDirs[dir]++;
            conn.cutMidFrame(dir);
            // Several frames in flight in the cut direction: the first is torn, the rest never arrive.
            if (dir === 'down') for (let k = 0; k < BURST; k++) ss.sendOne();
            else await call(p, 'burst', [BURST]);
            const end = await withTimeout(conn.closed, ms(5000), `cut #${i + 1} (mid-frame ${dir}) to happen`);
            assert.equal(end.reason, 'cut', `cut #${i + 1} (mid-frame ${dir}): the connection ended as ${end.reason}`);
            break;
          }
          case 'terminate':
            ss.session!.terminate();
            break;
        }
        cutsMade++;
        done[kind]++;
        await call(p, 'waitOpenAfter', [mark.opens, ms(10_000)], ms(10_000));
        recovery[kind].push(performance.now() - cutAt);
      }
    } catch (err) {
      if (err instanceof Error) err.message += `\n  after ${cutsMade} cuts; ${await rig.diagnose()}`;
      throw err;
    }
    const chaosMs = performance.now() - t0;

    // ---- stop, top up to the same count both ways, and wait for everything to arrive and be acknowledged
    let pageSent = await call(p, 'stopSending', []);
    ss.stopSending();
    if (pageSent < ss.sent) pageSent = await call(p, 'burst', [ss.sent - pageSent]);
    while (ss.sent < pageSent) ss.sendOne();
    assert.equal(pageSent, ss.sent, 'both sides sent the same number of messages');
    const total = pageSent;

    let c = await call(p, 'counters', []);
    const deadline = performance.now() + ms(15_000);
    for (;;) {
      c = await call(p, 'counters', []);
      const sessionStats = ss.session?.stats();
      const settled =
        c.received >= total &&
        ss.recv.distinct >= total &&
        c.stats?.outbox === 0 &&
        sessionStats?.replayBuffered === 0;
      if (settled || performance.now() > deadline) break;
      await sleep(50); // bounded polling: the page's counters have no event to await from here
    }
    const st = c.stats!;
    const sessionStats = ss.session!.stats();
    const serverStats = server.stats();

    const lostToPage = total - c.received;
    const lostToServer = total - ss.recv.distinct;
    const lost = lostToPage + lostToServer;
    const duplicated = c.duplicates + ss.recv.duplicates;
    const elapsed = performance.now() - t0;

    console.log(`browser chaos: ${cutsMade} cuts, ${total} messages each way, ${lost} lost, ${duplicated} duplicated`);
    console.log(
      `[exactly-once] cuts ${JSON.stringify(done)} (mid-frame ${JSON.stringify(midframeDirs)}); ` +
        `recovery median ms ${JSON.stringify(Object.fromEntries(KINDS.map((k) => [k, Math.round(median(recovery[k]))])))}, ` +
        `max ${Math.round(Math.max(...KINDS.flatMap((k) => recovery[k])))}; ` +
        (detection.length > 0 ? `blackhole detected in median ${Math.round(median(detection))} ms, max ${Math.round(Math.max(...detection))} ms` : 'no blackholes'),
    );
    console.log(
      `[exactly-once] client: resumes ${st.resumes} (${st.resumes - cutsMade} not caused by a cut), reconnects ${st.reconnects}, replayed ${st.replayed}, dropped dups ${st.duplicatesDropped}, closes ${JSON.stringify(st.closes)}; ` +
        `server: resumed ${serverStats.resumed}, replayed ${sessionStats.replayed}, dropped dups ${sessionStats.duplicatesDropped}, detached ${JSON.stringify(ss.detached)}; ` +
        `proxy connections ${px.counters.accepted}; out of order ${c.outOfOrder}/${ss.recv.outOfOrder}; ` +
        `chaos ${(chaosMs / 1000).toFixed(1)} s, total ${(elapsed / 1000).toFixed(1)} s; bundle ${bundle.length} B min, ${gzipSync(bundle, { level: 9 }).length} B min+gzip`,
    );

    // ---- the verdict
    assert.ok(cutsMade >= Math.min(CUTS, 50), `only ${cutsMade} cuts`);
    for (const k of KINDS) assert.ok(done[k] > 0, `no ${k} cut happened`);
    assert.deepEqual(c.sessionLost, [], 'the browser client reported session-lost');
    assert.deepEqual(ss.sessionLost, [], 'the server reported session-lost');
    assert.equal(st.sessionsLost, 0);
    assert.equal(ss.sessions, 1, 'the server opened more than one session (a resume failed)');
    assert.equal(c.sendErrorCount, 0, `the page's send() threw: ${c.sendErrors.join('; ')}`);
    assert.deepEqual(ss.sendErrors, [], "the server session's send() threw");
    assert.equal(c.corruptCount, 0, `the page received corrupt messages: ${c.corrupt.join('; ')}`);
    assert.deepEqual(ss.recv.corrupt.slice(0, 10), [], 'the server received corrupt messages');
    assert.equal(c.wrongType, 0, 'the page received messages with the wrong frame type');
    assert.equal(ss.recv.wrongType, 0, 'the server received messages with the wrong frame type');
    assert.equal(c.duplicates, 0, 'the page received duplicates');
    assert.equal(ss.recv.duplicates, 0, 'the server received duplicates');
    assert.equal(c.outOfOrder, 0, 'the page received messages out of order');
    assert.equal(ss.recv.outOfOrder, 0, 'the server received messages out of order');
    assert.equal(lostToPage, 0, `the page is missing ${lostToPage} of ${total} messages (last ${c.last})`);
    assert.equal(lostToServer, 0, `the server is missing ${lostToServer} of ${total} messages (last ${ss.recv.last})`);
    assert.equal(c.last, total);
    assert.equal(ss.recv.last, total);
    assert.equal(st.outbox, 0, 'the client still holds unacknowledged messages');
    assert.equal(sessionStats.replayBuffered, 0, 'the server still holds unacknowledged messages');
    assert.ok(st.resumes >= cutsMade, `${st.resumes} resumes for ${cutsMade} cuts`);
    assert.equal(c.state, 'open');
    assert.deepEqual(c.errors, [], 'the browser client emitted errors');
    assert.deepEqual(ss.errors, [], 'the server session emitted errors');
  }
});

// Found by the tests above (an uncaught exception when the page's client
// closed, about 1 run in 5; fixed in 16765cc, kept as a regression test): a
// client that closes right after sending a message left the server's ack
// timer armed while the socket was CLOSING (the close frame came, TCP not yet
// closed). When the timer fired, ServerSession.sendAckNow() called send() on
// the closing socket, which threw WS_ERR_SEND_AFTER_CLOSE from a timer: an
// uncaught exception, i.e. a crash on peer input. Here a raw client makes the
// CLOSING window long by not closing its side of TCP (as a slow or suspended
// browser would), so the timer fires inside it every time.
describe('LifelineServer: a close frame while an ack is pending', () => {
  test('the ack timer does not send on the closing socket (no uncaught exception)', { timeout: ms(20_000) }, async () => {
    const server = new LifelineServer({ port: 0, host: '127.0.0.1', heartbeat: 'off', ackDelay: 100 });
    const raw = new net.Socket({ allowHalfOpen: true });
    try {
      await once(server, 'listening', ms(5000));
      const opened = once<ServerSession>(server, 'connection', ms(5000));
      const port = (server.address() as AddressInfo).port;
      raw.connect(port, '127.0.0.1');
      await once(raw, 'connect', ms(5000));
      let inbound = Buffer.alloc(0);
      const waiters: Array<() => void> = [];
      raw.on('data', (d: Buffer) => {
        inbound = Buffer.concat([inbound, d]);
        for (const w of waiters.splice(0)) w();
      });
      raw.on('error', () => {});
      const waitFor = (what: string, check: () => boolean): Promise<void> =>
        withTimeout(
          new Promise<void>((resolve) => {
            const test = () => (check() ? resolve() : waiters.push(test));
            test();
          }),
          ms(5000),
          what,
        );
      raw.write(
        `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: lifeline.v1\r\n\r\n',
      );
      await waitFor('the 101 response', () => inbound.includes('\r\n\r\n'));
      assert.match(inbound.toString('latin1'), /^HTTP\/1\.1 101[^]*Sec-WebSocket-Protocol: lifeline\.v1/i);
      raw.write(frame(0x1, '{"t":"hello","v":1}'));
      await waitFor('the welcome', () => inbound.includes('"t":"welcome"'));
      const session = await opened;
      const closed = new Promise<{ cause: string }>((resolve) => session.once('close', resolve));
      const received = once<Buffer>(session, 'message', ms(5000));
      // One application message (the server now owes an ack, due in ackDelay), then at once a
      // 'bye' and a close frame (with the bye the session ends; without it, it would detach).
      const closeBody = Buffer.alloc(2);
      closeBody.writeUInt16BE(1000);
      raw.write(Buffer.concat([frame(0x1, 'd1:bye soon'), frame(0x1, '{"t":"bye","reason":"normal"}'), frame(0x8, closeBody)]));
      assert.equal(String(await received), 'bye soon');
      await withTimeout(
        new Promise<void>((resolve) => raw.once('end', () => resolve())),
        ms(5000),
        "the server's close reply and FIN",
      );
      assert.equal(session.socket.readyState, 2, 'the server socket is CLOSING (waiting for our FIN)');
      // Stay half-open past ackDelay: the ack timer fires while the socket is CLOSING.
      await sleep(300);
      raw.end();
      const info = await withTimeout(closed, ms(10_000), "the session's close");
      assert.equal(info.cause, 'peer-closed');
    } finally {
      raw.destroy();
      await server.close({ timeout: ms(1000) });
    }
  });
});

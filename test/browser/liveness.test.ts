// The browser LifelineClient (dist/browser/lifeline.bundle.mjs) over headless
// Chromium's native WebSocket, against a LifelineServer:
//   - lifeline.v1 negotiation, text/binary round trips, the welcome's heartbeat;
//   - a blackholed server (FaultProxy): the client detects it on its own, and
//     (reconnect on) comes back through 'online' and resumes exactly-once;
//   - 'online' / visibility probes;
//   - a frozen page (CDP Debugger.pause, and Page.setWebLifecycleState on a
//     Chromium attached with connectOverCDP noDefaults): the server declares
//     the client dead; after the freeze the client reconnects and resumes.
//
// A node http server on 127.0.0.1 serves test/browser/liveness.html and the
// bundle; the LifelineServer shares it (path /ll). The page's `window.ll`
// drives LifelineClients; page.evaluate calls it. Times measured in the page
// use performance.now(); ping timestamps are the page's Date.now().

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';

import { LifelineServer, type ServerSession, type SessionCloseInfo } from '../../src/server/lifeline-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ms, once, peerAvailability, skipUnless, withTimeout } from '../helpers/peers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE = path.join(ROOT, 'dist/browser/lifeline.bundle.mjs');
const BUILD_SCRIPT = path.join(ROOT, 'scripts/build-browser.mjs');
const PAGE_HTML = readFileSync(new URL('./liveness.html', import.meta.url));
const CALL_TIMEOUT = ms(10_000);
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];

// A scaled-down heartbeat so detection takes about a second. The floor stays
// at 300 ms: a loaded CI machine running Chromium beside another suite stalls
// event loops for 150+ ms, and a 150 ms floor made a healthy line flap there.
const HB = { interval: ms(400), timeoutFloor: ms(300), timeoutCeiling: ms(600), timeoutInitial: ms(600) };
/** Silence after which a peer is dead at the latest: interval + the largest answer timeout. */
const WINDOW = HB.interval + HB.timeoutCeiling;
/** Allowance for timer granularity, the server's wheel tick and scheduling. */
const SLACK = ms(500);
/** A backoff that would keep a reconnecting client away for ~30 s: only a wake-up brings it back sooner. */
const SLOW_BACKOFF = { base: 30_000, cap: 30_000, randomFixed: 0.99 };

// ------------------------------------------------------------- bundle

/** Newest mtime of any file under `dir`. */
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

// ------------------------------------------------------------- page API

interface CloseInfo {
  code: number;
  reason: string;
  cause: string;
}

interface HeartbeatStats {
  pingsSent: number;
  pongsReceived: number;
  pingsMissed: number;
  lossRate: number;
  rtt: { last: number | null; smoothed: number | null; min: number | null; [k: string]: unknown };
  timeout: number;
  state: 'alive' | 'probing' | 'dead';
}

interface ClientStats {
  state: string;
  session: string | null;
  connectedSince: number | null;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  reconnects: number;
  resumes: number;
  sessionsLost: number;
  duplicatesDropped: number;
  replayed: number;
  outbox: number;
  heartbeat: HeartbeatStats | null;
  closes: Record<string, number>;
  wakeProbes: number;
}

interface ConnectResult {
  id: number;
  opened: boolean;
  state: string;
  protocol?: string | null;
  heartbeat?: Record<string, number> | null;
  close?: CloseInfo;
}

type Described = { kind: 'text'; data: string } | { kind: 'binary'; hex: string };

interface ActionResult {
  before: ClientStats;
  after: ClientStats;
  wallBefore: number;
  wallAfter: number;
  t0: number;
}

interface Closed {
  info: CloseInfo;
  t: number;
  state: string;
  stats: ClientStats;
}

interface LogEntry {
  t: number;
  ev: string;
  [k: string]: unknown;
}

interface PageState {
  log: LogEntry[];
  maxGap: number;
  maxGapEndedAt: number;
  now: number;
  visibility: string;
}

interface Report {
  createdAt: number;
  openedAt: number | null;
  closedAt: number | null;
  closeInfo: CloseInfo | null;
  nativeClose: { t: number; code: number; reason: string; wasClean: boolean } | null;
  nativeMessages: number;
  readyState: number | null;
  state: string;
  stats: ClientStats;
  log: LogEntry[];
  /** Page clock of every ping the client put on the wire. */
  pingsOut: number[];
  errors: string[];
  page: Omit<PageState, 'visibility'>;
}

type Action = 'online' | 'visible' | 'hidden' | 'probe';

/** What liveness.html puts on window.ll (see there). */
interface PageApi {
  connect(url: string, options?: Record<string, unknown>): ConnectResult;
  info(id: number): { state: string; protocol: string | null; readyState: number | null; heartbeat: Record<string, number> | null };
  sendText(id: number, text: string): number;
  sendBytes(id: number, hex: string): void;
  next(id: number): Described;
  pending(id: number): number;
  stats(id: number): ClientStats;
  waitEvent(id: number, ev: string, n: number, timeoutMs: number): LogEntry;
  waitPongs(id: number, n: number, timeoutMs: number): ClientStats;
  waitHeartbeat(id: number, field: 'pingsSent' | 'pongsReceived' | 'pingsMissed' | 'state', value: number | string, timeoutMs: number): ClientStats;
  wake(id: number, action: Action, timeoutMs: number): ActionResult;
  dispatch(id: number, action: Action): ActionResult;
  pongAfter(id: number, n: number, t0: number, timeoutMs: number): { stats: ClientStats; elapsed: number };
  mark(): { t: number; wall: number };
  closed(id: number, timeoutMs: number): Closed;
  report(id: number): Report;
  pageState(): PageState;
  resetGap(): void;
  close(id: number): void;
  shutdown(): void;
}

/** Calls window.ll[name](...args) in the page, with a timeout guard. */
function call<K extends keyof PageApi>(
  page: Page,
  name: K,
  args: Parameters<PageApi[K]>,
  timeoutMs: number = CALL_TIMEOUT,
): Promise<Awaited<ReturnType<PageApi[K]>>> {
  const run = page.evaluate(([n, a]) => (globalThis as any).ll[n](...a), [name, args] as [string, unknown[]]) as Promise<
    Awaited<ReturnType<PageApi[K]>>
  >;
  return withTimeout(run, timeoutMs, `ll.${name}() in the page`);
}

/** The next `n` application messages of a page client, as texts. */
async function texts(page: Page, id: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = await call(page, 'next', [id]);
    out.push(m.kind === 'text' ? m.data : `<binary ${m.hex.length / 2}>`);
  }
  return out;
}

// ------------------------------------------------------------- server side

/** A client ping as the server's transport saw it. */
interface SeenPing {
  ts: number;
  at: number;
}

/**
 * One session as the server sees it: app-level pings its client sent (read
 * off the raw socket, re-attached after each resume), application messages,
 * and its detach / resume / close events with Node-side timestamps.
 */
class Tracked {
  readonly pings: SeenPing[] = [];
  readonly received: string[] = [];
  readonly events: Array<{ at: number; ev: string; detail: unknown }> = [];
  readonly closed: Promise<SessionCloseInfo & { at: number }>;
  private readonly pingWaiters: Array<{ check: (p: SeenPing) => boolean; resolve: (p: SeenPing) => void }> = [];
  private readonly waiters: Array<() => boolean> = [];

  constructor(readonly session: ServerSession) {
    this.closed = new Promise((resolve) =>
      session.once('close', (info) => {
        this.note('close', info);
        resolve({ ...info, at: performance.now() });
      }),
    );
    session.on('message', (data, isBinary) => {
      this.received.push(isBinary ? `<binary ${data.length}>` : data.toString('utf8'));
      this.poke();
    });
    session.on('detached', (cause) => this.note('detached', cause));
    session.on('resumed', (info) => {
      this.note('resumed', info);
      this.watchPings();
    });
    this.watchPings();
  }

  private note(ev: string, detail: unknown): void {
    this.events.push({ at: performance.now(), ev, detail });
    this.poke();
  }

  private poke(): void {
    for (let i = 0; i < this.waiters.length; i++) if (this.waiters[i]!()) this.waiters.splice(i--, 1);
  }

  private watchPings(): void {
    const ws = this.session.socket;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary || data[0] !== 0x7b) return;
      const msg = JSON.parse(data.toString('utf8')) as { t: string; ts?: number };
      if (msg.t !== 'ping' || typeof msg.ts !== 'number') return;
      const p = { ts: msg.ts, at: performance.now() };
      this.pings.push(p);
      for (let i = 0; i < this.pingWaiters.length; i++) {
        const w = this.pingWaiters[i]!;
        if (w.check(p)) {
          this.pingWaiters.splice(i--, 1);
          w.resolve(p);
        }
      }
    });
  }

  /** The first client ping (past or future) with ts in [lo, hi]. */
  pingWithin(lo: number, hi: number, timeoutMs: number): Promise<SeenPing> {
    const check = (p: SeenPing) => p.ts >= lo && p.ts <= hi;
    const seen = this.pings.find(check);
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<SeenPing>((resolve) => this.pingWaiters.push({ check, resolve })),
      timeoutMs,
      `a client ping with ts in [${lo}, ${hi}] at the server (seen: ${JSON.stringify(this.pings.map((p) => p.ts))})`,
    );
  }

  /** The n-th (1-based) session event named `ev`. */
  event(ev: string, n: number, timeoutMs: number): Promise<{ at: number; ev: string; detail: unknown }> {
    const nth = () => this.events.filter((e) => e.ev === ev)[n - 1];
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const e = nth();
          if (e) resolve(e);
          return e !== undefined;
        };
        if (!check()) this.waiters.push(check);
      }),
      timeoutMs,
      `session event '${ev}' #${n} (events so far: ${JSON.stringify(this.events.map((e) => e.ev))})`,
    );
  }

  /** Resolves once `n` application messages have arrived (all of them, in order). */
  messages(n: number, timeoutMs: number): Promise<string[]> {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (this.received.length >= n) resolve([...this.received]);
          return this.received.length >= n;
        };
        if (!check()) this.waiters.push(check);
      }),
      timeoutMs,
      `${n} application messages at the server (got ${JSON.stringify(this.received)})`,
    );
  }
}

/** New sessions of one LifelineServer, handed out in order. */
class SessionQueue {
  private readonly accepted: Tracked[] = [];
  private readonly waiters: Array<(t: Tracked) => void> = [];

  constructor(server: LifelineServer) {
    server.on('connection', (session) => {
      const t = new Tracked(session);
      const w = this.waiters.shift();
      if (w) w(t);
      else this.accepted.push(t);
    });
  }

  /** The next new session (after a client's hello; resumes are not new). */
  next(timeoutMs: number = CALL_TIMEOUT): Promise<Tracked> {
    const t = this.accepted.shift();
    if (t) return Promise.resolve(t);
    return withTimeout(new Promise<Tracked>((resolve) => this.waiters.push(resolve)), timeoutMs, 'a session on the LifelineServer');
  }

  reset(): void {
    this.accepted.length = 0;
    this.waiters.length = 0;
  }
}

const peers = peerAvailability();

describe('browser LifelineClient (Chromium native WebSocket) liveness', skipUnless(peers.chromium !== null, 'chromium'), () => {
  let http: HttpServer;
  let origin: string;
  let server: LifelineServer;
  /** A second server whose own heartbeat is slow (10 s): only the client's heartbeat matters on it. */
  let slowServer: LifelineServer;
  let sessions: SessionQueue;
  let slowSessions: SessionQueue;
  let browser: Browser;
  let page: Page;
  let pageErrors: Error[] = [];
  const proxies: FaultProxy[] = [];
  const cdps: CDPSession[] = [];

  function httpPort(): number {
    return (http.address() as AddressInfo).port;
  }

  function wsUrl(): string {
    return `ws://127.0.0.1:${httpPort()}/ll`;
  }

  /** Connects a page client to `url` and pairs it with its server session. */
  async function connectPair(
    url: string = wsUrl(),
    options: Record<string, unknown> = {},
    p: Page = page,
    queue: SessionQueue = sessions,
  ): Promise<{ id: number; opened: ConnectResult; tracked: Tracked }> {
    const session = queue.next();
    const opened = await call(p, 'connect', [url, options]);
    assert.equal(opened.opened, true, `the page's client did not open: ${JSON.stringify(opened)}`);
    return { id: opened.id, opened, tracked: await session };
  }

  async function loadPage(p: Page): Promise<void> {
    p.on('pageerror', (err) => pageErrors.push(err));
    await withTimeout(p.goto(`${origin}/`), ms(10_000), 'the test page to load');
    await withTimeout(p.waitForFunction(() => (globalThis as any).ll !== undefined), ms(10_000), 'window.ll (the module script) to load');
  }

  before(async () => {
    ensureBundle();
    http = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/' || req.url === '/liveness.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': PAGE_HTML.length, 'Cache-Control': 'no-store' });
        res.end(PAGE_HTML);
        return;
      }
      if (req.method === 'GET' && req.url === '/lifeline.bundle.mjs') {
        const js = readFileSync(BUNDLE);
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': js.length, 'Cache-Control': 'no-store' });
        res.end(js);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
      res.end('not found\n');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening', ms(5000));
    origin = `http://127.0.0.1:${httpPort()}`;
    server = new LifelineServer({ server: http, path: '/ll', heartbeat: HB, sessionTtl: ms(60_000) });
    sessions = new SessionQueue(server);
    slowServer = new LifelineServer({
      server: http,
      path: '/ll-slow',
      heartbeat: { interval: ms(10_000), timeoutFloor: ms(5000), timeoutCeiling: ms(5000), timeoutInitial: ms(5000) },
      sessionTtl: ms(60_000),
    });
    slowSessions = new SessionQueue(slowServer);
    browser = await withTimeout(
      chromium.launch({ executablePath: peers.chromium!, headless: true, args: CHROMIUM_FLAGS }),
      ms(30_000),
      'Chromium to launch',
    );
  });

  after(async () => {
    for (const c of cdps) await c.detach().catch(() => {});
    await browser?.close();
    for (const p of proxies) await p.close();
    await server?.close({ timeout: ms(1000) });
    await slowServer?.close({ timeout: ms(1000) });
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  beforeEach(async () => {
    pageErrors = [];
    page = await browser.newPage();
    await loadPage(page);
  });

  afterEach(async () => {
    if (page && !page.isClosed()) {
      await call(page, 'shutdown', [], ms(2000)).catch(() => {});
      await page.close();
    }
    for (const s of [...server.sessions, ...slowServer.sessions]) s.close();
    sessions.reset();
    slowSessions.reset();
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the page');
  });

  test('happy path: lifeline.v1 negotiated, text and binary round trip, heartbeat from the welcome, pings answered', async () => {
    // This process serves the pongs the page waits for (300-600 ms): if a
    // check below fails, its longest stall says whether it was this process.
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    after(() => stalls.disable());
    const stallNote = () => `(this process's longest event-loop stall so far: ${(stalls.max / 1e6).toFixed(0)} ms)`;
    const { id, opened, tracked } = await connectPair();
    const session = tracked.session;
    assert.equal(opened.protocol, 'lifeline.v1', "the native WebSocket's protocol");
    assert.equal(session.mode, 'lifeline');
    assert.equal(session.socket.protocol, 'lifeline.v1');
    assert.equal(opened.state, 'open');
    // The server's heartbeat, as announced in the welcome (lateSlack is the client's own: min(2000, floor)).
    assert.deepEqual(opened.heartbeat, { ...HB, k: 4, lateSlack: Math.min(2000, HB.timeoutFloor) });

    session.on('message', (data, isBinary) => session.send(data, { binary: isBinary }));
    // Texts that look like control messages or data headers must stay application data.
    const sent = ['hello', '', 'héllo 🌍 日本語', '{"t":"ping","ts":1}', 'm', 'm1:2:x', '{"t":"bye","reason":"x"}', 'x'.repeat(70_000)];
    for (const t of sent) await call(page, 'sendText', [id, t]);
    for (const [i, t] of sent.entries()) {
      const m = await call(page, 'next', [id]);
      assert.deepEqual(m, { kind: 'text', data: t }, `text echo #${i}`);
    }
    const binaries = [[0, 1, 2, 127, 128, 255], [], [0x7b], [0x6d, 0x6d], Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff)];
    const hexes = binaries.map((b) => Buffer.from(b).toString('hex'));
    for (const h of hexes) await call(page, 'sendBytes', [id, h]);
    for (const [i, b] of binaries.entries()) {
      const m = await call(page, 'next', [id]);
      assert.equal(m.kind, 'binary', `binary echo #${i} came back as ${m.kind}`);
      const hex = m.kind === 'binary' ? m.hex : '';
      // Compared as strings: a deepEqual of 70,000-element arrays stalls this process (see liveness.html's describe()).
      assert.ok(hex === hexes[i], `binary echo #${i}: ${hex.length / 2} bytes came back for the ${b.length} sent, or other bytes`);
    }

    // A few quiet intervals: the heartbeat keeps running, and every ping is answered.
    const quiet = await call(page, 'waitPongs', [id, 3, WINDOW * 6], WINDOW * 6 + CALL_TIMEOUT);
    const srv = session.stats();
    console.log(`[happy] client stats after quiet: ${JSON.stringify(quiet)}`);
    console.log(`[happy] server session stats: ${JSON.stringify(srv)} ${stallNote()}`);
    assert.equal(quiet.state, 'open');
    assert.ok(quiet.heartbeat, 'the client runs a heartbeat');
    assert.ok(quiet.heartbeat.pongsReceived >= 3, `client pongs: ${quiet.heartbeat.pongsReceived}`);
    assert.equal(quiet.heartbeat.pingsMissed, 0, `client pings went unanswered on a healthy line ${stallNote()}`);
    assert.ok(quiet.heartbeat.rtt.min !== null && quiet.heartbeat.rtt.min >= 0, 'the client measured an RTT');
    assert.equal(quiet.messagesOut, sent.length + binaries.length);
    assert.equal(quiet.messagesIn, sent.length + binaries.length);
    assert.equal(quiet.session, session.id, 'client and server agree on the session id');
    assert.equal(srv.heartbeat?.pingsMissed, 0, `server pings went unanswered on a healthy line ${stallNote()}`);
    assert.equal(srv.state, 'open');
    assert.equal(quiet.wakeProbes, 0);
    assert.equal(quiet.reconnects, 0, stallNote());
    assert.deepEqual(quiet.closes, {}, stallNote());
    // The page ends the session: the server sees a normal close, not a detach.
    await call(page, 'close', [id]);
    const c = await withTimeout(tracked.closed, CALL_TIMEOUT, 'the server session to close');
    assert.equal(c.code, 1000);
    assert.equal(c.cause, 'peer-closed');
    const rep = await call(page, 'report', [id]);
    assert.deepEqual(rep.closeInfo, { code: 1000, reason: '', cause: 'local-closed' });
    assert.deepEqual(rep.stats.closes, { 'local-closed': 1 });
  });

  test('blackholed server, reconnect off: the client closes with heartbeat-timeout within interval + timeout + slack', async () => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: httpPort() });
    proxies.push(proxy);
    const { id, tracked } = await connectPair(proxy.url('/ll'), { reconnect: false });
    await call(page, 'waitPongs', [id, 1, WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    const mark = await call(page, 'mark', []);
    const blackholedAt = performance.now();
    proxy.blackhole('both', 'drop');
    const closed = await call(page, 'closed', [id, WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    const detectMs = closed.t - mark.t;
    const srv = await tracked.event('detached', 1, WINDOW * 4);
    const srvDetectMs = srv.at - blackholedAt;
    const rep = await call(page, 'report', [id]);
    console.log(
      `[blackhole, reconnect off] client detected after ${detectMs.toFixed(1)} ms (bound ${WINDOW} + ${SLACK} slack); close ${JSON.stringify(closed.info)}; ` +
        `server detached the session after ${srvDetectMs.toFixed(1)} ms, cause ${String(srv.detail)}`,
    );
    console.log(`[blackhole, reconnect off] client stats: ${JSON.stringify(closed.stats)}`);
    console.log(`[blackhole, reconnect off] client log (ms since blackhole): ${JSON.stringify(rep.log.map((e) => ({ ...e, t: +(e.t - mark.t).toFixed(1) })))}`);
    assert.deepEqual(closed.info, { code: 1006, reason: 'heartbeat-timeout', cause: 'heartbeat-timeout' });
    assert.equal(closed.state, 'closed');
    assert.ok(detectMs <= WINDOW + SLACK, `client took ${detectMs.toFixed(1)} ms to detect (bound ${WINDOW + SLACK})`);
    assert.ok(detectMs >= HB.timeoutFloor, `client detected after only ${detectMs.toFixed(1)} ms: faster than the answer timeout floor`);
    assert.ok(closed.stats.heartbeat && closed.stats.heartbeat.pingsMissed >= 1, 'the unanswered ping counts as missed');
    assert.equal(closed.stats.heartbeat?.state, 'dead');
    assert.equal(closed.stats.reconnects, 0);
    // The liveness log shows probing before death.
    const liveness = rep.log.filter((e) => e.ev === 'liveness').map((e) => e.state);
    assert.deepEqual(liveness.slice(-2), ['probing', 'dead']);
    // The server detects the same silence on its own.
    assert.equal(srv.detail, 'heartbeat-timeout');
    assert.ok(srvDetectMs <= WINDOW + SLACK, `server took ${srvDetectMs.toFixed(1)} ms to detect`);
    // One connection ended once: stats count it once.
    assert.deepEqual(closed.stats.closes, { 'heartbeat-timeout': 1 }, 'closes by cause');
  });

  test("blackholed server, reconnect on: 'reconnecting' (heartbeat-timeout) in time; after 'online' the client resumes at once, exactly-once both ways", async () => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: httpPort() });
    proxies.push(proxy);
    const { id, tracked } = await connectPair(proxy.url('/ll'), { backoff: SLOW_BACKOFF, handshakeTimeout: ms(5000) });
    const session = tracked.session;
    const sessionId = (await call(page, 'stats', [id])).session;
    await call(page, 'waitPongs', [id, 1, WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    // A message each way before the fault.
    session.send('s0');
    assert.deepEqual(await texts(page, id, 1), ['s0']);
    await call(page, 'sendText', [id, 'c0']);
    await tracked.messages(1, CALL_TIMEOUT);

    const mark = await call(page, 'mark', []);
    proxy.blackhole('both', 'drop');
    // Into the black hole: both sides still think the line is up.
    session.send('s1');
    await call(page, 'sendText', [id, 'c1']);
    const reconnecting = await call(page, 'waitEvent', [id, 'reconnecting', 1, WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    const detectMs = reconnecting.t - mark.t;
    const detached = await tracked.event('detached', 1, WINDOW * 4);
    // While apart: the server's messages wait in its replay buffer, the client's in its outbox.
    session.send('s2');
    session.send('s3');
    await call(page, 'sendText', [id, 'c2']);
    const away = await call(page, 'stats', [id]);
    assert.equal(away.state, 'reconnecting');
    assert.equal(reconnecting.reason, 'heartbeat-timeout');
    assert.ok(detectMs <= WINDOW + SLACK, `client took ${detectMs.toFixed(1)} ms to detect (bound ${WINDOW + SLACK})`);
    assert.ok((reconnecting.delay as number) > ms(20_000), `backoff delay ${String(reconnecting.delay)} (SLOW_BACKOFF)`);
    assert.equal(detached.detail, 'heartbeat-timeout');
    assert.equal(session.state, 'detached');

    // The network is back: 'online' makes the client try at once instead of waiting out ~30 s.
    proxy.pass();
    const woke = await call(page, 'dispatch', [id, 'online']);
    assert.equal(woke.after.wakeProbes, woke.before.wakeProbes + 1, "'online' while reconnecting counts as a wake");
    const resumed = await call(page, 'waitEvent', [id, 'resumed', 1, ms(5000)], ms(5000) + CALL_TIMEOUT);
    const backMs = resumed.t - woke.t0;
    await tracked.event('resumed', 1, CALL_TIMEOUT);
    const atClient = await texts(page, id, 3);
    const atServer = await tracked.messages(3, CALL_TIMEOUT);
    // A round trip after the replay: nothing more may arrive (no duplicates).
    session.send('fence');
    assert.deepEqual(await texts(page, id, 1), ['fence']);
    assert.equal(await call(page, 'pending', [id]), 0, 'extra messages at the client');
    const st = await call(page, 'stats', [id]);
    const srvSt = session.stats();
    console.log(`[blackhole, reconnect on] detected after ${detectMs.toFixed(1)} ms; back ${backMs.toFixed(1)} ms after 'online'; client stats ${JSON.stringify(st)}`);
    console.log(`[blackhole, reconnect on] server session stats ${JSON.stringify(srvSt)}`);
    assert.ok(backMs < ms(2000), `resumed ${backMs.toFixed(1)} ms after 'online'`);
    assert.equal(resumed.session, sessionId, 'the same session was resumed');
    assert.deepEqual(atClient, ['s1', 's2', 's3'], 'server -> client: every message once, in order');
    assert.deepEqual(atServer, ['c0', 'c1', 'c2'], 'client -> server: every message once, in order');
    assert.equal(tracked.received.length, 3, 'extra messages at the server');
    assert.equal(st.state, 'open');
    assert.equal(st.resumes, 1);
    assert.equal(st.sessionsLost, 0);
    assert.equal(srvSt.resumes, 1);
    assert.equal(srvSt.state, 'open');
    assert.deepEqual(st.closes, { 'heartbeat-timeout': 1 });
    // stats().reconnects is documented as "connection attempts after the first": the wake-up's attempt is one.
    assert.equal(st.reconnects, 1, 'reconnects counts the attempt the wake-up made');
    await proxy.close();
  });

  test("'online' and tab-visible make the client probe at once; hidden does not", async () => {
    const { id, tracked } = await connectPair();
    // "At once" is shown by the ping each wake-up sends synchronously and by
    // its ts, inside the wake call's window, reaching the server. The pong
    // then only has to come within the largest answer timeout the heartbeat
    // allows (a 200 ms bound failed once on a loaded 2-CPU CI VM: 224 ms).
    const answerMs = HB.timeoutCeiling;

    // online
    const on = await call(page, 'wake', [id, 'online', WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    assert.equal(on.after.wakeProbes, on.before.wakeProbes + 1, "'online' counted as a wake probe");
    assert.equal(on.after.heartbeat!.pingsSent, on.before.heartbeat!.pingsSent + 1, "'online' sent a ping synchronously");
    assert.equal(on.after.heartbeat!.state, 'probing');
    const seenOnline = await tracked.pingWithin(on.wallBefore, on.wallAfter, answerMs);
    const onPong = await call(page, 'pongAfter', [id, on.before.heartbeat!.pongsReceived, on.t0, answerMs], answerMs + CALL_TIMEOUT);
    console.log(`[online] ping ts ${seenOnline.ts} reached the server; pong back after ${onPong.elapsed.toFixed(1)} ms; stats ${JSON.stringify(onPong.stats)}`);
    assert.ok(onPong.elapsed < answerMs, `pong took ${onPong.elapsed.toFixed(1)} ms`);

    // hidden: no probe
    const hidden = await call(page, 'wake', [id, 'hidden', WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    assert.equal(hidden.after.wakeProbes, hidden.before.wakeProbes, 'becoming hidden must not probe');
    assert.equal(hidden.after.heartbeat!.pingsSent, hidden.before.heartbeat!.pingsSent, 'becoming hidden must not ping');

    // visible again: probe
    const vis = await call(page, 'wake', [id, 'visible', WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    assert.equal(vis.after.wakeProbes, vis.before.wakeProbes + 1, 'becoming visible counted as a wake probe');
    assert.equal(vis.after.heartbeat!.pingsSent, vis.before.heartbeat!.pingsSent + 1, 'becoming visible sent a ping synchronously');
    const seenVisible = await tracked.pingWithin(vis.wallBefore, vis.wallAfter, answerMs);
    const visPong = await call(page, 'pongAfter', [id, vis.before.heartbeat!.pongsReceived, vis.t0, answerMs], answerMs + CALL_TIMEOUT);
    console.log(`[visible] ping ts ${seenVisible.ts} reached the server; pong back after ${visPong.elapsed.toFixed(1)} ms; stats ${JSON.stringify(visPong.stats)}`);
    assert.ok(visPong.elapsed < answerMs, `pong took ${visPong.elapsed.toFixed(1)} ms`);
    assert.equal(visPong.stats.wakeProbes, 2);
    assert.equal(visPong.stats.state, 'open');
    assert.equal(visPong.stats.heartbeat!.pingsMissed, 0);
  });

  // ------------------------------------------------------------- frozen page

  /** How a test freezes the page's JavaScript and lets it run again. */
  interface FreezeMethod {
    label: string;
    prepare(cdp: CDPSession): Promise<unknown>;
    freeze(cdp: CDPSession): Promise<unknown>;
    unfreeze(cdp: CDPSession): Promise<unknown>;
  }

  /**
   * Connects, freezes the page for 3 x the detection window while the server
   * keeps sending, resumes, and checks the full contract: the server declares
   * the frozen client dead (its session waits, detached); after the freeze the
   * client does not die on the spot, learns the connection is gone, reconnects
   * and resumes the same session, and every message arrives once, in order.
   */
  async function frozenScenario(p: Page, method: FreezeMethod): Promise<{ rep: Report; resumeEv: LogEntry | null; freezeEv: LogEntry | null }> {
    const { id, tracked } = await connectPair(wsUrl(), {}, p);
    const session = tracked.session;
    await call(p, 'waitPongs', [id, 1, WINDOW * 4], WINDOW * 4 + CALL_TIMEOUT);
    const beforeFreeze = await call(p, 'stats', [id]);
    await call(p, 'resetGap', []);
    const cdp = await p.context().newCDPSession(p);
    cdps.push(cdp);
    await method.prepare(cdp);

    const frozenFor = 3 * WINDOW;
    const freezeMark = await call(p, 'mark', []);
    const frozenAt = performance.now();
    await method.freeze(cdp);
    session.send('f0'); // reaches the browser's network stack; the frozen page cannot read it yet

    // While frozen the page cannot answer pings: the server must declare it dead.
    const detached = await tracked.event('detached', 1, WINDOW + SLACK + ms(1000));
    const srvDetectMs = detached.at - frozenAt;
    const srvStats = session.stats();
    session.send('f1'); // detached: waits in the replay buffer
    session.send('f2');
    const remaining = frozenFor - (performance.now() - frozenAt);
    // The freeze length is the experiment's parameter, not a synchronisation.
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    const frozenMs = performance.now() - frozenAt;
    await method.unfreeze(cdp);

    const resumed = await call(p, 'waitEvent', [id, 'resumed', 1, ms(10_000)], ms(10_000) + CALL_TIMEOUT);
    const got = await texts(p, id, 3);
    await call(p, 'sendText', [id, 'after']);
    const atServer = await tracked.messages(1, CALL_TIMEOUT);
    session.send('fence');
    const fence = await texts(p, id, 1);
    const rep = await call(p, 'report', [id]);
    const srvAfter = session.stats();

    const rel = (t: number) => +(t - freezeMark.t).toFixed(1);
    const since = (l: LogEntry[]) => l.filter((e) => e.t >= freezeMark.t).map((e) => ({ ...e, t: rel(e.t) }));
    const resumeEv = rep.page.log.find((e) => e.ev === 'resume' && e.t > freezeMark.t) ?? null;
    const freezeEv = rep.page.log.find((e) => e.ev === 'freeze' && e.t >= freezeMark.t) ?? null;
    const tag = `[frozen: ${method.label}]`;
    console.log(`${tag} frozen for ${frozenMs.toFixed(0)} ms (planned ${frozenFor}); page events (ms since freeze): ${JSON.stringify(since(rep.page.log))}; largest event-loop gap ${rep.page.maxGap.toFixed(0)} ms, ending at ${rel(rep.page.maxGapEndedAt)}`);
    console.log(`${tag} server: detached (${String(detached.detail)}) ${srvDetectMs.toFixed(1)} ms after the freeze; session stats then ${JSON.stringify(srvStats)}`);
    console.log(`${tag} server session events: ${JSON.stringify(tracked.events.map((e) => ({ ...e, at: +(e.at - frozenAt).toFixed(1) })))}; stats after ${JSON.stringify(srvAfter)}`);
    console.log(`${tag} client stats before freeze: ${JSON.stringify(beforeFreeze)}`);
    console.log(`${tag} client log (ms since freeze): ${JSON.stringify(since(rep.log))}`);
    console.log(`${tag} client stats after: ${JSON.stringify(rep.stats)}; native close of the old socket ${JSON.stringify(rep.nativeClose && { ...rep.nativeClose, t: rel(rep.nativeClose.t) })}`);

    // The freeze really happened: the page's event loop stood still for most of it.
    assert.ok(rep.page.maxGap >= frozenFor * 0.8, `the page's event loop only paused ${rep.page.maxGap.toFixed(0)} ms`);
    // The server declared the client dead because it could not answer, and kept its session.
    assert.equal(detached.detail, 'heartbeat-timeout');
    assert.ok(srvDetectMs <= WINDOW + SLACK, `server took ${srvDetectMs.toFixed(1)} ms to detect the frozen client`);
    assert.ok(srvStats.heartbeat && srvStats.heartbeat.pingsMissed >= 1, 'the server counts the unanswered ping as missed');
    // Back from the freeze: no instant death. The first thing the client did
    // after the freeze was not to declare heartbeat-timeout on the spot.
    const afterFreeze = rep.log.filter((e) => e.t > freezeMark.t);
    const firstLoss = afterFreeze.find((e) => e.ev === 'reconnecting');
    assert.ok(firstLoss, "the client noticed the loss ('reconnecting')");
    if (firstLoss.reason === 'heartbeat-timeout') {
      const probedFirst = afterFreeze.some((e) => e.ev === 'liveness' && e.state === 'probing' && e.t < firstLoss.t && e.t > (resumeEv?.t ?? freezeMark.t));
      assert.ok(probedFirst, 'a late check must probe before declaring heartbeat-timeout');
    }
    // ...reconnects and resumes the same session: nothing lost, nothing twice.
    assert.equal(resumed.session, beforeFreeze.session, 'the same session was resumed');
    assert.deepEqual(got, ['f0', 'f1', 'f2'], 'server -> client across the freeze: every message once, in order');
    assert.deepEqual(atServer, ['after']);
    assert.deepEqual(fence, ['fence']);
    assert.equal(await call(p, 'pending', [id]), 0, 'extra messages at the client');
    assert.equal(rep.stats.state, 'open');
    assert.equal(rep.stats.resumes, 1);
    assert.equal(rep.stats.sessionsLost, 0);
    assert.equal(rep.closeInfo, null, "no 'close' event: the client never gave up");
    assert.deepEqual(rep.errors, [], "the client's error events");
    assert.equal(srvAfter.state, 'open');
    assert.equal(srvAfter.resumes, 1);
    return { rep, resumeEv, freezeEv };
  }

  test('page paused while its ping is unanswered, on a line that stays up: the late check probes instead of declaring death; the connection survives', { timeout: ms(60_000) }, async () => {
    // The client runs its own heartbeat (the slow server's is 10 s, so the
    // server never gives up on it here): ping after 400 ms quiet, answer within 1 s.
    const clientHb = { interval: ms(400), timeoutFloor: ms(1000), timeoutCeiling: ms(1000), timeoutInitial: ms(1000), lateSlack: ms(150) };
    const clientWindow = clientHb.interval + clientHb.timeoutCeiling;
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: httpPort() });
    proxies.push(proxy);
    const { id, tracked } = await connectPair(proxy.url('/ll-slow'), { heartbeat: clientHb }, page, slowSessions);
    await call(page, 'waitPongs', [id, 1, clientWindow * 3], clientWindow * 3 + CALL_TIMEOUT);
    const cdp = await page.context().newCDPSession(page);
    cdps.push(cdp);
    await cdp.send('Debugger.enable');
    await call(page, 'resetGap', []);

    // Hold what the server sends: the client's next ping stays unanswered...
    proxy.blackhole('down', 'hold');
    const probing = await call(page, 'waitHeartbeat', [id, 'state', 'probing', clientWindow * 2], clientWindow * 2 + CALL_TIMEOUT);
    // ...and the page stops running before that ping's deadline (1 s after it).
    const mark = await call(page, 'mark', []);
    await cdp.send('Debugger.pause');
    const frozenFor = 3 * clientWindow;
    const pausedAt = performance.now();
    // The pause length is the experiment's parameter, not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, frozenFor));
    await cdp.send('Debugger.resume');
    const pausedMs = performance.now() - pausedAt;

    // Back: the overdue check runs late, so it must probe again rather than declare death.
    const late = await call(page, 'waitHeartbeat', [id, 'pingsSent', probing.heartbeat!.pingsSent + 1, ms(3000)], ms(3000) + CALL_TIMEOUT);
    proxy.pass('down');
    const alive = await call(page, 'waitHeartbeat', [id, 'state', 'alive', clientHb.timeoutCeiling + SLACK], clientHb.timeoutCeiling + SLACK + CALL_TIMEOUT);
    tracked.session.send('still-here');
    assert.deepEqual(await texts(page, id, 1), ['still-here']);
    const rep = await call(page, 'report', [id]);
    const rel = (t: number) => +(t - mark.t).toFixed(1);
    const resumedAt = rep.page.maxGapEndedAt;
    const lateProbeAt = rep.pingsOut.find((t) => t > mark.t) ?? null;
    console.log(
      `[late check] paused ${pausedMs.toFixed(0)} ms (page event-loop gap ${rep.page.maxGap.toFixed(0)} ms, ended at ${rel(resumedAt)}); ` +
        `late probe on the wire at ${lateProbeAt === null ? 'none' : rel(lateProbeAt)} ms (${lateProbeAt === null ? '?' : (lateProbeAt - resumedAt).toFixed(1)} ms after the page ran again)`,
    );
    console.log(`[late check] client heartbeat while probing: ${JSON.stringify(probing.heartbeat)}; after the late check: ${JSON.stringify(late.heartbeat)}; after the held pongs: ${JSON.stringify(alive.heartbeat)}`);
    console.log(`[late check] client log (ms since pause): ${JSON.stringify(rep.log.filter((e) => e.t >= mark.t).map((e) => ({ ...e, t: rel(e.t) })))}`);
    console.log(`[late check] server session events: ${JSON.stringify(tracked.events)}; stats ${JSON.stringify(tracked.session.stats())}`);

    assert.ok(rep.page.maxGap >= frozenFor * 0.8, `the page only paused ${rep.page.maxGap.toFixed(0)} ms`);
    assert.equal(late.state, 'open', 'the client did not give up on the connection');
    assert.equal(late.heartbeat!.state, 'probing', 'still probing after the late check');
    assert.equal(late.heartbeat!.pingsMissed, probing.heartbeat!.pingsMissed + 1, 'the ping that went unanswered during the pause counts as missed');
    assert.ok(lateProbeAt !== null && lateProbeAt >= resumedAt - 1, 'the late probe went out after the pause');
    assert.ok(lateProbeAt! - resumedAt <= clientHb.lateSlack + SLACK, `the late probe went out ${(lateProbeAt! - resumedAt).toFixed(1)} ms after the page ran again`);
    assert.equal(alive.state, 'open');
    assert.equal(rep.stats.reconnects, 0, 'no reconnect: the same connection survived');
    assert.deepEqual(rep.stats.closes, {});
    assert.equal(rep.log.filter((e) => e.t >= mark.t && (e.ev === 'reconnecting' || (e.ev === 'liveness' && e.state === 'dead'))).length, 0, 'no death, no reconnect');
    assert.deepEqual(tracked.events, [], 'the server session never detached');
    await proxy.close();
  });

  describe('frozen page', () => {
    test('JavaScript paused (CDP Debugger.pause, Chromium launched by playwright): server declares the client dead; after the pause the client resumes its session', { timeout: ms(60_000) }, async () => {
      await frozenScenario(page, {
        label: 'Debugger.pause',
        prepare: (cdp) => cdp.send('Debugger.enable'),
        freeze: (cdp) => cdp.send('Debugger.pause'),
        unfreeze: (cdp) => cdp.send('Debugger.resume'),
      });
    });

    describe('Page.setWebLifecycleState', () => {
      let lc: LifecycleBrowser | null = null;
      let lpage: Page | null = null;

      before(async () => {
        lc = await launchForLifecycle();
      });

      after(async () => {
        await lpage?.close().catch(() => {});
        if (lc) await stopLifecycleBrowser(lc);
      });

      test("on a page of playwright-launched Chromium, 'frozen' does not freeze (playwright's focus emulation keeps the page visible)", async () => {
        const cdp = await page.context().newCDPSession(page);
        cdps.push(cdp);
        const mark = await call(page, 'mark', []);
        await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
        // A frozen page would not run this until 'active'.
        const during = await call(page, 'mark', [], ms(3000));
        await cdp.send('Page.setWebLifecycleState', { state: 'active' });
        const st = await call(page, 'pageState', []);
        const events = st.log.filter((e) => e.t >= mark.t).map((e) => e.ev);
        console.log(`[lifecycle on a playwright-launched page] JS ran ${(during.t - mark.t).toFixed(1)} ms after 'frozen'; page events since: ${JSON.stringify(events)}; visibility ${st.visibility}`);
        assert.deepEqual(events, [], "no 'freeze'/'visibilitychange' events");
        assert.equal(st.visibility, 'visible');
      });

      test('frozen (Chromium attached with connectOverCDP noDefaults): server declares the client dead; after resume the client resumes its session', { timeout: ms(60_000) }, async () => {
        lpage = await lc!.browser!.contexts()[0]!.newPage();
        await loadPage(lpage);
        const r = await frozenScenario(lpage, {
          label: 'Page.setWebLifecycleState',
          prepare: async () => {},
          freeze: (cdp) => cdp.send('Page.setWebLifecycleState', { state: 'frozen' }),
          unfreeze: (cdp) => cdp.send('Page.setWebLifecycleState', { state: 'active' }),
        });
        assert.ok(r.freezeEv, "the page got a 'freeze' event");
        assert.ok(r.resumeEv, "the page got a 'resume' event");
        await call(lpage, 'shutdown', []);
      });
    });
  });
});

// ------------------------------------------------------------- a Chromium for lifecycle tests

interface LifecycleBrowser {
  browser: Browser | null;
  proc: ChildProcess;
  dir: string;
}

/**
 * Chromium started by us with a DevTools port on 127.0.0.1, attached with
 * connectOverCDP({ noDefaults: true }) so that pages of its default context
 * get no focus emulation. (playwright's focus emulation keeps a page visible,
 * and Chromium never freezes a visible page, so Page.setWebLifecycleState is a
 * no-op on pages of a browser playwright launched.)
 */
async function launchForLifecycle(): Promise<LifecycleBrowser & { browser: Browser }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lifeline-lifecycle-'));
  const proc = spawn(peers.chromium!, [...CHROMIUM_FLAGS, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${dir}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lc: LifecycleBrowser = { browser: null, proc, dir };
  try {
    const endpoint = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let tail = '';
        proc.stderr!.setEncoding('utf8');
        proc.stderr!.on('data', (chunk: string) => {
          tail = (tail + chunk).slice(-4096);
          const m = /DevTools listening on (ws:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(tail);
          if (m) resolve(m[1]!);
        });
        proc.once('exit', (code, signal) => reject(new Error(`chromium exited (${code ?? signal}) before DevTools listened: ${tail.slice(-500)}`)));
        proc.once('error', reject);
      }),
      ms(30_000),
      "Chromium's DevTools endpoint",
    );
    const browser = await withTimeout(chromium.connectOverCDP(endpoint, { noDefaults: true }), ms(30_000), 'connectOverCDP');
    lc.browser = browser;
    return { ...lc, browser };
  } catch (err) {
    await stopLifecycleBrowser(lc);
    throw err;
  }
}

async function stopLifecycleBrowser(lc: LifecycleBrowser): Promise<void> {
  await lc.browser?.close().catch(() => {});
  const p = lc.proc;
  if (p.exitCode === null && p.signalCode === null) {
    const exited = once(p, 'exit', ms(10_000));
    p.kill('SIGTERM');
    await exited.catch(() => {
      p.kill('SIGKILL');
    });
  }
  // Chromium's helper processes may still be writing the profile for a moment
  // (longer on a loaded machine): retry, and never fail a test over a temp dir.
  try {
    rmSync(lc.dir, { recursive: true, force: true, maxRetries: 30, retryDelay: 200 });
  } catch (err) {
    console.warn(`could not remove ${lc.dir} yet (${(err as Error).message}); leaving it to the OS`);
  }
}


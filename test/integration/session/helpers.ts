// Shared helpers for the reconnect-and-resume acceptance tests (test/integration/session/).
//
// - Served: a LifelineServer on an HTTP server this file owns, so a test can
//   count TCP connections (a client that must not retry) and crash the
//   listener (close it and RST every socket) to model a dead process.
// - Tally: the numbered messages one side's application received; it knows
//   duplicates and gaps, and awaits a count (event-driven, with a guard).
// - Waiters: resolve when a predicate over counters becomes true; the code
//   that changes the counters pokes it, so no test polls or sleeps to sync.
// - RawClient, clientText: a lifeline.v1 peer over bare TCP, for tests where
//   the exact frames are the point.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { LifelineServer, type LifelineServerOptions, type ServerSession } from '../../../src/server/lifeline-server.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { maskedClientFrame } from '../../helpers/frames.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';

export const now = (): number => performance.now();

// ------------------------------------------------------------------ waiting on predicates

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

/** Predicates awaited until true; whoever changes the state calls poke(). */
export class Waiters {
  private readonly list = new Set<Waiter>();

  wait(check: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
    if (check()) return Promise.resolve();
    let waiter!: Waiter;
    const p = new Promise<void>((resolve) => {
      waiter = { check, resolve };
      this.list.add(waiter);
    });
    const label = typeof what === 'function' ? what : () => what;
    return withTimeout(p, timeoutMs, 'condition').catch((err: Error) => {
      this.list.delete(waiter);
      throw new Error(`${err.message.replace('condition', label())}`);
    });
  }

  poke(): void {
    for (const w of [...this.list]) {
      if (w.check()) {
        this.list.delete(w);
        w.resolve();
      }
    }
  }
}

// ------------------------------------------------------------------ numbered messages

/**
 * The numbered messages ("<prefix>:<n>") one application received, in
 * arrival order. `duplicates` and `disorder` count violations of
 * exactly-once in-order delivery; a test asserts both are zero.
 */
export class Tally {
  readonly values: number[] = [];
  private readonly seen = new Set<number>();
  duplicates = 0;
  /** Arrivals that were not exactly one more than the previous one. */
  disorder = 0;
  private readonly waiters = new Waiters();

  constructor(readonly prefix: string) {}

  add(data: string | Uint8Array): void {
    const raw = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    const text = raw.trimEnd();
    const m = /^([a-z]+):(\d+)$/.exec(text);
    if (!m || m[1] !== this.prefix) throw new Error(`Tally(${this.prefix}): unexpected message ${JSON.stringify(text.slice(0, 60))}`);
    const n = Number(m[2]);
    const last = this.values.length > 0 ? this.values[this.values.length - 1]! : 0;
    if (this.seen.has(n)) this.duplicates++;
    else if (n !== last + 1) this.disorder++;
    this.seen.add(n);
    this.values.push(n);
    this.waiters.poke();
  }

  get count(): number {
    return this.values.length;
  }

  has(n: number): boolean {
    return this.seen.has(n);
  }

  /** Resolves once `n` messages have arrived. */
  waitCount(n: number, timeoutMs = ms(5000)): Promise<void> {
    return this.waiters.wait(() => this.values.length >= n, timeoutMs, () => `${this.prefix}: ${n} messages (have ${this.values.length})`);
  }

  /** Exactly 1..n, each once, in order. */
  isExactly(n: number): boolean {
    if (this.values.length !== n || this.duplicates !== 0 || this.disorder !== 0) return false;
    for (let i = 0; i < n; i++) if (this.values[i] !== i + 1) return false;
    return true;
  }

  describe(): string {
    const v = this.values;
    return `${this.prefix}: ${v.length} received (${v.length ? `${v[0]}..${v[v.length - 1]}` : 'none'}), ${this.duplicates} duplicates, ${this.disorder} out of order`;
  }
}

// ------------------------------------------------------------------ servers

/** A LifelineServer on an HTTP server we own: TCP connections are counted and the listener can crash. */
export class Served {
  readonly sockets = new Set<Socket>();
  /** TCP connections accepted so far. */
  tcpAccepted = 0;
  /** performance.now() of each TCP accept. */
  readonly acceptTimes: number[] = [];
  private readonly waiters = new Waiters();
  private closed = false;

  private constructor(
    readonly http: http.Server,
    readonly server: LifelineServer,
  ) {
    http.on('connection', (s: Socket) => {
      this.tcpAccepted++;
      this.acceptTimes.push(now());
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      this.waiters.poke();
    });
  }

  /** Listens on 127.0.0.1:`port` (0: any free port) and attaches a LifelineServer with `options`. */
  static async start(options: Omit<LifelineServerOptions, 'port' | 'server' | 'noServer'> = {}, port = 0): Promise<Served> {
    const h = http.createServer();
    // Lots of clients may knock at once (the restart test): a deep accept queue.
    await new Promise<void>((resolve, reject) => {
      h.once('error', reject);
      h.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
        h.off('error', reject);
        resolve();
      });
    });
    const server = new LifelineServer({ ...options, server: h });
    return new Served(h, server);
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  url(path = '/'): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  waitTcp(n: number, timeoutMs = ms(5000)): Promise<void> {
    return this.waiters.wait(() => this.tcpAccepted >= n, timeoutMs, () => `${n} TCP connections (have ${this.tcpAccepted})`);
  }

  /**
   * A crash: the listener closes (new connections are refused) and every
   * socket is reset, with no bye and no close frame. Sessions detach.
   */
  crash(): void {
    this.http.close();
    for (const s of this.sockets) s.resetAndDestroy();
  }

  /** Graceful or not, frees the port: the session layer closes, then the HTTP server. Idempotent. */
  async close(options: { retryWindow?: number; timeout?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.server.close({ timeout: options.timeout ?? ms(2000), retryWindow: options.retryWindow });
    // Whatever is left (upgraded sockets the session layer let go of) would keep http.close() waiting.
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => {
      if (!this.http.listening) return resolve();
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}

// ------------------------------------------------------------------ misc

/** Runs every cleanup, newest first, each guarded so one failure does not leak the rest. */
export class Cleanup {
  private readonly fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve(fn()), ms(10000), 'cleanup');
      } catch (err) {
        console.error('cleanup failed:', err);
      }
    }
  }
}

/**
 * Resolves after `msDelay`. Only for windows that ARE the thing under test
 * (traffic for 20 s; "no reconnect attempt within N backoff periods"), never
 * to synchronise.
 */
export function observe(msDelay: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msDelay));
}

/** An event's arguments, the first time `pred` accepts them. */
export function onceWhere<A extends unknown[]>(
  emitter: { on(e: string, fn: (...a: any[]) => void): unknown; off(e: string, fn: (...a: any[]) => void): unknown },
  event: string,
  pred: (...args: A) => boolean,
  timeoutMs: number,
): Promise<A> {
  let fn!: (...a: any[]) => void;
  const p = new Promise<A>((resolve) => {
    fn = (...args: any[]) => {
      if (pred(...(args as A))) resolve(args as A);
    };
    emitter.on(event, fn);
  });
  return withTimeout(p, timeoutMs, `'${event}' matching the condition`).finally(() => emitter.off(event, fn));
}

/** The next `event` (first argument); unlike peers.once, an 'error' emitted meanwhile does not reject (fatal closes come after an error event). */
export function nextEvent<T>(
  emitter: { on(e: string, fn: (...a: any[]) => void): unknown; off(e: string, fn: (...a: any[]) => void): unknown },
  event: string,
  timeoutMs: number,
): Promise<T> {
  return onceWhere<[T]>(emitter, event, () => true, timeoutMs).then((a) => a[0]);
}

/** Histogram of `values` in buckets of `width` from 0; returns counts and a printable block. */
export function histogram(values: number[], width: number, buckets: number): { counts: number[]; overflow: number; text: string } {
  const counts = new Array<number>(buckets).fill(0);
  let overflow = 0;
  for (const v of values) {
    const i = Math.floor(Math.max(0, v) / width);
    if (i < buckets) counts[i]!++;
    else overflow++;
  }
  const max = Math.max(1, ...counts, overflow);
  const bar = (n: number) => '*'.repeat(Math.round((n / max) * 50));
  const lines = counts.map((n, i) => `  ${String(i * width).padStart(5)}-${String((i + 1) * width).padEnd(5)} ms ${String(n).padStart(5)} ${bar(n)}`);
  if (overflow > 0) lines.push(`  >=${buckets * width} ms ${String(overflow).padStart(8)} ${bar(overflow)}`);
  return { counts, overflow, text: lines.join('\n') };
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))));
  return sorted[i]!;
}

/** Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs. */
export function ksDistance(a: number[], b: number[]): number {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** A Served LifelineServer (heartbeat off unless `options` say otherwise) behind a FaultProxy; `cleanup` closes both. */
export async function servedBehindProxy(
  cleanup: Cleanup,
  options: Omit<LifelineServerOptions, 'port' | 'server' | 'noServer'> = { heartbeat: 'off' },
): Promise<{ served: Served; proxy: FaultProxy }> {
  const served = await Served.start(options);
  cleanup.add(() => served.close());
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: served.port });
  cleanup.add(() => proxy.close());
  return { served, proxy };
}

// ------------------------------------------------------------------ raw lifeline.v1 peer

/** A masked text frame from the client (RFC 6455 5.3). */
export function clientText(text: string): Buffer {
  return maskedClientFrame(0x1, Buffer.from(text));
}

/** Raw client: the upgrade, then every text frame the server sends, in order. */
export class RawClient {
  readonly texts: string[] = [];
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private readonly w = new Waiters();

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
      this.w.poke();
    });
    sock.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect', ms(5000));
    const c = new RawClient(sock);
    sock.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: lifeline.v1\r\n\r\n`,
    );
    return c;
  }

  private parse(): void {
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(this.buf.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
      this.upgraded = true;
      this.buf = this.buf.subarray(end + 4);
    }
    while (this.buf.length >= 2) {
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      assert.ok(len < 127, 'no frame above 64 KiB in this test');
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      }
      if (this.buf.length < at + len) return;
      assert.equal(this.buf[0], 0x81, 'a text frame, unfragmented');
      this.texts.push(this.buf.subarray(at, at + len).toString());
      this.buf = this.buf.subarray(at + len);
    }
  }

  /** Waits until `n` text frames have arrived in all; returns the ones from index `from`. */
  async frames(from: number, n: number): Promise<string[]> {
    await this.w.wait(() => this.texts.length >= n, ms(5000), () => `${n} frames (have ${JSON.stringify(this.texts)})`);
    return this.texts.slice(from, n);
  }
}

/**
 * A LifelineServer (on Served) with `options` and a RawClient past its
 * hello and welcome; `cleanup` closes both.
 */
export async function rawSession(
  cleanup: Cleanup,
  options: Omit<LifelineServerOptions, 'port' | 'server' | 'noServer'>,
): Promise<{ served: Served; client: RawClient; s: ServerSession }> {
  const served = await Served.start(options);
  cleanup.add(() => served.close());
  const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
  const client = await RawClient.connect(served.port);
  cleanup.add(() => client.sock.destroy());
  client.sock.write(clientText('{"t":"hello","v":1}'));
  const s = await sessP;
  const [welcome] = await client.frames(0, 1);
  assert.match(welcome!, /^\{"t":"welcome"/);
  return { served, client, s };
}

// A TCP fault injector for the liveness and resume tests.
//
// FaultProxy listens on 127.0.0.1:0 and forwards every accepted connection to a
// target host:port. Each direction of each connection ('up' = client -> server,
// 'down' = server -> client) goes through a Pipe whose shaping can be switched at
// runtime, for all current and future connections (proxy methods) or for one
// connection (the same methods on a FaultConnection):
//
//   pass()                         forward as fast as the sockets allow
//   delay(ms, jitterMs)            each chunk leaves ms ± uniform jitter after it arrived;
//                                  bytes are never reordered (one FIFO per pipe)
//   throttle(bytesPerSecond)       token bucket; big chunks are split so they trickle
//   blackhole(direction, policy)   stop forwarding without closing (the half-open case):
//                                  'drop' discards bytes and FIN/RST (a dead NAT),
//                                  'hold' keeps them until the direction leaves hold (a stall)
//   cutRst()                       RST both sockets now
//   cutAfterBytes(direction, n)    forward exactly n more bytes that way, then RST both
//   cutMidFrame(direction)         RST both once the next WebSocket frame's header and
//                                  half of its payload have passed
//   refuse()                       (proxy only) RST new connections at once: "server down"
//
// Everything is awaitable, so tests never sleep to synchronise:
//   await proxy.onConnection()                     each accepted connection once, in accept order
//   await conn.closed                              both sockets closed (with the reason)
//   await conn.waitFor('up', 'dropped', 5)         a counter reached a value
//
// Bounded: one timer per pipe at most, all unref'd and cleared when the
// connection closes; close() destroys every socket and the listener.
//
//   const proxy = await FaultProxy.start({ host: '127.0.0.1', port: wss.address().port });
//   const ws = await connect(proxy.url('/chat'));
//   proxy.blackhole('down', 'drop');  // the client hears nothing; nobody sees a close
//   ...
//   await proxy.close();

import net from 'node:net';
import { performance } from 'node:perf_hooks';

import { ms } from './peers.js';

// ------------------------------------------------------------------ types

/** 'up' is client -> server, 'down' is server -> client. */
export type Direction = 'up' | 'down';
export type Directions = Direction | 'both';
/** 'drop' models a dead NAT (bytes vanish), 'hold' a stall (bytes wait, then flow). */
export type BlackholePolicy = 'drop' | 'hold';

export type Shaping =
  | { readonly kind: 'pass' }
  | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs: number }
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number; readonly burstBytes: number }
  | { readonly kind: 'blackhole'; readonly policy: BlackholePolicy };

/** A pending cut in one direction. */
export type Cut = { readonly kind: 'after-bytes'; readonly bytes: number } | { readonly kind: 'mid-frame' };

export interface DirectionCounters {
  /** Bytes read from the sending socket. */
  received: number;
  /** Bytes written to the receiving socket. */
  forwarded: number;
  /** Bytes thrown away (blackhole 'drop', or still queued when the connection was cut). */
  dropped: number;
  /** Bytes waiting in the pipe right now (delayed, throttled or held). */
  queued: number;
  /** 'data' chunks read from the sending socket. */
  chunks: number;
  /** WebSocket frame headers forwarded (after the HTTP handshake, if one was seen). */
  frames: number;
}

export interface ProxyCounters {
  /** Connections accepted (including refused ones). */
  accepted: number;
  up: DirectionCounters;
  down: DirectionCounters;
}

export type ConnectionState = 'connecting' | 'open' | 'cutting' | 'closed';

/** Why a connection went away: the first cause wins. */
export type CloseReason =
  | 'ended' // both sides closed normally (FIN both ways)
  | 'cut' // cutRst / cutAfterBytes / cutMidFrame
  | 'refused' // refuse() mode
  | 'upstream-failed' // could not connect to the target
  | 'client-reset' // the client's socket errored (RST) and the reset was forwarded
  | 'server-reset' // the target's socket errored (RST) and the reset was forwarded
  | 'proxy-closed'; // proxy.close()

export interface ConnectionEnd {
  reason: CloseReason;
  /** Error code seen on the proxy's client-side socket (e.g. 'ECONNRESET'), or null. */
  clientError: string | null;
  /** Error code seen on the proxy's server-side socket, or null. */
  serverError: string | null;
}

export interface FaultProxyOptions {
  /** Address to listen on. Default '127.0.0.1' (house rule: loopback only). */
  host?: string;
  /** Bytes queued in one pipe before the sending socket is paused. Default 1 MiB. */
  highWaterMark?: number;
  /** Clock for delays and throttling, ms. Default performance.now. */
  now?: () => number;
  /** Uniform [0, 1) source for delay jitter. Default Math.random. */
  random?: () => number;
}

export interface Target {
  host: string;
  port: number;
}

type CounterField = keyof DirectionCounters;

const DIRECTIONS: readonly Direction[] = ['up', 'down'];
const PASS: Shaping = { kind: 'pass' };

function expand(d: Directions): readonly Direction[] {
  return d === 'both' ? DIRECTIONS : [d];
}

function zeroCounters(): DirectionCounters {
  return { received: 0, forwarded: 0, dropped: 0, queued: 0, chunks: 0, frames: 0 };
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

// ------------------------------------------------------------------ waiting on counters

interface Waiter {
  check: () => boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Promises that resolve when a predicate over some counters becomes true. */
class Waiters {
  private readonly list = new Set<Waiter>();

  wait(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.list.delete(waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      waiter.timer.unref();
      this.list.add(waiter);
    });
  }

  /** Re-evaluates every waiter; call after counters change. */
  poke(): void {
    if (this.list.size === 0) return;
    for (const w of [...this.list]) {
      if (w.check()) {
        clearTimeout(w.timer);
        this.list.delete(w);
        w.resolve();
      }
    }
  }

  rejectAll(err: Error): void {
    for (const w of this.list) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.list.clear();
  }
}

// ------------------------------------------------------------------ WebSocket frame boundaries

const CRLFCRLF = [13, 10, 13, 10];

/**
 * Follows a byte stream to know where WebSocket frames start: skips an HTTP
 * head (if the stream starts with 'G' of GET or 'H' of HTTP/1.1) up to CRLFCRLF,
 * then parses RFC 6455 5.2 headers and skips payloads. Only what cutMidFrame needs.
 */
class FrameTracker {
  /** Bytes fed so far. */
  pos = 0;
  /** Complete frame headers seen. */
  frames = 0;
  private state: 'detect' | 'http' | 'header' | 'payload' = 'detect';
  private crlfMatched = 0;
  private readonly header = Buffer.alloc(14);
  private headerFill = 0;
  private headerNeeded = 2;
  private headerStart = 0;
  private remaining = 0;

  clone(): FrameTracker {
    const c = new FrameTracker();
    c.pos = this.pos;
    c.frames = this.frames;
    c.state = this.state;
    c.crlfMatched = this.crlfMatched;
    this.header.copy(c.header);
    c.headerFill = this.headerFill;
    c.headerNeeded = this.headerNeeded;
    c.headerStart = this.headerStart;
    c.remaining = this.remaining;
    return c;
  }

  /** Consumes `buf`; calls onHeader(absolute frame start, header length, payload length) per complete header. */
  feed(buf: Buffer, onHeader?: (start: number, headerLength: number, payloadLength: number) => void): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case 'detect': {
          const b = buf[i]!;
          // 'G' (GET ...) or 'H' (HTTP/1.1 101): a handshake first. As frame
          // bytes these would be invalid anyway (RSV bits set on a non-FIN frame).
          this.state = b === 0x47 || b === 0x48 ? 'http' : 'header';
          this.headerStart = this.pos;
          break;
        }
        case 'http': {
          const b = buf[i++]!;
          this.pos++;
          if (b === CRLFCRLF[this.crlfMatched]) this.crlfMatched++;
          else this.crlfMatched = b === 13 ? 1 : 0;
          if (this.crlfMatched === 4) {
            this.state = 'header';
            this.headerStart = this.pos;
          }
          break;
        }
        case 'header': {
          this.header[this.headerFill++] = buf[i++]!;
          this.pos++;
          if (this.headerFill === 2) {
            const len7 = this.header[1]! & 0x7f;
            const masked = (this.header[1]! & 0x80) !== 0;
            this.headerNeeded = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
          }
          if (this.headerFill >= 2 && this.headerFill === this.headerNeeded) {
            const len7 = this.header[1]! & 0x7f;
            const payload =
              len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
            this.frames++;
            onHeader?.(this.headerStart, this.headerNeeded, payload);
            this.headerFill = 0;
            this.headerNeeded = 2;
            if (payload === 0) {
              this.headerStart = this.pos;
            } else {
              this.state = 'payload';
              this.remaining = payload;
            }
          }
          break;
        }
        case 'payload': {
          const n = Math.min(this.remaining, buf.length - i);
          i += n;
          this.pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = 'header';
            this.headerStart = this.pos;
          }
          break;
        }
      }
    }
  }
}

// ------------------------------------------------------------------ one direction of one connection

type Item = { data: Buffer; readyAt: number | null } | { signal: 'fin' | 'rst'; readyAt: number | null };

interface Env {
  now: () => number;
  random: () => number;
  highWaterMark: number;
}

class Pipe {
  readonly counters = zeroCounters();
  private readonly queue: Item[] = [];
  private shaping: Shaping = PASS;
  /** Bytes that may still pass before both sockets are reset; null: no cut pending. */
  private cutBudget: number | null = null;
  /** cutMidFrame armed at this stream position (frames starting before it are not candidates). */
  private midFrameFrom: number | null = null;
  private readonly tracker = new FrameTracker();
  private tokens = 0;
  private lastRefill = 0;
  private lastReadyAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private blocked = false;
  private srcPaused = false;
  private disposed = false;

  constructor(
    readonly direction: Direction,
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly conn: FaultConnection,
    private readonly aggregate: DirectionCounters,
    private readonly env: Env,
  ) {}

  private add(field: CounterField, n: number): void {
    this.counters[field] += n;
    this.aggregate[field] += n;
  }

  setShaping(s: Shaping): void {
    const was = this.shaping;
    this.shaping = s;
    if (s.kind === 'throttle') {
      // A fresh bucket starts full only if we were not already throttling.
      if (was.kind !== 'throttle') this.tokens = s.burstBytes;
      else this.tokens = Math.min(this.tokens, s.burstBytes);
      this.lastRefill = this.env.now();
    }
    if (s.kind === 'blackhole' && s.policy === 'drop') this.dropQueued();
    this.pump();
  }

  setCut(cut: Cut | null): void {
    if (cut === null) {
      this.cutBudget = null;
      this.midFrameFrom = null;
    } else if (cut.kind === 'after-bytes') {
      this.midFrameFrom = null;
      this.cutBudget = cut.bytes;
      if (cut.bytes === 0) {
        this.conn.cutRst();
        return;
      }
    } else {
      this.cutBudget = null;
      this.midFrameFrom = this.tracker.pos;
    }
    this.pump();
  }

  onData(chunk: Buffer): void {
    this.add('received', chunk.length);
    this.add('chunks', 1);
    if (!this.conn.forwarding || this.shaping.kind === 'blackhole' && this.shaping.policy === 'drop') {
      this.add('dropped', chunk.length);
    } else {
      this.queue.push({ data: chunk, readyAt: this.readyAt() });
      this.add('queued', chunk.length);
      this.pump();
    }
    this.conn.poke();
  }

  /** The sending socket ended (FIN) or failed (treated as RST): pass it on in order, like a packet. */
  onSignal(signal: 'fin' | 'rst'): void {
    if (!this.conn.forwarding || this.shaping.kind === 'blackhole' && this.shaping.policy === 'drop') return;
    this.queue.push({ signal, readyAt: this.readyAt() });
    this.pump();
  }

  private readyAt(): number | null {
    const s = this.shaping;
    if (s.kind === 'blackhole') return null; // hold: decided on release
    const now = this.env.now();
    if (s.kind !== 'delay') return now;
    const jitter = s.jitterMs === 0 ? 0 : (this.env.random() * 2 - 1) * s.jitterMs;
    // Never earlier than a chunk already queued: order is kept by the FIFO anyway,
    // this keeps readyAt monotonic so timers are armed for the right item.
    const at = Math.max(now, now + s.ms + jitter, this.lastReadyAt);
    this.lastReadyAt = at;
    return at;
  }

  private dropQueued(): void {
    let bytes = 0;
    for (const item of this.queue) if ('data' in item) bytes += item.data.length;
    this.queue.length = 0;
    if (bytes > 0) {
      this.add('queued', -bytes);
      this.add('dropped', bytes);
      this.conn.poke();
    }
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.max(1, Math.ceil(delayMs)));
    this.timer.unref();
  }

  /** Moves what may move now from the queue to the receiving socket. */
  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.disposed) return;
    if (!this.conn.forwarding) {
      this.dropQueued();
      return;
    }
    // Every iteration forwards at least one byte or one signal, or returns.
    while (this.queue.length > 0 && !this.blocked) {
      const s = this.shaping;
      if (s.kind === 'blackhole') break; // hold ('drop' never queues)
      const item = this.queue[0]!;
      const now = this.env.now();
      item.readyAt ??= now;
      if (item.readyAt > now) {
        this.schedule(item.readyAt - now);
        break;
      }
      if ('signal' in item) {
        this.queue.shift();
        if (item.signal === 'fin') {
          if (!this.dst.destroyed) this.dst.end();
        } else {
          this.conn.forwardReset(this.direction);
          return;
        }
        continue;
      }
      let n = item.data.length;
      if (s.kind === 'throttle') {
        this.tokens = Math.min(s.burstBytes, this.tokens + ((now - this.lastRefill) * s.bytesPerSecond) / 1000);
        this.lastRefill = now;
        // Forward in quanta (1/100 s of rate), not in the few bytes that refill
        // between two wakeups: that busy-looped at 100% CPU with tiny writes.
        const quantum = Math.min(n, s.burstBytes, Math.max(1, s.bytesPerSecond / 100));
        if (this.tokens < quantum) {
          this.schedule(((quantum - this.tokens) * 1000) / s.bytesPerSecond);
          break;
        }
        n = Math.min(n, Math.floor(this.tokens));
        this.tokens -= n;
      }
      if (this.midFrameFrom !== null && this.cutBudget === null) {
        const from = this.midFrameFrom;
        const base = this.tracker.pos;
        let cutAt: number | null = null;
        this.tracker.clone().feed(item.data.subarray(0, n), (start, headerLength, payloadLength) => {
          if (cutAt === null && start >= from && payloadLength >= 2) cutAt = start + headerLength + Math.floor(payloadLength / 2);
        });
        if (cutAt !== null) {
          this.midFrameFrom = null;
          this.cutBudget = (cutAt as number) - base;
        }
      }
      let cutNow = false;
      if (this.cutBudget !== null) {
        n = Math.min(n, this.cutBudget);
        this.cutBudget -= n;
        cutNow = this.cutBudget === 0;
      }
      const chunk = n === item.data.length ? item.data : item.data.subarray(0, n);
      if (n === item.data.length) this.queue.shift();
      else item.data = item.data.subarray(n);
      const framesBefore = this.tracker.frames;
      this.tracker.feed(chunk);
      if (this.tracker.frames !== framesBefore) this.add('frames', this.tracker.frames - framesBefore);
      this.add('queued', -n);
      if (this.dst.destroyed) {
        this.add('dropped', n);
        // A cut whose budget is spent must still happen, or this loop spins on 0 bytes.
        if (cutNow) {
          this.conn.cutRst();
          return;
        }
        continue;
      }
      this.add('forwarded', n);
      if (cutNow) {
        // Reset only once the bytes are in the kernel, so exactly n of them go out,
        // and two event-loop turns later, so that a receiver in this process reads
        // them first: libuv reports data and RST arriving in one wakeup as a plain
        // EOF (POLLHUP after a partial read), which would hide the reset.
        this.conn.beginCut();
        this.dst.write(chunk, () => setImmediate(() => setImmediate(() => this.conn.cutRst())));
        this.conn.poke();
        return;
      }
      if (!this.dst.write(chunk)) {
        this.blocked = true;
        this.dst.once('drain', () => {
          this.blocked = false;
          this.pump();
        });
      }
    }
    this.flowControl();
    this.conn.poke();
  }

  /** Pause the sender while the queue is full or the receiver is blocked. */
  private flowControl(): void {
    const full = this.blocked || this.counters.queued >= this.env.highWaterMark;
    if (full && !this.srcPaused) {
      this.srcPaused = true;
      this.src.pause();
    } else if (!full && this.srcPaused) {
      this.srcPaused = false;
      this.src.resume();
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dropQueued();
  }
}

// ------------------------------------------------------------------ the fault methods, for a proxy or one connection

abstract class FaultControls {
  /** Forward freely in `direction`; also cancels pending cuts there. Held bytes are released. */
  pass(direction: Directions = 'both'): this {
    for (const d of expand(direction)) {
      this.applyShaping(d, PASS);
      this.applyCut(d, null);
    }
    return this;
  }

  /** Deliver each chunk `ms` ± uniform `jitterMs` after it arrived, never reordering bytes. */
  delay(ms: number, jitterMs = 0, direction: Directions = 'both'): this {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`delay: ms must be >= 0, got ${ms}`);
    if (!(Number.isFinite(jitterMs) && jitterMs >= 0)) throw new RangeError(`delay: jitterMs must be >= 0, got ${jitterMs}`);
    for (const d of expand(direction)) this.applyShaping(d, { kind: 'delay', ms, jitterMs });
    return this;
  }

  /**
   * Token bucket of `bytesPerSecond`, holding at most `burstBytes` (default 1/20 s
   * worth, at least 1 byte). Chunks larger than the available tokens are split.
   */
  throttle(bytesPerSecond: number, direction: Directions = 'both', opts: { burstBytes?: number } = {}): this {
    if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
      throw new RangeError(`throttle: bytesPerSecond must be > 0, got ${bytesPerSecond}`);
    }
    const burstBytes = opts.burstBytes ?? Math.max(1, Math.floor(bytesPerSecond / 20));
    if (!(Number.isFinite(burstBytes) && burstBytes >= 1)) throw new RangeError(`throttle: burstBytes must be >= 1, got ${burstBytes}`);
    for (const d of expand(direction)) this.applyShaping(d, { kind: 'throttle', bytesPerSecond, burstBytes });
    return this;
  }

  /**
   * Stop forwarding in `direction` without closing anything: the half-open case.
   * 'drop' discards bytes (and FIN/RST) arriving from now on and those still queued;
   * 'hold' keeps them (pausing the sender beyond highWaterMark) until the
   * direction is switched to another mode.
   */
  blackhole(direction: Directions = 'both', policy: BlackholePolicy = 'drop'): this {
    for (const d of expand(direction)) this.applyShaping(d, { kind: 'blackhole', policy });
    return this;
  }

  /** Forward exactly `n` more bytes in `direction` (each direction its own budget), then RST both sockets. */
  cutAfterBytes(direction: Directions, n: number): this {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`cutAfterBytes: n must be an integer >= 0, got ${n}`);
    for (const d of expand(direction)) this.applyCut(d, { kind: 'after-bytes', bytes: n });
    return this;
  }

  /**
   * RST both sockets in the middle of the next WebSocket frame in `direction`
   * (one that starts after this call and has >= 2 payload bytes): its header and
   * floor(payload / 2) bytes pass, the rest never does.
   */
  cutMidFrame(direction: Directions): this {
    for (const d of expand(direction)) this.applyCut(d, { kind: 'mid-frame' });
    return this;
  }

  /** Destroy both sockets with RST now. */
  abstract cutRst(): void;
  protected abstract applyShaping(direction: Direction, shaping: Shaping): void;
  protected abstract applyCut(direction: Direction, cut: Cut | null): void;
}

// ------------------------------------------------------------------ one proxied connection

let nextConnectionId = 1;

export class FaultConnection extends FaultControls {
  readonly id = nextConnectionId++;
  /** Resolves once both sockets are closed. Never rejects. */
  readonly closed: Promise<ConnectionEnd>;
  private stateValue: ConnectionState = 'connecting';
  private reason: CloseReason | null = null;
  private clientError: string | null = null;
  private serverError: string | null = null;
  private readonly pipes: Record<Direction, Pipe>;
  private readonly waiters = new Waiters();
  private resolveClosed!: (end: ConnectionEnd) => void;
  private socketsOpen = 2;

  /** @internal Built by FaultProxy. */
  constructor(
    /** The proxy's socket facing the client (accepted). */
    readonly client: net.Socket,
    /** The proxy's socket facing the target. */
    readonly server: net.Socket,
    private readonly proxy: FaultProxy,
    aggregate: ProxyCounters,
    env: Env,
  ) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.pipes = {
      up: new Pipe('up', client, server, this, aggregate.up, env),
      down: new Pipe('down', server, client, this, aggregate.down, env),
    };
    for (const [socket, pipe, side] of [
      [client, this.pipes.up, 'client'],
      [server, this.pipes.down, 'server'],
    ] as const) {
      socket.on('data', (chunk: Buffer) => pipe.onData(chunk));
      socket.on('end', () => pipe.onSignal('fin'));
      socket.on('error', (err) => {
        if (side === 'client') this.clientError ??= errorCode(err);
        else this.serverError ??= errorCode(err);
        if (side === 'server' && this.stateValue === 'connecting') {
          this.reason ??= 'upstream-failed';
          this.transition('cutting');
          resetSocket(client);
          return;
        }
        pipe.onSignal('rst');
      });
      socket.on('close', () => {
        if (--this.socketsOpen === 0) this.finish();
      });
    }
    server.once('connect', () => {
      if (this.stateValue === 'connecting') this.transition('open');
    });
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Per-direction counters of this connection. */
  get counters(): Readonly<Record<Direction, Readonly<DirectionCounters>>> {
    return { up: this.pipes.up.counters, down: this.pipes.down.counters };
  }

  /** Resolves once counters[direction][field] >= atLeast (e.g. waitFor('up', 'dropped', 5)). */
  waitFor(direction: Direction, field: CounterField, atLeast: number, timeoutMs = ms(5000)): Promise<void> {
    const c = this.pipes[direction].counters;
    return this.waiters.wait(() => c[field] >= atLeast, timeoutMs, `connection ${this.id}: ${direction}.${field} >= ${atLeast} (now ${c[field]})`);
  }

  override cutRst(): void {
    if (this.stateValue === 'closed') return;
    this.reason ??= 'cut';
    this.transition('cutting');
    resetSocket(this.client);
    resetSocket(this.server);
  }

  /** @internal */
  get forwarding(): boolean {
    return this.stateValue === 'connecting' || this.stateValue === 'open';
  }

  /** @internal A cutAfterBytes budget ran out: stop forwarding while the last bytes are written. */
  beginCut(): void {
    this.reason ??= 'cut';
    this.transition('cutting');
  }

  /** @internal A socket failed and the RST reached the front of its pipe: reset the other side. */
  forwardReset(direction: Direction): void {
    this.reason ??= direction === 'up' ? 'client-reset' : 'server-reset';
    this.transition('cutting');
    resetSocket(direction === 'up' ? this.server : this.client);
  }

  /** @internal */
  destroy(reason: CloseReason): void {
    if (this.stateValue === 'closed') return;
    this.reason ??= reason;
    this.transition('cutting');
    this.client.destroy();
    this.server.destroy();
  }

  /** @internal */
  poke(): void {
    this.waiters.poke();
    this.proxy.poke();
  }

  /** @internal Proxy-wide settings reach each connection through here. */
  setShapingFromProxy(direction: Direction, shaping: Shaping): void {
    this.applyShaping(direction, shaping);
  }

  /** @internal */
  setCutFromProxy(direction: Direction, cut: Cut | null): void {
    this.applyCut(direction, cut);
  }

  protected override applyShaping(direction: Direction, shaping: Shaping): void {
    this.pipes[direction].setShaping(shaping);
  }

  protected override applyCut(direction: Direction, cut: Cut | null): void {
    if (this.forwarding) this.pipes[direction].setCut(cut);
  }

  private transition(to: ConnectionState): void {
    const from = this.stateValue;
    if (from === to || from === 'closed') return;
    if (from === 'cutting' && to !== 'closed') return;
    this.stateValue = to;
    if (to === 'cutting') {
      this.pipes.up.pump(); // drops what is queued
      this.pipes.down.pump();
    }
  }

  private finish(): void {
    this.transition('closed');
    this.pipes.up.dispose();
    this.pipes.down.dispose();
    this.waiters.rejectAll(new Error(`connection ${this.id} closed`));
    this.resolveClosed({ reason: this.reason ?? 'ended', clientError: this.clientError, serverError: this.serverError });
    this.proxy.forget(this);
  }
}

function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  // On Node 20, resetAndDestroy() right after end() (our FIN still flushing)
  // fails with EINVAL and never emits 'close', which hung proxy.close(): a
  // plain destroy is the best we can do for a socket already half-closed.
  if (socket.writableEnded && !socket.writableFinished) {
    socket.destroy();
    return;
  }
  // RST instead of FIN: SO_LINGER 0 then close (Node >= 16.17 / 18.3).
  socket.resetAndDestroy();
}

// ------------------------------------------------------------------ the proxy

interface ConnectionWaiter {
  resolve: (c: FaultConnection) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class FaultProxy extends FaultControls {
  readonly target: Target;
  readonly host: string;
  /** Totals over every connection, past and present. */
  readonly counters: ProxyCounters = { accepted: 0, up: zeroCounters(), down: zeroCounters() };
  private readonly server: net.Server;
  private readonly env: Env;
  private readonly live = new Set<FaultConnection>();
  /** Accepted connections not yet handed out by onConnection(), in accept order. */
  private readonly unclaimed: FaultConnection[] = [];
  private readonly connectionWaiters: ConnectionWaiter[] = [];
  private readonly waiters = new Waiters();
  private readonly shaping: Record<Direction, Shaping> = { up: PASS, down: PASS };
  private readonly futureCuts: Record<Direction, Cut | null> = { up: null, down: null };
  private refusing = false;
  private closing: Promise<void> | null = null;
  private portValue = 0;

  private constructor(target: Target, opts: FaultProxyOptions) {
    super();
    this.target = { host: target.host, port: target.port };
    this.host = opts.host ?? '127.0.0.1';
    const highWaterMark = opts.highWaterMark ?? 1024 * 1024;
    if (!(Number.isInteger(highWaterMark) && highWaterMark > 0)) {
      throw new RangeError(`highWaterMark must be a positive integer, got ${highWaterMark}`);
    }
    this.env = { now: opts.now ?? (() => performance.now()), random: opts.random ?? Math.random, highWaterMark };
    // allowHalfOpen: a FIN from one side is forwarded as a FIN, not a full close.
    // noDelay on both legs: Nagle would add ~40 ms to small frames and skew RTT samples.
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts a proxy on opts.host (127.0.0.1):0 forwarding to `target`. */
  static async start(target: Target, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, opts);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, proxy.host, () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    const address = proxy.server.address();
    if (address === null || typeof address === 'string') throw new Error('FaultProxy: could not read the bound address');
    proxy.portValue = address.port;
    proxy.server.on('error', () => {}); // after listening, errors are per connection
    return proxy;
  }

  get port(): number {
    return this.portValue;
  }

  /** `ws://127.0.0.1:PORT/path` */
  url(path = '/'): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${host}:${this.port}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /** Live connections (both sockets not yet closed), oldest first. */
  get connections(): readonly FaultConnection[] {
    return [...this.live];
  }

  /**
   * The next accepted connection not yet handed out by onConnection(): each
   * connection is handed out once, in accept order, so it does not matter
   * whether the client connected before or after this call.
   */
  onConnection(timeoutMs = ms(5000)): Promise<FaultConnection> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closing) return Promise.reject(new Error('FaultProxy is closed'));
    return new Promise((resolve, reject) => {
      const waiter: ConnectionWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.connectionWaiters.splice(this.connectionWaiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a connection to the proxy on port ${this.port}`));
        }, timeoutMs),
      };
      waiter.timer.unref();
      this.connectionWaiters.push(waiter);
    });
  }

  /** Resolves once the totals reach a value, e.g. waitFor('down', 'forwarded', 1000). */
  waitFor(direction: Direction, field: CounterField, atLeast: number, timeoutMs = ms(5000)): Promise<void> {
    const c = this.counters[direction];
    return this.waiters.wait(() => c[field] >= atLeast, timeoutMs, `proxy: ${direction}.${field} >= ${atLeast} (now ${c[field]})`);
  }

  /** Reset every new connection at once (models a server that is down); refuse(false) to stop. */
  refuse(on = true): this {
    this.refusing = on;
    return this;
  }

  /** RST every current connection. New connections are not affected. */
  override cutRst(): void {
    for (const c of this.live) c.cutRst();
  }

  /**
   * As on a connection, for every current connection; with `{ future: true }`
   * also for each connection accepted later (each with its own budget of n)
   * until pass() on that direction.
   */
  override cutAfterBytes(direction: Directions, n: number, opts: { future?: boolean } = {}): this {
    super.cutAfterBytes(direction, n);
    if (opts.future) for (const d of expand(direction)) this.futureCuts[d] = { kind: 'after-bytes', bytes: n };
    return this;
  }

  /** As on a connection, for every current connection; `{ future: true }` as for cutAfterBytes. */
  override cutMidFrame(direction: Directions, opts: { future?: boolean } = {}): this {
    super.cutMidFrame(direction);
    if (opts.future) for (const d of expand(direction)) this.futureCuts[d] = { kind: 'mid-frame' };
    return this;
  }

  /** Destroys the listener and every connection. Idempotent; resolves when all is closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const err = new Error('FaultProxy closed');
      for (const w of this.connectionWaiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      this.waiters.rejectAll(err);
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const all = [...this.live];
      for (const c of all) c.destroy('proxy-closed');
      await Promise.all([serverClosed, ...all.map((c) => c.closed)]);
      this.unclaimed.length = 0;
    })();
    return this.closing;
  }

  /** @internal */
  poke(): void {
    this.waiters.poke();
  }

  /** @internal */
  forget(c: FaultConnection): void {
    this.live.delete(c);
  }

  protected override applyShaping(direction: Direction, shaping: Shaping): void {
    this.shaping[direction] = shaping;
    for (const c of this.live) c.setShapingFromProxy(direction, shaping);
  }

  protected override applyCut(direction: Direction, cut: Cut | null): void {
    if (cut === null) this.futureCuts[direction] = null;
    for (const c of this.live) c.setCutFromProxy(direction, cut);
  }

  private accept(client: net.Socket): void {
    this.counters.accepted++;
    if (this.closing) {
      client.destroy();
      return;
    }
    if (this.refusing) {
      client.on('error', () => {});
      resetSocket(client);
      this.poke();
      return;
    }
    const server = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true, noDelay: true });
    const conn = new FaultConnection(client, server, this, this.counters, this.env);
    this.live.add(conn);
    for (const d of DIRECTIONS) {
      conn.setShapingFromProxy(d, this.shaping[d]);
      const cut = this.futureCuts[d];
      if (cut) conn.setCutFromProxy(d, cut);
    }
    const waiter = this.connectionWaiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(conn);
    } else {
      this.unclaimed.push(conn);
    }
    this.poke();
  }
}

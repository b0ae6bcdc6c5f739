// Shared helpers for the liveness acceptance tests (test/integration/liveness/).
//
// Time scaling. The real presets (normal: ping after 25 s, dead after 30-40 s;
// aggressive: 5 s, 6-9 s) are far too slow for CI, so these tests run the same
// presets with every duration divided by a factor: scaled('normal', 25) is
// interval 1000, timeout 200..600 (initial 600), lateSlack 80; k stays 4 (it
// is a ratio). The issue's bound "dead within interval + timeout + 1 s" scales
// with it: the 1 s becomes 1000/factor ms. On top of that the bound allows
// for the server's timing wheel (each of the two checks, ping and deadline,
// runs on the first wheel tick at or after its due time, so each may be up to
// one tick late: 2 ticks), plus ms(SCHED_MS) for the event loop of a loaded
// test machine (LIFELINE_TEST_UNIT scales it, and every guard, on slow
// machines). detectionBound() returns the pieces so tests print them.
//
// Wire tap. WireTap follows the RFC 6455 frames crossing a FaultProxy
// connection in both directions (unmasking client frames) and counts
// protocol pings/pongs and lifeline.v1 control pings/pongs, so tests can
// check on the wire what the stats claim.

import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

import type { LifelineClient } from '../../../src/client/lifeline-client.js';
import { LifelineServer, type LifelineServerOptions, type ServerSession } from '../../../src/server/lifeline-server.js';
import { HEARTBEAT_PRESETS, type HeartbeatConfig, type HeartbeatPreset } from '../../../src/session/heartbeat.js';
import type { FaultConnection } from '../../helpers/fault-proxy.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';

// ------------------------------------------------------------------ time scaling

/** Every duration of `preset` divided by `factor` (rounded, at least 1 ms); k unchanged. */
export function scaled(preset: HeartbeatPreset | HeartbeatConfig, factor: number): HeartbeatConfig {
  if (!(Number.isFinite(factor) && factor > 0)) throw new RangeError(`scaled: factor must be > 0, got ${factor}`);
  const base = typeof preset === 'string' ? HEARTBEAT_PRESETS[preset] : preset;
  const d = (n: number) => Math.max(1, Math.round(n / factor));
  return {
    interval: d(base.interval),
    timeoutFloor: d(base.timeoutFloor),
    timeoutCeiling: d(base.timeoutCeiling),
    timeoutInitial: d(base.timeoutInitial),
    k: base.k,
    lateSlack: d(base.lateSlack),
  };
}

/** Event-loop allowance added to every detection bound, before ms() scaling. */
export const SCHED_MS = 100;

/**
 * The tick of the server's timing wheel for a config, as documented in
 * src/server/lifeline-server.ts ("fine enough to detect within a fraction of
 * the smallest timeout, never finer than 10 ms"). Used only to size the slack.
 */
export function wheelTick(c: HeartbeatConfig): number {
  return Math.max(10, Math.min(1000, Math.floor(Math.min(c.interval, c.timeoutFloor) / 4)));
}

export interface DetectionBound {
  /** No death before this (ms after the line went silent). */
  min: number;
  /** Death by this at the latest. */
  max: number;
  /** The issue's "+1 s", scaled. */
  issueSlack: number;
  /** Scheduling allowance: 2 wheel ticks (server side only) + ms(SCHED_MS). */
  schedSlack: number;
  describe: string;
}

/**
 * "Dead within interval + timeout + 1 s", scaled by `factor`. `timeout` is the
 * answer timeout in force when the line went silent (timeoutInitial before any
 * RTT sample; pass stats().heartbeat.timeout after warm-up; by default the
 * ceiling, the worst case). `side` 'server' adds two wheel ticks.
 */
export function detectionBound(c: HeartbeatConfig, factor: number, side: 'server' | 'client', timeout = c.timeoutCeiling): DetectionBound {
  const issueSlack = 1000 / factor;
  const schedSlack = (side === 'server' ? 2 * wheelTick(c) : 0) + ms(SCHED_MS);
  const max = c.interval + timeout + issueSlack + schedSlack;
  return {
    min: c.interval,
    max,
    issueSlack,
    schedSlack,
    describe: `interval ${c.interval} + timeout ${Math.round(timeout)} + ${Math.round(issueSlack)} (1 s / ${factor}) + ${Math.round(schedSlack)} (sched) = ${Math.round(max)} ms`,
  };
}

/** A readable one-line form of a config. */
export function show(c: HeartbeatConfig): string {
  return `interval ${c.interval}, timeout ${c.timeoutFloor}..${c.timeoutCeiling} (initial ${c.timeoutInitial}), k ${c.k}, lateSlack ${c.lateSlack}`;
}

export const now = (): number => performance.now();

// ------------------------------------------------------------------ servers

/** A LifelineServer on 127.0.0.1:0, listening. */
export async function startServer(options: LifelineServerOptions = {}): Promise<LifelineServer> {
  const server = new LifelineServer({ port: 0, host: '127.0.0.1', ...options });
  await once(server, 'listening', ms(5000));
  return server;
}

export function portOf(server: LifelineServer): number {
  const a = server.address() as AddressInfo | null;
  if (!a || typeof a !== 'object') throw new Error('server has no address');
  return a.port;
}

/** The next session the server hands out (lifeline clients: after their hello). */
export function nextSession(server: LifelineServer, timeoutMs = ms(5000)): Promise<ServerSession> {
  return once<ServerSession>(server, 'connection', timeoutMs);
}

export interface SessionEnd {
  /** 'close': the session ended; 'detached': a lifeline session lost its socket and waits for a resume. */
  via: 'close' | 'detached';
  cause: string;
  code: number | null;
  /** performance.now() when the event fired. */
  at: number;
}

/**
 * Resolves when the session loses its connection: 'close' (plain peers, or
 * any session that ends for good) or 'detached' (a lifeline.v1 session whose
 * socket died: it waits sessionTtl for its client to resume, the socket and
 * its heartbeat are gone). Either way `cause` says why.
 */
export function sessionEnd(session: ServerSession, timeoutMs: number): Promise<SessionEnd> {
  return withTimeout(
    new Promise<SessionEnd>((resolve) => {
      session.once('close', (info) => resolve({ via: 'close', cause: info.cause, code: info.code, at: now() }));
      session.once('detached', (cause) => resolve({ via: 'detached', cause, code: null, at: now() }));
    }),
    timeoutMs,
    `session close/detached`,
  );
}

/**
 * Records every sign that a connection was declared dead or lost: for a
 * LifelineClient 'close', 'reconnecting' and liveness 'dead' (with reconnect
 * on, a death is followed by a silent resume, so 'close' alone would miss
 * it); for a server session 'close', 'detached' and liveness 'dead'; for a
 * `ws` client 'close'. Tests assert `events` is empty.
 */
export class DeathWatch {
  readonly events: string[] = [];
  private readonly t0 = now();

  private note(what: string): void {
    this.events.push(`${what} at +${(now() - this.t0).toFixed(0)} ms`);
  }

  client(name: string, c: LifelineClient): void {
    c.on('close', (i) => this.note(`${name}: client close ${i.cause}`));
    c.on('reconnecting', (i) => this.note(`${name}: client reconnecting (${i.reason})`));
    c.on('liveness', (s) => s === 'dead' && this.note(`${name}: client liveness dead`));
  }

  session(name: string, s: ServerSession): void {
    s.on('close', (i) => this.note(`${name}: session close ${i.cause}`));
    s.on('detached', (c) => this.note(`${name}: session detached ${c}`));
    s.on('liveness', (st) => st === 'dead' && this.note(`${name}: session liveness dead`));
  }

  ws(name: string, w: { on(event: 'close', fn: (code: number) => void): unknown }): void {
    w.on('close', (code) => this.note(`${name}: ws close ${code}`));
  }
}

/**
 * A clock for FaultProxy instances that throttle: performance.now() in 10 ms
 * steps. With the default (continuous) clock, FaultProxy's token bucket
 * refills a few bytes per loop iteration, so pump() forwards ~14-byte chunks
 * in a tight loop (300 000 write(2) calls for 4 MiB at 512 KiB/s, 100 % CPU,
 * the event loop stalled ~180 ms at a time): every timer in the process fires
 * late, which would wreck a liveness test. In 10 ms steps the bucket refills
 * rate/100 bytes at once and the pipe sleeps in between.
 */
export const throttleClock = (): number => Math.floor(performance.now() / 10) * 10;

/** Runs every cleanup, newest first, each guarded so one failure does not leak the rest. */
export class Cleanup {
  private readonly fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve(fn()), ms(5000), 'cleanup');
      } catch (err) {
        console.error('cleanup failed:', err);
      }
    }
  }
}

/** Resolves after `msDelay` (the length of a soak run: the thing under test, not a synchronisation). */
export function runFor(msDelay: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msDelay));
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Polls `check` every `everyMs` until it returns true (for state that has no event). */
export async function until(check: () => boolean, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Turns Nagle off on both of the proxy's sockets of a connection. FaultProxy
 * leaves it on, so a small write that follows another not yet acknowledged
 * (e.g. a ping right after the welcome) waits for the peer's delayed ACK:
 * about 40 ms on Linux, which would pollute RTT measurements.
 */
export function noDelay(conn: FaultConnection): FaultConnection {
  conn.client.setNoDelay(true);
  conn.server.setNoDelay(true);
  return conn;
}

// ------------------------------------------------------------------ wire tap

export interface WireCounts {
  frames: number;
  /** RFC 6455 ping frames (opcode 0x9). */
  protocolPings: number;
  /** RFC 6455 pong frames (opcode 0xA). */
  protocolPongs: number;
  /** lifeline.v1 control messages {"t":"ping",...}. */
  appPings: number;
  /** lifeline.v1 control messages {"t":"pong",...}. */
  appPongs: number;
  /** Every other frame (application data, other control messages, close). */
  other: number;
}

const APP_PING = Buffer.from('{"t":"ping"');
const APP_PONG = Buffer.from('{"t":"pong"');
const PEEK = APP_PING.length;

/** Follows one direction of a WebSocket byte stream: HTTP head, then frames. */
class FrameCounter {
  readonly counts: WireCounts = { frames: 0, protocolPings: 0, protocolPongs: 0, appPings: 0, appPongs: 0, other: 0 };
  private state: 'http' | 'header' | 'payload' = 'http';
  private crlf = 0;
  private header = Buffer.alloc(14);
  private headerFill = 0;
  private headerNeeded = 2;
  private opcode = 0;
  private mask: Buffer | null = null;
  private remaining = 0;
  private peek = Buffer.alloc(PEEK);
  private peekFill = 0;
  private payloadPos = 0;

  feed(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'http') {
        const b = buf[i++]!;
        // CRLFCRLF ends the head.
        if ((this.crlf % 2 === 0 && b === 13) || (this.crlf % 2 === 1 && b === 10)) this.crlf++;
        else this.crlf = b === 13 ? 1 : 0;
        if (this.crlf === 4) this.state = 'header';
      } else if (this.state === 'header') {
        this.header[this.headerFill++] = buf[i++]!;
        if (this.headerFill === 2) {
          const len7 = this.header[1]! & 0x7f;
          this.headerNeeded = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.header[1]! & 0x80 ? 4 : 0);
        }
        if (this.headerFill >= 2 && this.headerFill === this.headerNeeded) this.startFrame();
      } else {
        const n = Math.min(this.remaining, buf.length - i);
        for (let j = 0; j < n && this.peekFill < PEEK; j++) {
          const byte = buf[i + j]!;
          this.peek[this.peekFill++] = this.mask ? byte ^ this.mask[(this.payloadPos + j) % 4]! : byte;
        }
        this.payloadPos += n;
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.endFrame();
      }
    }
  }

  private startFrame(): void {
    const h = this.header;
    this.opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    let off = 2;
    let len = len7;
    if (len7 === 126) {
      len = h.readUInt16BE(2);
      off = 4;
    } else if (len7 === 127) {
      len = Number(h.readBigUInt64BE(2));
      off = 10;
    }
    this.mask = h[1]! & 0x80 ? Buffer.from(h.subarray(off, off + 4)) : null;
    this.headerFill = 0;
    this.headerNeeded = 2;
    this.remaining = len;
    this.peekFill = 0;
    this.payloadPos = 0;
    if (len === 0) this.endFrame();
    else this.state = 'payload';
  }

  private endFrame(): void {
    this.state = 'header';
    const c = this.counts;
    c.frames++;
    if (this.opcode === 0x9) c.protocolPings++;
    else if (this.opcode === 0xa) c.protocolPongs++;
    else if (this.opcode === 0x1 && this.peekFill === PEEK && this.peek.equals(APP_PING)) c.appPings++;
    else if (this.opcode === 0x1 && this.peekFill === PEEK && this.peek.equals(APP_PONG)) c.appPongs++;
    else c.other++;
  }
}

/**
 * Counts frames on a proxied connection, both ways, as they reach the proxy
 * ('up' = client -> server, 'down' = server -> client). Attach right after
 * proxy.onConnection() resolves (call onConnection() before connecting).
 */
export class WireTap {
  readonly up = new FrameCounter();
  readonly down = new FrameCounter();

  constructor(conn: FaultConnection) {
    conn.client.on('data', (chunk: Buffer) => this.up.feed(chunk));
    conn.server.on('data', (chunk: Buffer) => this.down.feed(chunk));
  }

  get counts(): { up: WireCounts; down: WireCounts } {
    return { up: { ...this.up.counts }, down: { ...this.down.counts } };
  }
}

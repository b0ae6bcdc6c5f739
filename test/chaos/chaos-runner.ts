// The chaos run behind test/chaos/exactly-once.test.ts and `npm run chaos`.
//
// One LifelineServer on 127.0.0.1 with a fast heartbeat and a session TTL no
// cut outlasts; a FaultProxy in front of it; one LifelineClient through the
// proxy with a small, seeded backoff. Both sides send numbered messages at a
// steady rate (text and binary, sizes from a few bytes to 16 KiB, split
// into 4 KiB fragments, so cuts land inside large frames and between the
// fragments of one message; optionally permessage-deflate) while the runner
// cuts the connection at random (seeded) moments, a fifth of them right
// after the previous resume (often while its replay is in flight), cycling
// through these kinds of fault:
//
//   rst               the proxy resets both sockets of the current connection
//   blackhole         the current connection silently drops everything both
//                     ways (a dead NAT: no FIN, no RST); only the heartbeat
//                     can notice, and the client must report heartbeat-timeout
//   mid-frame         the proxy resets both sockets halfway through the next
//                     WebSocket frame (up, down or either way); a large
//                     message is sent that way at once, so many cuts land
//                     inside a frame that spans several TCP segments
//   server-terminate  the server application drops the session's socket
//                     (ServerSession.terminate())
//   handshake         a reset now, and the reconnect is reset again after a
//                     random number of bytes (0..700) one way: inside the
//                     HTTP upgrade, the hello, the welcome or the first
//                     replayed messages (the resume itself is cut)
//   stall             a reader that stops reading: the proxy holds one
//                     direction and, past its 64 KiB, stops reading the
//                     sender's socket, so the sender's buffers fill
//                     (backpressure, not loss) while that side sends a
//                     burst of large messages (most of the time). The
//                     server gives up on the socket: its slow-consumer cap
//                     (server -> client, 1 MiB here) or a heartbeat. Then the
//                     held bytes are let through (the client reads a backlog
//                     and a close) or, a third of the time, never.
//
// The client starts sending before its first welcome; the server keeps
// sending while its session is detached (those messages must be replayed)
// and the client while it reconnects (they wait in its outbox); both are
// counted so the test can check they happened.
//
// Every receiver checks that message n arrives right after n-1: a number
// already seen is a duplicate, one beyond the next is out of order, one
// never seen by the end is lost; each payload is also checked byte for byte
// (corrupted). At the end the senders stop and the run waits, event-driven
// and bounded, until both sides have everything the other sent and every
// message is acknowledged, then reports.
//
// Never hangs: every wait has a guard, the whole run has a deadline, and
// client, server, proxy and timers are torn down in `finally`.

import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

import { LifelineClient } from '../../src/client/lifeline-client.js';
import { LifelineServer, type ServerSession } from '../../src/server/lifeline-server.js';
import { seededRandom } from '../../src/session/backoff.js';
import type { HeartbeatConfig } from '../../src/session/heartbeat.js';
import { OutboxFullError } from '../../src/session/lifeline-client.js';
import { FaultProxy, type FaultConnection } from '../helpers/fault-proxy.js';

// ------------------------------------------------------------------ options and result

export const CUT_KINDS = ['rst', 'blackhole', 'mid-frame', 'server-terminate', 'handshake', 'stall'] as const;
export type CutKind = (typeof CUT_KINDS)[number];

export interface ChaosOptions {
  /** Cuts to make. */
  cuts: number;
  /** Seed for every random choice the runner makes (sizes, moments, directions, backoff). */
  seed?: number;
  /** Sender tick, ms. Default 2. */
  rateMs?: number;
  /** Messages each side sends per tick. Default 3. */
  perTick?: number;
  /** Server heartbeat (announced to the client). Default interval 150, timeout 50..200 (initial 200). */
  heartbeat?: Partial<HeartbeatConfig>;
  /** Longest random wait between "open again" and the next cut, ms. Default 50. A fifth of the cuts come at once. */
  maxGapMs?: number;
  /** Kinds to cycle through. Default all of CUT_KINDS. */
  kinds?: readonly CutKind[];
  /** Progress lines go here (every `progressEvery` cuts). */
  log?: (line: string) => void;
  /** Default 500. */
  progressEvery?: number;
  /** Deadline for the whole run, ms. Default 60 s + 1 s per cut. */
  timeoutMs?: number;
  /** Split messages into frames of at most this many bytes, both ways (cuts then land between fragments too). Default 4096; 0: never. */
  fragmentSize?: number;
  /** permessage-deflate on both sides. Default false. */
  deflate?: boolean;
  /** Guard for one step (the client noticing a cut, coming back), ms. Default 10000. */
  stepTimeoutMs?: number;
  /** How long the final drain may take, ms. Default 15000. */
  drainTimeoutMs?: number;
  /** The server's maxBufferedBytes (its slow-consumer cap, policy 'disconnect'). Default 1 MiB. */
  maxBufferedBytes?: number;
}

export interface PerDirection {
  /** client -> server */
  c2s: number;
  /** server -> client */
  s2c: number;
}

export interface ChaosResult {
  seed: number;
  cuts: number;
  cutsByKind: Record<CutKind, number>;
  /** For each kind, the reasons the client gave for reconnecting right after it. */
  detectedBy: Record<CutKind, Record<string, number>>;
  /** For each kind, mean ms from the cut until the session was open again on both sides. */
  meanRecoveryMs: Record<CutKind, number>;
  sentEachWay: PerDirection;
  receivedEachWay: PerDirection;
  lost: PerDirection;
  duplicated: PerDirection;
  outOfOrder: PerDirection;
  corrupted: PerDirection;
  sessionLost: { client: number; server: number };
  resumes: { client: number; server: number };
  replayed: { client: number; server: number };
  /** Resends the library itself dropped as duplicates (proof that replays overlapped). */
  duplicatesDroppedByLibrary: { client: number; server: number };
  /** Server sends while its session was detached (must be replayed). */
  sentWhileDetached: number;
  /**
   * Server sockets dropped as slow consumers outside a 'stall' (its own
   * socket, until the session is open again): the client reads as fast as it
   * can, so each is a bug (a resume's replay tripping the cap was one).
   */
  slowConsumerOutsideStalls: number;
  /** Client sends while it was not open (queued in the outbox). */
  sentWhileReconnecting: number;
  /** Sends refused (OutboxFullError on the client, closed session on the server): not counted as sent. */
  refused: PerDirection;
  /** Reconnects the client made that no cut of ours caused (heartbeat false positives...). */
  unprovokedReconnects: number;
  /** Client reconnect reasons, all of them. */
  reconnectReasons: Record<string, number>;
  /** Everything acknowledged at the end (client outbox and server replay buffer empty). */
  allAcked: boolean;
  /** Set when the run stopped early (a step timed out, the client closed for good...). */
  aborted: string | null;
  /** Teardown steps that did not finish in time (each would have hung the process). */
  teardown: string[];
  durationMs: number;
}

// ------------------------------------------------------------------ payloads

const MAX_PAD = 16 * 1024;
const PAD_ROTATE = 251;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const PAD_BYTES = Buffer.alloc(MAX_PAD + PAD_ROTATE);
for (let i = 0; i < PAD_BYTES.length; i++) PAD_BYTES[i] = (i * 7 + 13) & 0xff;
let padText = '';
for (let i = 0; i < MAX_PAD + PAD_ROTATE; i++) padText += ALPHABET[(i * 5) % ALPHABET.length];
const PAD_TEXT = padText;

/**
 * Message n: text `n:size:` + size pad characters, or binary [n u32][size u32]
 * + size pad bytes. The pad depends on n, so a payload from another message
 * (or a torn one) does not verify.
 */
function encode(n: number, size: number, binary: boolean): string | Buffer {
  const off = n % PAD_ROTATE;
  if (!binary) return `${n}:${size}:${PAD_TEXT.slice(off, off + size)}`;
  const b = Buffer.allocUnsafe(8 + size);
  b.writeUInt32BE(n, 0);
  b.writeUInt32BE(size, 4);
  PAD_BYTES.copy(b, 8, off, off + size);
  return b;
}

/** The message number, or -1 if the payload does not verify. */
function decode(data: string | Uint8Array, isBinary: boolean): number {
  if (typeof data === 'string' || !isBinary) {
    const s = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    const a = s.indexOf(':');
    const b = a < 0 ? -1 : s.indexOf(':', a + 1);
    if (b < 0) return -1;
    const n = Number(s.slice(0, a));
    const size = Number(s.slice(a + 1, b));
    if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(size) || size < 0 || size > MAX_PAD) return -1;
    if (s.length - b - 1 !== size) return -1;
    const off = n % PAD_ROTATE;
    return s.endsWith(PAD_TEXT.slice(off, off + size)) ? n : -1;
  }
  if (data.byteLength < 8) return -1;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const n = buf.readUInt32BE(0);
  const size = buf.readUInt32BE(4);
  if (n < 1 || size > MAX_PAD || buf.length !== 8 + size) return -1;
  const off = n % PAD_ROTATE;
  return buf.subarray(8).equals(PAD_BYTES.subarray(off, off + size)) ? n : -1;
}

/** Mostly small messages, some medium, a few large (so frames span many TCP segments). */
function pickSize(rand: () => number): number {
  const r = rand();
  if (r < 0.05) return 2048 + Math.floor(rand() * (MAX_PAD - 2048));
  if (r < 0.3) return 64 + Math.floor(rand() * (2048 - 64));
  return Math.floor(rand() * 64);
}

// ------------------------------------------------------------------ receivers

/** One direction's receiving end: every number once, in order. */
class Receiver {
  /** Highest number received. */
  last = 0;
  /** Distinct numbers received. */
  distinct = 0;
  duplicated = 0;
  outOfOrder = 0;
  corrupted = 0;
  private seen = new Uint8Array(1 << 16);

  accept(n: number): void {
    if (n < 0) {
      this.corrupted++;
      return;
    }
    if (n >= this.seen.length) {
      let len = this.seen.length;
      while (len <= n) len *= 2;
      const grown = new Uint8Array(len);
      grown.set(this.seen);
      this.seen = grown;
    }
    if (this.seen[n] === 1) {
      this.duplicated++;
      return;
    }
    this.seen[n] = 1;
    this.distinct++;
    if (n !== this.last + 1) this.outOfOrder++;
    if (n > this.last) this.last = n;
  }
}

// ------------------------------------------------------------------ waiting

class ChaosAbort extends Error {}

/**
 * Waits on predicates: re-checked whenever something relevant happens
 * (poke), and every `pollMs` for state that has no event (acks on the
 * server). Each wait has its own guard and the run's deadline.
 */
class Conditions {
  private waiting = new Set<{ check: () => boolean; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private poll: NodeJS.Timeout | null = null;
  private pausing = new Set<{ reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private failure: Error | null = null;

  constructor(private readonly deadline: number, private readonly pollMs = 20) {}

  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (check()) return Promise.resolve();
    const left = this.deadline - performance.now();
    if (left <= 0) return Promise.reject(new ChaosAbort(`run deadline passed before ${what}`));
    const limit = Math.min(timeoutMs, left);
    return new Promise<void>((resolve, reject) => {
      const w = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting.delete(w);
          this.stopPollIfIdle();
          reject(new ChaosAbort(`timed out after ${Math.round(limit)} ms waiting for ${what}`));
        }, limit),
      };
      this.waiting.add(w);
      this.poll ??= setInterval(() => this.poke(), this.pollMs);
    });
  }

  /** Resolves after `ms` (a chaos moment, not synchronisation), unless the run fails first. */
  pause(ms: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const p = {
        reject,
        timer: setTimeout(() => {
          this.pausing.delete(p);
          resolve();
        }, ms),
      };
      this.pausing.add(p);
    });
  }

  poke(): void {
    for (const w of [...this.waiting]) {
      if (w.check()) {
        clearTimeout(w.timer);
        this.waiting.delete(w);
        w.resolve();
      }
    }
    this.stopPollIfIdle();
  }

  /** Fails every wait now and from now on. */
  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiting.clear();
    for (const p of this.pausing) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pausing.clear();
    this.stopPollIfIdle();
  }

  dispose(): void {
    this.fail(new ChaosAbort('disposed'));
  }

  private stopPollIfIdle(): void {
    if (this.waiting.size === 0 && this.poll) {
      clearInterval(this.poll);
      this.poll = null;
    }
  }
}

// ------------------------------------------------------------------ the run

const DEFAULT_HEARTBEAT: HeartbeatConfig = { interval: 150, timeoutFloor: 50, timeoutCeiling: 200, timeoutInitial: 200, k: 4, lateSlack: 100 };

/** Awaits `p` for at most `ms` (a ref'd timer: the wait itself keeps the process alive); notes a timeout or failure. */
async function bounded(p: Promise<unknown> | undefined, ms: number, what: string, notes: string[]): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    p.then(
      () => null,
      (err: unknown) => `${what} failed: ${(err as Error)?.message ?? String(err)}`,
    ),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`${what} did not finish within ${ms} ms`), ms);
    }),
  ]);
  clearTimeout(timer);
  if (outcome) notes.push(outcome);
}

function perKindFrom<T>(f: (k: CutKind) => T): Record<CutKind, T> {
  const out = {} as Record<CutKind, T>;
  for (const k of CUT_KINDS) out[k] = f(k);
  return out;
}

function perKind<T>(make: () => T): Record<CutKind, T> {
  return { rst: make(), blackhole: make(), 'mid-frame': make(), 'server-terminate': make(), handshake: make(), stall: make() };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const cutsWanted = options.cuts;
  if (!(Number.isSafeInteger(cutsWanted) && cutsWanted >= 0)) throw new RangeError(`cuts must be an integer >= 0, got ${cutsWanted}`);
  const seed = (options.seed ?? 1) >>> 0;
  const rateMs = options.rateMs ?? 2;
  const perTick = options.perTick ?? 3;
  const maxGapMs = options.maxGapMs ?? 50;
  const kinds = options.kinds ?? CUT_KINDS;
  if (kinds.length === 0) throw new RangeError('kinds must not be empty');
  const log = options.log ?? (() => {});
  const progressEvery = options.progressEvery ?? 500;
  const stepTimeout = options.stepTimeoutMs ?? 10_000;
  const drainTimeout = options.drainTimeoutMs ?? 15_000;
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 60_000 + cutsWanted * 1000);
  const heartbeat = { ...DEFAULT_HEARTBEAT, ...options.heartbeat };
  const fragmentSize = options.fragmentSize ?? 4096;
  const deflate = options.deflate ?? false;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;

  // Independent seeded streams, so e.g. a change in message sizes does not move the cut moments.
  const base = seededRandom(seed);
  const stream = () => seededRandom(Math.floor(base() * 2 ** 32));
  const randCut = stream();
  const randClientMsg = stream();
  const randServerMsg = stream();
  const randBackoff = stream();

  const cond = new Conditions(deadline);
  const c2s = new Receiver(); // what the server got
  const s2c = new Receiver(); // what the client got
  const sent = { c2s: 0, s2c: 0 };
  const refused = { c2s: 0, s2c: 0 };
  let sentWhileDetached = 0;
  let slowConsumerOutsideStalls = 0;
  let stalling = false;
  let sentWhileReconnecting = 0;
  const cutsByKind = perKind(() => 0);
  const detectedBy = perKind<Record<string, number>>(() => ({}));
  const recoveryMs = perKind(() => 0);
  const reconnectReasons: Record<string, number> = {};
  let reconnectingEvents = 0;
  let lastReconnectReason = '';
  let provokedReconnects = 0;
  let cutsDone = 0;
  let aborted: string | null = null;
  let allAcked = false;

  let server: LifelineServer | null = null;
  let proxy: FaultProxy | null = null;
  let client: LifelineClient | null = null;
  let sender: NodeJS.Timeout | null = null;
  let session: ServerSession | null = null;
  // The server's session for our client (a function: it changes in event handlers, out of the type checker's sight).
  const live = { session: (): ServerSession | null => session };
  let serverSessions = 0;
  let serverSessionLost = 0;
  let clientSessionLost = 0;
  const retired = { resumes: 0, replayed: 0, duplicatesDropped: 0 };
  const lingering = new Set<FaultConnection>();
  let stopped = false;
  const teardown: string[] = [];
  const next: { arm: ((c: FaultConnection) => void) | null } = { arm: null };
  let clientStats: ReturnType<LifelineClient['stats']> | null = null;
  let sessionStats: ReturnType<ServerSession['stats']> | null = null;

  try {
    server = new LifelineServer({
      port: 0,
      host: '127.0.0.1',
      heartbeat,
      // No cut here lasts anywhere near this: a session that expires is a bug.
      sessionTtl: 30_000,
      replayMaxMessages: 200_000,
      replayMaxBytes: 256 * 1024 * 1024,
      fragmentSize,
      deflate,
      maxBufferedBytes,
    });
    const srv = server;
    await new Promise<void>((resolve, reject) => {
      srv.once('listening', resolve);
      srv.once('error', reject);
    });
    srv.on('error', () => {});
    srv.on('session-lost', () => {
      serverSessionLost++;
    });
    srv.on('connection', (s) => {
      serverSessions++;
      if (session) {
        // A second session for our one client: the first could not be resumed.
        const st = session.stats();
        retired.resumes += st.resumes;
        retired.replayed += st.replayed;
        retired.duplicatesDropped += st.duplicatesDropped;
      }
      session = s;
      s.on('error', () => {});
      s.on('message', (data, isBinary) => {
        c2s.accept(decode(data, isBinary));
        cond.poke();
      });
      s.on('resumed', () => cond.poke());
      s.on('detached', (cause) => {
        if (cause === 'slow-consumer' && !stalling) slowConsumerOutsideStalls++;
        cond.poke();
      });
      s.on('close', () => cond.poke());
      cond.poke();
    });
    const port = (srv.address() as AddressInfo).port;
    // A small pipe: a held direction stops reading its sender soon ('stall').
    proxy = await FaultProxy.start({ host: '127.0.0.1', port }, { highWaterMark: 64 * 1024 });
    // Every connection the proxy accepts, in order; `next.arm` gets the next one
    // in the same tick it is accepted, before any of its bytes are forwarded.
    const px = proxy;
    void (async () => {
      while (!stopped) {
        let c: FaultConnection;
        try {
          c = await px.onConnection(60_000);
        } catch {
          continue; // a quiet minute, or the proxy closed (stopped is then set)
        }
        const f = next.arm;
        next.arm = null;
        f?.(c);
      }
    })();

    client = new LifelineClient(proxy.url('/chaos'), {
      backoff: { base: 10, cap: 100, random: randBackoff },
      // Cuts come every few tens of ms: call a connection stable soon, or the backoff only grows.
      stableAfter: 25,
      handshakeTimeout: 5000,
      outboxMaxMessages: 200_000,
      outboxMaxBytes: 256 * 1024 * 1024,
      transport: { fragmentSize, deflate },
    });
    const cl = client;
    cl.on('error', () => {});
    cl.on('message', (data) => {
      s2c.accept(decode(data, typeof data !== 'string'));
      cond.poke();
    });
    cl.on('reconnecting', ({ reason }) => {
      reconnectingEvents++;
      lastReconnectReason = reason;
      reconnectReasons[reason] = (reconnectReasons[reason] ?? 0) + 1;
      cond.poke();
    });
    cl.on('session-lost', () => {
      clientSessionLost++;
    });
    cl.on('state', () => cond.poke());
    cl.on('acked', () => cond.poke());
    cl.on('close', (info) => cond.fail(new ChaosAbort(`the client closed for good: ${info.cause} (${info.code} ${info.reason})`)));

    // ---------------------------------------------------------------- senders
    const sendClient = (large = false) => {
      const n = sent.c2s + 1;
      const binary = randClientMsg() < 0.5;
      const size = pickSize(randClientMsg);
      const payload = encode(n, large ? MAX_PAD / 2 + (size % (MAX_PAD / 2)) : size, binary);
      const reconnecting = cl.state !== 'open';
      try {
        cl.send(payload);
      } catch (err) {
        if (err instanceof OutboxFullError) {
          refused.c2s++;
          return;
        }
        throw err;
      }
      sent.c2s = n;
      if (reconnecting) sentWhileReconnecting++;
    };
    const sendServer = (large = false) => {
      const s = session;
      if (!s) return; // no session yet: the client is still connecting
      if (s.state === 'closing' || s.state === 'closed') {
        refused.s2c++;
        return;
      }
      const n = sent.s2c + 1;
      const binary = randServerMsg() < 0.5;
      const size = pickSize(randServerMsg);
      const payload = encode(n, large ? MAX_PAD / 2 + (size % (MAX_PAD / 2)) : size, binary);
      const detached = s.state === 'detached';
      s.send(payload, { binary });
      sent.s2c = n;
      if (detached) sentWhileDetached++;
    };
    sender = setInterval(() => {
      try {
        for (let i = 0; i < perTick; i++) {
          sendClient();
          sendServer();
        }
      } catch (err) {
        cond.fail(new ChaosAbort(`a send threw: ${(err as Error).message}`));
      }
    }, rateMs);
    // The client is already sending: its first messages wait for the first welcome.
    await cond.until(() => cl.state === 'open' && session !== null, stepTimeout, 'the first session');

    // ---------------------------------------------------------------- cuts
    const current = (): FaultConnection | null => {
      const s = session;
      const port = s?.state === 'open' ? s.socket.rawSocket?.remotePort : undefined;
      if (port === undefined) return null;
      for (const c of proxy!.connections) if (c.state === 'open' && c.server.localPort === port) return c;
      return null;
    };
    const ready = () => cl.state === 'open' && session !== null && session.state === 'open' && current() !== null;

    let kindIndex = 0;
    while (cutsDone < cutsWanted) {
      await cond.until(ready, stepTimeout, `the client to be open again before cut ${cutsDone + 1}`);
      // A random moment: a fifth of the cuts right away (often while a replay is in flight).
      if (randCut() >= 0.2) await cond.pause(1 + Math.floor(randCut() * maxGapMs));
      const conn = current();
      // Something else broke the line meanwhile (a heartbeat false positive): wait for it to heal.
      if (!ready() || conn === null) continue;
      const kind = kinds[kindIndex++ % kinds.length]!;
      const before = reconnectingEvents;
      let reconnectsExpected = 1;
      const cutAt = performance.now();
      switch (kind) {
        case 'rst':
          conn.cutRst();
          break;
        case 'blackhole':
          conn.blackhole('both', 'drop');
          lingering.add(conn);
          break;
        case 'mid-frame': {
          const r = randCut();
          const dir = r < 0.4 ? 'up' : r < 0.8 ? 'down' : 'both';
          conn.cutMidFrame(dir);
          if (dir !== 'down') sendClient(true);
          if (dir !== 'up') sendServer(true);
          break;
        }
        case 'server-terminate':
          live.session()?.terminate();
          break;
        case 'handshake': {
          const dir = randCut() < 0.5 ? 'up' : 'down';
          const bytes = Math.floor(randCut() * 700);
          next.arm = (c) => c.cutAfterBytes(dir, bytes);
          conn.cutRst();
          reconnectsExpected = 2;
          break;
        }
        case 'stall': {
          const dir = randCut() < 0.6 ? 'down' : 'up';
          stalling = true;
          conn.blackhole(dir, 'hold');
          // A burst of large messages (8-16 KiB) into the stalled direction,
          // most of the time: up to 1,024 of them, ending early once the
          // server has given up on the socket (past its cap, the kernel's
          // buffers being full).
          if (randCut() < 0.8) {
            for (let i = 0; i < 1024 && current() === conn; i++) {
              if (dir === 'down') sendServer(true);
              else sendClient(true);
            }
          }
          await cond.until(() => current() !== conn, stepTimeout, `the server to give up on the stalled connection of cut ${cutsDone + 1}`);
          if (randCut() < 2 / 3) conn.pass(dir);
          else lingering.add(conn);
          break;
        }
      }
      cutsDone++;
      cutsByKind[kind]++;
      await cond.until(() => reconnectingEvents > before, stepTimeout, `the client to notice cut ${cutsDone} (${kind})`);
      provokedReconnects++;
      const d = detectedBy[kind];
      d[lastReconnectReason] = (d[lastReconnectReason] ?? 0) + 1;
      if (reconnectsExpected === 2) {
        await cond.until(() => reconnectingEvents > before + 1, stepTimeout, `the client to notice the second half of cut ${cutsDone} (${kind})`);
        provokedReconnects++;
        d[`then ${lastReconnectReason}`] = (d[`then ${lastReconnectReason}`] ?? 0) + 1;
      }
      await cond.until(ready, stepTimeout, `the session to be open again after cut ${cutsDone} (${kind})`);
      stalling = false;
      recoveryMs[kind] += performance.now() - cutAt;
      // A blackholed connection would linger half-open in the proxy forever: reset it once the client has moved on.
      for (const c of lingering) {
        if (c !== conn) {
          c.cutRst();
          lingering.delete(c);
        }
      }
      if (cutsDone % progressEvery === 0 && cutsDone < cutsWanted) {
        log(
          `chaos progress: ${cutsDone}/${cutsWanted} cuts, sent c2s ${sent.c2s} s2c ${sent.s2c}, ` +
            `lost so far (in flight) c2s ${sent.c2s - c2s.distinct} s2c ${sent.s2c - s2c.distinct}, ` +
            `duplicated ${c2s.duplicated + s2c.duplicated}, out of order ${c2s.outOfOrder + s2c.outOfOrder}, ` +
            `unacked c2s ${cl.stats().outbox} s2c ${live.session()?.stats().replayBuffered ?? 0}, ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
      }
    }

    // ---------------------------------------------------------------- drain
    clearInterval(sender);
    sender = null;
    await cond.until(
      () => c2s.distinct >= sent.c2s && s2c.distinct >= sent.s2c,
      drainTimeout,
      `both sides to receive everything (c2s ${c2s.distinct}/${sent.c2s}, s2c ${s2c.distinct}/${sent.s2c} at the start)`,
    ).catch((err: Error) => {
      // Not an abort: what is missing now is lost, and the result says so.
      if (!(err instanceof ChaosAbort)) throw err;
      aborted ??= err.message;
    });
    if (aborted === null) {
      await cond
        .until(() => cl.stats().outbox === 0 && live.session()?.stats().replayBuffered === 0, drainTimeout, 'every message to be acknowledged')
        .then(() => {
          allAcked = true;
        })
        .catch((err: Error) => {
          if (!(err instanceof ChaosAbort)) throw err;
          aborted ??= err.message;
        });
    }
  } catch (err) {
    // Whatever went wrong is part of the result: the caller gets a report, never a hang or a bare throw.
    aborted ??= err instanceof ChaosAbort ? err.message : `unexpected error: ${(err as Error)?.stack ?? String(err)}`;
  } finally {
    stopped = true;
    if (sender) clearInterval(sender);
    cond.dispose();
    clientStats = client?.stats() ?? null;
    sessionStats = live.session()?.stats() ?? null;
    client?.close();
    await bounded(server?.close({ timeout: 2000 }), 5000, 'server.close()', teardown);
    await bounded(proxy?.close(), 5000, 'proxy.close()', teardown);
  }
  return result();

  function result(): ChaosResult {
    return {
      seed,
      cuts: cutsDone,
      cutsByKind,
      detectedBy,
      meanRecoveryMs: perKindFrom((k) => (cutsByKind[k] === 0 ? 0 : Math.round(recoveryMs[k] / cutsByKind[k]))),
      sentEachWay: { ...sent },
      receivedEachWay: { c2s: c2s.distinct, s2c: s2c.distinct },
      lost: { c2s: Math.max(0, sent.c2s - c2s.distinct), s2c: Math.max(0, sent.s2c - s2c.distinct) },
      duplicated: { c2s: c2s.duplicated, s2c: s2c.duplicated },
      outOfOrder: { c2s: c2s.outOfOrder, s2c: s2c.outOfOrder },
      corrupted: { c2s: c2s.corrupted, s2c: s2c.corrupted },
      // Every server session after the first means one could not be resumed, announced or not.
      sessionLost: { client: clientSessionLost, server: Math.max(serverSessionLost, serverSessions - 1) },
      resumes: { client: clientStats?.resumes ?? 0, server: retired.resumes + (sessionStats?.resumes ?? 0) },
      replayed: { client: clientStats?.replayed ?? 0, server: retired.replayed + (sessionStats?.replayed ?? 0) },
      duplicatesDroppedByLibrary: { client: clientStats?.duplicatesDropped ?? 0, server: retired.duplicatesDropped + (sessionStats?.duplicatesDropped ?? 0) },
      sentWhileDetached,
      slowConsumerOutsideStalls,
      sentWhileReconnecting,
      refused: { ...refused },
      unprovokedReconnects: reconnectingEvents - provokedReconnects,
      reconnectReasons,
      allAcked,
      aborted,
      teardown,
      durationMs: Math.round(performance.now() - started),
    };
  }
}

/** `chaos: N cuts, M messages each way, L lost, D duplicated` (M: the smaller direction). */
export function summaryLine(r: ChaosResult): string {
  const m = Math.min(r.sentEachWay.c2s, r.sentEachWay.s2c);
  return `chaos: ${r.cuts} cuts, ${m} messages each way, ${r.lost.c2s + r.lost.s2c} lost, ${r.duplicated.c2s + r.duplicated.s2c} duplicated`;
}

/** Everything that must be zero for a clean run, as readable failures ('' when clean). */
export function problems(r: ChaosResult): string[] {
  const out: string[] = [];
  const dir = (name: string, v: PerDirection) => {
    if (v.c2s !== 0 || v.s2c !== 0) out.push(`${name}: c2s ${v.c2s}, s2c ${v.s2c}`);
  };
  if (r.aborted) out.push(`aborted: ${r.aborted}`);
  for (const t of r.teardown) out.push(`teardown: ${t}`);
  dir('lost', r.lost);
  dir('duplicated', r.duplicated);
  dir('out of order', r.outOfOrder);
  dir('corrupted', r.corrupted);
  if (r.sessionLost.client !== 0 || r.sessionLost.server !== 0) out.push(`session lost: client ${r.sessionLost.client}, server ${r.sessionLost.server}`);
  if (r.slowConsumerOutsideStalls !== 0) out.push(`server sockets dropped as slow consumers outside a stall: ${r.slowConsumerOutsideStalls}`);
  return out;
}

/**
 * The Lifeline server: a WebSocketServer plus the session layer.
 *
 * Lifeline clients (subprotocol lifeline.v1) get sessions that outlive their
 * sockets: every application message carries a sequence number, both sides
 * acknowledge cumulatively and keep what is unacknowledged in a bounded
 * replay buffer, and a client that reconnects within the session TTL resumes
 * with neither loss nor duplicates. Outside the window the client is told
 * exactly what was lost (welcome.lost), never left with a silent gap.
 *
 * Every socket gets a heartbeat, driven by one timing wheel per server:
 * app-level pings for lifeline.v1 peers (browsers cannot see protocol pings),
 * protocol pings for plain WebSocket peers, who get a ServerSession too (no
 * resume), so the application sees one API for both.
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { LifelineError, ProtocolError, UsageError } from '../protocol/errors.js';
import { WebSocketServer, type ServerOptions } from '../transport/node/server.js';
import { emitMessage as emitMessageImport, emitterWithoutInit, sessionEventSlots, type EventSlots } from '../transport/node/event-slots.js';
import { WebSocket, checkTimerMs, flushBatched, type ActivitySink, type CloseCause, type SocketOwner } from '../transport/node/websocket.js';
import { encodedFrameSize, viewOf as viewOfImport } from '../protocol/connection.js';
import { Opcode as OpcodeImport, frameHeaderSize as frameHeaderSizeImport, writeFrameHeader } from '../protocol/frame.js';
import { coldFieldDefaults } from '../protocol/cold-fields.js';
import { decimalDigits, putDecimalBefore } from '../protocol/decimal.js';
import { randomPool } from '../protocol/random-pool.js';
import { FrameArena } from './frame-arena.js';
import { relativeClock, systemClock, type Clock, type TimerHandle } from '../session/clock.js';
import { HeartbeatMonitor, resolveHeartbeat, type HeartbeatConfig, type HeartbeatHost, type HeartbeatOption, type HeartbeatStats, type LivenessState } from '../session/heartbeat.js';
import { HeartbeatWheel } from '../session/scheduler.js';
import { InboundSequencer, ReplayBuffer } from '../session/resume.js';
import {
  CONTROL_MARK,
  DATA_MARK as DATA_MARK_IMPORT,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  classify,
  dataHeaderLength as dataHeaderLengthImport,
  encodeControl,
  encodePing,
  encodePong,
  parseCanonicalAck,
  parseCanonicalPing,
  parseCanonicalPong,
  parseDataHeaderBytes as parseDataHeaderBytesImport,
  writeDataHeader as writeDataHeaderImport,
  type ControlMessage,
  type DataHeader,
  type SessionLostReason,
} from '../session/wire.js';

// The per-message path's imports as this module's own constants: V8 reads
// an imported binding from its cell, with a hole check, at every use (about
// 5 instructions each, per message, even where the callee is inlined), and
// folds a module's own constant.
const emitMessage = emitMessageImport;
const Opcode = OpcodeImport;
const viewOf = viewOfImport;
const frameHeaderSize = frameHeaderSizeImport;
const DATA_MARK = DATA_MARK_IMPORT;
const dataHeaderLength = dataHeaderLengthImport;
const parseDataHeaderBytes = parseDataHeaderBytesImport;
const writeDataHeader = writeDataHeaderImport;
const OPEN = WebSocket.OPEN;

/** What authenticate() returns: false to refuse, or the identity and when the token expires. */
export type AuthResult = false | { user?: unknown; expiresAt?: number };

export interface LifelineServerOptions extends ServerOptions {
  /** Liveness: 'normal' (default; dead after 30-40 s of silence), 'aggressive' (6-9 s), 'off', or a config. */
  heartbeat?: HeartbeatOption;
  /** Time source and timers for heartbeats, the hello timeout, session TTLs, auth expiry and the ack sweep (tests pass a FakeClock). */
  clock?: Clock;
  /** Time a lifeline.v1 client has to send its hello, ms. Default 10000. Exceeded: close 1008. */
  helloTimeout?: number;
  /** How long a disconnected session waits for its client to resume, ms. Default 120000. */
  sessionTtl?: number;
  /** Replay buffer bound per session: messages. Default 10000. */
  replayMaxMessages?: number;
  /** Replay buffer bound per session: bytes. Default 8 MiB. */
  replayMaxBytes?: number;
  /** Send a standalone ack after this many unacknowledged messages. Default 32. */
  ackEvery?: number;
  /** ...or after this long, ms, when no outgoing message could carry it. Default 100. */
  ackDelay?: number;
  /** Expired sessions remembered (to report exact losses to late clients). Default 10000. */
  tombstones?: number;
  /**
   * Validates the token a client presents in its hello (and on every resume
   * and refresh). Return false to refuse: the client gets a fatal error
   * (close 4401) and does not reconnect. With `expiresAt`, the server asks for
   * a fresh token before then (auth-refresh) and ends the session if none comes.
   */
  authenticate?: (token: string | undefined, req: SessionRequest) => AuthResult | Promise<AuthResult>;
  /** Ask for a fresh token this long before expiry, ms. Default: min(30000, half the remaining lifetime). */
  authRefreshLead?: number;
}

/** Session lifecycle: 'open' with a socket, 'detached' while its client is away (within the TTL). */
export type SessionState = 'open' | 'detached' | 'closing' | 'closed';

/** Why a session ended. Socket causes, plus the session layer's own. */
export type SessionCloseCause = CloseCause | 'session-expired' | 'replay-overflow' | 'auth-failed' | 'auth-expired';

export interface SessionCloseInfo {
  code: number;
  reason: string;
  cause: SessionCloseCause;
}

export interface SessionStats {
  mode: 'lifeline' | 'plain';
  state: SessionState;
  id: string | null;
  connectedSince: number;
  /**
   * Bytes received: lifeline mode, the application messages' (data header
   * and payload, no WebSocket framing, no control messages); plain mode,
   * everything the socket read (frames with their framing).
   */
  bytesIn: number;
  /** Bytes sent, counted as bytesIn is (lifeline mode: a replayed message once, when first sent). */
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Resumes so far. */
  resumes: number;
  /** Messages dropped as duplicates (replays of what we already had). */
  duplicatesDropped: number;
  /** Messages resent after resumes. */
  replayed: number;
  /** Unacknowledged outgoing messages held for replay. */
  replayBuffered: number;
  heartbeat: HeartbeatStats | null;
}

export interface ServerStats {
  sessions: number;
  accepted: number;
  resumed: number;
  /** Resume attempts that ended in session-lost, by reason. */
  lost: Partial<Record<SessionLostReason, number>>;
  /** Closed sessions by cause. */
  closed: Partial<Record<SessionCloseCause, number>>;
  pingsSent: number;
  pongsReceived: number;
  pingsMissed: number;
  lossRate: number;
  rtt: { min: number | null; max: number | null; meanSmoothed: number | null };
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

export interface SessionEvents {
  message: [data: Buffer, isBinary: boolean];
  close: [info: SessionCloseInfo];
  /** The socket went away; the session waits `sessionTtl` for its client to resume. */
  detached: [cause: CloseCause];
  /** The client came back; `replayed` messages were resent. */
  resumed: [info: { replayed: number }];
  /**
   * send() answered false and the session takes messages again: its socket
   * is back under highWaterMark and, after a resume, the replay is written
   * out (then also when nothing was refused).
   */
  drain: [];
  /** Liveness of the current socket: 'alive' -> 'probing' -> 'alive' | 'dead'. */
  liveness: [state: LivenessState];
  error: [err: Error];
}

export interface LifelineServerEvents {
  connection: [session: ServerSession, req: IncomingMessage];
  /** A client asked to resume a session that could not be resumed (it gets a new one). */
  'session-lost': [info: { reason: SessionLostReason; toClient: number | null; session: ServerSession }];
  listening: [];
  error: [err: Error];
  close: [];
}

interface Tombstone {
  lastSent: number;
  received: number;
}

/** Close codes in 4400-4499 are fatal for clients: they do not reconnect. */
export const FatalClose = { AuthFailed: 4401, Forbidden: 4403 } as const;

const EMPTY = Buffer.alloc(0);

/**
 * One socket's heartbeat: a monitor on the server's wheel that is its own
 * host, wired to the socket and, once the hello is through, to its session.
 * One object per socket (the monitor, its host and the socket's activity
 * sink: no closure per callback, no second object holding the first); the
 * same one serves before and after the hello.
 */
class SocketHeartbeat extends HeartbeatMonitor implements HeartbeatHost, ActivitySink {
  readonly ws: WebSocket;
  readonly wheel: HeartbeatWheel;

  constructor(ws: WebSocket, hb: { config: HeartbeatConfig; wheel: HeartbeatWheel }) {
    super(hb.config, null, hb.wheel.refresh());
    this.ws = ws;
    this.wheel = hb.wheel;
    // Per read: one store of a number. The wheel's coarse clock avoids a clock read per chunk.
    ws._activity = this;
    hb.wheel.add(this);
  }

  get keepalive(): boolean {
    return true;
  }

  /**
   * The session that owns the socket: null before the hello (or for a socket
   * no session owns). Read off the socket, which holds it anyway (attach()
   * sets both at once), rather than kept twice.
   */
  get session(): ServerSession | null {
    return this.ws._owner as ServerSession | null;
  }

  noteActivity(): void {
    this.lastInbound = this.wheel.coarseNow();
  }

  sendPing(ts: number): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    const s = this.session;
    // Plain peers get protocol pings (the payload is our timestamp), lifeline.v1 peers app-level ones.
    if (s !== null && s.mode === 'plain') {
      // The wheel's clock counts whole ms; anything else goes out as its text.
      if (Number.isSafeInteger(ts) && ts >= 0) ws._sendEncodedControl(pingFrame(ts));
      else ws.ping(ts);
      return;
    }
    ws._sendControlMessage(encodePing(ts));
    // A ping means the socket went quiet: the session need not keep spare replay space.
    if (s !== null) s._onQuiet();
  }

  onDead(reason: 'heartbeat-timeout'): void {
    this.ws.terminate(reason);
  }

  outbound(): { written: number; backlog: number } {
    return { written: this.ws.bytesFlushed, backlog: this.ws.bufferedAmount };
  }

  onStateChange(state: LivenessState): void {
    if (this.session !== null) this.session._livenessChanged(this.ws, state);
  }

  /** Stops the monitor and unhooks it from the socket (the socket closed, or the hello failed). */
  end(): void {
    this.stop();
    if (this.ws._activity === this) this.ws._activity = null;
  }
}

/** The last protocol ping frame built, and the time it carries. */
let pingFrameTs = -1;
let pingFrameBytes: Buffer = EMPTY;

/**
 * The protocol ping that carries `ts` (whole ms, the payload our pongs are
 * read by), encoded once for every socket the wheel pings at that time: one
 * frame per tick, not a frame, a string and a view per socket.
 */
function pingFrame(ts: number): Buffer {
  if (ts !== pingFrameTs) {
    const n = decimalDigits(ts);
    const f = Buffer.allocUnsafe(frameHeaderSize(n, false) + n);
    putDecimalBefore(f, writeFrameHeader(f, 0, 0x80 | Opcode.Ping, n) + n, ts);
    pingFrameTs = ts;
    pingFrameBytes = f;
  }
  return pingFrameBytes;
}

/**
 * The timestamp a protocol pong carries back in `chunk[start..end)`: our
 * ping's payload, the clock's reading in decimal. Whole numbers of up to 15
 * digits (Date.now()'s) are read off the bytes, with no string per pong;
 * anything else goes through Number() as before, and what is not a number
 * (an unsolicited pong, RFC 6455 5.5.3) gives NaN, which the monitor
 * ignores for RTT.
 */
export function parseTimestamp(chunk: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n === 0 || n > 15) return Number(chunk.toString('latin1', start, end));
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = chunk[i]! - 0x30;
    if (d < 0 || d > 9) return Number(chunk.toString('latin1', start, end));
    v = v * 10 + d;
  }
  return v;
}

/** The heartbeat of `ws`, if it has one. */
function heartbeatOf(ws: WebSocket): SocketHeartbeat | null {
  const a = ws._activity;
  return a instanceof SocketHeartbeat ? a : null;
}

/** Plain sessions never number messages: they share these empty, never-written instances. */
const PLAIN_REPLAY = new ReplayBuffer<Buffer>(1, 1);
const PLAIN_INBOUND = new InboundSequencer(1);
/** Scratch for parsing data headers (parsing is synchronous, so one serves every session). */
const HEADER: DataHeader = { seq: 0, ack: -1, offset: 0 };
/**
 * Uint8Array.prototype.set as a module constant, called as U8_SET.call(buf,
 * src, at): V8 calls a known function directly, where `buf.set` goes through
 * an inline cache (the same reason as in protocol/connection.ts, whose
 * constant is not exported because an imported one is not folded).
 */
const U8_SET = Uint8Array.prototype.set;

/**
 * Writes a session data frame at `at`: the WebSocket header (FIN, unmasked)
 * for a payload of `bytes`, the data header of `headerLength` bytes
 * (dataHeaderLength(seq, ack)), then `dataLength` bytes of `data`. One call
 * from ServerSession.send, in place of protocol's writeDataFrame with a
 * payload-prefix object: no prefix stores and loads, and small enough that
 * V8 inlines it, with the data header's writers, into send (it did not
 * inline writeDataFrame there: send's inlining budget was used up).
 */
function writeSessionFrame(
  buf: Buffer,
  at: number,
  binary: boolean,
  bytes: number,
  headerLength: number,
  seq: number,
  ack: number,
  data: string | Buffer | Uint8Array,
  dataLength: number,
): void {
  const b0 = 0x80 | (binary ? Opcode.Binary : Opcode.Text);
  let p: number;
  // The common small frame inline; writeFrameHeader (its bytecode four times
  // this function's, for the long lengths and the mask) would use up V8's
  // inlining budget for the send path.
  if (bytes < 126) {
    buf[at] = b0;
    buf[at + 1] = bytes;
    p = at + 2 + headerLength;
  } else {
    p = writeFrameHeader(buf, at, b0, bytes) + headerLength;
  }
  writeDataHeader(buf, p, seq, ack);
  if (typeof data === 'string') buf.write(data, p, dataLength, 'utf8');
  else U8_SET.call(buf, data, p);
}

/** ServerSession.send()'s error once the session is closing or closed. */
function sendAfterClose(state: SessionState): never {
  throw new UsageError('WS_ERR_SEND_AFTER_CLOSE', `Cannot send: the session is ${state}`);
}

/**
 * The parts of the opening request a session keeps (an IncomingMessage fits
 * this shape: authenticate() gets the real one at the hello, and this snapshot
 * on in-band token refreshes).
 */
export interface SessionRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string; readonly remotePort?: number };
}

/** Headers whose values repeat across clients: the snapshot shares one string per value. */
const SHARED_VALUES = new Set(['host', 'upgrade', 'connection', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'pragma', 'cache-control', 'accept-encoding', 'accept-language', 'user-agent', 'origin']);
const valueTable = new Map<string, string>();
function shared(v: string): string {
  const x = valueTable.get(v);
  if (x !== undefined) return x;
  if (valueTable.size < 1024 && v.length <= 256) valueTable.set(v, v);
  return v;
}

/**
 * A copy of the request headers for a session to keep: without the one-time
 * Sec-WebSocket-Key, and with values that repeat across clients shared (a
 * parsed header value is a new string per request). Small enough to stay
 * in-object for the usual handful of headers.
 */
function compactHeaders(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const k in h) {
    if (k === 'sec-websocket-key') continue;
    const v = h[k];
    out[k] = typeof v === 'string' && SHARED_VALUES.has(k) ? shared(v) : v;
  }
  return out;
}

/** The last peer address seen: consecutive clients behind one proxy or NAT share its string. */
let lastAddress: string | undefined;

/**
 * The peer's address and port, read off the socket once. Reading them makes
 * Node cache {address, family, port} on the socket (`_peername`, 56 B kept
 * for the socket's life); a cache that this read created is dropped again
 * (Node reads the kernel's answer anew if anyone asks later). A cache the
 * application's own read made stays, so what it reads later is unchanged.
 */
function peerOf(socket: IncomingMessage['socket']): { address: string | undefined; port: number | undefined } {
  const s = socket as typeof socket & { _peername?: unknown };
  const cachedBefore = s._peername !== undefined;
  let address = s.remoteAddress;
  const port = s.remotePort;
  if (!cachedBefore && s._peername !== undefined) s._peername = undefined;
  if (address === lastAddress) address = lastAddress;
  else lastAddress = address;
  return { address, port };
}

/**
 * The request snapshot. The peer's address is read at once: after the socket
 * is gone (a reset, or any close before the application asked) Node no longer
 * knows it, and apps read it in 'close' handlers. It is kept as two fields;
 * the `socket` object the SessionRequest shape asks for is made on first use.
 */
class RequestSnapshot implements SessionRequest {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingHttpHeaders;
  private readonly remoteAddress: string | undefined;
  private readonly remotePort: number | undefined;
  /** null (the prototype's) until `socket` is first read. */
  declare private addr: { readonly remoteAddress?: string; readonly remotePort?: number } | null;

  constructor(req: IncomingMessage) {
    this.method = req.method;
    this.url = req.url;
    this.headers = compactHeaders(req.headers);
    const peer = peerOf(req.socket);
    this.remoteAddress = peer.address;
    this.remotePort = peer.port;
  }

  get socket(): { readonly remoteAddress?: string; readonly remotePort?: number } {
    return (this.addr ??= { remoteAddress: this.remoteAddress, remotePort: this.remotePort });
  }
}
coldFieldDefaults(RequestSnapshot.prototype, { addr: null });

// An EventEmitter without EventEmitter's constructor (emitterWithoutInit, after the class).
export interface ServerSession extends EventEmitter<SessionEvents> {}
export class ServerSession implements SocketOwner {
  /** 'lifeline' when the peer negotiated lifeline.v1, else 'plain' (the prototype's: protocol-level pings only, no resume). */
  declare readonly mode: 'lifeline' | 'plain';
  /** Session id (lifeline mode), null for plain peers (from the prototype). */
  declare readonly id: string | null;
  /** @internal resume token */
  declare readonly token: string | null;
  /** What the session keeps of the request that opened it. */
  readonly request: SessionRequest;
  /** What authenticate() returned for the current token. */
  declare user: unknown;
  private _socket: WebSocket;
  private _state: SessionState = 'open';
  private monitor: HeartbeatMonitor | null = null;
  private readonly server: LifelineServer;
  /** When it opened, in ms after the server's start (a small integer: no boxed double per session). */
  private readonly createdAt: number;
  // Resume bookkeeping (lifeline mode). Cold fields: their plain-session
  // values live on the prototype (see after the class); lifeline sessions
  // get own properties. 8 B per field per plain session saved.
  declare private lastSent: number;
  /** Entries are (chunk, offset) of frames kept in `arena`. */
  declare private readonly replay: ReplayBuffer<Buffer>;
  declare private readonly arena: FrameArena | null;
  declare private readonly inbound: InboundSequencer;
  /**
   * @internal -1 when not in the server's ack sweep (see
   * LifelineServer._queueAck), else what had been received when the sweep
   * last came by (0 before it has).
   */
  declare _ackMark: number;
  // On the server's clock (LifelineServerOptions.clock), as the heartbeat is.
  declare private ttlTimer: TimerHandle | null;
  declare private authTimer: TimerHandle | null;
  declare private authExpiresAt: number;
  // What a lifeline session counts beyond its sequence numbers (messages in
  // and out are those numbers themselves: every send takes the next seq,
  // every delivery is the next one received, so the hot paths do not count
  // them twice). Plain sessions count on their socket, which stats() reads.
  // Fields of the session, not an object of their own: the byte counts are
  // written on every message, and each object on that path is one more load
  // and map check.
  declare private bytesIn: number;
  declare private bytesOut: number;
  declare private resumes: number;
  declare private replayed: number;
  declare private closeInfo: SessionCloseInfo | null;
  /** The client said 'bye': its socket's end is the session's end. */
  declare private peerBye: boolean;
  /**
   * After a resume, until its replay is written out: the last seq written
   * to the socket (messages sent meanwhile wait in the replay buffer behind
   * it); -1 otherwise.
   */
  declare private catchUp: number;

  /** @internal */
  constructor(server: LifelineServer, ws: WebSocket, req: IncomingMessage, mode: 'lifeline' | 'plain') {
    sessionEventSlots(this);
    this.server = server;
    // A snapshot, not the IncomingMessage (with its stream state and raw
    // header list, about 1 KB that an idle connection would carry for life).
    this.request = new RequestSnapshot(req);
    if (mode !== 'plain') (this as { mode: 'lifeline' | 'plain' }).mode = mode;
    this.createdAt = server.sinceStart.now();
    const o = server.sessionOptions;
    if (mode === 'lifeline') {
      this.lastSent = 0;
      this._ackMark = -1;
      this.ttlTimer = null;
      this.authTimer = null;
      this.peerBye = false;
      // Own from the start (not at the first resume), so sendData sees one shape.
      this.catchUp = -1;
      this.bytesIn = this.bytesOut = this.resumes = this.replayed = 0;
      this.replay = new ReplayBuffer(o.replayMaxMessages, o.replayMaxBytes);
      this.arena = new FrameArena();
      this.inbound = new InboundSequencer(o.ackEvery);
      this.id = randomPool.take(12, 'base64url');
      this.token = randomPool.take(18, 'base64url');
    } else {
      // replay, arena, inbound, the counters, id, token: the prototype's shared plain values.
    }
    this._socket = ws;
    this.attach(ws);
  }

  get state(): SessionState {
    return this._state;
  }

  /** The current socket (after a resume, a different one). */
  get socket(): WebSocket {
    return this._socket;
  }

  /** Liveness of the current socket ('alive' | 'probing' | 'dead'); null with heartbeats off. */
  get liveness(): LivenessState | null {
    return this.monitor ? this.monitor.state : null;
  }

  /** Highest sequence number sent / received (lifeline mode). */
  get seq(): { sent: number; received: number; acked: number } {
    return { sent: this.lastSent, received: this.inbound.received, acked: this.replay.length > 0 ? this.replay.firstSeq - 1 : this.lastSent };
  }

  /**
   * Sends an application message (strings as text, buffers as binary).
   * Lifeline sessions accept sends while detached: the message waits in the
   * replay buffer for the client to resume. Returns false above the socket's
   * high-water mark (or while detached).
   */
  send(data: string | Buffer | Uint8Array, options?: { binary?: boolean }): boolean {
    // Small enough for V8 to inline into the caller, so that the options
    // object of the usual `send(data, { binary })` is read where it is made
    // and never allocated (escape analysis). With the whole send path in one
    // method, it was too large to inline: 35 B per message for the young
    // generation to collect, in bench/inproc.mjs's echo.
    return this.mode === 'plain' ? this.sendPlain(data, options) : this.sendData(data, options?.binary ?? typeof data !== 'string');
  }

  /** send() in plain mode. */
  private sendPlain(data: string | Buffer | Uint8Array, options: { binary?: boolean } | undefined): boolean {
    const st = this._state;
    if (st === 'closing' || st === 'closed') sendAfterClose(st);
    this.touchOut();
    return this._socket.send(data, options);
  }

  /** send() in lifeline mode. */
  private sendData(data: string | Buffer | Uint8Array, binary: boolean): boolean {
    const st = this._state;
    if (st === 'closing' || st === 'closed') sendAfterClose(st);
    const seq = ++this.lastSent;
    // While a resume's replay is still being written, new messages queue behind it.
    const attached = st === 'open' && this.catchUp < 0;
    // The first frame queued in this tick (the socket flushes once per tick).
    const firstInTick = attached && !this._socket._flushPending;
    // Piggyback the cumulative ack when there is something to acknowledge, on
    // the first frame queued in a tick: a burst of replies carries one ack,
    // not one each (7 bytes and more per message). Acks are cumulative; what
    // the burst leaves unacknowledged rides on the next tick's first frame, or
    // goes out with the ack sweep (ackDelay) or at ackEvery.
    const ack = firstInTick && this.inbound.pending > 0 ? this.takeAck() : -1;
    // The whole frame (WebSocket header, data header, payload) encoded once,
    // into the session's arena: sent as-is now and again on a resume.
    const headerLength = dataHeaderLength(seq, ack);
    // length, not byteLength: the same for bytes, and V8 inlines it (byteLength is a call).
    const dataLength = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const bytes = headerLength + dataLength;
    const size = frameHeaderSize(bytes, false) + bytes;
    if (this.replay.wouldOverflow(bytes)) this.replay.evictFor(bytes);
    const arena = this.arena!;
    const chunk = arena.reserve(size, seq, this._socket._drains);
    const at = arena.at;
    writeSessionFrame(chunk, at, binary, bytes, headerLength, seq, ack, data, dataLength);
    this.replay.push(seq, chunk, bytes, at);
    this.bytesOut += bytes;
    // While the socket is going away (not yet detached) the message just waits for the resume.
    if (!attached || this._socket.readyState !== OPEN) return false;
    // The heartbeat's outbound time, once per tick: the burst's later sends
    // would store the same coarse time again (about 80 instructions per
    // message in bench/inproc.mjs). A tick whose first frame was not a send
    // of ours (a pong) goes unstamped: a keepalive may come early, never late.
    if (firstInTick) this.touchOut();
    return this._socket._sendEncoded(chunk, at, at + size);
  }

  /** Ends the session: a lifeline.v1 'bye' (the client will not come back), then the closing handshake. */
  close(code = 1000, reason = ''): void {
    if (this._state === 'closing' || this._state === 'closed') return;
    const ws = this._socket;
    if (this._state === 'detached') {
      this.finish({ code, reason, cause: 'local-closed' });
      return;
    }
    this._state = 'closing';
    // What was sent before close() goes out before the bye, as it would have without a replay in progress.
    if (this.catchUp >= 0) this.writeReplay(ws, this.catchUp, true);
    if (this.mode === 'lifeline' && ws.readyState === WebSocket.OPEN) ws._sendControlMessage(encodeControl({ t: 'bye', reason: reason || 'normal' }));
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    else this.finish({ code, reason, cause: 'local-closed' });
  }

  /** Ends the session with a fatal error the client will not retry (auth revoked, banned...). */
  revoke(reason = 'revoked', code: number = FatalClose.Forbidden): void {
    this.fatal(code === FatalClose.AuthFailed ? 'auth-failed' : 'forbidden', reason, code, code === FatalClose.AuthFailed ? 'auth-failed' : 'local-closed');
  }

  /** Drops the socket at once (a lifeline client will try to resume). */
  terminate(): void {
    this._socket.terminate();
  }

  /** Probe the peer now (send a ping unless one is outstanding). */
  probe(): void {
    if (this.monitor) this.server.heartbeatDriver!.wheel.probe(this.monitor);
  }

  stats(): SessionStats {
    const plain = this.mode === 'plain' ? this._socket.counters : null;
    return {
      mode: this.mode,
      state: this._state,
      id: this.id,
      connectedSince: this.server.sinceStart.epoch + this.createdAt,
      bytesIn: plain ? plain.bytesIn : this.bytesIn,
      bytesOut: plain ? plain.bytesOut : this.bytesOut,
      messagesIn: plain ? plain.messagesIn : this.inbound.received,
      messagesOut: plain ? plain.messagesOut : this.lastSent,
      resumes: this.resumes,
      duplicatesDropped: this.inbound.duplicates,
      replayed: this.replayed,
      replayBuffered: this.replay.length,
      heartbeat: this.monitor ? this.monitor.stats() : null,
    };
  }

  // ------------------------------------------------------------ internals

  /** @internal Wires a socket to this session (first connect or resume). */
  attach(ws: WebSocket): void {
    this._socket = ws;
    this._state = 'open';
    if (this.ttlTimer !== null) {
      this.server.sinceStart.clearTimeout(this.ttlTimer);
      this.ttlTimer = null;
    }
    const hb = this.server.heartbeatDriver;
    if (hb) {
      // A lifeline.v1 socket keeps the heartbeat it had while waiting for the hello.
      // Its session is ws._owner, set below.
      this.monitor = heartbeatOf(ws) ?? new SocketHeartbeat(ws, hb);
    } else {
      this.monitor = null;
    }
    // Every hook checks that `ws` is still this session's socket: after a
    // resume, the old socket's late events must not touch the session.
    ws._owner = this;
    // The arena fills a chunk again only after the socket drained (FrameArena).
    if (this.arena !== null) ws._drains = 0;
  }

  /** @internal SocketOwner: every message, as a range (one view made, for the payload). */
  _onSocketMessageRange(ws: WebSocket, chunk: Buffer, start: number, end: number, isBinary: boolean): void {
    if (ws === this._socket) this.onMessage(chunk, start, end, isBinary);
  }

  /** @internal SocketOwner: plain peers answer our protocol pings; the payload is our timestamp. */
  _onSocketPong(ws: WebSocket, chunk: Buffer, start: number, end: number): void {
    const h = heartbeatOf(ws);
    if (h !== null) h.onPong(parseTimestamp(chunk, start, end), h.wheel.refresh());
  }

  /** @internal SocketOwner */
  _onSocketError(ws: WebSocket, err: Error): void {
    if (ws === this._socket && this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** @internal SocketOwner: the socket is under its mark again; a resume's replay goes on first. */
  _onSocketDrain(ws: WebSocket): void {
    if (ws !== this._socket) return;
    if (this.catchUp >= 0) {
      if (this._state !== 'open' || !this.writeReplay(ws, this.catchUp, false)) return;
    }
    this.emitDrain();
  }

  /** @internal SocketOwner */
  _onSocketClose(ws: WebSocket, code: number, reason: string): void {
    heartbeatOf(ws)?.end();
    if (ws === this._socket) this.onSocketClose(code, reason);
  }

  /** @internal The heartbeat of `ws` changed its verdict. */
  _livenessChanged(ws: WebSocket, state: LivenessState): void {
    // By name, not listenerCount('liveness'): its lookup by a variable key is
    // megamorphic, and a heartbeat changes state twice per ping.
    if (ws === this._socket && (this as unknown as EventSlots)._events.liveness !== undefined) this.emit('liveness', state);
  }

  /** @internal Resume on a new socket: replays what the client has not acknowledged. */
  resumeOn(ws: WebSocket, clientAck: number): number {
    const old = this._socket;
    this.resumes++;
    this.attach(ws);
    if (old !== ws && old.readyState !== WebSocket.CLOSED) old.terminate('terminated');
    // The drains of `ws` say nothing of what the old socket had queued: no
    // chunk written before now is filled again.
    this.arena!.release();
    this.replay.ack(clientAck);
    this.sendWelcome(ws, true);
    // canResumeFrom() held: every message after clientAck is in the replay buffer.
    const n = this.lastSent - clientAck;
    this.replayed += n;
    const under = this.writeReplay(ws, clientAck, false);
    this.emit('resumed', { replayed: n });
    // Written out, and under the mark: sends are taken again (else the socket's drain says so).
    if (under && ws === this._socket) this.emitDrain();
    return n;
  }

  /**
   * Writes the replay buffer's messages after `through` to `ws`, stopping
   * while the socket is over its highWaterMark and going on at its 'drain'
   * (`force`: all of it now). A backlog written at once could pass the
   * socket's maxBufferedBytes and end the very connection it resumes on,
   * again at every resume. Messages evicted before they were written (the
   * replay buffer's bound, while the client reads slowly) leave a gap the
   * client must not skip: the socket is dropped, and the client's next
   * resume learns exactly what was lost (canResumeFrom fails). Returns
   * whether all of it is written and the socket is under its mark.
   */
  private writeReplay(ws: WebSocket, through: number, force: boolean): boolean {
    this.catchUp = -1;
    const last = this.lastSent;
    let below = true;
    for (const e of this.replay.from(through)) {
      if (ws.readyState !== WebSocket.OPEN) return false;
      if (e.seq !== through + 1) break;
      through = e.seq;
      below = ws._sendEncoded(e.wire, e.offset, e.offset + encodedFrameSize(e.wire, e.offset));
      if (!below && !force && through < last) {
        // Its 'drain' comes back here (_onSocketDrain).
        this.catchUp = through;
        return false;
      }
    }
    if (through < last) {
      if (ws.readyState === WebSocket.OPEN) ws.terminate('slow-consumer');
      return false;
    }
    return below;
  }

  private emitDrain(): void {
    if ((this as unknown as EventSlots)._events.drain !== undefined) this.emit('drain');
  }

  /** @internal Whether a client that has received up to `clientAck` can resume without a gap. */
  canResumeFrom(clientAck: number): boolean {
    return clientAck <= this.lastSent && clientAck >= this.replay.evictedThrough;
  }

  /** @internal */
  tombstone(): Tombstone {
    return { lastSent: this.lastSent, received: this.inbound.received };
  }

  /** @internal Sends the welcome for this session on `ws`. */
  sendWelcome(ws: WebSocket, resumed: boolean, lost?: { reason: SessionLostReason; toClient: number | null; ack: number | null }): void {
    const c = this.monitor?.config;
    const msg: ControlMessage = {
      t: 'welcome',
      v: PROTOCOL_VERSION,
      hb: c ? { interval: c.interval, timeoutFloor: c.timeoutFloor, timeoutCeiling: c.timeoutCeiling, timeoutInitial: c.timeoutInitial, k: c.k } : null,
      session: this.id!,
      token: this.token!,
      ack: this.inbound.received,
      resumed,
      ttl: this.server.sessionOptions.sessionTtl,
    };
    if (lost) msg.lost = lost;
    ws._sendControlMessage(encodeControl(msg));
    this.inbound.acked = this.inbound.received;
  }

  /** @internal Arms the auth refresh / expiry timers for a token valid until `expiresAt`. */
  setAuth(user: unknown, expiresAt: number | undefined): void {
    this.user = user;
    if (this.authTimer !== null) this.server.sinceStart.clearTimeout(this.authTimer);
    this.authTimer = null;
    if (expiresAt === undefined) return;
    this.authExpiresAt = expiresAt;
    const now = this.server.now();
    const remaining = expiresAt - now;
    const lead = this.server.sessionOptions.authRefreshLead ?? Math.min(30_000, remaining / 2);
    const askAt = Math.max(0, remaining - lead);
    this.authTimer = this.server.sinceStart.setTimeout(() => {
      this.authTimer = null;
      // A closing handshake already under way decides how this session ends.
      if (this._state !== 'open' || this._socket.readyState !== WebSocket.OPEN) return;
      this._socket._sendControlMessage(encodeControl({ t: 'auth-refresh' }));
      // No fresh token by expiry: the session ends, fatally.
      this.authTimer = this.server.sinceStart.setTimeout(() => {
        this.authTimer = null;
        if (this.server.now() >= this.authExpiresAt) this.fatal('auth-expired', 'token expired', FatalClose.AuthFailed, 'auth-expired');
      }, Math.max(0, this.authExpiresAt - this.server.now()));
    }, askAt);
  }

  private fatal(code: string, message: string, closeCode: number, cause: SessionCloseCause): void {
    const ws = this._socket;
    // A closing handshake already under way decides how this session ends.
    if (ws.readyState === WebSocket.CLOSING) return;
    if (this.mode === 'lifeline' && ws.readyState === WebSocket.OPEN) ws._sendControlMessage(encodeControl({ t: 'error', code, message, fatal: true }));
    this.closeInfo = { code: closeCode, reason: message, cause };
    this._state = 'closing';
    if (ws.readyState === WebSocket.OPEN) ws.close(closeCode, message.slice(0, 120));
    else this.finish(this.closeInfo);
  }

  /** Outbound traffic for the heartbeat (coarse wheel time: one number store). */
  private touchOut(): void {
    const m = this.monitor;
    if (m !== null) m.onOutbound(this.server.heartbeatDriver!.wheel.coarseNow());
  }

  private takeAck(): number {
    return this.inbound.takeAck();
  }

  /** @internal The heartbeat pinged (the socket was quiet): drop spare replay space. */
  _onQuiet(): void {
    this.arena?.release();
    // Slots of the replay ring too, if everything sent was acknowledged.
    this.replay.release();
  }

  /** @internal Sends a pending ack now (before shutdown). */
  _flushAck(): void {
    this.sendAckNow();
  }

  /**
   * @internal The ack sweep came by (every ackDelay / 2). Deliveries that
   * were already pending at its last visit and that no outgoing message has
   * acknowledged since get a standalone ack now; younger ones may still ride
   * on a reply, so the session stays in the sweep for them. Returns whether
   * it stays.
   */
  _sweepAck(): boolean {
    const inbound = this.inbound;
    if (this._state === 'open' && inbound.acked < inbound.received) {
      if (inbound.acked >= this._ackMark) {
        this._ackMark = inbound.received;
        return true;
      }
      this.sendAckNow();
    }
    this._ackMark = -1;
    return false;
  }

  private sendAckNow(): void {
    if (this._state !== 'open' || this.inbound.pending === 0) return;
    this._socket._sendControlMessage(encodeControl({ t: 'ack', seq: this.takeAck() }));
    this.touchOut();
  }

  /**
   * The message `data[start..end)`, whose bytes stay as they are (a view of
   * them may be handed on). Application data, the message a busy session
   * gets most, takes a path small enough for V8 to inline into the socket's
   * hook; everything else goes through onOtherMessage().
   */
  private onMessage(data: Buffer, start: number, end: number, isBinary: boolean): void {
    if (this.mode === 'lifeline' && end > start && data[start] === DATA_MARK) this.onDataMessage(data, start, end, isBinary);
    else this.onOtherMessage(data, start, end, isBinary);
  }

  /** A lifeline.v1 data message: 'd' SEQ [',' ACK] ':' payload. */
  private onDataMessage(data: Buffer, start: number, end: number, isBinary: boolean): void {
    // Once the socket is closing we can neither acknowledge nor answer: leave
    // the message unreceived (the client replays it on resume, or reports it
    // failed on session-lost), never processed-but-reported-lost.
    if (this._socket.readyState !== OPEN) return;
    const h = HEADER;
    if (!parseDataHeaderBytes(data, h, start, end)) return this.fail(new ProtocolError('LL_ERR_INVALID_MESSAGE', 'Malformed data header'));
    if (h.ack >= 0) this.onPeerAck(h.ack);
    const verdict = this.inbound.accept(h.seq);
    if (verdict !== 'deliver') return this.onOutOfOrder(verdict, h.seq);
    this.bytesIn += end - start;
    if (this.inbound.ackDue) this.sendAckNow();
    else if (this._ackMark < 0) this.server._queueAck(this);
    emitMessage(this, h.offset === end ? EMPTY : viewOf(data, h.offset, end), isBinary);
  }

  /** A data message that is not the next one: a replayed duplicate is dropped, a gap is the peer's error. */
  private onOutOfOrder(verdict: 'duplicate' | 'gap', seq: number): void {
    if (verdict === 'gap') this.fail(new ProtocolError('LL_ERR_SEQUENCE_GAP', `Expected seq ${this.inbound.received + 1}, got ${seq}`));
  }

  /** A plain peer's message, or a lifeline.v1 control message (or an invalid one). */
  private onOtherMessage(data: Buffer, start: number, end: number, isBinary: boolean): void {
    if (this.mode === 'plain') {
      emitMessage(this, viewOf(data, start, end), isBinary);
      return;
    }
    const first = end > start ? data[start]! : -1;
    if (first === CONTROL_MARK && !isBinary) {
      // The control messages a session receives most, in the form our
      // clients write them, read without JSON.parse: the same answers as the
      // switch below gives.
      const ack = parseCanonicalAck(data, start, end);
      if (ack >= 0) return this.onPeerAck(ack);
      const pongTs = parseCanonicalPong(data, start, end);
      if (pongTs >= 0) return this.onPeerPong(pongTs);
      const pingTs = parseCanonicalPing(data, start, end);
      if (pingTs >= 0) return this.onPeerPing(pingTs);
    }
    // classify() decodes the text only for a '{' text frame (a control message).
    const d = classify(first, !isBinary, () => data.toString('utf8', start, end));
    if (d.kind !== 'control') return this.fail(new ProtocolError('LL_ERR_INVALID_MESSAGE', `Invalid lifeline.v1 message: ${d.kind === 'invalid' ? d.why : 'unexpected'}`));
    const msg = d.msg;
    switch (msg.t) {
      case 'ping':
        this.onPeerPing(msg.ts);
        return;
      case 'pong':
        this.onPeerPong(msg.ts);
        return;
      case 'ack':
        this.onPeerAck(msg.seq);
        return;
      case 'auth':
        this.server._reauthenticate(this, msg.token);
        return;
      case 'bye':
        this.peerBye = true;
        return;
      default:
        this.fail(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', `Unexpected ${msg.t} from a client`));
    }
  }

  /** The client's app ping: answered at once with its ts. */
  private onPeerPing(ts: number): void {
    this._socket._sendControlMessage(encodePong(ts));
    this.touchOut();
  }

  /** The answer to our app ping. */
  private onPeerPong(ts: number): void {
    this.monitor?.onPong(ts, this.server.heartbeatDriver!.wheel.refresh());
  }

  private onPeerAck(ack: number): void {
    if (ack > this.lastSent) {
      this.fail(new ProtocolError('LL_ERR_INVALID_ACK', `Ack ${ack} beyond the last message sent (${this.lastSent})`));
      return;
    }
    this.replay.ack(ack);
    this.arena!.acknowledged(ack, this._socket._drains);
  }

  private fail(err: LifelineError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    const ws = this._socket;
    if (ws.readyState === WebSocket.OPEN) {
      this.closeInfo = { code: err.closeCode || 1002, reason: err.message.slice(0, 120), cause: 'protocol-error' };
      this._state = 'closing';
      ws.close(err.closeCode || 1002, err.message.slice(0, 120));
    }
  }

  private onSocketClose(code: number, reason: string): void {
    const cause = this._socket.closeCause ?? 'connection-lost';
    // A lifeline session ends only on purpose: a 'bye' from either side, a
    // fatal error, close() or the TTL. Any other end of its socket (a cut, a
    // heartbeat timeout, or a client abandoning a connection it believes dead
    // with a close frame and no bye) detaches it: wait for the client.
    const planned = this.peerBye || this.closeInfo !== null || this._state !== 'open';
    if (this.mode === 'lifeline' && !planned) {
      this._state = 'detached';
      const ttl = this.server.sessionOptions.sessionTtl;
      this.ttlTimer = this.server.sinceStart.setTimeout(() => {
        this.ttlTimer = null;
        if (this._state === 'detached') this.finish({ code, reason, cause: 'session-expired' });
      }, ttl);
      this.emit('detached', cause);
      return;
    }
    this.finish(this.closeInfo ?? { code, reason, cause });
  }

  /** @internal Ends the session for good. */
  finish(info: SessionCloseInfo): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    for (const t of [this.ttlTimer, this.authTimer]) if (t !== null) this.server.sinceStart.clearTimeout(t);
    this.ttlTimer = this.authTimer = null;
    this.monitor?.stop();
    if (this._socket.readyState !== WebSocket.CLOSED) this._socket.terminate();
    this.server._sessionClosed(this, info);
    this.replay.clear();
    this.arena?.release();
    this.emit('close', info);
  }
}

coldFieldDefaults(ServerSession.prototype, {
  mode: 'plain',
  user: undefined,
  id: null,
  token: null,
  lastSent: 0,
  replay: PLAIN_REPLAY,
  arena: null,
  inbound: PLAIN_INBOUND,
  bytesIn: 0,
  bytesOut: 0,
  resumes: 0,
  replayed: 0,
  _ackMark: -1,
  ttlTimer: null,
  authTimer: null,
  authExpiresAt: 0,
  closeInfo: null,
  peerBye: false,
  catchUp: -1,
});
emitterWithoutInit(ServerSession);

/** Resolved session-layer options, shared by all sessions of a server. */
interface SessionOptions {
  sessionTtl: number;
  replayMaxMessages: number;
  replayMaxBytes: number;
  ackEvery: number;
  ackDelay: number;
  tombstones: number;
  authRefreshLead: number | undefined;
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) throw new UsageError('WS_ERR_INVALID_OPTION', `${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(name: string, v: number | undefined): number | undefined {
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && v < Infinity)) throw new UsageError('WS_ERR_INVALID_OPTION', `${name} must be a number >= 0, got ${String(v)}`);
  return v;
}

export class LifelineServer extends EventEmitter<LifelineServerEvents> {
  readonly transport: WebSocketServer;
  /** Live sessions (open or detached), by id for lifeline ones. */
  readonly sessions = new Set<ServerSession>();
  readonly heartbeat: HeartbeatConfig | null;
  /** @internal */
  readonly sessionOptions: SessionOptions;
  /** @internal */
  readonly heartbeatDriver: { config: HeartbeatConfig; wheel: HeartbeatWheel } | null;
  private readonly clock: Clock;
  private readonly byId = new Map<string, ServerSession>();
  private ackQueue: ServerSession[] = [];
  private ackSweep: TimerHandle | null = null;
  private readonly sweepAcksBound = (): void => this.sweepAcks();
  private readonly graves = new Map<string, Tombstone>();
  private readonly authenticate: LifelineServerOptions['authenticate'];
  private accepted = 0;
  private resumedCount = 0;
  private readonly lostByReason: Partial<Record<SessionLostReason, number>> = {};
  private readonly closedByCause: Partial<Record<SessionCloseCause, number>> = {};
  /** Totals of sessions that have closed, so stats() covers the server's life. */
  private readonly retired = { pingsSent: 0, pongsReceived: 0, pingsMissed: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };

  constructor(options: LifelineServerOptions = {}, onListening?: () => void) {
    super();
    this.clock = options.clock ?? systemClock;
    this.sinceStart = relativeClock(this.clock);
    this.heartbeat = resolveHeartbeat(options.heartbeat);
    const hb = this.heartbeat;
    // Tick: a tenth of the smallest interval or timeout, within 10..250 ms, so a
    // check runs at most a quarter second late (normal: 250 ms, aggressive: 100 ms).
    // Each tick's pings are written in one batch at its end (flushBatched), not one process.nextTick per socket.
    // Heartbeat time runs from the server's start (relativeClock): every
    // time a monitor keeps (four per connection) stays a small integer, with
    // no 16-byte box each. Monitors are only ever given the wheel's time.
    const wheel = hb ? new HeartbeatWheel(this.sinceStart, Math.max(10, Math.min(250, Math.floor(Math.min(hb.interval, hb.timeoutFloor) / 10))), 1024, flushBatched) : null;
    this.heartbeatDriver = hb && wheel ? { config: hb, wheel } : null;
    this.sessionOptions = {
      sessionTtl: positiveInt('sessionTtl', options.sessionTtl, 120_000),
      replayMaxMessages: positiveInt('replayMaxMessages', options.replayMaxMessages, 10_000),
      replayMaxBytes: positiveInt('replayMaxBytes', options.replayMaxBytes, 8 * 1024 * 1024),
      ackEvery: positiveInt('ackEvery', options.ackEvery, 32),
      ackDelay: positiveInt('ackDelay', options.ackDelay, 100),
      tombstones: positiveInt('tombstones', options.tombstones, 10_000),
      authRefreshLead: nonNegative('authRefreshLead', options.authRefreshLead),
    };
    this.authenticate = options.authenticate;
    checkTimerMs('helloTimeout', options.helloTimeout, 1);
    const helloTimeout = options.helloTimeout ?? 10_000;
    const userProtocols = options.subprotocols;
    this.transport = new WebSocketServer(
      {
        ...options,
        // lifeline.v1 first when offered; otherwise the application's own choice.
        subprotocols: (offered, req) => {
          if (offered.includes(SUBPROTOCOL)) return SUBPROTOCOL;
          if (typeof userProtocols === 'function') return userProtocols(offered, req);
          return userProtocols?.find((p) => offered.includes(p));
        },
      },
      onListening,
    );
    this.transport.on('listening', () => this.emit('listening'));
    this.transport.on('error', (err) => this.emit('error', err));
    this.transport.on('connection', (ws, req) => {
      if (ws.protocol === SUBPROTOCOL) {
        this.awaitHello(ws, req, helloTimeout);
        return;
      }
      const s = new ServerSession(this, ws, req, 'plain');
      this.accepted++;
      this.sessions.add(s);
      this.emit('connection', s, req);
    });
  }

  /**
   * @internal A session has deliveries to acknowledge. Rather than a timer
   * per session (a timer-list insert per burst on the hot path), one sweep
   * per server, every ackDelay / 2, acknowledges whatever no outgoing
   * message carried as a piggybacked ack for a whole sweep period: so every
   * delivery is acknowledged within ackDelay, and a session that replies
   * steadily (each reply acknowledging all it has received) never needs a
   * standalone ack. A sweep that acknowledged everything still pending
   * would send one per busy session per period: 0.016 extra writes per
   * echoed message at 1,000 connections (docs/BENCHMARKS.md, "The ack
   * sweep at 1,000 connections").
   */
  _queueAck(session: ServerSession): void {
    session._ackMark = 0;
    this.ackQueue.push(session);
    if (this.ackSweep === null) this.armAckSweep();
  }

  private armAckSweep(): void {
    this.ackSweep = this.clock.setTimeout(this.sweepAcksBound, this.sessionOptions.ackDelay / 2);
  }

  private sweepAcks(): void {
    this.ackSweep = null;
    const q = this.ackQueue;
    this.ackQueue = [];
    for (let i = 0; i < q.length; i++) if (q[i]!._sweepAck()) this.ackQueue.push(q[i]!);
    if (this.ackQueue.length > 0) this.armAckSweep();
  }

  /**
   * @internal The clock counted in whole ms from the server's start (see
   * relativeClock): the heartbeat's time, sessions' opening times, and the
   * sessions' timers (TTL, auth), on the server's clock.
   */
  readonly sinceStart: Clock & { readonly epoch: number };

  /** @internal Current time as the session layer sees it. */
  now(): number {
    return this.clock.now();
  }

  /** Looks up a live lifeline session by id. */
  session(id: string): ServerSession | undefined {
    return this.byId.get(id);
  }

  /**
   * Before the hello: only ping/pong and the hello itself are allowed. The
   * hello decides between a new session and a resume.
   */
  private awaitHello(ws: WebSocket, req: IncomingMessage, helloTimeout: number): void {
    // Whatever slowConsumer says, a session's messages are never dropped one by one.
    ws._carrySequencedStream();
    let done = false;
    const hb = this.heartbeatDriver;
    const heartbeat = hb ? new SocketHeartbeat(ws, hb) : null;
    const timer = this.clock.setTimeout(() => {
      if (!done) reject(new ProtocolError('LL_ERR_HELLO_TIMEOUT', `No hello within ${helloTimeout} ms`, 1008));
    }, helloTimeout);
    const reject = (err: LifelineError) => {
      done = true;
      this.clock.clearTimeout(timer);
      if (ws.readyState === WebSocket.OPEN) ws.close(err.closeCode || 1002, err.message.slice(0, 120));
    };
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (done) return;
      const d = classify(data.length > 0 ? data[0]! : -1, !isBinary, () => data.toString('utf8'));
      if (d.kind !== 'control') return reject(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', d.kind === 'data' ? 'Application message before hello' : `Invalid lifeline.v1 message: ${d.why}`));
      const msg = d.msg;
      if (msg.t === 'ping') return void ws._sendControlMessage(encodePong(msg.ts));
      if (msg.t === 'pong') return void heartbeat?.onPong(msg.ts, heartbeat.wheel.refresh());
      if (msg.t !== 'hello') return reject(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', `Expected hello, got ${msg.t}`));
      if (msg.v !== PROTOCOL_VERSION) return reject(new ProtocolError('LL_ERR_VERSION', `Unsupported lifeline version ${msg.v}`));
      done = true;
      this.clock.clearTimeout(timer);
      ws.removeListener('message', onMessage);
      ws.removeListener('close', onClose);
      // The heartbeat goes on; the session takes it over (attach) once the hello is accepted.
      this.onHello(ws, req, msg);
    };
    const onClose = () => {
      done = true;
      this.clock.clearTimeout(timer);
      heartbeat?.end();
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
  }

  private onHello(ws: WebSocket, req: IncomingMessage, hello: Extract<ControlMessage, { t: 'hello' }>): void {
    const proceed = (auth: AuthResult) => {
      if (ws.readyState !== WebSocket.OPEN || auth === false) {
        // No session will own this socket: its heartbeat ends here.
        heartbeatOf(ws)?.end();
        if (ws.readyState !== WebSocket.OPEN) return;
      }
      if (auth === false) {
        ws._sendControlMessage(encodeControl({ t: 'error', code: 'auth-failed', message: 'authentication failed', fatal: true }));
        ws.close(FatalClose.AuthFailed, 'auth-failed');
        this.closedByCause['auth-failed'] = (this.closedByCause['auth-failed'] ?? 0) + 1;
        return;
      }
      this.openOrResume(ws, req, hello, auth);
    };
    if (!this.authenticate) return proceed({});
    Promise.resolve()
      .then(() => this.authenticate!(hello.auth, req))
      .then(proceed, () => proceed(false));
  }

  private openOrResume(ws: WebSocket, req: IncomingMessage, hello: Extract<ControlMessage, { t: 'hello' }>, auth: Exclude<AuthResult, false>): void {
    let lost: { reason: SessionLostReason; toClient: number | null; ack: number | null } | undefined;
    if (hello.session !== undefined) {
      const clientAck = hello.ack ?? 0;
      const existing = this.byId.get(hello.session);
      if (existing && existing.token !== null && tokensEqual(existing.token, hello.token ?? '') && existing.state !== 'closing' && existing.state !== 'closed') {
        if (existing.canResumeFrom(clientAck)) {
          existing.setAuth(auth.user, auth.expiresAt);
          this.resumedCount++;
          existing.resumeOn(ws, clientAck);
          return;
        }
        // The replay buffer dropped messages the client never got.
        const t = existing.tombstone();
        lost = { reason: 'replay-overflow', toClient: Math.max(0, t.lastSent - clientAck), ack: t.received };
        existing.finish({ code: 1006, reason: 'replay buffer overflowed', cause: 'replay-overflow' });
      } else {
        const grave = existing ? undefined : this.graves.get(hello.session);
        lost = grave
          ? { reason: 'session-expired', toClient: Math.max(0, grave.lastSent - clientAck), ack: grave.received }
          : { reason: 'unknown-session', toClient: null, ack: null };
      }
    }
    const s = new ServerSession(this, ws, req, 'lifeline');
    s.setAuth(auth.user, auth.expiresAt);
    this.accepted++;
    this.sessions.add(s);
    this.byId.set(s.id!, s);
    s.sendWelcome(ws, false, lost);
    if (lost) {
      this.lostByReason[lost.reason] = (this.lostByReason[lost.reason] ?? 0) + 1;
      this.emit('session-lost', { reason: lost.reason, toClient: lost.toClient, session: s });
    }
    this.emit('connection', s, req);
  }

  /** @internal A client presented a fresh token (auth-refresh). */
  _reauthenticate(s: ServerSession, token: string): void {
    if (!this.authenticate) return;
    Promise.resolve()
      .then(() => this.authenticate!(token, s.request))
      .then(
        (r) => (r === false ? s.revoke('token refused', FatalClose.AuthFailed) : s.setAuth(r.user, r.expiresAt)),
        () => s.revoke('token refused', FatalClose.AuthFailed),
      );
  }

  /** @internal */
  _sessionClosed(s: ServerSession, info: SessionCloseInfo): void {
    this.sessions.delete(s);
    if (s.id !== null) {
      this.byId.delete(s.id);
      if (info.cause === 'session-expired') {
        this.graves.set(s.id, s.tombstone());
        // Bounded: forget the oldest (Map keeps insertion order).
        if (this.graves.size > this.sessionOptions.tombstones) this.graves.delete(this.graves.keys().next().value!);
      }
    }
    this.closedByCause[info.cause] = (this.closedByCause[info.cause] ?? 0) + 1;
    const st = s.stats();
    const r = this.retired;
    r.bytesIn += st.bytesIn;
    r.bytesOut += st.bytesOut;
    r.messagesIn += st.messagesIn;
    r.messagesOut += st.messagesOut;
    if (st.heartbeat) {
      r.pingsSent += st.heartbeat.pingsSent;
      r.pongsReceived += st.heartbeat.pongsReceived;
      r.pingsMissed += st.heartbeat.pingsMissed;
    }
  }

  address(): ReturnType<WebSocketServer['address']> {
    return this.transport.address();
  }

  /** Aggregated statistics: live sessions plus everything closed so far. */
  stats(): ServerStats {
    const t = { ...this.retired };
    let min = Infinity;
    let max = 0;
    let sum = 0;
    let n = 0;
    for (const s of this.sessions) {
      const st = s.stats();
      t.bytesIn += st.bytesIn;
      t.bytesOut += st.bytesOut;
      t.messagesIn += st.messagesIn;
      t.messagesOut += st.messagesOut;
      const hb = st.heartbeat;
      if (hb) {
        t.pingsSent += hb.pingsSent;
        t.pongsReceived += hb.pongsReceived;
        t.pingsMissed += hb.pingsMissed;
        if (hb.rtt.min !== null && hb.rtt.min < min) min = hb.rtt.min;
        if (hb.rtt.max !== null && hb.rtt.max > max) max = hb.rtt.max;
        if (hb.rtt.smoothed !== null) {
          sum += hb.rtt.smoothed;
          n++;
        }
      }
    }
    return {
      sessions: this.sessions.size,
      accepted: this.accepted,
      resumed: this.resumedCount,
      lost: { ...this.lostByReason },
      closed: { ...this.closedByCause },
      ...t,
      lossRate: t.pingsSent === 0 ? 0 : t.pingsMissed / t.pingsSent,
      rtt: { min: n ? min : null, max: n ? max : null, meanSmoothed: n ? Math.round((sum / n) * 100) / 100 : null },
    };
  }

  /**
   * Stops accepting and closes every session. Lifeline clients get a 'bye'
   * with a retry hint spread over `retryWindow` ms (so they do not all come
   * back at once), then close 1001. Resolves when all are gone (or after `timeout`).
   */
  async close(options: { timeout?: number; retryWindow?: number } = {}): Promise<void> {
    const windowMs = options.retryWindow ?? 0;
    for (const s of this.sessions) {
      if (s.mode === 'lifeline' && s.state === 'open' && s.socket.readyState === WebSocket.OPEN) {
        // Acknowledge what was processed first, so the client does not count it as lost.
        s._flushAck();
        s.socket._sendControlMessage(encodeControl({ t: 'bye', reason: 'server-shutdown', retryAfter: Math.floor(Math.random() * windowMs) }));
      }
    }
    await this.transport.close({ timeout: options.timeout, code: 1001, reason: 'server shutting down' });
    for (const s of [...this.sessions]) s.finish({ code: 1001, reason: 'server shutting down', cause: 'local-closed' });
    this.heartbeatDriver?.wheel.stop();
    this.emit('close');
  }
}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

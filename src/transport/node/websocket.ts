/**
 * The Node WebSocket: pumps bytes between a net/tls socket and the sans-I/O
 * Connection, batches writes per tick, and exposes the familiar API
 * (send/ping/close/terminate, message/ping/pong/close/error/drain events).
 * Used for both ends: the server creates one per accepted upgrade, the client
 * one per `new WebSocket(url)` (see client.ts for the handshake).
 */
import { EventEmitter } from 'node:events';
import { Buffer, isUtf8 } from 'node:buffer';
import process from 'node:process';
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { Connection, type ConnectionHandler, type ConnectionState, type MessageCodec, PreparedMessage, type Role, viewAt as viewAtImport, viewOf as viewOfImport } from '../../protocol/connection.js';
import { nodeBulkMask, nodeBulkUnmask } from './native.js';
import type { BulkMask } from '../../protocol/simd-unmask.js';
import { frameHeaderSize as frameHeaderSizeImport, maskInto as maskIntoImport, unmaskInPlace as unmaskInPlaceImport, writeFrameHeader as writeFrameHeaderImport } from '../../protocol/frame.js';
import { putDecimalBefore as putDecimalBeforeImport } from '../../protocol/decimal.js';
import { coldFieldDefaults, ownColdFields } from '../../protocol/cold-fields.js';
import { ConnectionLostError, type LifelineError, UsageError } from '../../protocol/errors.js';
import { type EventSlots, emitMessage as emitMessageImport, emitterWithoutInit, socketEventSlots } from './event-slots.js';

// Hot-path bindings as this module's own constants: V8 reads an imported or
// exported binding from its cell, with a hole check, at every use (about 5
// instructions each, per message, even where the callee is inlined), and
// folds a module's own constant (bench/opt-code-instructions.mjs shows them).
const viewAt = viewAtImport;
const viewOf = viewOfImport;
const frameHeaderSize = frameHeaderSizeImport;
const writeFrameHeader = writeFrameHeaderImport;
const maskInto = maskIntoImport;
const unmaskInPlace = unmaskInPlaceImport;
const putDecimalBefore = putDecimalBeforeImport;
const emitMessage = emitMessageImport;

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
// This module's own constant for its uses: an exported binding is read from
// its cell, with a hole check, at every use (see bench/opt-code-instructions.mjs).
const READY = ReadyState;

export type SlowConsumerPolicy = 'disconnect' | 'drop-newest' | 'drop-oldest' | 'keep-latest' | 'wait';
const SLOW_CONSUMER_POLICIES: readonly string[] = ['disconnect', 'drop-newest', 'drop-oldest', 'keep-latest', 'wait'];

/** Node's timers take at most this many ms (beyond, they fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks an option that is a timer's delay: a number of ms in min..MAX_TIMER_MS (undefined: the default). */
export function checkTimerMs(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(typeof v === 'number' && v >= min && v <= MAX_TIMER_MS)) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `${name} must be a number of ms in ${min}..${MAX_TIMER_MS}, got ${String(v)}`);
  }
}

/**
 * Checks the socket options once, where they are given (a server's or a
 * client's constructor): a bad value is a UsageError
 * ('WS_ERR_INVALID_OPTION') then, not a throw at a peer's first connection
 * (the protocol core checks its sizes as a connection is made, which for a
 * server is in the middle of an upgrade) nor a limit that silently never
 * applies (a NaN mark, a misspelt policy).
 */
export function validateSocketOptions(options: SocketOptions): void {
  const count = (name: keyof SocketOptions) => {
    const v = options[name];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 0)) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `${name} must be a non-negative integer, got ${String(v)}`);
    }
  };
  count('maxMessageSize');
  count('maxFrameSize');
  count('fragmentSize');
  count('highWaterMark');
  count('maxBufferedBytes');
  count('maxMessagesPerSecond');
  checkTimerMs('closeTimeout', options.closeTimeout, 0);
  const p = options.slowConsumer;
  if (p !== undefined && !SLOW_CONSUMER_POLICIES.includes(p)) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `slowConsumer must be one of ${SLOW_CONSUMER_POLICIES.join(', ')}, got ${JSON.stringify(p)}`);
  }
}

/**
 * Options for a socket that carries a sequenced stream (the session layer's
 * lifeline.v1, on either end). A message dropped by a drop policy would be a
 * hole its reader cannot step over: seq n+2 after n is a broken stream, the
 * reader reconnects, the replay is congested and dropped from in turn. So on
 * such a socket the drop policies end the connection at the cap
 * ('disconnect'), and the session resumes and replays what was not read.
 * One derived object per options object (the server's sockets share theirs).
 */
export function sequencedSocketOptions<T extends SocketOptions>(options: T): T {
  const p = options.slowConsumer;
  if (p !== 'drop-newest' && p !== 'drop-oldest' && p !== 'keep-latest') return options;
  let derived = SEQUENCED_OPTIONS.get(options) as T | undefined;
  if (derived === undefined) {
    derived = { ...options, slowConsumer: 'disconnect' };
    SEQUENCED_OPTIONS.set(options, derived);
  }
  return derived;
}
const SEQUENCED_OPTIONS = new WeakMap<SocketOptions, SocketOptions>();

/** Frames held back while the socket is congested; one group per message. */
interface HeldGroup {
  bufs: Buffer[];
  bytes: number;
  /** Application messages may be dropped by policy; control frames never. */
  droppable: boolean;
  /** send()'s `key` (keep-latest): a newer message with the same key replaces this one. */
  key?: string;
}

/**
 * Why a connection ended, as a code applications can switch on:
 * - 'peer-closed': the peer started the closing handshake;
 * - 'local-closed': we did (close());
 * - 'protocol-error': a side broke the protocol or a limit (see the 'error' event);
 * - 'heartbeat-timeout': the peer went silent beyond the liveness window;
 * - 'terminated': terminate() was called;
 * - 'connection-lost': TCP ended without a closing handshake;
 * - 'slow-consumer': the peer read too slowly and the 'disconnect' policy applied.
 */
export type CloseCause = 'peer-closed' | 'local-closed' | 'protocol-error' | 'heartbeat-timeout' | 'terminated' | 'connection-lost' | 'slow-consumer';

/** Limits and behaviour shared by server- and client-side sockets. */
export interface SocketOptions {
  /** Largest message accepted, bytes after decompression (close 1009 beyond). Default 64 MiB. 0 = no limit. */
  maxMessageSize?: number;
  /** Largest frame accepted (close 1009 beyond). Default: maxMessageSize. */
  maxFrameSize?: number;
  /** Split outgoing messages into frames of at most this many bytes. Default 0 (never). */
  fragmentSize?: number;
  /**
   * send() returns false once bufferedAmount exceeds this, and frames beyond
   * it are held by us (not Node) so a slow-consumer policy can act on whole
   * messages. Default 1 MiB.
   */
  highWaterMark?: number;
  /**
   * Cap on bytes held for a peer that does not read fast enough (beyond
   * highWaterMark). What happens at the cap is `slowConsumer`. Default 16 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * At maxBufferedBytes: 'disconnect' (default: close 1008 'slow consumer',
   * held frames discarded), 'drop-newest' (the new message is not sent),
   * 'drop-oldest' (the oldest held messages are discarded until it fits),
   * 'keep-latest' (while congested, a message sent with `key` replaces the held
   * one with the same key: state updates where only the latest matters; at the
   * cap, as drop-oldest), or 'wait' (the application honours send()'s false /
   * 'drain'; reaching the cap anyway disconnects). Dropped messages are counted
   * (counters.dropped).
   */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * Inbound messages per second per connection (a fixed one-second window);
   * beyond it the connection is closed with 1008 'rate limit'. 0 (default) = no limit.
   */
  maxMessagesPerSecond?: number;
  /** How long to wait for the peer to close TCP after the close handshake, ms. Default 5000. */
  closeTimeout?: number;
}

export interface WebSocketEvents {
  open: [];
  message: [data: Buffer, isBinary: boolean];
  ping: [data: Buffer];
  pong: [data: Buffer];
  close: [code: number, reason: string];
  error: [err: Error];
  drain: [];
}

/** Internal wiring handed over by the server or the client handshake. */
export interface AttachInit {
  role: Role;
  socket: Socket;
  head: Buffer;
  protocol: string;
  extensions: string;
  codec: MessageCodec | null;
  options: SocketOptions;
}

const FLUSH_CONCAT_LIMIT = 64 * 1024;
const LOADED_AT = Date.now();
/** Shared empty lists: an idle socket allocates no array of its own (replaced on the first push). */
const NO_BUFS = Object.freeze([]) as unknown as Buffer[];
const NO_HELD = Object.freeze([]) as unknown as HeldGroup[];
/** A socket's congestion state as it is until the socket first congests (see congestionFields()). */
const CONGESTION_FIELDS = Object.freeze({ needDrain: false, holding: false, held: NO_HELD, heldBytes: 0, queuedBytes: 0, flushWatched: false });
/** Written behind held-back bytes only for its callback (see watchFlush()). */
const EMPTY = Buffer.alloc(0);
/** Above this average size per buffer, a corked writev beats copying into one buffer. */
const CONCAT_AVERAGE_MAX = 1024;
const WRITE_SLICE = 64 * 1024;

/** Views of buf[from..] of at most 64 KiB each (no copies). */
function slices(buf: Buffer, from: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = from; off < buf.length; off += WRITE_SLICE) out.push(buf.subarray(off, Math.min(off + WRITE_SLICE, buf.length)));
  return out;
}

/** Uint8Array.prototype.set, called directly: see U8_SET in protocol/connection.ts (a module's own constant, not an import, for V8 to fold). */
const U8_SET = Uint8Array.prototype.set;

/** Writes a small unmasked frame at `at`; returns the offset after it. */
function encodeSmallFrame(buf: Buffer, at: number, b0: number, payload: Uint8Array | string | number, length: number): number {
  const p = writeFrameHeader(buf, at, b0, length);
  if (typeof payload === 'string') buf.write(payload, p, length, 'utf8');
  else if (typeof payload === 'number') putDecimalBefore(buf, p + length, payload);
  else U8_SET.call(buf, payload, p);
  return p + length;
}

/** A client's payload at `buf[p..]`, masked: bytes masked as they are copied, a string encoded and then masked in place. */
function encodeMaskedPayload(buf: Buffer, p: number, payload: Uint8Array | string, length: number, mask: Uint8Array, bulk: BulkMask | null): void {
  if (typeof payload !== 'string') {
    maskInto(payload, buf, p, mask, bulk);
    return;
  }
  buf.write(payload, p, length, 'utf8');
  unmaskInPlace(buf, p, p + length, mask, 0);
}

/** Masking keys for client frames (servers never call it). */
function randomFill(buf: Uint8Array): void {
  randomFillSync(buf);
}

/**
 * Direct hooks for the code that owns a socket inside the library (the
 * session server): called before the matching event is emitted, without an
 * EventEmitter listener (and its closure) per connection.
 */
export interface SocketOwner {
  /** A message as `chunk[start..end)` (the whole buffer for messages the connection assembled). */
  _onSocketMessageRange(ws: WebSocket, chunk: Buffer, start: number, end: number, isBinary: boolean): void;
  /** A pong's payload as `chunk[start..end)` (the whole buffer when it came in pieces). */
  _onSocketPong(ws: WebSocket, chunk: Buffer, start: number, end: number): void;
  _onSocketError(ws: WebSocket, err: Error): void;
  /** The socket is back under its highWaterMark after send() answered false (told before 'drain' is emitted). */
  _onSocketDrain(ws: WebSocket): void;
  _onSocketClose(ws: WebSocket, code: number, reason: string): void;
}

/** Told of every read (its byte count) before it is parsed: liveness drivers use it. */
export interface ActivitySink {
  noteActivity(bytes: number): void;
}

// Socket listeners are shared functions (`this` is the socket) that find their
// WebSocket through a symbol, rather than closures allocated per connection.
const kWebSocket = Symbol('lifeline.websocket');
type OwnedSocket = Socket & { [kWebSocket]?: WebSocket };

function socketOnData(this: OwnedSocket, chunk: Buffer): void {
  this[kWebSocket]!._onData(chunk);
}
function socketOnClose(this: OwnedSocket): void {
  this[kWebSocket]!._onSocketClose();
}
function socketOnError(): void {
  // ECONNRESET and friends: the 'close' that follows reports 1006.
}
function socketOnDrain(this: OwnedSocket): void {
  this[kWebSocket]!._onDrain();
}
function flushTick(ws: WebSocket): void {
  ws._flush();
}

/**
 * Small frames are encoded straight into a shared slab (ConnectionHandler
 * writeFrame): each socket holds one open segment at the slab's end while it
 * keeps writing, and hands the segment to Node as one buffer at flush time.
 * So a tick's worth of small frames costs no buffer per frame and no
 * concatenation copy. A full slab is replaced, never reused: Node may still
 * hold earlier segments of it.
 */
const SLAB_SIZE = 64 * 1024;
let slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
// The slab's ArrayBuffer and offset, kept at hand: reading them from `slab` is a call in V8 (see memoryOf in protocol/frame.ts).
let slabMemory: ArrayBufferLike = slab.buffer;
let slabBase = slab.byteOffset;
let slabOff = 0;
/** The socket whose open segment ends at slabOff (only it may extend in place). */
let slabTail: WebSocket | null = null;

/**
 * While `batching` (a read, see WebSocket._onData, or flushBatched), sockets
 * that queue bytes are collected in BATCH and flushed in one pass at the end,
 * instead of one process.nextTick each. Batches do not nest (an inner one
 * joins the outer), so one array serves them all; it is never truncated
 * (setting an array's length frees its storage, and the next push would
 * grow it again): the first `batchLength` slots are the batch. It keeps the
 * size of the largest batch so far (4 bytes a slot: a broadcast to 100,000
 * sockets leaves 400 KB), and holds no socket between batches.
 */
let batching = false;
let batchLength = 0;
const BATCH: Array<WebSocket | null> = [];

/**
 * @internal Runs `fn` (which sends on many sockets, e.g. a broadcast) and
 * then writes what it queued at once, socket by socket, without scheduling a
 * tick per socket. Nested calls join the outer batch.
 */
export function flushBatched(fn: () => void): void {
  if (batching) {
    fn();
    return;
  }
  batching = true;
  try {
    fn();
  } finally {
    batching = false;
    flushBatch();
  }
}

/**
 * Flushes the sockets of the finished batch and empties it. Should a flush
 * throw, the sockets after it still get theirs, in a tick: each is marked
 * flushScheduled and would otherwise never schedule one again.
 */
function flushBatch(): void {
  let i = 0;
  try {
    for (; i < batchLength; i++) {
      const ws = BATCH[i]!;
      BATCH[i] = null;
      ws._flush();
    }
  } finally {
    for (i++; i < batchLength; i++) {
      process.nextTick(flushTick, BATCH[i]!);
      BATCH[i] = null;
    }
    batchLength = 0;
  }
}

// An EventEmitter without EventEmitter's constructor (emitterWithoutInit, after the class).
export interface WebSocket extends EventEmitter<WebSocketEvents> {}
export class WebSocket implements ConnectionHandler {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  constructor() {
    socketEventSlots(this);
  }

  /** readyState value of an open socket (instance mirror of WebSocket.OPEN); on the prototype, not per instance. */
  declare readonly OPEN_STATE: 1;

  /** The negotiated subprotocol, '' if none (from the prototype: an own property only when one was negotiated). */
  declare protocol: string;
  /** The negotiated extensions header value, '' if none (from the prototype, as `protocol`). */
  declare extensions: string;
  /** The URL for client sockets (an own property there); '' from the prototype on the server side. */
  declare url: string;

  protected conn: Connection | null = null;
  protected socket: Socket | null = null;
  protected options: SocketOptions = {};
  protected _readyState: number = READY.CONNECTING;
  // Cold fields: initial values on the prototype (see the end of this file).
  declare private closeCode: number;
  declare private closeReason: string;
  declare private closeTimer: NodeJS.Timeout | null;
  declare private cause: CloseCause | null;
  /** When it opened, in ms after LOADED_AT: a small integer, where Date.now() would need a 16-byte box per socket. */
  private readonly openedAt = Math.floor(Date.now() - LOADED_AT);

  /**
   * Called with the byte count of every read, before it is parsed: liveness
   * drivers use it, so that a large frame still arriving counts as life.
   */
  declare onActivity: ((bytes: number) => void) | null;
  /** What verifyUpgrade attached (server side); undefined from the prototype otherwise. */
  declare context: unknown;
  /** @internal Like onActivity, as an object (no closure per connection). */
  _activity: ActivitySink | null = null;
  /** @internal See SocketOwner. */
  _owner: SocketOwner | null = null;
  /** @internal Told when the socket closes (the server's client set), before 'close' is emitted. */
  _closeHook: { _socketClosed(ws: WebSocket): void } | null = null;

  // Write batching: frames queued during a tick go out in one socket write.
  private pending: Buffer[] = NO_BUFS;
  private pendingBytes = 0;
  /**
   * This socket's open segment, or -1 when none: of the slab,
   * slab[segStart..slabOff), or (runBuf set) a run of encoded frames in a
   * caller's buffer, runBuf[segStart..runEnd).
   */
  private segStart = -1;
  // Fields of the instance, not cold ones: the server's heartbeat queues its
  // shared ping frame as a run, so every pinged socket would soon own them,
  // in a property array of 40 B, against 16 B in the object.
  private runBuf: Buffer | null = null;
  private runEnd = 0;
  /**
   * @internal How many times a flush (or a drain) left nothing of ours,
   * Node's or a compression job's still queued: every byte sent before that
   * moment had gone to the kernel, so no write still reads its buffer. -1
   * (the prototype's) = not counted; the session layer sets 0 on the sockets
   * whose frame chunks it fills again (src/server/frame-arena.ts).
   */
  declare _drains: number;
  private flushScheduled = false;
  // Congestion state: cold (prototype defaults: CONGESTION_FIELDS) until the
  // socket first passes its high-water mark; then all six become own
  // properties at once, in one order (see congestionFields()).
  declare private needDrain: boolean;
  /** The socket is congested: new frames go to `held` instead of Node's buffer. */
  declare private holding: boolean;
  declare private held: HeldGroup[];
  declare private heldBytes: number;
  /**
   * Bytes of held messages not yet started: what the slow-consumer cap counts.
   * A message partly on the wire is excluded: its held part is a view of the
   * application's own payload (no extra memory), and it cannot be dropped.
   */
  declare private queuedBytes: number;
  /** An empty write's callback stands in for Node's 'drain' (see watchFlush()). */
  declare private flushWatched: boolean;
  /** _sendControlMessage() is sending: admitUnencoded lets it through. */
  declare private sendingControl: boolean;
  /** The group being filled by the current send(), while holding. */
  declare private group: HeldGroup | null;
  declare private dropped: number;
  declare private rateWindowStart: number;
  declare private rateCount: number;

  get readyState(): number {
    return this._readyState;
  }

  /** The connection state as a name. */
  get state(): ConnectionState {
    return (['connecting', 'open', 'closing', 'closed'] as const)[this._readyState]!;
  }

  /**
   * Bytes accepted by send() but not yet handed to the kernel: framed ones
   * queued here or in Node, and (permessage-deflate) payloads still waiting
   * for the compressor.
   */
  get bufferedAmount(): number {
    const c = this.conn;
    return this.pendingBytes + this.heldBytes + (this.socket ? this.socket.writableLength : 0) + (c !== null ? c.unencodedBytes : 0);
  }

  /** The underlying TCP/TLS socket (null before the handshake finished). */
  get rawSocket(): Socket | null {
    return this.socket;
  }

  /** Why the connection ended (null while it is open). */
  get closeCause(): CloseCause | null {
    return this._readyState === READY.CLOSED ? this.cause ?? 'connection-lost' : null;
  }

  /** When this socket was created (ms since the epoch). */
  get connectedSince(): number {
    return LOADED_AT + this.openedAt;
  }

  /**
   * Bytes handed to the kernel so far. While bufferedAmount > 0 this grows
   * only as the peer's TCP stack acknowledges data: proof that it is alive.
   */
  get bytesFlushed(): number {
    const c = this.conn;
    if (!c) return 0;
    return c.bytesOut - this.pendingBytes - this.heldBytes - (this.socket ? this.socket.writableLength : 0);
  }

  /** Counters: bytes and messages each way. */
  get counters(): { bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number; dropped: number } {
    const c = this.conn;
    return c
      ? { bytesIn: c.bytesIn, bytesOut: c.bytesOut, messagesIn: c.messagesIn, messagesOut: c.messagesOut, dropped: this.dropped }
      : { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, dropped: this.dropped };
  }

  /** @internal Wires an upgraded socket to a new protocol connection. */
  _attach(init: AttachInit): void {
    const { socket, options } = init;
    this.socket = socket;
    this.options = options;
    if (init.protocol !== '') this.protocol = init.protocol;
    if (init.extensions !== '') this.extensions = init.extensions;
    this.conn = new Connection(this, {
      role: init.role,
      maxMessageSize: options.maxMessageSize,
      maxFrameSize: options.maxFrameSize,
      fragmentSize: options.fragmentSize,
      codec: init.codec,
      isUtf8,
      // Only clients mask (a server's connections keep the shared default).
      randomFill: init.role === 'client' ? randomFill : undefined,
      bulkUnmask: nodeBulkUnmask,
      bulkMask: init.role === 'client' ? nodeBulkMask : null,
    });
    this._readyState = READY.OPEN;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    (socket as OwnedSocket)[kWebSocket] = this;
    socket.on('data', socketOnData);
    socket.on('close', socketOnClose);
    socket.on('error', socketOnError);
    // Sockets handed over by http.Server's 'upgrade' have allowHalfOpen = true:
    // a peer's FIN would leave us half-open forever. A WebSocket peer that sends
    // FIN is done (RFC 6455 7.1.5: without a close frame that is 1006), so end
    // our side too. Node does it itself once allowHalfOpen is false (its
    // endReadableNT ends the writable side a tick after 'end', after our
    // flush tick): no 'end' listener of ours, which would turn the socket's
    // 'end' entry into an array (64 B per connection).
    socket.allowHalfOpen = false;
    socket.on('drain', socketOnDrain);
    this.emit('open');
    if (init.head.length > 0) this.conn.receiveData(init.head);
  }

  /** @internal */
  _onData(chunk: Buffer): void {
    if (this._activity !== null) this._activity.noteActivity(chunk.length);
    if (this.onActivity !== null) this.onActivity(chunk.length);
    if (batching) {
      this.conn!.receiveData(chunk);
      return;
    }
    // What the read's handlers send (an echo, the session's acks, a
    // broadcast) is written when the read is done, not in a process.nextTick
    // per socket: the same batching, without a tick object and its dispatch
    // per read (a read of one message, as in a request/response exchange,
    // paid them per message). Node would run that tick right after this
    // callback anyway, before any promise job.
    batching = true;
    try {
      this.conn!.receiveData(chunk);
    } finally {
      batching = false;
      flushBatch();
    }
  }

  /** @internal */
  _onDrain(): void {
    this.releaseHeld();
    if (this._drains >= 0) this.countDrain();
    this.emitDrainIfOwed();
  }

  /** ConnectionHandler.onSendProgress: the compressor's backlog shrank. */
  onSendProgress(): void {
    this.emitDrainIfOwed();
  }

  /** 'drain' for an application that send() answered false, once bufferedAmount is back under the mark. */
  private emitDrainIfOwed(): void {
    if (this.needDrain && this.bufferedAmount <= this.highWaterMark) {
      this.needDrain = false;
      if (this._owner !== null) this._owner._onSocketDrain(this);
      this.emit('drain');
    }
  }

  /** @internal This socket carries a sequenced stream: see sequencedSocketOptions. */
  _carrySequencedStream(): void {
    this.options = sequencedSocketOptions(this.options);
  }

  /** @internal Feeds bytes that arrived with the upgrade request (after 'connection' listeners are attached). */
  _receive(data: Buffer): void {
    if (data.length > 0 && this.conn) this.conn.receiveData(data);
  }

  private get highWaterMark(): number {
    return this.options.highWaterMark ?? 1024 * 1024;
  }

  private get maxBufferedBytes(): number {
    return this.options.maxBufferedBytes ?? 16 * 1024 * 1024;
  }

  private get slowConsumer(): SlowConsumerPolicy {
    return this.options.slowConsumer ?? 'disconnect';
  }

  // ----------------------------------------------------------- public API

  /**
   * Sends a message: strings as text, Buffers/typed arrays as binary unless
   * `binary` says otherwise. Returns false when bufferedAmount is above the
   * high-water mark: wait for 'drain' before sending more.
   */
  send(data: string | Buffer | Uint8Array | ArrayBuffer, options?: { binary?: boolean; key?: string }): boolean {
    const conn = this.requireOpen('send');
    const payload = data instanceof ArrayBuffer ? Buffer.from(data) : data;
    const binary = options?.binary ?? typeof payload !== 'string';
    if (!this.holding) {
      conn.send(payload, binary);
      return this.afterSend();
    }
    return this.sendHeld(conn, payload, binary, null, 0, 0, options?.key);
  }

  /**
   * Sends a message encoded once for many sockets (see WebSocketServer.broadcast):
   * the same frame bytes are queued, not copied. Same return value and
   * slow-consumer handling as send().
   */
  sendPrepared(message: PreparedMessage, options?: { key?: string }): boolean {
    return this.sendFrameBytes(message.frame, 0, message.frame.length, true, options?.key);
  }

  /**
   * @internal sendPrepared() for WebSocketServer.broadcast(): the same
   * framing and slow-consumer policy, without send()'s answer, which
   * broadcast() does not pass on (it returns a count). The answer reads the
   * socket's stream state (bufferedAmount): in a broadcast to thousands of
   * sockets that is a cache miss per socket, 2% of scenario e's CPU (`npm
   * run bench -- --scenario e --servers lifeline --cpu-prof`). No false was
   * answered, so no 'drain' is owed for this message; bufferedAmount stays
   * exact, and the next send() answers as always.
   */
  _broadcastPrepared(message: PreparedMessage): void {
    const conn = this.requireOpen('send');
    const frame = message.frame;
    if (!this.holding) conn.sendEncoded(frame, 0, frame.length, true);
    else this.sendHeld(conn, null, false, frame, 0, frame.length, undefined);
  }

  /**
   * @internal Sends a frame the session layer keeps encoded for replay,
   * `src[start..end)`; the bytes do not change until written. Same return
   * value and slow-consumer handling as send().
   */
  _sendEncoded(src: Buffer, start: number, end: number): boolean {
    return this.sendFrameBytes(src, start, end, false, undefined);
  }

  private sendFrameBytes(src: Buffer, start: number, end: number, shared: boolean, key: string | undefined): boolean {
    const conn = this.requireOpen('send');
    if (!this.holding) {
      conn.sendEncoded(src, start, end, shared);
      return this.afterSend();
    }
    return this.sendHeld(conn, null, false, src, start, end, key);
  }

  private afterSend(): boolean {
    // bufferedAmount without its null checks (a socket that was open has both),
    // small enough that V8 keeps inlining the send path into its callers.
    if (this.pendingBytes + this.heldBytes + this.socket!.writableLength + this.conn!.unencodedBytes > this.highWaterMark) {
      this.congestionFields();
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Congested: collect this message's frames as one group, then apply the
   * policy. The message is `payload`, or the encoded frame `frame[start..end)`.
   */
  private sendHeld(
    conn: Connection,
    payload: string | Buffer | Uint8Array | null,
    binary: boolean,
    frame: Buffer | null,
    start: number,
    end: number,
    key: string | undefined,
  ): boolean {
    {
      const g: HeldGroup = { bufs: [], bytes: 0, droppable: true };
      this.group = g;
      try {
        if (frame !== null) conn.sendEncoded(frame, start, end, true);
        else conn.send(payload!, binary);
      } finally {
        this.group = null;
      }
      if (g.bufs.length > 0) {
        if (key !== undefined && this.options.slowConsumer === 'keep-latest') {
          g.key = key;
          // Only the latest message per key matters: drop the one still waiting.
          for (let i = 0; i < this.held.length - 1; i++) {
            const old = this.held[i]!;
            if (old.droppable && old.key === key) {
              this.held.splice(i, 1);
              this.heldBytes -= old.bytes;
              this.queuedBytes -= old.bytes;
              this.dropped++;
              break;
            }
          }
        }
        this.enforceCap(g);
      }
    }
    return this.afterSend();
  }

  /**
   * ConnectionHandler.admitUnencoded: permessage-deflate's slow-consumer cap,
   * asked before a data message waits for the compressor. As without
   * compression, the cap is on what is buffered beyond highWaterMark: here
   * everything bufferedAmount counts (payloads waiting for the compressor,
   * held frames, Node's buffer), and a message sent at or under the mark is
   * always taken, so a sender that waits for 'drain' after a false never
   * reaches the cap, whatever the two values. (Counting the backlog
   * from zero, a cap at or under the mark came before send()'s false: a
   * resume's replay to a reading client was cut off at every attempt, and
   * the session never came back.) A compressed
   * message is never dropped once compressed: with context takeover (RFC
   * 7692 7.2.3) the peer's decompressor needs every one of them, so its held
   * frames are not droppable, and the cap is applied here instead. Past it
   * the drop policies drop this message (so drop-oldest and keep-latest drop
   * the newest here); 'disconnect' and 'wait' end the connection, discarding
   * the messages not yet compressed. The session layer's control messages
   * (_sendControlMessage) always pass, as they are never dropped when held.
   */
  admitUnencoded(bytes: number): boolean {
    const buffered = this.bufferedAmount;
    // Under the mark, a message is always taken (send() answers false after it), as without compression.
    if (this.sendingControl || buffered <= this.highWaterMark || buffered + bytes <= this.maxBufferedBytes + this.highWaterMark) return true;
    // This message is not sent, whatever the policy.
    this.dropped++;
    const policy = this.slowConsumer;
    if (policy === 'disconnect' || policy === 'wait') this.dropSlowConsumer();
    return false;
  }

  /** Applies the slow-consumer policy once held bytes pass maxBufferedBytes. */
  private enforceCap(newest: HeldGroup): void {
    const cap = this.maxBufferedBytes;
    if (this.queuedBytes <= cap) return;
    const policy = this.slowConsumer;
    if (policy === 'drop-oldest' || policy === 'keep-latest') {
      for (let i = 0; i < this.held.length && this.queuedBytes > cap; ) {
        const g = this.held[i]!;
        if (g.droppable && g !== newest) {
          this.held.splice(i, 1);
          this.heldBytes -= g.bytes;
          this.queuedBytes -= g.bytes;
          this.dropped++;
        } else i++;
      }
      if (this.queuedBytes <= cap) return;
    }
    if (policy === 'drop-newest' || policy === 'drop-oldest' || policy === 'keep-latest') {
      const i = this.held.lastIndexOf(newest);
      if (i >= 0) {
        this.held.splice(i, 1);
        this.heldBytes -= newest.bytes;
        this.queuedBytes -= newest.bytes;
        this.dropped++;
      }
      return;
    }
    // 'disconnect', and 'wait' whose application ignored the backpressure.
    this.dropSlowConsumer();
  }

  private dropSlowConsumer(): void {
    this.congestionFields();
    this.cause ??= 'slow-consumer';
    // Drop the messages not yet started; keep what must follow bytes already
    // on the wire (the rest of a half-sent frame, control frames), so the
    // close frame lands after whole frames.
    const kept = this.held.filter((g) => !g.droppable);
    this.dropped += this.held.length - kept.length;
    this.held = kept;
    let bytes = 0;
    for (const g of kept) bytes += g.bytes;
    this.heldBytes = bytes;
    this.queuedBytes = 0;
    this.holding = kept.length > 0;
    const conn = this.conn;
    // Messages still waiting for the compressor are not started either.
    if (conn) this.dropped += conn.discardQueuedMessages();
    if (conn && !conn.isCloseSent) {
      // RFC 6455 7.4.1: 1008 = policy violation. It queues behind what Node
      // already holds; closeTimeout ends it if the peer never reads that far.
      conn.close(1008, 'slow consumer');
      this._readyState = READY.CLOSING;
    }
    this.armCloseTimer();
  }

  /**
   * @internal Sends a message that a slow-consumer policy must never drop
   * (session-layer control: pings, pongs, acks). Same framing as send().
   */
  _sendControlMessage(text: string): void {
    if (this._readyState !== READY.OPEN || this.conn === null) return;
    // No extension negotiated: nothing waits for a compressor, and the flag below stays on the prototype.
    if (this.extensions === '') return this.conn.send(text, false);
    // With permessage-deflate it waits for the compressor like any message: admitUnencoded must let it through.
    this.sendingControl = true;
    try {
      this.conn.send(text, false);
    } finally {
      this.sendingControl = false;
    }
  }

  /**
   * @internal Sends an encoded control frame shared with other sockets (see
   * Connection.sendEncodedControl): the server's heartbeat pings.
   */
  _sendEncodedControl(frame: Buffer): void {
    if (this._readyState !== READY.OPEN || this.conn === null) return;
    this.conn.sendEncodedControl(frame);
  }

  /**
   * Sends a message given as fragments, one frame each. Answers as send()
   * does (false over highWaterMark, then 'drain'); while congested the
   * message is held whole, under the slow-consumer policy like any other.
   */
  sendFragments(fragments: Array<string | Buffer>, options?: { binary?: boolean }): boolean {
    const conn = this.requireOpen('sendFragments');
    const binary = options?.binary ?? typeof fragments[0] !== 'string';
    if (!this.holding) {
      conn.sendFragments(fragments, binary);
      return this.afterSend();
    }
    const g: HeldGroup = { bufs: [], bytes: 0, droppable: true };
    this.group = g;
    try {
      conn.sendFragments(fragments, binary);
    } finally {
      this.group = null;
    }
    if (g.bufs.length > 0) this.enforceCap(g);
    return this.afterSend();
  }

  /** Sends a ping; a number goes as its decimal text (as in ws). */
  ping(data?: string | Buffer | number): void {
    this.requireOpen('ping').ping(data);
  }

  /** Sends an unsolicited pong; a number goes as its decimal text. */
  pong(data?: string | Buffer | number): void {
    this.requireOpen('pong').pong(data);
  }

  /**
   * Starts the closing handshake. The 'close' event follows once the peer
   * answered and TCP is closed (or closeTimeout passed).
   */
  close(code?: number, reason?: string): void {
    if (this._readyState === READY.CLOSED) return;
    if (this._readyState === READY.CONNECTING) {
      this.abortConnecting();
      return;
    }
    const conn = this.conn!;
    if (conn.isCloseSent) return;
    conn.close(code, reason);
    this.cause ??= 'local-closed';
    this._readyState = READY.CLOSING;
    this.armCloseTimer();
  }

  /**
   * Destroys the connection at once, without a closing handshake. `cause`
   * (default 'terminated') is what closeCause reports.
   */
  terminate(cause: CloseCause = 'terminated'): void {
    if (this._readyState === READY.CLOSED) return;
    this.cause ??= cause;
    if (this._readyState === READY.CONNECTING) {
      this.abortConnecting();
      return;
    }
    this._readyState = READY.CLOSING;
    this.socket?.destroy();
  }

  /** @internal Overridden by the client to abort a handshake in progress. */
  protected abortConnecting(): void {
    this._readyState = READY.CLOSED;
    this.emit('close', 1006, '');
  }

  private requireOpen(what: string): Connection {
    if (this._readyState !== READY.OPEN || this.conn === null) {
      throw new UsageError(
        this._readyState === READY.CONNECTING ? 'WS_ERR_NOT_OPEN' : 'WS_ERR_SEND_AFTER_CLOSE',
        `Cannot ${what}: the WebSocket is ${this.state}`,
      );
    }
    return this.conn;
  }

  // ------------------------------------------------- ConnectionHandler

  write(data: Buffer): void {
    if (this.holding) {
      let g = this.group;
      if (g === null) {
        // Control frames and frames written outside send() (compression) are never dropped.
        g = { bufs: [], bytes: 0, droppable: false };
        this.heldList().push(g);
      } else if (g.bufs.length === 0) {
        this.heldList().push(g);
      }
      // Held bytes are stored in slices, so releasing them can be paced (see writeOut).
      if (data.length <= WRITE_SLICE) g.bufs.push(data);
      else for (const v of slices(data, 0)) g.bufs.push(v);
      g.bytes += data.length;
      this.heldBytes += data.length;
      if (g.droppable) this.queuedBytes += data.length;
      return;
    }
    if (this.segStart >= 0) this._closeSegment();
    this.queue(data);
    this.pendingBytes += data.length;
    this.afterQueued();
  }

  /**
   * Queues a buffer for this tick's write. The first one makes a one-element
   * list (`[]` and a push would reserve room for 17): in a tick that pings a
   * wheel slot, every socket's frame lands here once, and the spare room was
   * about two thirds of what writing a ping left behind here.
   */
  private queue(buf: Buffer): void {
    if (this.pending === NO_BUFS) this.pending = [buf];
    else this.pending.push(buf);
  }

  private heldList(): HeldGroup[] {
    return this.held === NO_HELD ? (this.held = []) : this.held;
  }

  /** @internal Moves this socket's open segment to the pending list (order kept). */
  _closeSegment(): void {
    this.queue(this.takeSegment());
  }

  /** Ends this socket's open segment and returns it as one view. */
  private takeSegment(): Buffer {
    const run = this.runBuf;
    let view: Buffer;
    if (run === null) {
      view = viewAt(slabMemory, slabBase + this.segStart, slabOff - this.segStart);
      slabTail = null;
    } else {
      view = viewOf(run, this.segStart, this.runEnd);
      this.runBuf = null;
    }
    this.segStart = -1;
    return view;
  }

  /** ConnectionHandler.writeFrame: a small frame, encoded into the slab (see SLAB_SIZE). */
  writeFrame(b0: number, payload: Uint8Array | string | number, length: number): void {
    const size = frameHeaderSize(length, false) + length;
    if (this.holding) {
      // Congested: held frames need buffers of their own (they may be dropped or paced).
      const frame = Buffer.allocUnsafe(size);
      encodeSmallFrame(frame, 0, b0, payload, length);
      this.write(frame);
      return;
    }
    // Reserve first: it may replace `slab`.
    const at = this.slabReserve(size);
    encodeSmallFrame(slab, at, b0, payload, length);
    this.pendingBytes += size;
    this.afterQueued();
  }

  /**
   * ConnectionHandler.writeMaskedFrame: a client's small frame, masked as it
   * is copied into the slab (the same batch as writeFrame's): no buffer and
   * no concatenation per frame.
   */
  writeMaskedFrame(b0: number, payload: Uint8Array | string, length: number, mask: Uint8Array, bulk: BulkMask | null): void {
    const size = frameHeaderSize(length, true) + length;
    if (this.holding) {
      // Congested: held frames need buffers of their own (they may be dropped or paced).
      const frame = Buffer.allocUnsafe(size);
      encodeMaskedPayload(frame, writeFrameHeader(frame, 0, b0, length, mask), payload, length, mask, bulk);
      this.write(frame);
      return;
    }
    // Reserve first: it may replace `slab`.
    const at = this.slabReserve(size);
    encodeMaskedPayload(slab, writeFrameHeader(slab, at, b0, length, mask), payload, length, mask, bulk);
    this.pendingBytes += size;
    this.afterQueued();
  }

  /**
   * ConnectionHandler.writeBytes: an encoded frame that stays unchanged until
   * written (the session layer's replay arena), queued without a copy; frames
   * that follow each other in one buffer extend one run, written as one view.
   */
  writeBytes(src: Buffer, start: number, end: number): void {
    if (this.holding) {
      this.write(src.subarray(start, end));
      return;
    }
    if (this.segStart >= 0 && this.runBuf === src && this.runEnd === start) {
      this.runEnd = end;
    } else {
      if (this.segStart >= 0) this._closeSegment();
      this.runBuf = src;
      this.segStart = start;
      this.runEnd = end;
    }
    this.pendingBytes += end - start;
    this.afterQueued();
  }

  /** @internal True while frames queued this tick wait for their flush (the session layer piggybacks one ack per tick). */
  get _flushPending(): boolean {
    return this.flushScheduled;
  }

  /** Room for `size` bytes at the end of this socket's open slab segment; returns where. */
  private slabReserve(size: number): number {
    if (this.segStart < 0 || this.runBuf !== null || slabOff + size > SLAB_SIZE) {
      if (this.segStart >= 0) this._closeSegment();
      // Another socket's segment ends here: close it, so each segment stays contiguous.
      if (slabTail !== null) slabTail._closeSegment();
      if (slabOff + size > SLAB_SIZE) {
        slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
        slabMemory = slab.buffer;
        slabBase = slab.byteOffset;
        slabOff = 0;
      }
      this.segStart = slabOff;
      slabTail = this;
    }
    const at = slabOff;
    slabOff += size;
    return at;
  }

  /** After bytes were queued: flush now past the high-water mark, else once per tick. */
  private afterQueued(): void {
    if (this.pendingBytes >= this.highWaterMark) {
      // A burst larger than the high-water mark within one tick: write now, so
      // congestion is noticed (and held frames bounded) before the tick ends.
      this._flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (batching) BATCH[batchLength++] = this;
      else process.nextTick(flushTick, this);
    }
  }

  /** A message the connection assembled (fragmented or inflated): the whole of `data` as a range. */
  onMessage(data: Buffer, isBinary: boolean): void {
    this.onMessageRange(data, 0, data.length, isBinary);
  }

  /** A message as a range of the bytes read (ConnectionHandler.onMessageRange): an owner gets the range, listeners a view. */
  onMessageRange(chunk: Buffer, start: number, end: number, isBinary: boolean): void {
    if (this.options.maxMessagesPerSecond && this.overRate()) return;
    if (this._owner !== null) {
      this._owner._onSocketMessageRange(this, chunk, start, end, isBinary);
      // Owned sockets rarely have listeners of their own.
      if ((this as unknown as EventSlots)._events.message === undefined) return;
    }
    emitMessage(this, viewOf(chunk, start, end), isBinary);
  }

  /** maxMessagesPerSecond: counts this message; true (after starting a 1008 close once) when it is over the limit. */
  private overRate(): boolean {
    const limit = this.options.maxMessagesPerSecond!;
    const now = Date.now();
    if (now - this.rateWindowStart >= 1000) {
      this.rateWindowStart = now;
      this.rateCount = 0;
    }
    if (++this.rateCount <= limit) return false;
    if (this.rateCount === limit + 1 && this.conn && !this.conn.isCloseSent) {
      this.cause ??= 'protocol-error';
      // RFC 6455 7.4.1: 1008, a message that violates policy.
      this.conn.close(1008, 'rate limit');
      this._readyState = READY.CLOSING;
      this.armCloseTimer();
    }
    return true;
  }

  // 'ping' and 'pong' are checked by name before emit(): emit() looks the
  // event up by a variable key, which across the shapes of listener tables
  // in a process is a megamorphic lookup (about 150 instructions), on every
  // heartbeat of every connection, where usually no one listens.
  onPing(data: Buffer): void {
    if ((this as unknown as EventSlots)._events.ping !== undefined) this.emit('ping', data);
  }

  onPong(data: Buffer): void {
    // viewOf() of a whole buffer is the buffer itself.
    this.onPongRange(data, 0, data.length);
  }

  /** ConnectionHandler.onPongRange: the owner reads the range; a view only for 'pong' listeners. */
  onPongRange(chunk: Buffer, start: number, end: number): void {
    if (this._owner !== null) this._owner._onSocketPong(this, chunk, start, end);
    if ((this as unknown as EventSlots)._events.pong !== undefined) this.emit('pong', viewOf(chunk, start, end));
  }

  onCloseFrame(code: number, reason: string): void {
    this._readyState = READY.CLOSING;
    this.cause ??= 'peer-closed';
    this.closeCode = code;
    this.closeReason = reason;
    // Client: the server closes TCP first (RFC 6455 7.1.1); give it closeTimeout.
    this.armCloseTimer();
  }

  onError(err: LifelineError): void {
    this._readyState = READY.CLOSING;
    this.cause ??= 'protocol-error';
    // An 'error' without listeners would throw and crash the process on peer
    // input; the 'close' event that follows always reports what happened.
    if (this._owner !== null) this._owner._onSocketError(this, err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  closeTransport(): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    this._flush();
    // Held frames (and the close frame among them) go out before FIN.
    if (this.holding || this.held !== NO_HELD) {
      for (const g of this.held) for (const b of g.bufs) s.write(b);
      this.held = NO_HELD;
      this.heldBytes = 0;
      this.queuedBytes = 0;
      this.holding = false;
    }
    s.end();
    this.armCloseTimer();
  }

  onClosed(code: number, reason: string): void {
    this.closeCode = code;
    this.closeReason = reason;
  }

  // ------------------------------------------------------------ internals

  /** @internal Writes what this tick queued. */
  _flush(): void {
    this.flushScheduled = false;
    if (this.segStart >= 0) {
      if (this.pending.length === 0) {
        // The usual tick: small frames only, all in one segment. Written as is,
        // without a pending list (an array per flush).
        const view = this.takeSegment();
        this.pendingBytes = 0;
        const s = this.socket;
        if (s && !s.destroyed && s.writable) this.writeOut(s, view);
        if (this._drains >= 0) this.countDrain();
        return;
      }
      this._closeSegment();
    }
    const n = this.pending.length;
    if (n === 0) return;
    const s = this.socket;
    const list = this.pending;
    const bytes = this.pendingBytes;
    this.pending = NO_BUFS;
    this.pendingBytes = 0;
    if (!s || s.destroyed || !s.writable) return;
    if (n === 1) {
      this.writeOut(s, list[0]!);
    } else if (bytes <= FLUSH_CONCAT_LIMIT && bytes <= n * CONCAT_AVERAGE_MAX) {
      // Many small frames: one copy is cheaper than one write per frame.
      this.writeOut(s, Buffer.concat(list, bytes));
    } else {
      // Large frames (headers and payloads as separate buffers): corked, Node
      // hands them to the kernel in one writev, without copying payloads.
      s.cork();
      for (let i = 0; i < n; i++) this.writeOut(s, list[i]!);
      s.uncork();
      // While corked, writableLength counts the corked bytes, so writeOut may
      // have started holding; uncork() may then have handed them all to the
      // kernel. Holding on with Node's buffer under the mark would hold what
      // follows (against maxBufferedBytes) while bufferedAmount, and so
      // send(), still said there was room: a sender that honoured send()'s
      // false was dropped as a slow consumer without ever seeing one.
      if (this.holding && s.writableLength < this.highWaterMark) this.releaseHeld();
    }
    if (this._drains >= 0) this.countDrain();
  }

  /** Counts a drain (see _drains) if nothing sent is still queued anywhere now. */
  private countDrain(): void {
    if (this.socket !== null && this.bufferedAmount === 0 && (this.conn === null || this.conn.sendsSettled)) this._drains++;
  }

  /**
   * Hands bytes to Node in slices of at most 64 KiB while its buffer is below
   * the high-water mark; the rest waits in `held` (released on 'drain').
   * Why pace it: Node batches everything queued into one writev and lowers
   * writableLength only when that completes, so one 48 MiB message would show
   * no progress for its whole transfer; paced slices let bufferedAmount (and
   * the heartbeat's "our backlog is draining" rule) follow the peer's reading.
   */
  private writeOut(s: Socket, buf: Buffer): void {
    if (this.holding) {
      this.holdTail(buf.length <= WRITE_SLICE ? [buf] : slices(buf, 0));
      return;
    }
    if (buf.length <= WRITE_SLICE) {
      s.write(buf);
    } else {
      let off = 0;
      while (off < buf.length && s.writableLength < this.highWaterMark) {
        const end = Math.min(off + WRITE_SLICE, buf.length);
        s.write(buf.subarray(off, end));
        off = end;
      }
      if (off < buf.length) {
        this.startHolding(s);
        this.holdTail(slices(buf, off));
        return;
      }
    }
    // Past the high-water mark, further frames wait with us (see write()).
    if (s.writableLength >= this.highWaterMark) this.startHolding(s);
  }

  /** Further frames wait with us until the socket drains (Node's 'drain', or watchFlush()'s stand-in). */
  private startHolding(s: Socket): void {
    this.congestionFields();
    this.holding = true;
    this.watchFlush(s);
  }

  /**
   * We hold frames (and may owe the application a 'drain'), so something must
   * tell us when the socket's buffer has gone out. Node's 'drain' does only if
   * one of its write() calls returned false, which never happens while our
   * high-water mark is under the socket's own (16 KiB on Node 20, 64 KiB on
   * Node 24). Then an empty write stands in: its callback runs once everything
   * written before it has gone to the kernel, which is when Node's 'drain'
   * would have come. One closure per congestion, not per message.
   */
  private watchFlush(s: Socket): void {
    if (this.flushWatched || s.writableNeedDrain) return;
    this.flushWatched = true;
    s.write(EMPTY, (err?: Error | null) => {
      this.flushWatched = false;
      if (!err && !s.destroyed) this._onDrain();
    });
  }

  /**
   * Before the first write of any congestion field: makes all six own
   * properties, always in this order. Written one by one where each first
   * changes, they would appear in different orders on different sockets,
   * each order a hidden class of its own for the send path to meet.
   */
  private congestionFields(): void {
    if (!Object.hasOwn(this, 'holding')) ownColdFields(this, CONGESTION_FIELDS);
  }

  /** Appends bytes that must follow everything held (never dropped: part of a frame may be out). */
  private holdTail(bufs: Buffer[]): void {
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    this.heldList().push({ bufs, bytes, droppable: false });
    this.heldBytes += bytes;
  }

  /** Socket drained: hand held bytes to it, slice by slice, until it is congested again. */
  private releaseHeld(): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    while (this.held.length > 0 && s.writableLength < this.highWaterMark) {
      const g = this.held[0]!;
      while (g.bufs.length > 0 && s.writableLength < this.highWaterMark) {
        if (g.droppable) {
          // A group partly on the wire can no longer be dropped.
          g.droppable = false;
          this.queuedBytes -= g.bytes;
        }
        const b = g.bufs.shift()!;
        g.bytes -= b.length;
        this.heldBytes -= b.length;
        s.write(b);
      }
      if (g.bufs.length === 0) this.held.shift();
    }
    if (this.holding && this.held.length === 0 && s.writableLength < this.highWaterMark) this.holding = false;
    if (this.holding) this.watchFlush(s);
  }

  private armCloseTimer(): void {
    if (this.closeTimer || !this.socket) return;
    const s = this.socket;
    this.closeTimer = setTimeout(() => s.destroy(), this.options.closeTimeout ?? 5000);
    this.closeTimer.unref();
  }

  /** @internal */
  _onSocketClose(): void {
    if (this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    this.pending = NO_BUFS;
    this.pendingBytes = 0;
    if (this.segStart >= 0) {
      // Abandon the open segment (its bytes are never written).
      if (this.runBuf === null) slabTail = null;
      this.runBuf = null;
      this.segStart = -1;
    }
    if (this.held !== NO_HELD) {
      this.held = NO_HELD;
      this.heldBytes = 0;
      this.queuedBytes = 0;
    }
    this._readyState = READY.CLOSED;
    this.conn?.transportClosed();
    if (this._closeHook !== null) this._closeHook._socketClosed(this);
    if (this._owner !== null) this._owner._onSocketClose(this, this.closeCode, this.closeReason);
    this.emit('close', this.closeCode, this.closeReason);
  }
}

// Per-instance constants would cost 8 B per socket each: they live on the prototype,
// and so do the initial values of cold fields (written only when closing, under
// congestion, with a rate limit, when a subprotocol or extension was negotiated, on a client (url),
// or by the application): an own property appears only once one is written.
coldFieldDefaults(WebSocket.prototype, { protocol: '', extensions: '', url: '', closeCode: 1006, closeReason: '', ...CONGESTION_FIELDS, closeTimer: null, cause: null, onActivity: null, context: undefined, group: null, sendingControl: false, dropped: 0, rateWindowStart: 0, rateCount: 0, _drains: -1 });
emitterWithoutInit(WebSocket);
Object.defineProperty(WebSocket.prototype, 'OPEN_STATE', { value: 1, writable: false, enumerable: false, configurable: true });

/** A connection-lost error, for clients whose socket died during the handshake. */
export function connectionLost(message: string, cause?: Error): ConnectionLostError {
  const err = new ConnectionLostError('WS_ERR_CONNECTION_LOST', message);
  // As Error's own `cause` option makes it (own, not enumerable), set here so
  // that the browser bundle's error classes do not grow for a Node-only use.
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause, writable: true, configurable: true });
  return err;
}

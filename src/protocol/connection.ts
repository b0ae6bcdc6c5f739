/**
 * One WebSocket connection after the opening handshake, sans-I/O (RFC 6455
 * sections 5-8): bytes from the peer go in through receiveData(); messages,
 * control frames and the close handshake come out through a ConnectionHandler,
 * and every byte to send goes out through handler.write(). No sockets, no
 * timers: the transport owns those.
 *
 * Why a handler object instead of an event queue: the receive path is the hot
 * path, and direct calls on one long-lived object avoid an allocation per
 * event. Tests use RecordingHandler (test/helpers) to get python-websockets
 * style event lists.
 */
import { Buffer } from 'node:buffer';
import {
  InvalidPayloadError,
  LifelineError,
  MessageTooBigError,
  ProtocolError,
  UsageError,
} from './errors.js';
import {
  CloseCode,
  MAX_CONTROL_PAYLOAD,
  Opcode as OpcodeImport,
  UNMASK_BITS_UNKNOWN as UNMASK_BITS_UNKNOWN_IMPORT,
  encodeFrameHeader,
  frameHeaderSize as frameHeaderSizeImport,
  isValidWireCloseCode,
  maskInto,
  memoryOf as memoryOfImport,
  writeFrameHeader as writeFrameHeaderImport,
} from './frame.js';
import { FrameParser, type FrameSink, payloadSliceBits as payloadSliceBitsImport, phaseZeroUnmask } from './parser.js';
import { type BulkMask, type BulkUnmask, sharedSimdMask, sharedSimdUnmask } from './simd-unmask.js';
import { coldFieldDefaults } from './cold-fields.js';
import { decimalDigits } from './decimal.js';
import { webCryptoFill } from './random-pool.js';
import { Utf8Validator, isShortAscii, isValidUtf8 } from './utf8.js';

// Hot-path bindings as this module's own constants: V8 reads an imported or
// exported binding from its cell, with a hole check, at every use (about 5
// instructions each, per message, even where the callee is inlined), and
// folds a module's own constant (bench/opt-code-instructions.mjs shows them).
const Opcode = OpcodeImport;
const UNMASK_BITS_UNKNOWN = UNMASK_BITS_UNKNOWN_IMPORT;
const frameHeaderSize = frameHeaderSizeImport;
const memoryOf = memoryOfImport;
const writeFrameHeader = writeFrameHeaderImport;
const payloadSliceBits = payloadSliceBitsImport;

export type Role = 'server' | 'client';

/** Lifecycle of a connection. 'connecting' is used by transports during the opening handshake. */
export type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

/** The per-message compression codec (permessage-deflate) as the connection sees it. */
export interface MessageCodec {
  /** Messages smaller than this many bytes are sent uncompressed. */
  readonly threshold: number;
  compress(data: Buffer, fin: boolean, cb: (err: Error | null, result?: Buffer) => void): void;
  decompress(data: Buffer, fin: boolean, cb: (err: Error | null, result?: Buffer) => void): void;
  close(): void;
}

export interface ConnectionHandler {
  /** Bytes to put on the wire, in order. */
  write(data: Buffer): void;
  onMessage(data: Buffer, isBinary: boolean): void;
  /**
   * Optional: a message that arrived whole in one frame, as the range
   * `chunk[start..end)` of the bytes read (valid UTF-8 for text), instead of a
   * view handed to onMessage(): a handler that looks at the bytes before
   * deciding what to hand on (the session layer's data header) makes the only
   * view. The range's bytes stay unchanged after the call.
   */
  onMessageRange?(chunk: Buffer, start: number, end: number, isBinary: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /**
   * Optional: a pong whose payload is `chunk[start..end)`, in place of
   * onPong() when the payload arrived in one read (a heartbeat answer: only
   * its bytes are read, so no view is made for it). The range's bytes stay
   * unchanged after the call.
   */
  onPongRange?(chunk: Buffer, start: number, end: number): void;
  /**
   * A compression job finished and its frame (with any queued behind it)
   * was written: unencodedBytes went down, so a transport that answered
   * send() with backpressure may owe its application a 'drain'.
   */
  onSendProgress?(): void;
  /**
   * A data message of `bytes` is about to wait for the compressor (queued
   * behind a job, or compressed now): false drops it (a slow-consumer cap;
   * compressed messages cannot be dropped later, see unencodedBytes).
   */
  admitUnencoded?(bytes: number): boolean;
  /** The peer's close frame arrived (before the TCP connection is gone). */
  onCloseFrame(code: number, reason: string): void;
  /** The connection failed (peer broke the protocol or a limit): a close frame was sent, the transport will be closed. */
  onError(err: LifelineError): void;
  /**
   * The core wants the TCP connection closed now: after the close handshake on
   * the server (RFC 6455 7.1.1: the server closes TCP first), or after failing.
   * The client transport instead waits for the server's FIN (with a timeout).
   */
  closeTransport(): void;
  /** The connection is finished (transportClosed() was called). Called once. */
  onClosed(code: number, reason: string, wasClean: boolean): void;
  /**
   * Optional: appends one small unmasked frame (first header byte `b0`,
   * payload of `length` bytes, at most SMALL_FRAME_MAX) to the transport's
   * current write batch, encoded in place: no buffer per frame. Without it the
   * frame is encoded into a buffer of its own and handed to write(). A
   * number payload (a safe integer >= 0, only in control frames) stands for
   * its decimal digits, `length` of them (see protocol/decimal.ts).
   */
  writeFrame?(b0: number, payload: Uint8Array | string | number, length: number): void;
  /**
   * Optional, a client's writeFrame: appends one small frame masked with
   * `mask` (payload of `length` bytes, at most SMALL_FRAME_MAX) to the current
   * write batch, masking it as it is copied there (`bulk`: the connection's
   * mask-and-copy, for maskInto). A string payload is its UTF-8 bytes,
   * `length` of them, encoded there and then masked in place. Without it the
   * frame gets a buffer of its own.
   */
  writeMaskedFrame?(b0: number, payload: Uint8Array | string, length: number, mask: Uint8Array, bulk: BulkMask | null): void;
  /**
   * Optional: appends the already encoded frame `src[start..end)`, whose bytes
   * stay unchanged until written, to the current write batch; frames that
   * follow each other in `src` may go out as one view. Without it the frame
   * goes to write() as a view of its own.
   */
  writeBytes?(src: Buffer, start: number, end: number): void;
}

/** Largest payload a server hands to ConnectionHandler.writeFrame (header: 2 or 4 bytes), and a client to writeMaskedFrame (6 or 8). */
export const SMALL_FRAME_MAX = 1024;
const SMALL_MAX = SMALL_FRAME_MAX;

/**
 * Uint8Array.prototype.set, called as U8_SET.call(buf, src, at): V8 (Node 20)
 * reaches `buf.set` on a Buffer through an inline-cache call each time; a
 * known function is called directly (about 11 against 13-16 ns per 32-byte
 * copy on the bench machine). Not exported on purpose: V8 folds a module's
 * own constant, not an exported one (those live in a cell), and the direct
 * call needs the constant.
 */
const U8_SET = Uint8Array.prototype.set;

/**
 * Writes a complete unmasked data frame (FIN set, no RSV bits) at `at`:
 * header, then `prefix` (payload bytes that come first, such as the session
 * layer's data header), then `dataLength` bytes of `data`. `buf` has room for
 * frameHeaderSize(prefix.length + dataLength) + prefix.length + dataLength
 * bytes from `at`. Returns the offset after the frame.
 */
export function writeDataFrame(
  buf: Buffer,
  at: number,
  binary: boolean,
  prefix: string | PayloadPrefix,
  data: string | Uint8Array,
  dataLength: number,
): number {
  const plen = prefix.length;
  let p = writeFrameHeader(buf, at, 0x80 | (binary ? Opcode.Binary : Opcode.Text), plen + dataLength);
  if (typeof prefix === 'string') {
    for (let i = 0; i < plen; i++) buf[p + i] = prefix.charCodeAt(i);
  } else {
    prefix.writeInto(buf, p);
  }
  p += plen;
  if (typeof data === 'string') buf.write(data, p, dataLength, 'utf8');
  else U8_SET.call(buf, data, p);
  return p + dataLength;
}

/** Header size of the unmasked frame that starts at `src[at]`. */
function encodedHeaderSize(src: Uint8Array, at: number): number {
  const b1 = src[at + 1]! & 0x7f;
  return b1 < 126 ? 2 : b1 === 126 ? 4 : 10;
}

/** Size of the unmasked frame that starts at `src[at]` (its header says how long it is). */
export function encodedFrameSize(src: Uint8Array, at: number): number {
  const b1 = src[at + 1]! & 0x7f;
  if (b1 < 126) return 2 + b1;
  if (b1 === 126) return 4 + ((src[at + 2]! << 8) | src[at + 3]!);
  let len = 0;
  for (let i = 2; i < 10; i++) len = len * 256 + src[at + i]!;
  return 10 + len;
}

export interface ConnectionOptions {
  role: Role;
  /** Largest message accepted, in bytes (after decompression). 0 = no limit. Exceeding it closes with 1009. Default 64 MiB. */
  maxMessageSize?: number;
  /** Largest single frame accepted, in bytes. 0 = no limit. Default: maxMessageSize. */
  maxFrameSize?: number;
  /** Negotiated permessage-deflate codec, if any. */
  codec?: MessageCodec | null;
  /** Split outgoing data messages into frames of at most this many payload bytes. 0 = never. */
  fragmentSize?: number;
  /** Answer pings automatically with a pong carrying the same payload (RFC 6455 5.5.2). Default true. */
  autoPong?: boolean;
  /** Fills a buffer with random bytes, for client masking keys. Default: globalThis.crypto.getRandomValues. */
  randomFill?: (buf: Uint8Array) => void;
  /** Fast validator for complete buffers (Node: buffer.isUtf8). Default: the incremental validator. */
  isUtf8?: (buf: Uint8Array) => boolean;
  /**
   * Unmask for payload slices of BULK_UNMASK_MIN (576) bytes and more.
   * Default: the WebAssembly SIMD kernel (simd-unmask.ts) where the runtime
   * has it; null: the built-in JavaScript unmask for every slice.
   */
  bulkUnmask?: BulkUnmask | null;
  /**
   * A client's mask-and-copy for payloads of BULK_MASK_MIN (512) bytes and
   * more. Default: the WebAssembly SIMD kernel's where the runtime has it;
   * null: copy, then the built-in unmask in place. Servers do not mask.
   */
  bulkMask?: BulkMask | null;
  /**
   * A native in-place unmask of a whole buffer with the key at phase 0,
   * bufferutil's `unmask(buf, mask)`: used as the bulk unmask (through
   * phaseZeroUnmask) when `bulkUnmask` is not given.
   */
  unmask?: ((buf: Buffer, mask: Buffer) => void) | null;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);
/** Never updated: stands for "no code point open" in connections that have not needed incremental validation. */
const IDLE_UTF8 = new Utf8Validator();
/** Shared empty lists: an idle connection allocates no array of its own (replaced on the first push). */
const NO_BUFS = Object.freeze([]) as unknown as Buffer[];
const NO_SENDS = Object.freeze([]) as unknown as QueuedSend[];
const MASK_POOL_SIZE = 8192;

// Receive-side message states.
const M_NONE = 0; // between messages
const M_TEXT = 1;
const M_BINARY = 2;

/** A payload prefix that writes its bytes itself (no string per message). */
export interface PayloadPrefix {
  readonly length: number;
  writeInto(buf: Buffer, at: number): void;
}

/**
 * A message encoded once as an unmasked frame, to be written as-is to many
 * server connections (broadcast): the frame bytes are shared, not copied, per
 * recipient. Connections that cannot take the shared bytes (permessage-deflate,
 * fragmentation, a compression job in flight, the client role) send `payload`
 * the usual way instead.
 */
export class PreparedMessage {
  /** The complete frame: header + payload, FIN set, no mask, no RSV bits. */
  readonly frame: Buffer;
  readonly binary: boolean;
  private readonly headerSize: number;

  /**
   * `prefix` goes before `data` in the payload (the session layer's data
   * header), so header, prefix and payload cost one allocation and one copy.
   * A string prefix must be ASCII; a PayloadPrefix writes its own bytes.
   */
  constructor(data: string | Buffer | Uint8Array, binary = typeof data !== 'string', prefix: string | PayloadPrefix = '') {
    const dlen = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const len = prefix.length + dlen;
    const hsize = frameHeaderSize(len, false);
    const frame = Buffer.allocUnsafe(hsize + len);
    writeDataFrame(frame, 0, binary, prefix, data, dlen);
    this.frame = frame;
    this.headerSize = hsize;
    this.binary = binary;
  }

  /** The payload (with the prefix, if any): a view into `frame`, made on demand (most sends never need it). */
  get payload(): Buffer {
    return this.frame.subarray(this.headerSize);
  }

  /** Payload length in bytes. */
  get payloadLength(): number {
    return this.frame.length - this.headerSize;
  }
}

/** A deferred outgoing frame, used only while a compression job holds the send order. */
interface QueuedSend {
  opcode: number;
  data: Buffer;
  compress: boolean;
}

export class Connection implements FrameSink {
  // Settings: a server's connections mostly share the defaults, which live on
  // the prototype (see the end of this file); a connection owns a setting
  // only where it differs (8 B per field per connection saved).
  declare readonly role: Role;
  private _state: ConnectionState = 'open';
  private readonly handler: ConnectionHandler;
  private readonly parser: FrameParser;
  declare private readonly maxMessageSize: number;
  declare private readonly maxFrameSize: number;
  declare private readonly codec: MessageCodec | null;
  declare private readonly fragmentSize: number;
  declare private readonly autoPong: boolean;
  declare private readonly randomFill: (buf: Uint8Array) => void;
  /** A client's mask-and-copy for long payloads (null on the prototype: servers never mask). */
  declare private readonly bulkMask: BulkMask | null;
  private readonly isUtf8: (buf: Uint8Array) => boolean;

  // Current frame.
  private frameOpcode = 0;
  /** Cold (the prototype's true), written only when it changes: unfragmented traffic never writes it (8 B). */
  declare private frameFin: boolean;
  /** Cold (the prototype's false) unless permessage-deflate compressed a message: see messageCompressed. */
  declare private frameCompressed: boolean;
  private controlChunks: Buffer[] = NO_BUFS;

  // Current data message.
  private messageType = M_NONE;
  /**
   * Cold, like frameCompressed: written only when it changes, which takes a
   * compressed message (RFC 7692), so a connection without deflate keeps
   * both on the prototype (16 B less per connection).
   */
  declare private messageCompressed: boolean;
  private messageLength = 0;
  private fragments: Buffer[] = NO_BUFS;
  /** Incremental UTF-8 state: the shared idle one (always at a boundary, never updated) until a text message needs its own. */
  private utf8 = IDLE_UTF8;

  // Cold fields (written only when closing or failing, with permessage-deflate,
  // or on the client side): their initial values live on the prototype (see
  // the end of this file), an own property appears only once one is written.
  // Idle server connections never write them: 8 B saved per field.
  // Close handshake.
  declare private closeSent: boolean;
  /** The close frame is on the wire (closeSent can precede it while compression jobs drain). */
  declare private closeWritten: boolean;
  /** The server owes closeTransport() once the send queue has drained. */
  declare private closeTransportPending: boolean;
  declare private closeReceived: boolean;
  declare private receivedCode: number;
  declare private receivedReason: string;
  declare private failed: boolean;

  // Send side.
  declare private maskPool: Uint8Array | null;
  declare private maskPoolOffset: number;
  declare private compressing: number;
  private sendQueue: QueuedSend[] = NO_SENDS;
  /**
   * Payload bytes of data messages accepted by send() and not yet framed:
   * the one being compressed and those queued behind it (permessage-deflate).
   * The transport counts them in bufferedAmount: they are sent data the
   * kernel does not have yet, and a sender that outruns the compressor must
   * see backpressure (and a slow-consumer cap) like one that outruns the peer.
   */
  declare unencodedBytes: number;

  /** Counters for statistics; cheap increments on the hot path. */
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;

  constructor(handler: ConnectionHandler, options: ConnectionOptions) {
    if (options.role !== 'server' && options.role !== 'client') {
      throw new UsageError('WS_ERR_INVALID_OPTION', `role must be 'server' or 'client', got ${String(options.role)}`);
    }
    this.handler = handler;
    const maxMessageSize = checkSize('maxMessageSize', options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE);
    const maxFrameSize = checkSize('maxFrameSize', options.maxFrameSize, maxMessageSize);
    const fragmentSize = checkSize('fragmentSize', options.fragmentSize, 0);
    const settings = this as unknown as Record<string, unknown>;
    if (options.role !== 'server') settings.role = options.role;
    if (maxMessageSize !== DEFAULT_MAX_MESSAGE_SIZE) settings.maxMessageSize = maxMessageSize;
    if (maxFrameSize !== DEFAULT_MAX_MESSAGE_SIZE) settings.maxFrameSize = maxFrameSize;
    if (options.codec != null) settings.codec = options.codec;
    if (fragmentSize !== 0) settings.fragmentSize = fragmentSize;
    if (options.autoPong === false) settings.autoPong = false;
    if (options.randomFill !== undefined && options.randomFill !== webCryptoFill) settings.randomFill = options.randomFill;
    if (options.role === 'client') {
      const bulkMask = options.bulkMask !== undefined ? options.bulkMask : sharedSimdMask();
      if (bulkMask !== null) settings.bulkMask = bulkMask;
    }
    this.isUtf8 = options.isUtf8 ?? isValidUtf8;
    this.parser = new FrameParser(this, options.bulkUnmask !== undefined ? options.bulkUnmask : options.unmask ? phaseZeroUnmask(options.unmask) : sharedSimdUnmask());
  }

  get state(): ConnectionState {
    return this._state;
  }

  private fragmentList(): Buffer[] {
    return this.fragments === NO_BUFS ? (this.fragments = []) : this.fragments;
  }

  private sendQueueList(): QueuedSend[] {
    return this.sendQueue === NO_SENDS ? (this.sendQueue = []) : this.sendQueue;
  }

  /** No send waits on a compression job: nothing queued here still reads a payload the caller passed. */
  get sendsSettled(): boolean {
    return this.compressing === 0 && this.sendQueue.length === 0;
  }

  /** True once a close frame has been sent (no more data may be sent). */
  get isCloseSent(): boolean {
    return this.closeSent;
  }

  // ---------------------------------------------------------------- receiving

  /** Feeds bytes from the peer. Never throws on peer input: violations fail the connection. */
  receiveData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.parser.push(chunk);
  }

  /**
   * The TCP connection is gone (or the transport gave up on it). Finishes the
   * connection: 'closed', and onClosed with the peer's close code, 1005 if its
   * close frame had none, 1006 if no close frame arrived at all.
   */
  transportClosed(): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.parser.stop();
    this.sendQueue = NO_SENDS;
    if (this.unencodedBytes !== 0) this.unencodedBytes = 0;
    if (this.codec) this.codec.close();
    const code = this.closeReceived ? this.receivedCode : CloseCode.Abnormal;
    this.handler.onClosed(code, this.closeReceived ? this.receivedReason : '', this.closeReceived && this.closeSent && !this.failed);
  }

  onParseError(err: ProtocolError): void {
    this.fail(err);
  }

  onFrameHeader(fin: boolean, rsv: number, opcode: number, masked: boolean, length: number): boolean {
    // RFC 6455 5.1: "a server MUST close the connection upon receiving a frame that is not masked";
    // "a client MUST close a connection if it detects a masked frame".
    if (this.role === 'server' ? !masked : masked) {
      return this.fail(new ProtocolError(
        this.role === 'server' ? 'WS_ERR_EXPECTED_MASK' : 'WS_ERR_UNEXPECTED_MASK',
        this.role === 'server' ? 'Client frame is not masked' : 'Server frame is masked',
      ));
    }
    // RFC 6455 5.2: RSV bits MUST be 0 unless an extension defines them. RFC 7692 6: RSV1
    // marks the first frame of a compressed message.
    if (rsv & 0x3) {
      return this.fail(new ProtocolError('WS_ERR_RSV_NOT_NEGOTIATED', `RSV${rsv & 0x2 ? 2 : 3} set without an extension`));
    }
    const rsv1 = (rsv & 0x4) !== 0;
    if (opcode >= 0x8) {
      if (opcode > Opcode.Pong) return this.fail(new ProtocolError('WS_ERR_INVALID_OPCODE', `Reserved control opcode 0x${opcode.toString(16)}`));
      // RFC 6455 5.5: control frames MUST NOT be fragmented and carry at most 125 bytes.
      if (!fin) return this.fail(new ProtocolError('WS_ERR_FRAGMENTED_CONTROL', 'Control frame is fragmented'));
      if (length > MAX_CONTROL_PAYLOAD) return this.fail(new ProtocolError('WS_ERR_CONTROL_TOO_LONG', `Control frame payload of ${length} bytes (max 125)`));
      // RFC 7692 6.1: an endpoint MUST NOT set RSV1 on control frames.
      if (rsv1) return this.fail(new ProtocolError('WS_ERR_RSV_NOT_NEGOTIATED', 'RSV1 set on a control frame'));
      if (this.closeReceived) return false;
      this.frameOpcode = opcode;
      if (!this.frameFin) this.frameFin = true;
      return true;
    }
    if (opcode === Opcode.Continuation) {
      if (this.messageType === M_NONE) return this.fail(new ProtocolError('WS_ERR_UNEXPECTED_CONTINUATION', 'Continuation frame without a message in progress'));
      // RFC 7692 6.1: RSV1 only on the first frame of a message.
      if (rsv1) return this.fail(new ProtocolError('WS_ERR_RSV_NOT_NEGOTIATED', 'RSV1 set on a continuation frame'));
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.messageType !== M_NONE) return this.fail(new ProtocolError('WS_ERR_EXPECTED_CONTINUATION', 'New data frame while a fragmented message is in progress'));
      if (rsv1 && !this.codec) return this.fail(new ProtocolError('WS_ERR_RSV_NOT_NEGOTIATED', 'RSV1 set without permessage-deflate'));
      this.messageType = opcode === Opcode.Text ? M_TEXT : M_BINARY;
      if (rsv1 !== this.messageCompressed) this.messageCompressed = rsv1;
      this.messageLength = 0;
    } else {
      return this.fail(new ProtocolError('WS_ERR_INVALID_OPCODE', `Reserved data opcode 0x${opcode.toString(16)}`));
    }
    if (this.maxFrameSize > 0 && length > this.maxFrameSize) {
      return this.fail(new MessageTooBigError('WS_ERR_FRAME_TOO_BIG', `Frame of ${length} bytes exceeds maxFrameSize ${this.maxFrameSize}`));
    }
    this.messageLength += length;
    // Compressed messages are checked again after inflation, where the limit really applies.
    if (this.maxMessageSize > 0 && this.messageLength > this.maxMessageSize) {
      return this.fail(new MessageTooBigError('WS_ERR_MESSAGE_TOO_BIG', `Message of at least ${this.messageLength} bytes exceeds maxMessageSize ${this.maxMessageSize}`));
    }
    this.frameOpcode = opcode;
    if (fin !== this.frameFin) this.frameFin = fin;
    if (this.frameCompressed !== this.messageCompressed) this.frameCompressed = this.messageCompressed;
    return true;
  }

  onFramePayload(chunk: Buffer, start: number, end: number, last: boolean): boolean | 'pause' {
    // The common case first: a whole uncompressed data message in one frame,
    // handed on as a range when the handler takes one (no view made here).
    if (last && this.frameFin && this.frameOpcode < 0x8 && !this.frameCompressed && this.fragments.length === 0) {
      return this.deliverRange(chunk, start, end);
    }
    if (last && this.frameOpcode === Opcode.Pong && this.controlChunks.length === 0 && this.handler.onPongRange !== undefined) {
      this.handler.onPongRange(chunk, start, end);
      return !this.failed && this._state !== 'closed';
    }
    const data = viewOf(chunk, start, end);
    if (this.frameOpcode >= 0x8) {
      if (!last) {
        if (this.controlChunks === NO_BUFS) this.controlChunks = [];
        this.controlChunks.push(Buffer.from(data));
        return true;
      }
      let payload = data;
      if (this.controlChunks.length > 0) {
        this.controlChunks.push(data);
        payload = Buffer.concat(this.controlChunks);
        this.controlChunks = NO_BUFS;
      }
      return this.handleControl(this.frameOpcode, payload);
    }

    if (this.frameCompressed) {
      if (data.length > 0) this.fragmentList().push(data);
      if (!last) return true;
      const frame = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
      this.fragments = NO_BUFS;
      const fin = this.frameFin;
      const isText = this.messageType === M_TEXT;
      // 0: inflating, 1: answered synchronously, 2: parser paused and waiting.
      let phase = 0;
      this.codec!.decompress(frame, fin, (err, result) => {
        if (this._state === 'closed' || this.failed) return;
        if (err) {
          this.fail(err instanceof LifelineError ? err : new ProtocolError('WS_ERR_INFLATE', `Invalid compressed data: ${err.message}`, CloseCode.InvalidPayload));
          return;
        }
        if (fin) this.finishMessage(result ?? EMPTY, isText);
        if (phase === 2) this.parser.resume();
        else phase = 1;
      });
      if (this.failed || this.closeReceived) return false;
      if (phase === 1) return true;
      // Hold further input until the inflater answers, so messages stay in order.
      phase = 2;
      return 'pause';
    }

    if (this.messageType === M_TEXT && data.length > 0) {
      // Fail fast (RFC 6455 8.1 / Autobahn 6.4): check each slice as it arrives. A complete
      // single-frame message goes to the fast whole-buffer validator instead.
      if (last && this.frameFin && this.fragments.length === 0 && this.utf8.atBoundary) {
        if (!this.isUtf8(data)) return this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Text message is not valid UTF-8'));
      } else if (!(this.utf8 === IDLE_UTF8 ? (this.utf8 = new Utf8Validator()) : this.utf8).update(data, 0, data.length)) {
        return this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Text message is not valid UTF-8'));
      }
    }
    if (!last || !this.frameFin) {
      if (data.length > 0) this.fragmentList().push(data);
      return true;
    }
    if (this.messageType === M_TEXT && !this.utf8.atBoundary) {
      return this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Text message ends inside a UTF-8 sequence'));
    }
    let message: Buffer;
    const n = this.fragments.length;
    if (n === 0) {
      message = data;
    } else {
      if (data.length > 0) this.fragmentList().push(data);
      message = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments, this.messageLength);
      this.fragments = NO_BUFS;
    }
    const isBinary = this.messageType === M_BINARY;
    this.messageType = M_NONE;
    this.utf8.reset();
    this.messagesIn++;
    this.handler.onMessage(message, isBinary);
    return !this.closeReceived && this._state !== 'closed';
  }

  /** A complete single-frame, uncompressed data message `chunk[start..end)`: UTF-8 check, then to the handler. */
  private deliverRange(chunk: Buffer, start: number, end: number): boolean {
    const isText = this.messageType === M_TEXT;
    let view: Buffer | null = null;
    // The parser may already know the range is ASCII (it saw the bytes while unmasking them).
    const bits = payloadSliceBits();
    if (isText && end > start && (bits === UNMASK_BITS_UNKNOWN ? !isShortAscii(chunk, start, end) : bits >= 0x80)) {
      view = viewOf(chunk, start, end);
      if (!this.isUtf8(view)) return this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Text message is not valid UTF-8'));
    }
    this.messageType = M_NONE;
    this.messagesIn++;
    const h = this.handler;
    if (h.onMessageRange !== undefined) h.onMessageRange(chunk, start, end, !isText);
    else h.onMessage(view ?? viewOf(chunk, start, end), !isText);
    return !this.closeReceived && this._state !== 'closed';
  }

  /** Delivers an inflated message after checking the limit and UTF-8. */
  private finishMessage(message: Buffer, isText: boolean): void {
    this.messageType = M_NONE;
    this.messageCompressed = false;
    if (this.maxMessageSize > 0 && message.length > this.maxMessageSize) {
      this.fail(new MessageTooBigError('WS_ERR_MESSAGE_TOO_BIG', `Inflated message of ${message.length} bytes exceeds maxMessageSize ${this.maxMessageSize}`));
      return;
    }
    if (isText && !this.isUtf8(message)) {
      this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Text message is not valid UTF-8'));
      return;
    }
    this.messagesIn++;
    this.handler.onMessage(message, !isText);
  }

  private handleControl(opcode: number, payload: Buffer): boolean {
    if (opcode === Opcode.Ping) {
      if (this.autoPong && !this.closeSent) this.sendFrame(Opcode.Pong, payload, false, true);
      this.handler.onPing(payload);
      return !this.failed && this._state !== 'closed';
    }
    if (opcode === Opcode.Pong) {
      this.handler.onPong(payload);
      return !this.failed && this._state !== 'closed';
    }
    // Close. RFC 6455 5.5.1: optional 2-byte code, then a UTF-8 reason.
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1) {
      return this.fail(new ProtocolError('WS_ERR_INVALID_CLOSE_PAYLOAD', 'Close frame with a 1-byte payload'));
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidWireCloseCode(code)) {
        return this.fail(new ProtocolError('WS_ERR_INVALID_CLOSE_CODE', `Invalid close code ${code}`));
      }
      const reasonBytes = payload.subarray(2);
      if (!this.isUtf8(reasonBytes)) {
        return this.fail(new InvalidPayloadError('WS_ERR_INVALID_UTF8', 'Close reason is not valid UTF-8'));
      }
      reason = reasonBytes.toString('utf8');
    }
    this.closeReceived = true;
    this.receivedCode = code;
    this.receivedReason = reason;
    this.parser.stop();
    if (this._state === 'open') this._state = 'closing';
    this.handler.onCloseFrame(code, reason);
    // The handler may have finished the connection from inside onCloseFrame.
    if (!this.closeSent && !this.isClosed()) {
      // RFC 6455 5.5.1: reply with a Close frame, "typically echoing the status code it received".
      // Queued behind compression jobs already under way: a message the
      // application sent before this close arrived is not dropped (RFC 6455
      // 5.5.1 allows delaying the Close "until its current message is sent").
      this.sendClose(code === CloseCode.NoStatus ? -1 : code, '', false);
    }
    if (this.role === 'server') this.closeTransportAfterQueue();
    return false;
  }

  /**
   * Fails the connection (RFC 6455 7.1.7): report, send a close frame with the
   * error's code if none was sent yet, and ask the transport to close TCP.
   */
  private fail(err: LifelineError): false {
    if (this.failed || this._state === 'closed') return false;
    this.failed = true;
    this.parser.stop();
    this.fragments = NO_BUFS;
    this.handler.onError(err);
    // The handler may have finished the connection from inside onError.
    if (!this.closeSent && !this.isClosed()) {
      const code = err.closeCode && isValidWireCloseCode(err.closeCode) ? err.closeCode : CloseCode.ProtocolError;
      this.sendClose(code, '', true);
    }
    if (this._state === 'open') this._state = 'closing';
    if (!this.isClosed()) this.handler.closeTransport();
    return false;
  }

  private isClosed(): boolean {
    return this._state === 'closed';
  }

  // ------------------------------------------------------------------ sending

  /** Sends a text (string) or binary (Buffer) message. Throws UsageError after close. */
  send(data: string | Buffer | Uint8Array, binary = typeof data !== 'string'): void {
    this.assertCanSend();
    let payload: Buffer;
    if (typeof data === 'string') {
      if (!binary && this.compressing === 0 && this.codec === null && this.fragmentSize === 0) {
        // Fast paths: the UTF-8 bytes written straight into the frame.
        if (this.role === 'server') {
          this.writeServerString(data);
          return;
        }
        if (this.writeClientString(data)) return;
      }
      payload = Buffer.from(data, 'utf8');
    } else {
      payload = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
    this.messagesOut++;
    const opcode = binary ? Opcode.Binary : Opcode.Text;
    const compress = this.codec !== null && payload.length >= this.codec.threshold;
    if (this.compressing > 0 || compress) this.compressOrQueue(opcode, payload, compress);
    else this.sendData(opcode, payload, false);
  }

  /**
   * A data message that must wait for the compressor: compressed now, or
   * queued behind the job in flight. Out of send() so that send() stays
   * small enough for V8 to inline what the plain path calls.
   */
  private compressOrQueue(opcode: number, payload: Buffer, compress: boolean): void {
    if (this.handler.admitUnencoded !== undefined && !this.handler.admitUnencoded(payload.length)) {
      this.messagesOut--;
      return;
    }
    this.unencodedBytes += payload.length;
    if (this.compressing > 0) this.sendQueueList().push({ opcode, data: payload, compress });
    else this.compressAndSend(opcode, payload);
  }

  /**
   * Sends a PreparedMessage: its shared frame bytes when this connection
   * sends plain unfragmented server frames, else its payload through send().
   */
  sendPrepared(message: PreparedMessage): void {
    this.sendEncoded(message.frame, 0, message.frame.length, true);
  }

  /**
   * Sends the complete unmasked data frame (FIN, no RSV bits) encoded in
   * `src[start..end)`: a PreparedMessage's, or one the session layer keeps for
   * replay. The bytes go out as they are when this connection may send them
   * (server role, no permessage-deflate, no compression job in flight, no
   * fragmentation needed); otherwise the payload is sent the usual way. The
   * bytes must not change until written. `shared`: the same bytes go to many
   * connections (broadcast): queued by reference, as they are; otherwise
   * they go to handler.writeBytes, which may join them with the frames next
   * to them in `src`.
   */
  sendEncoded(src: Buffer, start: number, end: number, shared: boolean): void {
    const size = end - start;
    if (this.role === 'server' && this.codec === null && this.compressing === 0 && (this.fragmentSize === 0 || size - encodedHeaderSize(src, start) <= this.fragmentSize)) {
      this.assertCanSend();
      this.messagesOut++;
      this.bytesOut += size;
      const h = this.handler;
      if (!shared && h.writeBytes !== undefined) h.writeBytes(src, start, end);
      else h.write(viewOf(src, start, end));
      return;
    }
    this.send(src.subarray(start + encodedHeaderSize(src, start), end), (src[start]! & 0x0f) === Opcode.Binary);
  }

  /**
   * Sends a ping or pong given encoded, `frame` whole (unmasked: server side
   * only), whose bytes never change: a heartbeat ping that every connection
   * pinged at one moment shares. Queued without a copy or a view of its own;
   * control frames need not wait for compression jobs (RFC 6455 5.4). Close
   * frames go through close(), which keeps the closing handshake's state.
   */
  sendEncodedControl(frame: Buffer): void {
    this.assertCanSend();
    if (this.role !== 'server') throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'Only a server sends unmasked frames');
    const n = frame.length;
    // FIN, no RSV bits, ping or pong; unmasked, its 7-bit length the rest of the buffer.
    if (n < 2 || n > 2 + MAX_CONTROL_PAYLOAD || (frame[0] !== 0x89 && frame[0] !== 0x8a) || frame[1] !== n - 2) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'sendEncodedControl() takes one whole unmasked ping or pong frame');
    }
    this.bytesOut += n;
    const h = this.handler;
    if (h.writeBytes !== undefined) h.writeBytes(frame, 0, n);
    else h.write(frame);
  }

  /**
   * Sends a message given as its fragments: each element becomes one frame
   * (used by tests and by streaming senders). Not compressed.
   */
  sendFragments(fragments: Array<string | Buffer>, binary: boolean): void {
    this.assertCanSend();
    if (fragments.length === 0) throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'sendFragments needs at least one fragment');
    this.messagesOut++;
    const bufs = fragments.map((f) => (typeof f === 'string' ? Buffer.from(f, 'utf8') : f));
    if (this.compressing > 0) {
      // Rare path: keep it simple and correct by concatenating behind the
      // queue, where it waits (uncompressed) as a message would, under the
      // same slow-consumer cap.
      this.compressOrQueue(binary ? Opcode.Binary : Opcode.Text, Buffer.concat(bufs), false);
      return;
    }
    for (let i = 0; i < bufs.length; i++) this.sendFrame(i === 0 ? (binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation, bufs[i]!, false, i === bufs.length - 1);
  }

  /**
   * Sends a ping. A number is sent as its decimal text (as ws does), which
   * is how servers stamp heartbeat pings: a whole number >= 0 is written
   * into the frame digit by digit, with no string in between.
   */
  ping(data: string | Buffer | number = EMPTY): void {
    this.sendControl(Opcode.Ping, data);
  }

  /** Sends an unsolicited pong (RFC 6455 5.5.3: a unidirectional heartbeat); a number as for ping(). */
  pong(data: string | Buffer | number = EMPTY): void {
    this.sendControl(Opcode.Pong, data);
  }

  /**
   * Starts (or answers) the close handshake. `code` must be 1000, 1001-1003,
   * 1007-1014 or 3000-4999; omit it to send a close frame with no status.
   * Calling it again after a close frame was sent does nothing.
   */
  close(code?: number, reason = ''): void {
    if (code !== undefined && !isValidWireCloseCode(code)) {
      throw new UsageError('WS_ERR_INVALID_CLOSE_CODE', `Close code ${code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)`);
    }
    const reasonBytes = Buffer.byteLength(reason);
    if (reasonBytes > MAX_CONTROL_PAYLOAD - 2) {
      throw new UsageError('WS_ERR_CLOSE_REASON_TOO_LONG', `Close reason is ${reasonBytes} bytes (max 123)`);
    }
    if (code === undefined && reason !== '') {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'A close reason needs a close code');
    }
    if (this.closeSent || this._state === 'closed') return;
    this.sendClose(code ?? -1, reason, false);
    if (this.closeReceived && this.role === 'server') this.closeTransportAfterQueue();
  }

  /** Server side: close TCP once queued frames (and the close frame among them) are out. */
  private closeTransportAfterQueue(): void {
    if (this.isClosed()) return;
    if (!this.sendsSettled) {
      this.closeTransportPending = true;
      return;
    }
    this.closeTransportPending = false;
    this.handler.closeTransport();
  }

  private sendClose(code: number, reason: string, immediate: boolean): void {
    this.closeSent = true;
    if (this._state === 'open') this._state = 'closing';
    let payload = EMPTY;
    if (code >= 0) {
      payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
      payload.writeUInt16BE(code, 0);
      payload.write(reason, 2, 'utf8');
    }
    if (this.compressing > 0 && !immediate) {
      this.sendQueueList().push({ opcode: Opcode.Close, data: payload, compress: false });
    } else {
      this.sendFrame(Opcode.Close, payload, false, true);
    }
  }

  private sendControl(opcode: number, data: string | Buffer | number): void {
    this.assertCanSend();
    // A whole number >= 0 is written as its digits (at most 16); any other as String() gives it.
    if (typeof data === 'number' && !(Number.isSafeInteger(data) && data >= 0)) data = String(data);
    if (typeof data !== 'object' && this.role === 'server' && this.handler.writeFrame !== undefined) {
      // A string or number payload (the server's heartbeat pings) encoded
      // straight into the write batch, with no buffer of its own.
      const len = typeof data === 'number' ? decimalDigits(data) : Buffer.byteLength(data);
      if (len > MAX_CONTROL_PAYLOAD) {
        throw new UsageError('WS_ERR_CONTROL_TOO_LONG', `Control frame payload of ${len} bytes (max 125)`);
      }
      this.bytesOut += frameHeaderSize(len, false) + len;
      this.handler.writeFrame(0x80 | opcode, data, len);
      return;
    }
    const payload = typeof data === 'object' ? data : Buffer.from(String(data), 'utf8');
    if (payload.length > MAX_CONTROL_PAYLOAD) {
      throw new UsageError('WS_ERR_CONTROL_TOO_LONG', `Control frame payload of ${payload.length} bytes (max 125)`);
    }
    // Control frames may be interleaved with fragments (RFC 6455 5.4), so they
    // need not wait for a compression job.
    this.sendFrame(opcode, payload, false, true);
  }

  private assertCanSend(): void {
    if (this.closeSent || this._state === 'closed') {
      throw new UsageError('WS_ERR_SEND_AFTER_CLOSE', `Cannot send: the connection is ${this._state === 'closed' ? 'closed' : 'closing'}`);
    }
  }

  /** Compresses and sends a data message whose payload unencodedBytes already counts. */
  private compressAndSend(opcode: number, payload: Buffer): void {
    this.compressing++;
    this.codec!.compress(payload, true, (err, result) => {
      this.compressing--;
      if (this._state === 'closed') return;
      this.unencodedBytes -= payload.length;
      if (err) {
        this.fail(new ProtocolError('WS_ERR_DEFLATE', `Compression failed: ${err.message}`, CloseCode.InternalError));
        return;
      }
      if (!this.failed) this.sendData(opcode, result!, true);
      this.drainQueue();
      // The backlog shrank: the transport may owe its application a 'drain'.
      this.handler.onSendProgress?.();
    });
  }

  private drainQueue(): void {
    while (this.compressing === 0 && this.sendQueue.length > 0 && this._state !== 'closed') {
      const next = this.sendQueue.shift()!;
      if (next.opcode === Opcode.Close) this.sendFrame(Opcode.Close, next.data, false, true);
      else if (next.compress) this.compressAndSend(next.opcode, next.data);
      else {
        this.unencodedBytes -= next.data.length;
        this.sendData(next.opcode, next.data, false);
      }
    }
    if (this.closeTransportPending && this.sendsSettled) this.closeTransportAfterQueue();
  }

  /**
   * Discards the data messages still queued behind a compression job (none
   * of their bytes is on the wire); the one being compressed, control
   * frames and the close frame stay. For a slow-consumer policy that ends
   * the connection. Returns how many messages were discarded.
   */
  discardQueuedMessages(): number {
    if (this.sendQueue.length === 0) return 0;
    const kept = this.sendQueue.filter((q) => q.opcode === Opcode.Close);
    const discarded = this.sendQueue.length - kept.length;
    for (const q of this.sendQueue) if (q.opcode !== Opcode.Close) this.unencodedBytes -= q.data.length;
    this.sendQueue = kept.length > 0 ? kept : NO_SENDS;
    this.messagesOut -= discarded;
    return discarded;
  }

  private sendData(opcode: number, payload: Buffer, compressed: boolean): void {
    const size = this.fragmentSize;
    if (size === 0 || payload.length <= size) {
      this.sendFrame(opcode, payload, compressed, true);
      return;
    }
    // Auto-fragmentation: RSV1 (compressed) only on the first frame (RFC 7692 6.1).
    let op = opcode;
    for (let off = 0; off < payload.length; off += size) {
      const end = Math.min(off + size, payload.length);
      this.sendFrame(op, payload.subarray(off, end), compressed && op === opcode, end === payload.length);
      op = Opcode.Continuation;
    }
  }

  /** A client's small text message, encoded and masked in the transport's write batch; false when it takes the general path. */
  private writeClientString(data: string): boolean {
    const h = this.handler;
    if (h.writeMaskedFrame === undefined || data.length > SMALL_MAX) return false;
    const len = Buffer.byteLength(data);
    if (len > SMALL_MAX) return false;
    this.messagesOut++;
    this.bytesOut += frameHeaderSize(len, true) + len;
    h.writeMaskedFrame(0x80 | Opcode.Text, data, len, this.nextMask(), this.bulkMask);
    return true;
  }

  private writeServerString(data: string): void {
    const len = Buffer.byteLength(data);
    const h = this.handler;
    if (len <= SMALL_MAX && h.writeFrame !== undefined) {
      this.messagesOut++;
      this.bytesOut += frameHeaderSize(len, false) + len;
      h.writeFrame(0x80 | Opcode.Text, data, len);
      return;
    }
    const hsize = frameHeaderSize(len, false);
    const frame = Buffer.allocUnsafe(hsize + len);
    writeFrameHeader(frame, 0, 0x80 | Opcode.Text, len);
    frame.write(data, hsize, 'utf8');
    this.messagesOut++;
    this.bytesOut += frame.length;
    this.handler.write(frame);
  }

  /** Encodes and writes one frame. Clients mask with a fresh key (RFC 6455 5.3). */
  private sendFrame(opcode: number, payload: Buffer, rsv1: boolean, fin: boolean): void {
    // RFC 6455 5.5.1: after sending a Close frame, the endpoint MUST NOT send any
    // more data frames. Compression jobs that finish after it are dropped here.
    if (this.closeWritten) return;
    if (opcode === Opcode.Close) this.closeWritten = true;
    const len = payload.length;
    if (this.role === 'client') {
      const mask = this.nextMask();
      const hsize = frameHeaderSize(len, true);
      const b0 = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
      if (len <= SMALL_MAX && this.handler.writeMaskedFrame !== undefined) {
        // Small payloads, masked straight into the transport's write batch.
        this.bytesOut += hsize + len;
        this.handler.writeMaskedFrame(b0, payload, len, mask, this.bulkMask);
        return;
      }
      const frame = Buffer.allocUnsafe(hsize + len);
      writeFrameHeader(frame, 0, b0, len, mask);
      // A long payload is masked as it is copied into the frame.
      maskInto(payload, frame, hsize, mask, this.bulkMask);
      this.bytesOut += frame.length;
      this.handler.write(frame);
      return;
    }
    if (len <= SMALL_MAX && this.handler.writeFrame !== undefined) {
      // Small payloads, encoded straight into the transport's write batch.
      this.bytesOut += frameHeaderSize(len, false) + len;
      this.handler.writeFrame((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, payload, len);
      return;
    }
    if (len <= SMALL_MAX) {
      // Small payloads: one allocation, one write.
      const hsize = frameHeaderSize(len, false);
      const frame = Buffer.allocUnsafe(hsize + len);
      writeFrameHeader(frame, 0, (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, len);
      payload.copy(frame, hsize);
      this.bytesOut += frame.length;
      this.handler.write(frame);
      return;
    }
    const header = encodeFrameHeader(fin, opcode, rsv1, len, null);
    this.bytesOut += header.length + len;
    this.handler.write(header);
    this.handler.write(payload);
  }

  private nextMask(): Uint8Array {
    if (this.maskPoolOffset >= MASK_POOL_SIZE || this.maskPool === null) {
      // Refill a pooled random buffer instead of asking the RNG per frame.
      this.maskPool ??= new Uint8Array(MASK_POOL_SIZE);
      this.randomFill(this.maskPool);
      this.maskPoolOffset = 0;
    }
    const m = this.maskPool.subarray(this.maskPoolOffset, this.maskPoolOffset + 4);
    this.maskPoolOffset += 4;
    return m;
  }
}

/**
 * The class of every Buffer Node makes (its internal FastBuffer, which
 * Buffer[Symbol.species] returns so that subarray() makes Buffers). Calling
 * it directly skips subarray()'s species lookup and Buffer.from()'s argument
 * checks: about 50 ns per view against 115-145 for subarray() on the bench
 * machine, and the receive path makes a view per message. Where a runtime
 * does not expose it that way, Buffer.from() makes the same view.
 */
const species = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species];
const BufferView: (new (ab: ArrayBufferLike, offset: number, length: number) => Buffer) | null =
  typeof species === 'function' && species.prototype === Buffer.prototype ? (species as new (ab: ArrayBufferLike, offset: number, length: number) => Buffer) : null;

/** `chunk[start..end)` as a Buffer: the chunk itself when the range is all of it, else a view (no copy). */
export function viewOf(chunk: Buffer, start: number, end: number): Buffer {
  if (start === 0 && end === chunk.length) return chunk;
  // memoryOf(): the chunk's buffer and offset, read once per chunk (they are calls in V8).
  const mem = memoryOf(chunk);
  return viewAtHere(mem.buffer, mem.base + start, end - start);
}

/** A Buffer over `length` bytes of `ab` from `offset` (no copy): for callers that know a chunk's buffer and offset already. */
export function viewAt(ab: ArrayBufferLike, offset: number, length: number): Buffer {
  return BufferView !== null ? new BufferView(ab, offset, length) : Buffer.from(ab, offset, length);
}

function checkSize(name: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

coldFieldDefaults(Connection.prototype, {
  role: 'server',
  maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
  maxFrameSize: DEFAULT_MAX_MESSAGE_SIZE,
  codec: null,
  fragmentSize: 0,
  autoPong: true,
  randomFill: webCryptoFill,
  bulkMask: null,
  closeSent: false,
  closeWritten: false,
  closeTransportPending: false,
  closeReceived: false,
  receivedCode: CloseCode.NoStatus,
  receivedReason: '',
  failed: false,
  maskPool: null,
  maskPoolOffset: MASK_POOL_SIZE,
  compressing: 0,
  unencodedBytes: 0,
  messageCompressed: false,
  frameCompressed: false,
  frameFin: true,
});

/** viewAt as this module's own constant, for viewOf (see the note on hot-path bindings at the top). */
const viewAtHere = viewAt;

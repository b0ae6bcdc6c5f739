/**
 * The fuzzing peer of the conformance suite: a WebSocket endpoint we control
 * byte by byte, over raw TCP, in the spirit of Autobahn|Testsuite's
 * fuzzingclient / fuzzingserver.
 *
 * One case table, two drivers:
 *   - side 'server': the peer is a raw TCP client. It writes the opening
 *     handshake by hand, reads the 101, then runs the case against our
 *     WebSocketServer, whose 'connection' handler echoes every message back.
 *   - side 'client': the peer is a raw net server. It accepts our
 *     ClientWebSocket, answers the handshake by hand (Sec-WebSocket-Accept via
 *     node:crypto), then runs the same case; our client echoes too.
 *
 * The peer masks its frames when it plays the client and not when it plays
 * the server (RFC 6455 5.1), decodes every frame the implementation sends
 * (masked frames from our client included), checks them against the RFC
 * (masking, RSV bits, opcodes, control frame rules, minimal lengths, UTF-8 of
 * text, continuation order, nothing after the close frame) and reassembles
 * messages, inflating permessage-deflate ones with the negotiated window and
 * context takeover (RFC 7692), so a compressor that breaks the agreement fails
 * here.
 *
 * A case is data (see Case): a script of steps, then an expectation that is
 * checked against the trace the peer recorded. Every wait is event-driven and
 * guarded by a timeout scaled with ms(), so a hung case fails with a summary
 * of what the peer saw instead of hanging.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { once as eventOnce } from 'node:events';
import net from 'node:net';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';

import type { DeflateOptions } from '../../src/protocol/deflate.js';
import { ClientWebSocket } from '../../src/transport/node/client.js';
import { WebSocketServer } from '../../src/transport/node/server.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';
import { ms, withTimeout } from '../helpers/peers.js';

// ---------------------------------------------------------------------------
// Case model

/** Which of our implementations is under test. The fuzzing peer plays the other role. */
export type Side = 'server' | 'client';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** One frame as the fuzzing peer sends it. */
export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** Default true. */
  fin?: boolean;
  /** The three RSV bits as a number: 4 = RSV1, 2 = RSV2, 1 = RSV3 (Autobahn's "RSV = n"). */
  rsv?: number;
  /** Length written in the header when it differs from the payload (a frame whose tail is withheld). */
  declaredLength?: number | bigint;
  /** Force the length encoding: 7-bit, 16-bit or 64-bit (non-minimal encodings are a protocol error). */
  lengthEncoding?: 7 | 16 | 64;
  /** Break RFC 6455 5.1 for the peer's role: a client frame without mask, a server frame with one. */
  wrongMask?: boolean;
}

export type Step =
  /** Encode the frames and write them, in one write or in chops of `chop` bytes. */
  | { op: 'send'; frames: FrameSpec[]; chop?: number; delayMs?: number }
  /**
   * Encode one frame and write it in parts split at payload offsets `at`
   * (the header goes with the first part). `after[i]` says what must happen
   * once part i was written:
   *   'open': the implementation must stay open for delayMs (it may not fail
   *           on a prefix that is still valid);
   *   { fail }: fail fast: the implementation must fail the connection (close
   *           frame with one of `fail`, then TCP closed) while the rest of the
   *           frame is still withheld; the rest is then never sent.
   * Parts without an entry follow after delayMs (default: next tick).
   */
  | { op: 'sendSplit'; frame: FrameSpec; at: number[]; delayMs?: number; after?: Record<number, 'open' | { fail: number[] }> }
  /** A whole message, compressed with the negotiated permessage-deflate context unless compress is false. */
  | { op: 'sendMessage'; data: Buffer; binary: boolean; compress?: boolean; fragmentSize?: number }
  /** Wait until the implementation has sent this many messages + pongs in total. */
  | { op: 'awaitEvents'; count: number }
  /** Let `ms` pass and assert the implementation neither failed nor closed meanwhile (Autobahn's "timeout A"). */
  | { op: 'expectOpen'; ms: number }
  /** The implementation must fail the connection now, before anything more is sent. */
  | { op: 'expectFail'; codes: number[] };

export type ExpectedEvent = { type: 'message'; binary: boolean; data: Buffer } | { type: 'pong'; data: Buffer };

export interface Expectation {
  /** What the implementation must send back, in order (Autobahn's OK list). */
  events: ExpectedEvent[];
  /**
   * 'peer': the peer closes (with the close frames in the script, or 1000
   * once all events arrived) and the implementation must answer with a close
   * frame carrying one of `codes` (1005 = a close frame without status code).
   * 'impl': the implementation must fail the connection itself with one of
   * `codes` (1006 in the list = dropping TCP without a close frame is fine).
   */
  close: { by: 'peer' | 'impl'; codes: number[] };
  /** permessage-deflate cases: every echoed data message must come back compressed (RSV1). */
  compressedEchoes?: boolean;
  /** Extra assertions on the trace (e.g. frame sizes for auto-fragmentation). */
  check?: (trace: Trace, side: Side) => void;
}

/** Options for our implementation in this case (both sides). */
export interface ImplOptions {
  maxMessageSize?: number;
  maxFrameSize?: number;
  fragmentSize?: number;
}

/**
 * What both drivers make the permessage-deflate agreement. Server driver: the
 * peer offers exactly this and our server must answer exactly this. Client
 * driver: our client is configured to ask for this, the peer checks the offer
 * and answers with it.
 */
export interface DeflateCombo {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
}

export interface Case {
  id: string;
  description: string;
  steps: Step[];
  expect: Expectation;
  impl?: ImplOptions;
  /** Negotiate permessage-deflate with these parameters. */
  deflate?: DeflateCombo;
  /** Server driver: the peer's raw offer (several offers, say) instead of the combo's; the agreement must still be the combo. */
  deflateOffer?: string;
  /** Extra deflate options for our side (threshold...). Default threshold 0: compress every echo. */
  implDeflate?: DeflateOptions;
  /** Limit the case to one side. Default both. */
  sides?: Side[];
  /** Case timeout in unscaled ms (ms() is applied). Default 5000. */
  timeoutMs?: number;
  /** Where Autobahn calls an outcome NON-STRICT or INFORMATIONAL: the behaviour we chose and assert. */
  note?: string;
}

export interface Group {
  id: string;
  title: string;
  covers: string;
  cases: Case[];
}

// ---------------------------------------------------------------------------
// Small builders used by the case files

export function buf(x: Buffer | string): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'utf8') : x;
}

export function hex(h: string): Buffer {
  return Buffer.from(h.replace(/\s+/g, ''), 'hex');
}

/** Close frame payload: 2-byte code + reason. No code: empty payload. */
export function closePayload(code?: number, reason: Buffer | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = buf(reason);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

export const text = (data: Buffer | string, more: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: OP.TEXT, payload: data, ...more });
export const binary = (data: Buffer | string, more: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: OP.BINARY, payload: data, ...more });
export const cont = (data: Buffer | string, more: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: OP.CONT, payload: data, ...more });
export const ping = (data: Buffer | string = '', more: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: OP.PING, payload: data, ...more });
export const pong = (data: Buffer | string = '', more: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: OP.PONG, payload: data, ...more });
export const close = (code?: number, reason: Buffer | string = '', more: Partial<FrameSpec> = {}): FrameSpec => ({
  opcode: OP.CLOSE,
  payload: closePayload(code, reason),
  ...more,
});

export const send = (...frames: FrameSpec[]): Step => ({ op: 'send', frames });
export const sendChopped = (chop: number, delayMs: number | undefined, ...frames: FrameSpec[]): Step => ({ op: 'send', frames, chop, delayMs });
/** Each frame in its own write, after the previous one was handed to the kernel (Autobahn's SYNC). */
export const sendSync = (...frames: FrameSpec[]): Step[] => frames.map((f) => ({ op: 'send', frames: [f], delayMs: 0 }) as Step);

export const echoText = (data: Buffer | string): ExpectedEvent => ({ type: 'message', binary: false, data: buf(data) });
export const echoBinary = (data: Buffer | string): ExpectedEvent => ({ type: 'message', binary: true, data: buf(data) });
export const pongOf = (data: Buffer | string = ''): ExpectedEvent => ({ type: 'pong', data: buf(data) });

/** Clean close initiated by the peer, answered with one of `codes` (default 1000). */
export const cleanClose = (codes: number[] = [1000]): Expectation['close'] => ({ by: 'peer', codes });
/** The implementation must fail the connection with one of `codes`. */
export const fails = (codes: number[]): Expectation['close'] => ({ by: 'impl', codes });

// ---------------------------------------------------------------------------
// Wire codec

/** Encodes a frame as the peer sends it; `masked` is the peer's role default (before wrongMask). */
export function encodeFrame(f: FrameSpec, masked: boolean): { bytes: Buffer; headerLength: number } {
  const payload = f.payload === undefined ? Buffer.alloc(0) : buf(f.payload);
  const declared = f.declaredLength === undefined ? BigInt(payload.length) : BigInt(f.declaredLength);
  const mask = f.wrongMask ? !masked : masked;
  const enc = f.lengthEncoding ?? (declared > 65535n ? 64 : declared > 125n ? 16 : 7);
  const ext = enc === 64 ? 8 : enc === 16 ? 2 : 0;
  const headerLength = 2 + ext + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(headerLength + payload.length);
  out[0] = ((f.fin ?? true) ? 0x80 : 0) | (((f.rsv ?? 0) & 7) << 4) | (f.opcode & 0x0f);
  out[1] = (mask ? 0x80 : 0) | (enc === 64 ? 127 : enc === 16 ? 126 : Number(declared));
  if (enc === 16) out.writeUInt16BE(Number(declared), 2);
  if (enc === 64) out.writeBigUInt64BE(declared, 2);
  if (mask) {
    const key = randomBytes(4);
    key.copy(out, 2 + ext);
    maskCopy(payload, out, headerLength, key);
  } else {
    payload.copy(out, headerLength);
  }
  return { bytes: out, headerLength };
}

function maskCopy(src: Buffer, dst: Buffer, at: number, key: Buffer): void {
  const k0 = key[0]!, k1 = key[1]!, k2 = key[2]!, k3 = key[3]!;
  const n = src.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    dst[at + i] = src[i]! ^ k0;
    dst[at + i + 1] = src[i + 1]! ^ k1;
    dst[at + i + 2] = src[i + 2]! ^ k2;
    dst[at + i + 3] = src[i + 3]! ^ k3;
  }
  for (; i < n; i++) dst[at + i] = src[i]! ^ key[i & 3]!;
}

/** A frame the implementation sent, as the peer decoded it (payload unmasked). */
export interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  length: number;
  /** 0, 2 or 8: bytes of extended length used. */
  lengthBytes: number;
  payload: Buffer;
}

const MAX_DECODED_FRAME = 512 * 1024 * 1024;

/** Incremental frame decoder for what the implementation sends. */
class FrameDecoder {
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  private need = 2;
  private cur: WireFrame | null = null;
  private mask: Buffer | null = null;
  private got = 0;
  private dead = false;

  constructor(
    private readonly onFrame: (f: WireFrame) => void,
    private readonly onError: (why: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n && !this.dead) {
      if (this.cur === null) {
        while (this.headLen < this.need && pos < n) this.head[this.headLen++] = chunk[pos++]!;
        if (this.headLen < this.need) return;
        if (this.need === 2) {
          const b1 = this.head[1]!;
          const len7 = b1 & 0x7f;
          this.need = 2 + (len7 === 127 ? 8 : len7 === 126 ? 2 : 0) + (b1 & 0x80 ? 4 : 0);
          if (this.need > 2) continue;
        }
        this.startFrame();
        if (this.dead) return;
        if (this.cur!.length === 0) this.endFrame();
        continue;
      }
      const f = this.cur;
      const take = Math.min(f.length - this.got, n - pos);
      chunk.copy(f.payload, this.got, pos, pos + take);
      this.got += take;
      pos += take;
      if (this.got === f.length) this.endFrame();
    }
  }

  private startFrame(): void {
    const h = this.head;
    const b0 = h[0]!;
    const b1 = h[1]!;
    const len7 = b1 & 0x7f;
    let length = len7;
    let p = 2;
    let lengthBytes = 0;
    if (len7 === 126) {
      length = h.readUInt16BE(2);
      p = 4;
      lengthBytes = 2;
    } else if (len7 === 127) {
      const big = h.readBigUInt64BE(2);
      p = 10;
      lengthBytes = 8;
      if (big > BigInt(MAX_DECODED_FRAME)) {
        this.dead = true;
        this.onError(`frame length ${big} is beyond what the peer decodes`);
        return;
      }
      length = Number(big);
    }
    const masked = (b1 & 0x80) !== 0;
    this.mask = masked ? Buffer.from(h.subarray(p, p + 4)) : null;
    this.cur = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, length, lengthBytes, payload: Buffer.allocUnsafe(length) };
    this.got = 0;
    this.headLen = 0;
    this.need = 2;
  }

  private endFrame(): void {
    const f = this.cur!;
    if (this.mask) maskCopy(f.payload, f.payload, 0, this.mask);
    this.cur = null;
    this.mask = null;
    this.onFrame(f);
  }
}

// ---------------------------------------------------------------------------
// permessage-deflate on the peer side (RFC 7692 7.2)

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** The agreement with window bits filled in (15 when not negotiated). */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/** One direction of compression or decompression, with or without context takeover. */
class ZStream {
  private z: zlib.DeflateRaw | zlib.InflateRaw | null = null;
  private chunks: Buffer[] = [];
  private error: Error | null = null;
  private failPending: ((e: Error) => void) | null = null;

  constructor(
    private readonly kind: 'deflate' | 'inflate',
    private readonly windowBits: number,
    private readonly noContextTakeover: boolean,
  ) {}

  private stream(): zlib.DeflateRaw | zlib.InflateRaw {
    if (this.z && !this.noContextTakeover && !this.error) return this.z;
    this.z?.close();
    this.error = null;
    const z = this.kind === 'deflate' ? zlib.createDeflateRaw({ windowBits: this.windowBits, memLevel: 8 }) : zlib.createInflateRaw({ windowBits: this.windowBits });
    z.on('data', (c: Buffer) => this.chunks.push(c));
    z.on('error', (e: Error) => {
      this.error = e;
      this.failPending?.(e);
    });
    this.z = z;
    return z;
  }

  /** Compresses one message (trailer stripped) or inflates one (trailer appended). */
  run(input: Buffer): Promise<Buffer> {
    const z = this.stream();
    this.chunks = [];
    return new Promise<Buffer>((resolve, reject) => {
      this.failPending = reject;
      z.write(this.kind === 'inflate' ? Buffer.concat([input, TRAILER]) : input);
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.failPending = null;
        if (this.error) return reject(this.error);
        let out = Buffer.concat(this.chunks);
        this.chunks = [];
        if (this.kind === 'deflate') {
          if (out.length < 4 || !out.subarray(out.length - 4).equals(TRAILER)) {
            return reject(new Error('peer compressor output does not end with 00 00 ff ff'));
          }
          out = out.subarray(0, out.length - 4);
        }
        resolve(out);
      });
    });
  }

  close(): void {
    this.z?.close();
    this.z = null;
  }
}

/** Parses a Sec-WebSocket-Extensions value (one extension expected) into name + params. */
export function parseExtensionHeader(value: string): Array<{ name: string; params: Map<string, string | true> }> {
  const out: Array<{ name: string; params: Map<string, string | true> }> = [];
  for (const ext of value.split(',')) {
    const parts = ext.split(';').map((s) => s.trim()).filter((s) => s.length > 0);
    if (parts.length === 0) continue;
    const params = new Map<string, string | true>();
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=');
      if (eq === -1) params.set(p.toLowerCase(), true);
      else params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
    out.push({ name: parts[0]!.toLowerCase(), params });
  }
  return out;
}

/** The extension header value for a combo, as the peer writes it (offer or response). */
export function comboHeader(c: DeflateCombo, role: 'offer' | 'response'): string {
  const p = ['permessage-deflate'];
  if (c.serverNoContextTakeover) p.push('server_no_context_takeover');
  if (c.clientNoContextTakeover) p.push('client_no_context_takeover');
  if (c.serverMaxWindowBits !== undefined) p.push(`server_max_window_bits=${c.serverMaxWindowBits}`);
  if (c.clientMaxWindowBits !== undefined) p.push(`client_max_window_bits=${c.clientMaxWindowBits}`);
  // Like browsers: offer client_max_window_bits without a value, so the server may cap us.
  else if (role === 'offer') p.push('client_max_window_bits');
  return p.join('; ');
}

function comboParams(c: DeflateCombo): DeflateParams {
  return {
    serverNoContextTakeover: c.serverNoContextTakeover ?? false,
    clientNoContextTakeover: c.clientNoContextTakeover ?? false,
    serverMaxWindowBits: c.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: c.clientMaxWindowBits ?? 15,
  };
}

/** Asserts that an extension header carries exactly the combo's parameters. */
function assertExtensionMatches(header: string | undefined, c: DeflateCombo, role: 'offer' | 'response', who: string): void {
  assert.ok(header, `${who}: no Sec-WebSocket-Extensions header, expected ${comboHeader(c, role)}`);
  const exts = parseExtensionHeader(header);
  assert.equal(exts.length, 1, `${who}: expected one extension, got ${JSON.stringify(header)}`);
  const e = exts[0]!;
  assert.equal(e.name, 'permessage-deflate', `${who}: ${JSON.stringify(header)}`);
  const want = new Map<string, string | true>();
  if (c.serverNoContextTakeover) want.set('server_no_context_takeover', true);
  if (c.clientNoContextTakeover) want.set('client_no_context_takeover', true);
  if (c.serverMaxWindowBits !== undefined) want.set('server_max_window_bits', String(c.serverMaxWindowBits));
  if (c.clientMaxWindowBits !== undefined) want.set('client_max_window_bits', String(c.clientMaxWindowBits));
  else if (role === 'offer') want.set('client_max_window_bits', true);
  assert.deepEqual(Object.fromEntries(e.params), Object.fromEntries(want), `${who}: ${JSON.stringify(header)} does not match the combo`);
}

// ---------------------------------------------------------------------------
// The fuzzing peer

export type TraceEvent =
  | { type: 'message'; binary: boolean; data: Buffer; frames: WireFrame[]; compressed: boolean }
  | { type: 'pong'; data: Buffer }
  | { type: 'ping'; data: Buffer };

export interface Trace {
  /** Every frame the implementation sent, in order. */
  frames: WireFrame[];
  /** Messages, pongs and pings the implementation sent, in order. */
  events: TraceEvent[];
  /** The implementation's close frame: code (1005 if empty), reason, and whether it came before ours. */
  implClose: { code: number; reason: Buffer; beforePeerClose: boolean } | null;
  peerCloseSent: boolean;
  /** The implementation closed its side of TCP (FIN). */
  implEnded: boolean;
  /** The peer closed its side of TCP before the implementation did. */
  peerEndedFirst: boolean;
  /** The TCP connection is gone. */
  closed: boolean;
  /** RFC violations the peer saw in what the implementation sent. */
  violations: string[];
  bytesSent: number;
  /** Bytes of the script not sent because the implementation had already closed. */
  withheld: number;
}

function newTrace(): Trace {
  return { frames: [], events: [], implClose: null, peerCloseSent: false, implEnded: false, peerEndedFirst: false, closed: false, violations: [], bytesSent: 0, withheld: 0 };
}

export class FuzzPeer {
  readonly trace: Trace = newTrace();
  /** The agreement, when permessage-deflate was negotiated. */
  deflate: DeflateParams | null = null;
  private readonly decoder: FrameDecoder;
  private readonly waiters = new Set<() => void>();
  private chain: Promise<void> = Promise.resolve();
  private message: { opcode: number; compressed: boolean; frames: WireFrame[] } | null = null;
  private sendZ: ZStream | null = null;
  private recvZ: ZStream | null = null;

  constructor(
    /** The peer's role: 'client' when our server is under test. */
    readonly role: 'client' | 'server',
    readonly socket: net.Socket,
    leftover: Buffer,
  ) {
    this.decoder = new FrameDecoder(
      (f) => {
        this.trace.frames.push(f);
        this.chain = this.chain.then(() => this.onFrame(f)).catch((e: unknown) => this.violation(`peer failed to process a frame: ${(e as Error).message}`));
      },
      (why) => this.violation(why),
    );
    socket.on('data', (c: Buffer) => this.decoder.push(c));
    socket.on('end', () => {
      this.trace.implEnded = true;
      this.notify();
    });
    socket.on('error', () => {
      // ECONNRESET / EPIPE after the implementation closed: 'close' follows.
    });
    socket.on('close', () => {
      // Let frames still in the chain land before waiters see 'closed'.
      void this.chain.then(() => {
        this.trace.closed = true;
        this.notify();
      });
    });
    if (leftover.length > 0) this.decoder.push(leftover);
  }

  get masked(): boolean {
    return this.role === 'client';
  }

  /** Whether the implementation has closed (close frame or FIN): the peer then stops sending. */
  get implGone(): boolean {
    return this.trace.implClose !== null || this.trace.implEnded || this.trace.closed || this.socket.destroyed;
  }

  setDeflate(p: DeflateParams): void {
    this.deflate = p;
    const mine = this.role === 'client' ? { bits: p.clientMaxWindowBits, nct: p.clientNoContextTakeover } : { bits: p.serverMaxWindowBits, nct: p.serverNoContextTakeover };
    const theirs = this.role === 'client' ? { bits: p.serverMaxWindowBits, nct: p.serverNoContextTakeover } : { bits: p.clientMaxWindowBits, nct: p.clientNoContextTakeover };
    this.sendZ = new ZStream('deflate', mine.bits, mine.nct);
    // Inflate with exactly the window the implementation may use, and without
    // context when it promised none: a compressor that breaks either fails here.
    this.recvZ = new ZStream('inflate', theirs.bits, theirs.nct);
  }

  // ------------------------------------------------------------- receive

  private violation(why: string): void {
    this.trace.violations.push(why);
    this.notify();
  }

  private async onFrame(f: WireFrame): Promise<void> {
    const t = this.trace;
    const name = `${opName(f.opcode)} frame #${t.frames.indexOf(f) + 1}`;
    // RFC 6455 5.1: a server MUST NOT mask its frames; a client MUST mask all of them.
    if (this.role === 'client' && f.masked) this.violation(`${name}: the server masked a frame`);
    if (this.role === 'server' && !f.masked) this.violation(`${name}: the client sent an unmasked frame`);
    // RFC 6455 5.2: minimal length encoding.
    if ((f.lengthBytes === 2 && f.length < 126) || (f.lengthBytes === 8 && f.length < 65536)) this.violation(`${name}: length ${f.length} not minimally encoded`);
    if (t.implClose) {
      this.violation(`${name}: sent after the implementation's close frame`);
      return;
    }
    const isControl = f.opcode >= 0x8;
    // RFC 6455 5.2 / RFC 7692 6: RSV1 only on the first frame of a compressed data message.
    const rsv1Allowed = this.deflate !== null && (f.opcode === OP.TEXT || f.opcode === OP.BINARY);
    if ((f.rsv & 3) !== 0 || ((f.rsv & 4) !== 0 && !rsv1Allowed)) this.violation(`${name}: RSV bits ${f.rsv.toString(2).padStart(3, '0')}`);
    if (isControl) {
      if (![OP.CLOSE, OP.PING, OP.PONG].includes(f.opcode as 8 | 9 | 10)) return this.violation(`${name}: reserved opcode`);
      // RFC 6455 5.5: control frames are not fragmented and carry at most 125 bytes.
      if (!f.fin) this.violation(`${name}: fragmented control frame`);
      if (f.length > 125) this.violation(`${name}: control frame with ${f.length} bytes`);
      if (f.opcode === OP.PING) t.events.push({ type: 'ping', data: f.payload });
      else if (f.opcode === OP.PONG) t.events.push({ type: 'pong', data: f.payload });
      else this.onCloseFrame(f);
      this.notify();
      return;
    }
    if (f.opcode === OP.CONT) {
      if (!this.message) return this.violation(`${name}: continuation without a message in progress`);
    } else if (f.opcode === OP.TEXT || f.opcode === OP.BINARY) {
      if (this.message) return this.violation(`${name}: new data frame while a fragmented message is in progress`);
      this.message = { opcode: f.opcode, compressed: (f.rsv & 4) !== 0, frames: [] };
    } else {
      return this.violation(`${name}: reserved opcode`);
    }
    const m = this.message!;
    m.frames.push(f);
    if (!f.fin) return;
    this.message = null;
    let data = m.frames.length === 1 ? m.frames[0]!.payload : Buffer.concat(m.frames.map((x) => x.payload));
    if (m.compressed) {
      try {
        data = await this.recvZ!.run(data);
      } catch (e) {
        return this.violation(`${name}: compressed message does not inflate with the negotiated parameters: ${(e as Error).message}`);
      }
    }
    const binary = m.opcode === OP.BINARY;
    if (!binary && !isUtf8(data)) this.violation(`${name}: text message is not valid UTF-8`);
    t.events.push({ type: 'message', binary, data, frames: m.frames, compressed: m.compressed });
    this.notify();
  }

  private onCloseFrame(f: WireFrame): void {
    const t = this.trace;
    let code = 1005;
    let reason: Buffer = Buffer.alloc(0);
    if (f.length === 1) this.violation('close frame with a 1-byte payload');
    if (f.length >= 2) {
      code = f.payload.readUInt16BE(0);
      reason = f.payload.subarray(2);
      if (!isSendableCloseCode(code)) this.violation(`close frame with code ${code}, which must not be sent`);
      if (!isUtf8(reason)) this.violation('close reason is not valid UTF-8');
    }
    t.implClose = { code, reason, beforePeerClose: !t.peerCloseSent };
    if (!t.peerCloseSent) {
      // Answer like an RFC endpoint: echo the status code (RFC 6455 5.5.1).
      this.writeFrame({ opcode: OP.CLOSE, payload: isSendableCloseCode(code) ? closePayload(code) : Buffer.alloc(0) }, true);
    }
    // RFC 6455 7.1.1: the server closes TCP first once the handshake is done.
    if (this.role === 'server') this.endTcp();
  }

  private endTcp(): void {
    if (this.socket.writableEnded || this.socket.destroyed) return;
    if (!this.trace.implEnded) this.trace.peerEndedFirst = true;
    this.socket.end();
  }

  // ------------------------------------------------------------- send

  /** Writes raw bytes unless the implementation already closed (then they count as withheld). */
  writeBytes(bytes: Buffer): boolean {
    return this.write(bytes);
  }

  private write(bytes: Buffer, force = false): boolean {
    if ((!force && this.implGone) || this.socket.destroyed || this.socket.writableEnded) {
      if (!force) this.trace.withheld += bytes.length;
      return false;
    }
    // Close replies (force) are the peer's protocol duty, not part of the script.
    if (!force) this.trace.bytesSent += bytes.length;
    this.socket.write(bytes);
    return true;
  }

  private noteSent(f: FrameSpec): void {
    // Only a well-formed close frame starts (or answers) the closing handshake;
    // a broken one (RSV bits, bad code, 1-byte payload...) is a protocol error to fail on.
    if (f.opcode === OP.CLOSE && !this.trace.peerCloseSent && isWellFormedClose(f)) {
      this.trace.peerCloseSent = true;
      // Our close answered theirs: the handshake is complete.
      if (this.trace.implClose && this.role === 'server') this.endTcp();
    }
  }

  /** Writes one frame now (force: even after the implementation closed, for close replies). */
  writeFrame(f: FrameSpec, force = false): void {
    if (this.write(encodeFrame(f, this.masked).bytes, force)) this.noteSent(f);
  }

  async sendFrames(frames: FrameSpec[], chop?: number, delayMs?: number): Promise<void> {
    const encoded = frames.map((f) => encodeFrame(f, this.masked).bytes);
    if (chop === undefined && delayMs === undefined) {
      if (this.write(encoded.length === 1 ? encoded[0]! : Buffer.concat(encoded))) frames.forEach((f) => this.noteSent(f));
      return;
    }
    for (let i = 0; i < frames.length; i++) {
      const bytes = encoded[i]!;
      const size = chop ?? bytes.length;
      for (let off = 0; off < bytes.length; off += size) {
        if (!this.write(bytes.subarray(off, Math.min(off + size, bytes.length)))) {
          this.trace.withheld += bytes.length - Math.min(off + size, bytes.length);
          for (let j = i + 1; j < encoded.length; j++) this.trace.withheld += encoded[j]!.length;
          return;
        }
        if (delayMs !== undefined) await pause(delayMs);
      }
      this.noteSent(frames[i]!);
    }
  }

  /** Sends a whole message, compressed when permessage-deflate was negotiated (and compress !== false). */
  async sendMessage(data: Buffer, isBinary: boolean, compress = true, fragmentSize = 0): Promise<void> {
    const deflated = this.deflate !== null && compress;
    const payload = deflated ? await this.sendZ!.run(data) : data;
    const op = isBinary ? OP.BINARY : OP.TEXT;
    if (fragmentSize <= 0 || payload.length <= fragmentSize) {
      await this.sendFrames([{ opcode: op, payload, rsv: deflated ? 4 : 0 }]);
      return;
    }
    const frames: FrameSpec[] = [];
    for (let off = 0; off < payload.length; off += fragmentSize) {
      const end = Math.min(off + fragmentSize, payload.length);
      // RFC 7692 6.1: RSV1 on the first frame only.
      frames.push({ opcode: off === 0 ? op : OP.CONT, payload: payload.subarray(off, end), fin: end === payload.length, rsv: off === 0 && deflated ? 4 : 0 });
    }
    await this.sendFrames(frames);
  }

  /** Starts the closing handshake from the peer's side. */
  sendClose(code = 1000): void {
    this.writeFrame({ opcode: OP.CLOSE, payload: closePayload(code) });
  }

  // ------------------------------------------------------------- waiting

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `pred` holds; rejects after `timeoutMs` with what the peer saw. */
  waitFor(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (pred()) return resolve();
      const check = () => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.summary()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  /** What the peer saw, for failure messages. */
  summary(): string {
    const t = this.trace;
    const frames = t.frames.slice(0, 12).map(describeFrame).join(', ') + (t.frames.length > 12 ? `, ... (${t.frames.length} frames)` : '');
    return [
      `  frames from the implementation: [${frames}]`,
      `  events: ${t.events.length} (${t.events.slice(0, 6).map(describeEvent).join(', ')}${t.events.length > 6 ? ', ...' : ''})`,
      `  implementation close frame: ${t.implClose ? `${t.implClose.code}${t.implClose.beforePeerClose ? ' (initiated)' : ' (reply)'}` : 'none'}; peer close sent: ${t.peerCloseSent}`,
      `  tcp: implementation FIN ${t.implEnded}, closed ${t.closed}; bytes sent ${t.bytesSent}, withheld ${t.withheld}`,
      t.violations.length ? `  violations: ${t.violations.join('; ')}` : '',
    ]
      .filter(Boolean)
      .join('\n');
  }

  destroy(): void {
    this.sendZ?.close();
    this.recvZ?.close();
    this.socket.destroy();
  }
}

function pause(delayMs: number): Promise<unknown> {
  return delayMs > 0 ? sleep(delayMs) : immediate();
}

function isWellFormedClose(f: FrameSpec): boolean {
  const p = f.payload === undefined ? Buffer.alloc(0) : buf(f.payload);
  if ((f.fin ?? true) !== true || (f.rsv ?? 0) !== 0 || f.wrongMask || f.declaredLength !== undefined) return false;
  if (f.lengthEncoding !== undefined && f.lengthEncoding !== 7) return false;
  if (p.length === 0) return true;
  return p.length >= 2 && p.length <= 125 && isSendableCloseCode(p.readUInt16BE(0)) && isUtf8(p.subarray(2));
}

function isSendableCloseCode(code: number): boolean {
  if (code >= 1000 && code <= 1014) return code !== 1004 && code !== 1005 && code !== 1006;
  return code >= 3000 && code <= 4999;
}

function opName(op: number): string {
  return ({ 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' } as Record<number, string>)[op] ?? `opcode-0x${op.toString(16)}`;
}

function describeFrame(f: WireFrame): string {
  const flags = `${f.fin ? '' : ' !fin'}${f.rsv ? ` rsv=${f.rsv}` : ''}${f.masked ? ' masked' : ''}`;
  const detail = f.opcode === OP.CLOSE && f.length >= 2 ? ` ${f.payload.readUInt16BE(0)}` : ` ${f.length}B`;
  return `${opName(f.opcode)}${flags}${detail}`;
}

function describeBytes(b: Buffer): string {
  if (b.length <= 24) return `${b.length}B ${b.toString('hex')}`;
  return `${b.length}B sha1:${createHash('sha1').update(b).digest('hex').slice(0, 12)}`;
}

function describeEvent(e: TraceEvent | ExpectedEvent): string {
  if (e.type === 'message') return `${e.binary ? 'binary' : 'text'} ${describeBytes(e.data)}`;
  return `${e.type} ${describeBytes(e.data)}`;
}

// ---------------------------------------------------------------------------
// Opening handshakes, by hand

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEAD = 16 * 1024;

function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

interface HttpHead {
  startLine: string;
  headers: Map<string, string>;
  rest: Buffer;
}

/** Reads an HTTP head (up to CRLFCRLF) from a socket; the bytes after it are returned as `rest`. */
function readHead(socket: net.Socket, timeoutMs: number): Promise<HttpHead> {
  return new Promise((resolve, reject) => {
    let acc = Buffer.alloc(0);
    const done = (err: Error | null, head?: HttpHead) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(head!);
    };
    const onData = (c: Buffer) => {
      acc = Buffer.concat([acc, c]);
      const end = acc.indexOf('\r\n\r\n');
      if (end === -1) {
        if (acc.length > MAX_HEAD) done(new Error('HTTP head too large'));
        return;
      }
      const lines = acc.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
      }
      // Stop reading until the peer takes over, so no frame bytes are lost.
      socket.pause();
      done(null, { startLine: lines[0]!, headers, rest: acc.subarray(end + 4) });
    };
    const onClose = () => done(new Error(`connection closed during the opening handshake (got ${JSON.stringify(acc.toString('latin1').slice(0, 200))})`));
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms reading the HTTP head`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Server driver: the peer dials our server and performs the client half of the handshake. */
async function peerConnect(port: number, combo: DeflateCombo | undefined, offer?: string): Promise<FuzzPeer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await withTimeout(eventOnce(socket, 'connect'), ms(3000), 'TCP connect to our server');
  socket.setNoDelay(true);
  const key = randomBytes(16).toString('base64');
  const lines = [
    'GET /conformance HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (combo) lines.push(`Sec-WebSocket-Extensions: ${offer ?? comboHeader(combo, 'offer')}`);
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  const head = await readHead(socket, ms(3000));
  assert.match(head.startLine, /^HTTP\/1\.1 101 /, `our server did not switch protocols: ${head.startLine}`);
  assert.equal(head.headers.get('sec-websocket-accept'), acceptKey(key), 'Sec-WebSocket-Accept');
  assert.equal(head.headers.get('upgrade')?.toLowerCase(), 'websocket', 'Upgrade header of the 101');
  const peer = new FuzzPeer('client', socket, head.rest);
  if (combo) {
    assertExtensionMatches(head.headers.get('sec-websocket-extensions'), combo, 'response', 'our server\'s permessage-deflate response');
    peer.setDeflate(comboParams(combo));
  } else {
    assert.equal(head.headers.get('sec-websocket-extensions'), undefined, 'our server answered an extension nobody offered');
  }
  socket.resume();
  return peer;
}

/** Client driver: the peer accepted our client's TCP connection and performs the server half. */
async function peerAccept(socket: net.Socket, combo: DeflateCombo | undefined): Promise<FuzzPeer> {
  socket.on('error', () => {});
  socket.setNoDelay(true);
  const head = await readHead(socket, ms(3000));
  assert.match(head.startLine, /^GET \S+ HTTP\/1\.1$/, `request line: ${head.startLine}`);
  assert.equal(head.headers.get('upgrade')?.toLowerCase(), 'websocket', 'Upgrade header of the request');
  assert.match(head.headers.get('connection') ?? '', /\bupgrade\b/i, 'Connection header of the request');
  assert.equal(head.headers.get('sec-websocket-version'), '13', 'Sec-WebSocket-Version');
  const key = head.headers.get('sec-websocket-key') ?? '';
  assert.equal(Buffer.from(key, 'base64').length, 16, `Sec-WebSocket-Key ${JSON.stringify(key)} is not 16 bytes of base64`);
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(key)}`];
  if (combo) {
    assertExtensionMatches(head.headers.get('sec-websocket-extensions'), combo, 'offer', 'our client\'s permessage-deflate offer');
    lines.push(`Sec-WebSocket-Extensions: ${comboHeader(combo, 'response')}`);
  } else {
    assert.equal(head.headers.get('sec-websocket-extensions'), undefined, 'our client offered an extension it was not configured for');
  }
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  const peer = new FuzzPeer('server', socket, head.rest);
  if (combo) peer.setDeflate(comboParams(combo));
  socket.resume();
  return peer;
}

// ---------------------------------------------------------------------------
// Our implementation, wired as Autobahn's echo target

class ImplProbe {
  ws: WebSocket | null = null;
  readonly errors: Error[] = [];
  closeEvent: { code: number; reason: string } | null = null;
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  private resolveOpened!: () => void;
  private resolveClosed!: () => void;

  constructor() {
    this.opened = new Promise((r) => (this.resolveOpened = r));
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  attach(ws: WebSocket, alreadyOpen: boolean): void {
    this.ws = ws;
    // Echo every message as received: text as text, binary as binary.
    ws.on('message', (data, isBinary) => {
      if (ws.readyState === 1) ws.send(data, { binary: isBinary });
    });
    ws.on('error', (err) => this.errors.push(err));
    ws.on('close', (code, reason) => {
      this.closeEvent = { code, reason };
      this.resolveClosed();
    });
    if (alreadyOpen) this.resolveOpened();
    else ws.once('open', () => this.resolveOpened());
  }
}

function implDeflateOptions(c: Case, side: Side): DeflateOptions | undefined {
  if (!c.deflate) return undefined;
  const base: DeflateOptions = { threshold: 0, ...c.implDeflate };
  if (side === 'server') return base;
  // Our client asks for exactly the combo.
  return {
    ...base,
    serverNoContextTakeover: c.deflate.serverNoContextTakeover,
    clientNoContextTakeover: c.deflate.clientNoContextTakeover,
    serverMaxWindowBits: c.deflate.serverMaxWindowBits,
    clientMaxWindowBits: c.deflate.clientMaxWindowBits,
  };
}

interface Session {
  peer: FuzzPeer;
  impl: ImplProbe;
  teardown: () => Promise<void>;
}

async function openServerSession(c: Case): Promise<Session> {
  const impl = new ImplProbe();
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...c.impl, deflate: implDeflateOptions(c, 'server') ?? false });
  wss.on('error', () => {});
  const teardown = async () => {
    peer?.destroy();
    await wss.close({ timeout: ms(500) });
  };
  let peer: FuzzPeer | undefined;
  try {
    if (wss.address() === null) await withTimeout(eventOnce(wss, 'listening'), ms(3000), 'our server to listen');
    wss.on('connection', (ws) => impl.attach(ws, true));
    const address = wss.address();
    assert.ok(address && typeof address === 'object');
    peer = await peerConnect(address.port, c.deflate, c.deflateOffer);
    await withTimeout(impl.opened, ms(3000), "our server's 'connection' event");
    return { peer, impl, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}

async function openClientSession(c: Case): Promise<Session> {
  const impl = new ImplProbe();
  const server = net.createServer();
  server.on('error', () => {});
  let peer: FuzzPeer | undefined;
  let ws: ClientWebSocket | undefined;
  const teardown = async () => {
    peer?.destroy();
    ws?.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    server.listen(0, '127.0.0.1');
    await withTimeout(eventOnce(server, 'listening'), ms(3000), 'the peer server to listen');
    const { port } = server.address() as net.AddressInfo;
    const accepted = withTimeout(eventOnce(server, 'connection') as Promise<[net.Socket]>, ms(3000), 'our client to connect');
    ws = new ClientWebSocket(`ws://127.0.0.1:${port}/conformance`, { ...c.impl, deflate: implDeflateOptions(c, 'client') ?? false, handshakeTimeout: ms(3000) });
    impl.attach(ws, false);
    const [socket] = await accepted;
    peer = await peerAccept(socket, c.deflate);
    await withTimeout(
      Promise.race([impl.opened, impl.closed.then(() => Promise.reject(new Error(`our client closed during the handshake: ${ws?.handshakeError?.message ?? '?'}`)))]),
      ms(3000),
      "our client's 'open' event",
    );
    return { peer, impl, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Running a case

/** Guard for one wait inside a case (unscaled ms). */
const WAIT = 3000;

async function runStep(peer: FuzzPeer, s: Step): Promise<void> {
  const t = peer.trace;
  switch (s.op) {
    case 'send':
      await peer.sendFrames(s.frames, s.chop, s.delayMs);
      return;
    case 'sendMessage':
      await peer.sendMessage(s.data, s.binary, s.compress ?? true, s.fragmentSize ?? 0);
      return;
    case 'sendSplit': {
      const { bytes, headerLength } = encodeFrame(s.frame, peer.masked);
      const cuts = [0, ...s.at.map((a) => headerLength + a), bytes.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        if (!peer.writeBytes(bytes.subarray(cuts[i], cuts[i + 1]))) {
          t.withheld += bytes.length - cuts[i + 1]!;
          return;
        }
        const then = s.after?.[i];
        const rest = bytes.length - cuts[i + 1]!;
        if (then === 'open') {
          await sleep(ms(s.delayMs ?? 20));
          assert.ok(!peer.implGone, `the implementation closed after part ${i + 1} of a frame, before any invalid byte had arrived\n${peer.summary()}`);
        } else if (then) {
          await expectFail(peer, then.fail, `fail fast after part ${i + 1} of a frame (${rest} of its ${bytes.length} bytes still withheld)`);
          t.withheld += rest;
          return;
        } else if (i + 2 < cuts.length) {
          await pause(s.delayMs ?? 0);
        }
      }
      return;
    }
    case 'awaitEvents':
      await peer.waitFor(() => t.events.length >= s.count || peer.implGone, `${s.count} messages/pongs from the implementation`, ms(WAIT));
      assert.ok(t.events.length >= s.count, `the implementation closed after ${t.events.length} of ${s.count} expected messages/pongs\n${peer.summary()}`);
      return;
    case 'expectOpen':
      await sleep(ms(s.ms));
      assert.ok(!peer.implGone, `the implementation closed during a quiet period where it had to stay open\n${peer.summary()}`);
      return;
    case 'expectFail':
      await expectFail(peer, s.codes, 'the implementation must fail now');
      return;
  }
}

/** The implementation must send a close frame with one of `codes` and close TCP, with nothing more from us. */
async function expectFail(peer: FuzzPeer, codes: number[], what: string): Promise<void> {
  const t = peer.trace;
  const sentBefore = t.bytesSent;
  await peer.waitFor(() => t.closed || (t.implClose !== null && t.implEnded), `${what}; expected close ${codes.join('/')} and TCP close`, ms(WAIT));
  assert.equal(t.bytesSent, sentBefore, 'the peer sent data while waiting for the failure');
  if (t.implClose === null) {
    assert.ok(codes.includes(1006), `${what}: the implementation dropped TCP without a close frame (expected close ${codes.join('/')})\n${peer.summary()}`);
  } else {
    assert.ok(t.implClose.beforePeerClose, `${what}: the implementation's close frame only answered ours\n${peer.summary()}`);
    assert.ok(codes.includes(t.implClose.code), `${what}: close code ${t.implClose.code}, expected ${codes.join(' or ')}\n${peer.summary()}`);
  }
}

function eventsEqual(got: TraceEvent[], want: ExpectedEvent[], summary: () => string): void {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const w = want[i];
    const where = `event #${i + 1} of ${want.length} expected / ${got.length} received`;
    if (!w) assert.fail(`${where}: unexpected ${describeEvent(g!)}\n${summary()}`);
    if (!g) assert.fail(`${where}: missing ${describeEvent(w)}\n${summary()}`);
    const same = g.type === w.type && g.data.equals(w.data) && (g.type !== 'message' || w.type !== 'message' || g.binary === w.binary);
    if (!same) assert.fail(`${where}: expected ${describeEvent(w)}, got ${describeEvent(g)}\n${summary()}`);
  }
}

/** Runs one case against one side and asserts the expectation. */
export async function runCase(c: Case, side: Side): Promise<void> {
  const session = side === 'server' ? await openServerSession(c) : await openClientSession(c);
  const { peer, impl } = session;
  const t = peer.trace;
  try {
    for (const s of c.steps) await runStep(peer, s);
    const want = c.expect;
    if (want.close.by === 'peer') {
      await peer.waitFor(() => t.events.length >= want.events.length || peer.implGone, `${want.events.length} messages/pongs before closing`, ms(WAIT));
      if (!t.peerCloseSent && !peer.implGone) peer.sendClose(1000);
    }
    await peer.waitFor(() => t.closed, 'the TCP connection to close', ms(WAIT));

    assert.deepEqual(t.violations, [], `the implementation broke the protocol\n${peer.summary()}`);
    eventsEqual(
      t.events.filter((e) => e.type !== 'ping'),
      want.events,
      () => peer.summary(),
    );
    assert.ok(!t.events.some((e) => e.type === 'ping'), `the implementation sent a ping nobody asked for\n${peer.summary()}`);
    if (want.compressedEchoes) {
      t.events.forEach((e, i) => assert.ok(e.type !== 'message' || e.compressed, `echo #${i + 1} came back uncompressed\n${peer.summary()}`));
    }

    const codes = want.close.codes.join(' or ');
    if (want.close.by === 'peer') {
      assert.ok(t.implClose, `expected the implementation to answer our close with ${codes}, got no close frame\n${peer.summary()}`);
      assert.ok(!t.implClose.beforePeerClose, `expected a clean close started by the peer, but the implementation failed the connection with ${t.implClose.code}\n${peer.summary()}`);
      assert.ok(want.close.codes.includes(t.implClose.code), `close answer ${t.implClose.code}, expected ${codes}\n${peer.summary()}`);
      // RFC 6455 7.1.1: the server closes the TCP connection first; the client waits for it.
      if (side === 'server') assert.ok(!t.peerEndedFirst, 'our server did not close TCP after the closing handshake');
      else assert.ok(t.peerEndedFirst, 'our client closed TCP before the server did (RFC 6455 7.1.1)');
    } else if (t.implClose === null) {
      assert.ok(want.close.codes.includes(1006), `expected the implementation to fail with close ${codes}, it dropped TCP without a close frame\n${peer.summary()}`);
    } else {
      assert.ok(t.implClose.beforePeerClose, `expected the implementation to fail the connection with ${codes}, it only answered our close with ${t.implClose.code}\n${peer.summary()}`);
      assert.ok(want.close.codes.includes(t.implClose.code), `failed with close ${t.implClose.code}, expected ${codes}\n${peer.summary()}`);
    }
    want.check?.(t, side);

    // Our side must have finished too: 'close' emitted, with what the peer's close frame said.
    await withTimeout(impl.closed, ms(WAIT), "our WebSocket's 'close' event");
    if (want.close.by === 'peer') {
      assert.equal(impl.ws!.readyState, 3, 'readyState after close');
      const sent = firstPeerClose(c);
      if (sent !== undefined) {
        assert.equal(impl.closeEvent!.code, sent.code, "code of our WebSocket's 'close' event");
        assert.equal(impl.closeEvent!.reason, sent.reason, "reason of our WebSocket's 'close' event");
      }
    } else {
      assert.ok(impl.errors.length > 0, "our WebSocket failed the connection without an 'error' event");
    }
  } finally {
    await session.teardown();
  }
}

/** Code (1005 if none) and reason of the first well-formed close frame the script sends; 1000 for the automatic close. */
function firstPeerClose(c: Case): { code: number; reason: string } | undefined {
  for (const s of c.steps) {
    if (s.op !== 'send') continue;
    for (const f of s.frames) {
      if (f.opcode !== OP.CLOSE || !isWellFormedClose(f)) continue;
      const p = f.payload === undefined ? Buffer.alloc(0) : buf(f.payload);
      return p.length === 0 ? { code: 1005, reason: '' } : { code: p.readUInt16BE(0), reason: p.subarray(2).toString('utf8') };
    }
  }
  return { code: 1000, reason: '' };
}

/** The case timeout, scaled. */
export function caseTimeout(c: Case): number {
  return ms(c.timeoutMs ?? 5000);
}

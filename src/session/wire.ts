/**
 * The lifeline.v1 session subprotocol on the wire (docs/PROTOCOL.md): how one
 * WebSocket message is read as a control message or an application message.
 *
 *   text frame, first byte '{'   control message, a JSON object with a "t" type
 *   any frame,  first byte 'd'   application message: 'd' SEQ [',' ACK] ':' PAYLOAD,
 *                                SEQ and ACK in ASCII decimal (text frame: text
 *                                payload, binary frame: bytes)
 *
 * Every other first byte is reserved and fails the session with close code
 * 1002 (protocol error).
 *
 * Pure and browser-safe: no Node APIs, strings and Uint8Arrays only.
 */

import { decimalDigits as decimalDigitsImport, putDecimalBefore as putDecimalBeforeImport } from '../protocol/decimal.js';

// Hot-path bindings as this module's own constants: V8 reads an imported or
// exported binding from its cell, with a hole check, at every use (about 5
// instructions each, per message), and folds a module's own constant.
const decimalDigits = decimalDigitsImport;
const putDecimalBefore = putDecimalBeforeImport;

export const SUBPROTOCOL = 'lifeline.v1';
export const PROTOCOL_VERSION = 1;

/** First byte of an application message. */
export const DATA_MARK = 0x64; // 'd'
export const DATA_PREFIX = 'd';
const COLON = 0x3a;
const COMMA = 0x2c;
/** Largest sequence number on the wire (2^53 - 1: exact in a JS number). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** First byte of a control message. */
export const CONTROL_MARK = 0x7b; // '{'

/** Heartbeat parameters the server announces in its welcome, ms. */
export interface WireHeartbeat {
  /** Quiet time before a ping. */
  interval: number;
  timeoutFloor: number;
  timeoutCeiling: number;
  timeoutInitial: number;
  k: number;
}

/** Why a session could not be resumed. */
export type SessionLostReason = 'unknown-session' | 'session-expired' | 'replay-overflow';

export type ControlMessage =
  | { t: 'hello'; v: number; session?: string; token?: string; ack?: number; auth?: string }
  | {
      t: 'welcome';
      v: number;
      hb: WireHeartbeat | null;
      session?: string;
      token?: string;
      /** Highest client seq the server has received (resume: the client replays above it). */
      ack?: number;
      resumed?: boolean;
      /** Present when the client asked to resume and could not. */
      lost?: { reason: SessionLostReason; toClient: number | null; ack: number | null };
      /** Server's session TTL, ms. */
      ttl?: number;
    }
  | { t: 'ping'; ts: number }
  | { t: 'pong'; ts: number }
  | { t: 'ack'; seq: number }
  | { t: 'bye'; reason: string; retryAfter?: number }
  | { t: 'auth'; token: string }
  | { t: 'auth-refresh' }
  | { t: 'error'; code: string; message: string; fatal: boolean };

export type Decoded =
  | { kind: 'control'; msg: ControlMessage }
  | { kind: 'data' }
  | { kind: 'invalid'; why: string };

const DATA: Decoded = { kind: 'data' };

/** Encodes a control message (always sent as a text frame). */
export function encodeControl(msg: ControlMessage): string {
  return JSON.stringify(msg);
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isSeq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Validates the shape of a parsed control message. Unknown fields are ignored (forward compatibility). */
export function parseControl(text: string): ControlMessage | string {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return 'control message is not valid JSON';
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'control message is not a JSON object';
  const m = o as Record<string, unknown>;
  switch (m.t) {
    case 'hello': {
      if (!isNum(m.v)) return 'hello without a numeric v';
      const out: ControlMessage = { t: 'hello', v: m.v };
      if (m.session !== undefined) {
        if (typeof m.session !== 'string' || typeof m.token !== 'string') return 'hello with a session needs string session and token';
        if (!isSeq(m.ack)) return 'hello with a session needs a seq ack';
        out.session = m.session;
        out.token = m.token;
        out.ack = m.ack;
      }
      if (m.auth !== undefined) {
        if (typeof m.auth !== 'string') return 'hello with a non-string auth';
        out.auth = m.auth;
      }
      return out;
    }
    case 'welcome': {
      if (!isNum(m.v)) return 'welcome without a numeric v';
      let hb: WireHeartbeat | null = null;
      if (m.hb !== null && m.hb !== undefined) {
        const h = m.hb as Record<string, unknown>;
        if (typeof h !== 'object' || ![h.interval, h.timeoutFloor, h.timeoutCeiling, h.timeoutInitial, h.k].every(isNum)) {
          return 'welcome with a malformed hb';
        }
        hb = { interval: h.interval as number, timeoutFloor: h.timeoutFloor as number, timeoutCeiling: h.timeoutCeiling as number, timeoutInitial: h.timeoutInitial as number, k: h.k as number };
      }
      const out: ControlMessage = { t: 'welcome', v: m.v, hb };
      if (m.session !== undefined) {
        if (typeof m.session !== 'string' || typeof m.token !== 'string' || !isSeq(m.ack)) return 'welcome with a malformed session';
        out.session = m.session;
        out.token = m.token;
        out.ack = m.ack;
        out.resumed = m.resumed === true;
        if (isNum(m.ttl)) out.ttl = m.ttl;
        if (m.lost !== undefined) {
          const l = m.lost as Record<string, unknown>;
          if (typeof l !== 'object' || l === null || (l.reason !== 'unknown-session' && l.reason !== 'session-expired' && l.reason !== 'replay-overflow')) {
            return 'welcome with a malformed lost';
          }
          out.lost = { reason: l.reason, toClient: isSeq(l.toClient) ? l.toClient : null, ack: isSeq(l.ack) ? l.ack : null };
        }
      }
      return out;
    }
    case 'ping':
    case 'pong':
      return isNum(m.ts) ? { t: m.t, ts: m.ts } : `${m.t} without a numeric ts`;
    case 'ack':
      return isSeq(m.seq) ? { t: 'ack', seq: m.seq } : 'ack without a seq';
    case 'bye': {
      if (typeof m.reason !== 'string') return 'bye without a reason';
      const out: ControlMessage = { t: 'bye', reason: m.reason };
      if (isNum(m.retryAfter) && m.retryAfter >= 0) out.retryAfter = m.retryAfter;
      return out;
    }
    case 'auth':
      return typeof m.token === 'string' ? { t: 'auth', token: m.token } : 'auth without a token';
    case 'auth-refresh':
      return { t: 'auth-refresh' };
    case 'error':
      return typeof m.code === 'string' ? { t: 'error', code: m.code, message: typeof m.message === 'string' ? m.message : '', fatal: m.fatal === true } : 'error without a code';
    default:
      return `unknown control type ${JSON.stringify(m.t)}`;
  }
}

/**
 * Classifies one received WebSocket message. `first` is its first byte (or
 * -1 if empty); `text` is the decoded text when it was a text frame and the
 * first byte is '{' (the caller decodes lazily, only for control messages).
 */
export function classify(first: number, isText: boolean, text: () => string): Decoded {
  if (first === DATA_MARK) return DATA;
  if (first === CONTROL_MARK && isText) {
    const r = parseControl(text());
    return typeof r === 'string' ? { kind: 'invalid', why: r } : { kind: 'control', msg: r };
  }
  if (first === -1) return { kind: 'invalid', why: 'empty message' };
  return { kind: 'invalid', why: `reserved message type 0x${first.toString(16).padStart(2, '0')}` };
}

const ACK_HEAD = '{"t":"ack","seq":';
const PONG_HEAD = '{"t":"pong","ts":';
const PING_HEAD = '{"t":"ping","ts":';

// The same heads as bytes, for the readers below: compared with a string's
// charCodeAt(), each byte cost V8's optimized code a string check (about 40
// instructions a byte, 16 bytes per ack). Made by calls marked pure, so that
// the browser bundle, which reads none of these, leaves them out.
function asciiBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
const ACK_HEAD_BYTES = /* @__PURE__ */ asciiBytes(ACK_HEAD);
const PONG_HEAD_BYTES = /* @__PURE__ */ asciiBytes(PONG_HEAD);
const PING_HEAD_BYTES = /* @__PURE__ */ asciiBytes(PING_HEAD);

/**
 * The acknowledgement as encodeControl() writes it, `{"t":"ack","seq":N}`,
 * read from bytes without JSON.parse (the control message a busy session
 * receives most). Returns N, or -1 when the bytes are not exactly that form:
 * the caller then parses them as any control message, so the answer for
 * every input is the one parseControl() gives.
 */
export function parseCanonicalAck(b: Uint8Array, start = 0, end = b.length): number {
  return canonicalNumberMessage(ACK_HEAD_BYTES, b, start, end);
}

/**
 * The same for the pong `{"t":"pong","ts":N}` with a whole-number N up to
 * MAX_SEQ: the answer to the server's app pings, whose ts is whole
 * milliseconds on the server's clock (one per ping and lifeline.v1 peer).
 * Anything else, a fractional or negative ts included, returns -1 and is
 * left to parseControl().
 */
export function parseCanonicalPong(b: Uint8Array, start = 0, end = b.length): number {
  return canonicalNumberMessage(PONG_HEAD_BYTES, b, start, end);
}

/** The same for a client's app ping `{"t":"ping","ts":N}` (whole-number N up to MAX_SEQ). */
export function parseCanonicalPing(b: Uint8Array, start = 0, end = b.length): number {
  return canonicalNumberMessage(PING_HEAD_BYTES, b, start, end);
}

/** `head` N `}` in `b[start..end)`, N as readNumber takes it; else -1. */
function canonicalNumberMessage(head: Uint8Array, b: Uint8Array, start: number, end: number): number {
  const n = head.length;
  if (end - start < n + 2 || b[end - 1] !== 0x7d) return -1;
  for (let i = 0; i < n; i++) if (b[start + i] !== head[i]) return -1;
  return readNumber(b, start + n, end) === end - 1 ? numberValue : -1;
}

/**
 * encodeControl({ t: 'ping', ts }) without JSON.stringify and its object:
 * for a finite number, JSON and String() write the same digits.
 */
export function encodePing(ts: number): string {
  return Number.isFinite(ts) ? PING_HEAD + ts + '}' : encodeControl({ t: 'ping', ts });
}

/** The same for the pong that answers a ping with `ts`. */
export function encodePong(ts: number): string {
  return Number.isFinite(ts) ? PONG_HEAD + ts + '}' : encodeControl({ t: 'pong', ts });
}

/**
 * The parsed header of an application message. Parsers fill one reusable
 * object instead of allocating per message.
 */
export interface DataHeader {
  seq: number;
  /** Piggybacked cumulative ack, or -1 when absent. */
  ack: number;
  /** Index of the first payload byte (or char), in the input (not from `start`). */
  offset: number;
}

/**
 * Parses 'd' SEQ [',' ACK] ':' from the message `b[start..end)`. Returns
 * false when malformed (no digits, a leading zero in a multi-digit number, a
 * number above MAX_SEQ, a missing ':'), leaving `out` unspecified.
 */
export function parseDataHeaderBytes(b: Uint8Array, out: DataHeader, start = 0, end = b.length): boolean {
  if (end - start < 3 || b[start] !== DATA_MARK) return false;
  let i = readNumber(b, start + 1, end);
  if (i < 0 || i >= end) return false;
  const seq = numberValue;
  let ack = -1;
  if (b[i] === COMMA) {
    i = readNumber(b, i + 1, end);
    if (i < 0 || i >= end) return false;
    ack = numberValue;
  }
  if (b[i] !== COLON) return false;
  out.seq = seq;
  out.ack = ack;
  out.offset = i + 1;
  return true;
}

/** The longest valid data header: 'd', two numbers of MAX_SEQ's 16 digits, ',' and ':'. */
const MAX_HEADER = 3 + 2 * String(MAX_SEQ).length;
const headerScratch = new Uint8Array(MAX_HEADER);

/**
 * The same for a text message received as a string (browsers): its first
 * MAX_HEADER code units, copied as bytes, go through the one parser. What
 * is not ASCII becomes 0xff, which no part of a header matches (a plain
 * truncation to 8 bits could make a digit of it); a header is never longer,
 * so what is cut off could only have made it invalid, and the payload starts
 * at the same index in both forms.
 */
export function parseDataHeaderString(s: string, out: DataHeader): boolean {
  const n = s.length < MAX_HEADER ? s.length : MAX_HEADER;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    headerScratch[i] = c < 0x80 ? c : 0xff;
  }
  return parseDataHeaderBytes(headerScratch, out, 0, n);
}

/** Value of the digits read by readNumber (module scratch: no allocation). */
let numberValue = 0;

/**
 * Reads ASCII digits from `i` (up to `len`); returns the index after them, or
 * -1 when there are none, there is a leading zero in a multi-digit number, or
 * the value exceeds MAX_SEQ.
 */
function readNumber(b: Uint8Array, i: number, len: number): number {
  const start = i;
  let v = 0;
  while (i < len) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    i++;
  }
  // v >= 2 ** 53 is v > MAX_SEQ for these whole numbers: a constant V8 folds,
  // where the exported MAX_SEQ is read from its cell on every message.
  if (i === start || (b[start] === 0x30 && i - start > 1) || v >= 2 ** 53) return -1;
  numberValue = v;
  return i;
}

/** Bytes of the data header 'd' SEQ [',' ACK] ':' (ack < 0: none). */
export function dataHeaderLength(seq: number, ack: number): number {
  return ack >= 0 ? 3 + decimalDigits(seq) + decimalDigits(ack) : 2 + decimalDigits(seq);
}

/**
 * Writes the data header 'd' SEQ [',' ACK] ':' (ack < 0: none) straight into
 * a frame, as bytes, so that it ends at `end`: the caller knows where the
 * payload starts (dataHeaderLength), and written back to front the digits
 * need no count of their own. Returns where the header starts. Plain
 * functions, not an object the header is set on: the server's send path
 * inlines them.
 */
export function writeDataHeader(buf: Uint8Array, end: number, seq: number, ack: number): number {
  buf[end - 1] = COLON;
  let i = end - 1;
  if (ack >= 0) {
    i = putDecimalBefore(buf, i, ack);
    buf[--i] = COMMA;
  }
  i = putDecimalBefore(buf, i, seq);
  buf[--i] = DATA_MARK_HERE;
  return i;
}

/** DATA_MARK for writeDataHeader, a server's per-message path (see the note at the top); the browser bundle leaves it out with that function. */
const DATA_MARK_HERE = DATA_MARK;

/** The header text 'd' SEQ [',' ACK] ':' (ack < 0: none). */
export function dataHeader(seq: number, ack: number): string {
  return ack >= 0 ? `d${seq},${ack}:` : `d${seq}:`;
}

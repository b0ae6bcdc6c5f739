/**
 * The lifeline.v1 session subprotocol on the wire (docs/PROTOCOL.md): how one
 * WebSocket message is read as a control message or an application message.
 *
 *   text frame, first byte '{'   control message, a JSON object with a "t" type
 *   any frame,  first byte 'm'   application message; the payload follows the
 *                                'm' (text frame: text payload, binary frame: bytes)
 *
 * Every other first byte is reserved (later versions add sequenced messages)
 * and fails the session with close code 1002 (protocol error).
 *
 * Pure and browser-safe: no Node APIs, strings and Uint8Arrays only.
 */

export const SUBPROTOCOL = 'lifeline.v1';
export const PROTOCOL_VERSION = 1;

/** First byte of an application message. */
export const DATA_MARK = 0x6d; // 'm'
export const DATA_PREFIX = 'm';
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

export type ControlMessage =
  | { t: 'hello'; v: number }
  | { t: 'welcome'; v: number; hb: WireHeartbeat | null }
  | { t: 'ping'; ts: number }
  | { t: 'pong'; ts: number }
  | { t: 'bye'; reason: string };

export type Decoded =
  | { kind: 'control'; msg: ControlMessage }
  | { kind: 'data'; offset: 1 }
  | { kind: 'invalid'; why: string };

const DATA: Decoded = { kind: 'data', offset: 1 };

/** Encodes a control message (always sent as a text frame). */
export function encodeControl(msg: ControlMessage): string {
  return JSON.stringify(msg);
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

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
    case 'hello':
      return isNum(m.v) ? { t: 'hello', v: m.v } : 'hello without a numeric v';
    case 'welcome': {
      if (!isNum(m.v)) return 'welcome without a numeric v';
      if (m.hb === null || m.hb === undefined) return { t: 'welcome', v: m.v, hb: null };
      const hb = m.hb as Record<string, unknown>;
      if (typeof hb !== 'object' || ![hb.interval, hb.timeoutFloor, hb.timeoutCeiling, hb.timeoutInitial, hb.k].every(isNum)) {
        return 'welcome with a malformed hb';
      }
      return {
        t: 'welcome',
        v: m.v,
        hb: { interval: hb.interval as number, timeoutFloor: hb.timeoutFloor as number, timeoutCeiling: hb.timeoutCeiling as number, timeoutInitial: hb.timeoutInitial as number, k: hb.k as number },
      };
    }
    case 'ping':
    case 'pong':
      return isNum(m.ts) ? { t: m.t, ts: m.ts } : `${m.t} without a numeric ts`;
    case 'bye':
      return typeof m.reason === 'string' ? { t: 'bye', reason: m.reason } : 'bye without a reason';
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

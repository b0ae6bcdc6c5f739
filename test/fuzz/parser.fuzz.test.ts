// Property-based fuzzing of the receive path (FrameParser + Connection).
//
//   LIFELINE_FUZZ_RUNS=20000 npm test -- test/fuzz     more runs (default 2000 per property;
//                                                      the valid-stream property (b) runs half)
//   LIFELINE_FUZZ_SEED=1234 ...                        replay a failing seed
//
// Every property feeds a fresh copy of its input: the parser unmasks in place.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { Connection, type ConnectionOptions, type Role } from '../../src/protocol/connection.js';
import { LifelineError } from '../../src/protocol/errors.js';
import { Opcode, isValidWireCloseCode } from '../../src/protocol/frame.js';
import { RecordingHandler, frame, type RecordedEvent } from '../helpers/recording.js';

const RUNS = Math.max(1, Number(process.env.LIFELINE_FUZZ_RUNS ?? 2000) || 2000);
const SEED = process.env.LIFELINE_FUZZ_SEED === undefined ? undefined : Number(process.env.LIFELINE_FUZZ_SEED);
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: Math.max(1, Math.round(numRuns)), ...(SEED === undefined ? {} : { seed: SEED }) });

const FAIL_CODES = new Set([1002, 1007, 1009]);
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// ------------------------------------------------------------------------------- helpers

/** Cuts `buf` at the given points (any numbers; reduced modulo length+1), copying each chunk. */
function split(buf: Buffer, rawCuts: number[]): Buffer[] {
  const cuts = [...new Set(rawCuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    if (c > prev) out.push(Buffer.from(buf.subarray(prev, c)));
    prev = c;
  }
  return out;
}

function feed(role: Role, chunks: Buffer[], opts: Partial<ConnectionOptions> = {}): { conn: Connection; h: RecordingHandler } {
  const h = new RecordingHandler();
  const conn = new Connection(h, { role, randomFill: (b) => b.fill(0x5a), ...opts });
  for (const c of chunks) conn.receiveData(c);
  return { conn, h };
}

interface Decoded {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Independent decoder for what the connection wrote; fails on truncation or non-minimal lengths. */
function decodeFrames(buf: Buffer): Decoded[] {
  const out: Decoded[] = [];
  let p = 0;
  while (p < buf.length) {
    assert.ok(buf.length - p >= 2, 'written bytes end inside a header');
    const b0 = buf[p]!;
    const b1 = buf[p + 1]!;
    let len = b1 & 0x7f;
    p += 2;
    if (len === 126) {
      len = buf.readUInt16BE(p);
      assert.ok(len >= 126);
      p += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p));
      assert.ok(len >= 65536);
      p += 8;
    }
    let mask: Buffer | null = null;
    if (b1 & 0x80) {
      mask = buf.subarray(p, p + 4);
      p += 4;
    }
    assert.ok(p + len <= buf.length, 'written bytes end inside a payload');
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (mask) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
    p += len;
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked: mask !== null, payload });
  }
  return out;
}

function simple(events: RecordedEvent[]): unknown[] {
  return events.map((e) => {
    switch (e.type) {
      case 'message':
        return [e.isBinary ? 'binary' : 'text', toHex(e.data)];
      case 'ping':
      case 'pong':
        return [e.type, toHex(e.data)];
      case 'close-frame':
        return ['close-frame', e.code, e.reason];
      case 'error':
        return ['error', e.error.code, e.error.closeCode];
      case 'close-transport':
        return ['close-transport'];
      case 'closed':
        return ['closed', e.code, e.reason, e.wasClean];
    }
  });
}

/**
 * What must hold after any input, valid or not:
 * - written bytes are well-formed frames from us (masked iff client): one pong per ping
 *   with the same payload, and at most one close frame, last;
 * - either nothing went wrong (no close written), or the peer closed (close-frame, echoed
 *   code, server asks to close TCP), or the connection failed: exactly one error with close
 *   code 1002/1007/1009, followed only by close-transport, and a close frame carrying it;
 * - text messages are valid UTF-8;
 * - transportClosed() then ends it with one onClosed.
 */
function checkOutcome(role: Role, conn: Connection, h: RecordingHandler): { events: RecordedEvent[]; written: Decoded[] } {
  const events = h.takeEvents();
  const written = decodeFrames(h.takeWritten());
  for (const w of written) {
    assert.equal(w.masked, role === 'client', 'clients mask, servers do not');
    assert.equal(w.fin, true);
    assert.equal(w.rsv, 0);
    assert.ok(w.opcode === Opcode.Pong || w.opcode === Opcode.Close, `unexpected opcode ${w.opcode} written`);
  }
  const pingPayloads = events.filter((e) => e.type === 'ping').map((e) => toHex((e as { data: Buffer }).data));
  const pongPayloads = written.filter((w) => w.opcode === Opcode.Pong).map((w) => toHex(w.payload));
  assert.deepEqual(pongPayloads, pingPayloads, 'one pong per ping, same payload');
  const closes = written.filter((w) => w.opcode === Opcode.Close);
  assert.ok(closes.length <= 1, 'at most one close frame');
  if (closes.length === 1) assert.equal(written[written.length - 1]!.opcode, Opcode.Close, 'close frame is the last frame');

  for (const e of events) {
    if (e.type === 'message' && !e.isBinary) assert.ok(isUtf8(e.data), 'text message delivered with invalid UTF-8');
  }

  const errAt = events.findIndex((e) => e.type === 'error');
  const closeAt = events.findIndex((e) => e.type === 'close-frame');
  assert.equal(events.filter((e) => e.type === 'error').length, errAt >= 0 ? 1 : 0, 'one error at most');
  assert.ok(!events.some((e) => e.type === 'closed'), 'not closed before transportClosed()');
  if (errAt >= 0) {
    assert.equal(closeAt, -1, 'error and close-frame are exclusive');
    const err = (events[errAt] as { error: LifelineError }).error;
    assert.ok(err instanceof LifelineError);
    assert.ok(FAIL_CODES.has(err.closeCode), `close code ${err.closeCode} (${err.code})`);
    assert.deepEqual(events.slice(errAt + 1).map((e) => e.type), ['close-transport']);
    assert.equal(closes.length, 1, 'a close frame is written on failure');
    assert.equal(closes[0]!.payload.length, 2);
    assert.equal(closes[0]!.payload.readUInt16BE(0), err.closeCode);
    assert.equal(conn.state, 'closing');
  } else if (closeAt >= 0) {
    const cf = events[closeAt] as { code: number; reason: string };
    assert.ok(cf.code === 1005 || isValidWireCloseCode(cf.code));
    assert.deepEqual(events.slice(closeAt + 1).map((e) => e.type), role === 'server' ? ['close-transport'] : []);
    assert.equal(closes.length, 1, 'the close frame is answered');
    if (cf.code === 1005) assert.equal(closes[0]!.payload.length, 0);
    else assert.equal(closes[0]!.payload.readUInt16BE(0), cf.code);
    assert.equal(conn.state, 'closing');
  } else {
    assert.equal(closes.length, 0);
    assert.ok(!events.some((e) => e.type === 'close-transport'));
    assert.equal(conn.state, 'open');
  }

  conn.transportClosed();
  const end = h.takeEvents();
  assert.equal(end.length, 1);
  const closed = end[0]!;
  assert.ok(closed.type === 'closed');
  if (closeAt >= 0) {
    const cf = events[closeAt] as { code: number; reason: string };
    assert.deepEqual([closed.code, closed.reason, closed.wasClean], [cf.code, cf.reason, true]);
  } else {
    assert.deepEqual([closed.code, closed.reason, closed.wasClean], [1006, '', false]);
  }
  return { events, written };
}

// ----------------------------------------------------------- (a) arbitrary byte streams

describe('fuzz (a): arbitrary bytes never throw and fail with 1002/1007/1009', () => {
  it('server role: random bytes in random splits, and the outcome does not depend on the splits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096, size: 'max' }), fc.array(fc.nat(), { maxLength: 16, size: 'max' }), (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        const split1 = feed('server', split(buf, cuts));
        const whole = feed('server', [Buffer.from(buf)]);
        const a = checkOutcome('server', split1.conn, split1.h);
        const b = checkOutcome('server', whole.conn, whole.h);
        assert.deepEqual(simple(a.events), simple(b.events));
        assert.deepEqual(a.written, b.written);
      }),
      params(RUNS),
    );
  });

  it('both roles: a plausible header followed by random bytes (gets past the first header more often)', () => {
    const headerArb = fc
      .record({
        b0: fc.oneof(fc.constantFrom(0x81, 0x82, 0x01, 0x02, 0x80, 0x00, 0x88, 0x89, 0x8a), fc.integer({ min: 0, max: 255 })),
        len7: fc.oneof(fc.integer({ min: 0, max: 125 }), fc.constantFrom(126, 127)),
        ext: fc.uint8Array({ minLength: 8, maxLength: 8 }),
        mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      })
      .map(({ b0, len7, ext, mask }) => ({ b0, len7, ext: Buffer.from(ext), mask: Buffer.from(mask) }));
    fc.assert(
      fc.property(
        fc.constantFrom<Role>('server', 'client'),
        fc.array(headerArb, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 600, size: 'max' }),
        fc.array(fc.nat(), { maxLength: 10, size: 'max' }),
        fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
        (role, headers, tail, cuts, maxMessageSize) => {
          const parts: Buffer[] = [];
          for (const hd of headers) {
            const masked = role === 'server';
            parts.push(Buffer.of(hd.b0, (masked ? 0x80 : 0) | hd.len7));
            if (hd.len7 === 126) parts.push(hd.ext.subarray(0, 2));
            if (hd.len7 === 127) parts.push(hd.ext);
            if (masked) parts.push(hd.mask);
            parts.push(Buffer.from(tail.subarray(0, Math.min(tail.length, hd.len7 < 126 ? hd.len7 : tail.length))));
          }
          const buf = Buffer.concat(parts);
          const opts = maxMessageSize === undefined ? {} : { maxMessageSize };
          const s = feed(role, split(buf, cuts), opts);
          const w = feed(role, [Buffer.from(buf)], opts);
          const a = checkOutcome(role, s.conn, s.h);
          const b = checkOutcome(role, w.conn, w.h);
          assert.deepEqual(simple(a.events), simple(b.events));
        },
      ),
      params(RUNS),
    );
  });
});

// ------------------------------------- (a') structured random frames against a reference model

interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  mask: Buffer;
  /** 7, 16 or 64: the length field used; larger than minimal means a non-minimal encoding. */
  lenBits: 7 | 16 | 64;
  payload: Buffer;
}

function minimalBits(len: number): 7 | 16 | 64 {
  return len < 126 ? 7 : len < 65536 ? 16 : 64;
}

/** Encodes a frame with exactly the given fields, including non-minimal length encodings. */
function encodeRaw(f: RawFrame): Buffer {
  const len = f.payload.length;
  const bits = Math.max(f.lenBits === 7 ? 0 : f.lenBits === 16 ? 1 : 2, minimalBits(len) === 7 ? 0 : minimalBits(len) === 16 ? 1 : 2);
  const ext = bits === 0 ? 0 : bits === 1 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (f.masked ? 4 : 0));
  head[0] = (f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode;
  head[1] = (f.masked ? 0x80 : 0) | (bits === 0 ? len : bits === 1 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const body = Buffer.from(f.payload);
  if (f.masked) {
    f.mask.copy(head, 2 + ext);
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ f.mask[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

/** Could `bytes` still become valid UTF-8 with more bytes? (Independent of src/: uses buffer.isUtf8.) */
const COMPLETION_BYTES = [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf];
function utf8Extendable(bytes: Buffer): boolean {
  if (isUtf8(bytes)) return true;
  // Only the last (incomplete) code point can be completed: look at the last <= 3 bytes.
  let start = bytes.length;
  for (let k = 1; k <= 3 && bytes.length - k >= 0; k++) {
    if ((bytes[bytes.length - k]! & 0xc0) !== 0x80) {
      start = bytes.length - k;
      break;
    }
  }
  if (start === bytes.length) return false;
  if (!isUtf8(bytes.subarray(0, start))) return false;
  const tail = bytes.subarray(start);
  const tryLen = (p: Buffer, left: number): boolean => {
    if (left === 0) return false;
    for (const b of COMPLETION_BYTES) {
      const q = Buffer.concat([p, Buffer.of(b)]);
      if (isUtf8(q) || tryLen(q, left - 1)) return true;
    }
    return false;
  };
  return tryLen(Buffer.from(tail), 4 - tail.length);
}

interface ModelOptions {
  maxMessageSize?: number;
  maxFrameSize?: number;
}

/**
 * Reference model of the receive side, written straight from RFC 6455 5-7 over
 * already-decoded frames, checking in the documented order: length encoding (5.2),
 * masking (5.1), RSV (5.2), opcode/control rules (5.5), fragmentation (5.4),
 * limits, UTF-8 (8.1), close payload (5.5.1, 7.4).
 */
function model(role: Role, frames: RawFrame[], opts: ModelOptions): { events: unknown[]; writes: Array<[number, string]> } {
  const events: unknown[] = [];
  const writes: Array<[number, string]> = [];
  const maxMessage = opts.maxMessageSize ?? 64 * 1024 * 1024;
  const maxFrame = opts.maxFrameSize ?? maxMessage;
  let msg: { text: boolean; parts: Buffer[]; len: number } | null = null;
  const fail = (code: string, closeCode: number) => {
    events.push(['error', code, closeCode], ['close-transport']);
    const p = Buffer.alloc(2);
    p.writeUInt16BE(closeCode);
    writes.push([Opcode.Close, toHex(p)]);
    return { events, writes };
  };
  for (const f of frames) {
    const len = f.payload.length;
    if (f.lenBits !== 7 && (f.lenBits === 16 ? len < 126 : len < 65536)) return fail('WS_ERR_NON_MINIMAL_LENGTH', 1002);
    if (f.masked !== (role === 'server')) return fail(role === 'server' ? 'WS_ERR_EXPECTED_MASK' : 'WS_ERR_UNEXPECTED_MASK', 1002);
    if (f.rsv & 3) return fail('WS_ERR_RSV_NOT_NEGOTIATED', 1002);
    const rsv1 = (f.rsv & 4) !== 0;
    if (f.opcode >= 8) {
      if (f.opcode > 0xa) return fail('WS_ERR_INVALID_OPCODE', 1002);
      if (!f.fin) return fail('WS_ERR_FRAGMENTED_CONTROL', 1002);
      if (len > 125) return fail('WS_ERR_CONTROL_TOO_LONG', 1002);
      if (rsv1) return fail('WS_ERR_RSV_NOT_NEGOTIATED', 1002);
      if (f.opcode === Opcode.Ping) {
        writes.push([Opcode.Pong, toHex(f.payload)]);
        events.push(['ping', toHex(f.payload)]);
      } else if (f.opcode === Opcode.Pong) {
        events.push(['pong', toHex(f.payload)]);
      } else {
        if (len === 1) return fail('WS_ERR_INVALID_CLOSE_PAYLOAD', 1002);
        let code = 1005;
        let reason = '';
        if (len >= 2) {
          code = f.payload.readUInt16BE(0);
          if (!isValidWireCloseCode(code)) return fail('WS_ERR_INVALID_CLOSE_CODE', 1002);
          if (!isUtf8(f.payload.subarray(2))) return fail('WS_ERR_INVALID_UTF8', 1007);
          reason = f.payload.subarray(2).toString('utf8');
        }
        events.push(['close-frame', code, reason]);
        writes.push([Opcode.Close, code === 1005 ? '' : toHex(f.payload.subarray(0, 2))]);
        if (role === 'server') events.push(['close-transport']);
        return { events, writes };
      }
      continue;
    }
    if (f.opcode === 0) {
      if (msg === null) return fail('WS_ERR_UNEXPECTED_CONTINUATION', 1002);
      if (rsv1) return fail('WS_ERR_RSV_NOT_NEGOTIATED', 1002);
    } else if (f.opcode === 1 || f.opcode === 2) {
      if (msg !== null) return fail('WS_ERR_EXPECTED_CONTINUATION', 1002);
      if (rsv1) return fail('WS_ERR_RSV_NOT_NEGOTIATED', 1002);
      msg = { text: f.opcode === 1, parts: [], len: 0 };
    } else {
      return fail('WS_ERR_INVALID_OPCODE', 1002);
    }
    if (maxFrame > 0 && len > maxFrame) return fail('WS_ERR_FRAME_TOO_BIG', 1009);
    msg.len += len;
    if (maxMessage > 0 && msg.len > maxMessage) return fail('WS_ERR_MESSAGE_TOO_BIG', 1009);
    msg.parts.push(f.payload);
    const all = Buffer.concat(msg.parts);
    if (msg.text && !utf8Extendable(all)) return fail('WS_ERR_INVALID_UTF8', 1007);
    if (f.fin) {
      if (msg.text && !isUtf8(all)) return fail('WS_ERR_INVALID_UTF8', 1007);
      events.push([msg.text ? 'text' : 'binary', toHex(all)]);
      msg = null;
    }
  }
  return { events, writes };
}

const closeCodeArb = fc.oneof(
  fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999),
  fc.constantFrom(0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535),
  fc.integer({ min: 0, max: 65535 }),
);
const closePayloadArb = fc
  .tuple(closeCodeArb, fc.oneof(fc.string({ maxLength: 10 }).map((s) => Buffer.from(s)), fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a))))
  .map(([code, reason]) => {
    const b = Buffer.alloc(2 + reason.length);
    b.writeUInt16BE(code);
    reason.copy(b, 2);
    return b;
  });

const payloadArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom(0x41, 0x80, 0xbf, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0xf0, 0x9d, 0xf4, 0x90, 0xff), { maxLength: 8 })
      .map((a) => Buffer.from(a)),
  },
  { weight: 2, arbitrary: closePayloadArb },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.alloc(0), Buffer.of(0x03)) },
  { weight: 1, arbitrary: fc.integer({ min: 120, max: 300 }).map((n) => Buffer.alloc(n, 0x61)) },
);

/**
 * Frames that mostly follow the protocol (data frames start or continue a message as the
 * state requires, control frames are final), each with a small chance of one mutation, so
 * a run gets several frames deep before something breaks, if anything does.
 */
function rawFramesArb(role: Role): fc.Arbitrary<RawFrame[]> {
  const specArb = fc.record({
    kind: fc.oneof({ weight: 3, arbitrary: fc.constant('data' as const) }, { weight: 1, arbitrary: fc.constant('control' as const) }),
    text: fc.boolean(),
    fin: fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    controlOp: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(9, 10) }, { weight: 1, arbitrary: fc.constant(8) }),
    dataPayload: fc.oneof(
      { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.from(s)) },
      { weight: 2, arbitrary: payloadArb },
    ),
    controlPayload: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)) }, { weight: 1, arbitrary: payloadArb }),
    closePayload: fc.oneof({ weight: 4, arbitrary: closePayloadArb }, { weight: 1, arbitrary: payloadArb }),
    mask: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)),
    mutation: fc.oneof(
      { weight: 40, arbitrary: fc.constant({ m: 'none' as const, v: 0 }) },
      { weight: 6, arbitrary: fc.record({ m: fc.constantFrom('mask' as const, 'rsv' as const, 'lenBits' as const, 'opcode' as const, 'fin' as const), v: fc.nat() }) },
    ),
  });
  return fc.array(specArb, { minLength: 1, maxLength: 10 }).map((specs) => {
    let inMessage = false;
    return specs.map((sp): RawFrame => {
      const f: RawFrame = { fin: true, rsv: 0, opcode: 0, masked: role === 'server', mask: sp.mask, lenBits: 7, payload: Buffer.alloc(0) };
      if (sp.kind === 'data') {
        f.opcode = inMessage ? Opcode.Continuation : sp.text ? Opcode.Text : Opcode.Binary;
        f.fin = sp.fin;
        f.payload = sp.dataPayload;
        inMessage = !sp.fin;
      } else {
        f.opcode = sp.controlOp;
        f.payload = sp.controlOp === Opcode.Close ? sp.closePayload : sp.controlPayload;
      }
      switch (sp.mutation.m) {
        case 'mask': f.masked = !f.masked; break;
        case 'rsv': f.rsv = 1 + (sp.mutation.v % 7); break;
        case 'lenBits': f.lenBits = sp.mutation.v % 2 === 0 ? 16 : 64; break;
        case 'opcode': f.opcode = sp.mutation.v % 16; break;
        case 'fin': f.fin = !f.fin; break;
        case 'none': break;
      }
      return f;
    });
  });
}

/** Limits are off most of the time; when on, small enough to be hit. */
const limitArb = fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 60 }) });

describe("fuzz (a'): structured random frames match a reference model of RFC 6455", () => {
  for (const role of ['server', 'client'] as const) {
    it(`${role} role`, () => {
      fc.assert(
        fc.property(
          rawFramesArb(role),
          fc.array(fc.nat(), { maxLength: 12, size: 'max' }),
          fc.record({ maxMessageSize: limitArb, maxFrameSize: limitArb }),
          (frames, cuts, limits) => {
            const opts: ModelOptions = {};
            if (limits.maxMessageSize !== undefined) opts.maxMessageSize = limits.maxMessageSize;
            if (limits.maxFrameSize !== undefined) opts.maxFrameSize = limits.maxFrameSize;
            const wire = Buffer.concat(frames.map(encodeRaw));
            const { conn, h } = feed(role, split(wire, cuts), opts);
            const expected = model(role, frames, opts);
            const got = checkOutcome(role, conn, h);
            assert.deepEqual(simple(got.events), expected.events);
            assert.deepEqual(got.written.map((w) => [w.opcode, toHex(w.payload)]), expected.writes);
          },
        ),
        params(RUNS),
      );
    });
  }
});

// --------------------------------------------- (b) valid message streams are delivered exactly

interface Plan {
  role: Role;
  messages: Array<{ binary: boolean; data: Buffer }>;
  /** Per message: fragment cut points within its payload (duplicates give empty fragments). */
  fragmentCuts: number[][];
  /** Control frames to put before each frame, consumed in order (cycled). */
  controls: Array<Array<{ opcode: 9 | 10; payload: Buffer }>>;
  maskSeed: number;
  close: { code: number; reason: string } | null;
}

interface Built {
  wire: Buffer;
  /** Offset in `wire` just after the last frame of message i. */
  messageEnds: number[];
  pings: string[];
  pongs: string[];
  /** Offset just after each ping frame. */
  pingEnds: number[];
}

const textArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30, size: 'max' }),
  fc.string({ unit: 'binary', maxLength: 30, size: 'max' }),
  fc.string({ unit: 'grapheme-composite', maxLength: 10 }),
);
const binaryArb = fc.oneof(
  { weight: 30, arbitrary: fc.uint8Array({ maxLength: 200, size: 'max' }) },
  { weight: 1, arbitrary: fc.integer({ min: 65530, max: 66000 }).map((n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 7) & 0xff; return b; }) },
);
const messageArb = fc.oneof(
  textArb.map((s) => ({ binary: false, data: Buffer.from(s) })),
  binaryArb.map((a) => ({ binary: true, data: Buffer.from(a) })),
);
const controlArb = fc.record({
  opcode: fc.constantFrom(9 as const, 10 as const),
  payload: fc.oneof(fc.uint8Array({ maxLength: 10 }), fc.uint8Array({ minLength: 120, maxLength: 125 })).map((a) => Buffer.from(a)),
});
const planArb: fc.Arbitrary<Plan> = fc.record({
  role: fc.constantFrom<Role>('server', 'client'),
  messages: fc.array(messageArb, { maxLength: 8 }),
  fragmentCuts: fc.array(fc.array(fc.nat(), { maxLength: 4 }), { minLength: 8, maxLength: 8 }),
  controls: fc.array(fc.array(controlArb, { maxLength: 2 }), { minLength: 1, maxLength: 10 }),
  maskSeed: fc.integer(),
  close: fc.option(
    fc.record({
      code: fc.oneof(fc.constantFrom(1000, 1001, 1011), fc.integer({ min: 3000, max: 4999 })),
      reason: fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => Buffer.byteLength(s) <= 123),
    }),
    { nil: null },
  ),
});

/** Encodes a plan with the reference encoder `frame()` from test/helpers/recording.ts. */
function build(plan: Plan): Built {
  let seed = plan.maskSeed >>> 0;
  const nextMask = (): Buffer | null => {
    if (plan.role === 'client') return null; // server -> client frames are not masked
    const b = Buffer.alloc(4);
    for (let i = 0; i < 4; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      b[i] = seed >>> 24;
    }
    return b;
  };
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    offset += b.length;
  };
  const out: Built = { wire: Buffer.alloc(0), messageEnds: [], pings: [], pongs: [], pingEnds: [] };
  let controlSlot = 0;
  const controlsHere = () => {
    for (const c of plan.controls[controlSlot++ % plan.controls.length]!) {
      push(frame(c.opcode, c.payload, { mask: nextMask() }));
      if (c.opcode === 9) {
        out.pings.push(toHex(c.payload));
        out.pingEnds.push(offset);
      } else {
        out.pongs.push(toHex(c.payload));
      }
    }
  };
  plan.messages.forEach((m, i) => {
    const len = m.data.length;
    const cuts = (plan.fragmentCuts[i] ?? []).map((c) => c % (len + 1)).sort((a, b) => a - b);
    const bounds = [0, ...cuts, len];
    for (let k = 0; k + 1 < bounds.length; k++) {
      controlsHere();
      const opcode = k === 0 ? (m.binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation;
      push(frame(opcode, m.data.subarray(bounds[k]!, bounds[k + 1]!), { fin: k + 2 === bounds.length, mask: nextMask() }));
    }
    out.messageEnds.push(offset);
  });
  controlsHere();
  if (plan.close) {
    const r = Buffer.from(plan.close.reason);
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(plan.close.code);
    r.copy(p, 2);
    push(frame(Opcode.Close, p, { mask: nextMask() }));
  }
  out.wire = Buffer.concat(parts);
  return out;
}

describe('fuzz (b): random valid messages, fragmented, with pings interleaved, in random splits', () => {
  it('are delivered exactly, in order, and every ping is answered', () => {
    fc.assert(
      fc.property(planArb, fc.array(fc.nat(), { maxLength: 20, size: 'max' }), (plan, cuts) => {
        const built = build(plan);
        const { conn, h } = feed(plan.role, split(built.wire, cuts));
        const { events, written } = checkOutcome(plan.role, conn, h);
        assert.ok(!events.some((e) => e.type === 'error'), `unexpected error: ${JSON.stringify(simple(events.filter((e) => e.type === 'error')))}`);
        const messages = events.filter((e): e is Extract<RecordedEvent, { type: 'message' }> => e.type === 'message');
        assert.equal(messages.length, plan.messages.length);
        messages.forEach((m, i) => {
          assert.equal(m.isBinary, plan.messages[i]!.binary, `message ${i} type`);
          assert.ok(m.data.equals(plan.messages[i]!.data), `message ${i} content`);
        });
        assert.deepEqual(events.filter((e) => e.type === 'ping').map((e) => toHex((e as { data: Buffer }).data)), built.pings);
        assert.deepEqual(events.filter((e) => e.type === 'pong').map((e) => toHex((e as { data: Buffer }).data)), built.pongs);
        assert.deepEqual(written.filter((w) => w.opcode === Opcode.Pong).map((w) => toHex(w.payload)), built.pings);
        if (plan.close) {
          assert.ok(events.some((e) => e.type === 'close-frame' && e.code === plan.close!.code && e.reason === plan.close!.reason));
        } else {
          assert.ok(!events.some((e) => e.type === 'close-frame'));
        }
        assert.equal(conn.messagesIn, plan.messages.length);
      }),
      params(RUNS / 2),
    );
  });
});

// ------------------------------------------------- (c) the same streams with one byte corrupted

describe('fuzz (c): one corrupted byte never throws', () => {
  it('fails with a valid close code, or delivers messages; everything before the damage is intact', () => {
    fc.assert(
      fc.property(planArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.array(fc.nat(), { maxLength: 20, size: 'max' }), (plan, rawAt, xor, cuts) => {
        const built = build(plan);
        if (built.wire.length === 0) return;
        const at = rawAt % built.wire.length;
        const wire = Buffer.from(built.wire);
        wire[at] = wire[at]! ^ xor;
        const { conn, h } = feed(plan.role, split(wire, cuts));
        const { events } = checkOutcome(plan.role, conn, h);
        // Messages and pings that were complete before the damaged byte arrive unchanged, first.
        const intact = built.messageEnds.filter((end) => end <= at).length;
        const messages = events.filter((e): e is Extract<RecordedEvent, { type: 'message' }> => e.type === 'message');
        assert.ok(messages.length >= intact, `${messages.length} messages delivered, ${intact} were complete before byte ${at}`);
        for (let i = 0; i < intact; i++) {
          assert.equal(messages[i]!.isBinary, plan.messages[i]!.binary);
          assert.ok(messages[i]!.data.equals(plan.messages[i]!.data), `message ${i} before the damage`);
        }
        const intactPings = built.pingEnds.filter((end) => end <= at).length;
        const pings = events.filter((e) => e.type === 'ping').map((e) => toHex((e as { data: Buffer }).data));
        assert.deepEqual(pings.slice(0, intactPings), built.pings.slice(0, intactPings));
      }),
      params(RUNS),
    );
  });
});

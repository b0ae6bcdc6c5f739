import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { Connection, DEFAULT_MAX_MESSAGE_SIZE, type ConnectionOptions, type MessageCodec, type Role } from '../../../src/protocol/connection.js';
import { LifelineError, UsageError } from '../../../src/protocol/errors.js';
import { BULK_MASK_MIN, Opcode } from '../../../src/protocol/frame.js';
import { type BulkMask, sharedSimdMask } from '../../../src/protocol/simd-unmask.js';
import { ASCII_SCAN_MAX } from '../../../src/protocol/utf8.js';
import { RecordingHandler, frame, type RecordedEvent } from '../../helpers/recording.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 6455 5.7 sample masking key. */
const RFC_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
/** Every mask key drawn from this fill is the RFC 5.7 key, so client output matches the RFC bytes. */
const rfcKeyFill = (buf: Uint8Array): void => {
  for (let i = 0; i < buf.length; i++) buf[i] = RFC_KEY[i & 3]!;
};
/** Consecutive keys 00 01 02 03, 04 05 06 07, ... so each frame's key is predictable and distinct. */
const countingFill = (buf: Uint8Array): void => {
  for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
};

function open(role: Role, opts: Partial<ConnectionOptions> = {}, handler = new RecordingHandler()) {
  const conn = new Connection(handler, { role, randomFill: rfcKeyFill, ...opts });
  return { conn, h: handler };
}

/** Peer-to-us frames: clients mask (default key of frame()), servers do not. */
function peerFrame(role: Role, opcode: number, payload: Buffer | string, o: { fin?: boolean; rsv?: number } = {}): Buffer {
  return role === 'server' ? frame(opcode, payload, o) : frame(opcode, payload, { ...o, mask: null });
}

function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

interface Decoded {
  fin: boolean;
  rsv: number;
  opcode: number;
  mask: Buffer | null;
  payload: Buffer;
}

/** An independent decoder for what the connection wrote; throws on trailing garbage. */
function decodeFrames(buf: Buffer): Decoded[] {
  const out: Decoded[] = [];
  let p = 0;
  while (p < buf.length) {
    assert.ok(buf.length - p >= 2, 'truncated header');
    const b0 = buf[p]!;
    const b1 = buf[p + 1]!;
    let len = b1 & 0x7f;
    p += 2;
    if (len === 126) {
      len = buf.readUInt16BE(p);
      assert.ok(len >= 126, 'non-minimal 16-bit length written');
      p += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p));
      assert.ok(len >= 65536, 'non-minimal 64-bit length written');
      p += 8;
    }
    let mask: Buffer | null = null;
    if (b1 & 0x80) {
      mask = Buffer.from(buf.subarray(p, p + 4));
      p += 4;
    }
    assert.ok(p + len <= buf.length, 'truncated payload');
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
    p += len;
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, mask, payload });
  }
  return out;
}

/** Simplifies events for deepEqual: buffers as strings/hex, errors as [code, closeCode]. */
function simple(events: RecordedEvent[]): unknown[] {
  return events.map((e) => {
    switch (e.type) {
      case 'message':
        return e.isBinary ? ['binary', toHex(e.data)] : ['text', e.data.toString('utf8')];
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

function feedBytewise(conn: Connection, buf: Buffer): void {
  for (let i = 0; i < buf.length; i++) conn.receiveData(Buffer.from(buf.subarray(i, i + 1)));
}

/**
 * Feeds `input` and checks the connection failed with `errCode`/`closeCode`:
 * exactly one error, then close-transport, and one close frame on the wire
 * carrying the code (masked iff we are the client).
 */
function expectFailure(role: Role, input: Buffer[], errCode: string, closeCode: number, opts: Partial<ConnectionOptions> = {}, before: unknown[] = []): void {
  for (const bytewise of [false, true]) {
    const { conn, h } = open(role, opts);
    for (const c of input) {
      if (bytewise) feedBytewise(conn, Buffer.from(c));
      else conn.receiveData(Buffer.from(c));
    }
    assert.deepEqual(simple(h.takeEvents()), [...before, ['error', errCode, closeCode], ['close-transport']], `bytewise=${bytewise}`);
    const written = decodeFrames(h.takeWritten()).filter((f) => f.opcode !== Opcode.Pong);
    assert.equal(written.length, 1, 'one close frame');
    const [close] = written;
    assert.equal(close!.opcode, Opcode.Close);
    assert.equal(close!.fin, true);
    assert.equal(close!.payload.length, 2, 'code only');
    assert.equal(close!.payload.readUInt16BE(0), closeCode);
    assert.equal(close!.mask !== null, role === 'client', 'clients mask, servers do not');
    assert.equal(conn.state, 'closing');
    // Nothing more is parsed or written.
    conn.receiveData(peerFrame(role, Opcode.Text, 'late'));
    conn.receiveData(peerFrame(role, Opcode.Ping, 'late'));
    assert.deepEqual(h.takeEvents(), []);
    assert.equal(h.takeWritten().length, 0);
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1006, '', false]]);
    assert.equal(conn.state, 'closed');
  }
}

// ------------------------------------------------------------------------------------------

describe('Connection: receiving, RFC 6455 5.7 examples', () => {
  it("client receives the single-frame unmasked text 'Hello' (81 05 48 65 6c 6c 6f)", () => {
    const { conn, h } = open('client');
    conn.receiveData(hex('81 05 48 65 6c 6c 6f'));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'Hello']]);
    assert.equal(h.takeWritten().length, 0);
  });

  it("server receives the single-frame masked text 'Hello' (81 85 37 fa 21 3d 7f 9f 4d 51 58)", () => {
    const { conn, h } = open('server');
    conn.receiveData(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'Hello']]);
    assert.equal(h.takeWritten().length, 0);
    assert.equal(conn.messagesIn, 1);
    assert.equal(conn.bytesIn, 11);
  });

  it("client receives the fragmented unmasked text 'Hel' + 'lo' (01 03 48 65 6c, 80 02 6c 6f)", () => {
    const { conn, h } = open('client');
    conn.receiveData(hex('01 03 48 65 6c'));
    assert.deepEqual(h.takeEvents(), []);
    conn.receiveData(hex('80 02 6c 6f'));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'Hello']]);
  });

  it("server receives the masked fragments 'Hel' + 'lo'", () => {
    const { conn, h } = open('server');
    conn.receiveData(Buffer.concat([frame(Opcode.Text, 'Hel', { fin: false }), frame(Opcode.Continuation, 'lo')]));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'Hello']]);
  });

  it("client gets the unmasked ping 'Hello' (89 05 ...) and answers with the RFC masked pong (8a 85 37 fa 21 3d 7f 9f 4d 51 58)", () => {
    const { conn, h } = open('client');
    conn.receiveData(hex('89 05 48 65 6c 6c 6f'));
    assert.deepEqual(simple(h.takeEvents()), [['ping', toHex(Buffer.from('Hello'))]]);
    assert.equal(toHex(h.takeWritten()), '8a8537fa213d7f9f4d5158');
  });

  it("server gets a masked ping 'Hello' and answers with an unmasked pong (8a 05 48 65 6c 6c 6f)", () => {
    const { conn, h } = open('server');
    conn.receiveData(hex('89 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(simple(h.takeEvents()), [['ping', toHex(Buffer.from('Hello'))]]);
    assert.equal(toHex(h.takeWritten()), '8a0548656c6c6f');
  });

  it('client receives 256 bytes binary in a single unmasked frame (82 7e 01 00 ...)', () => {
    const body = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) body[i] = i;
    const { conn, h } = open('client');
    conn.receiveData(Buffer.concat([hex('82 7e 01 00'), body]));
    assert.deepEqual(simple(h.takeEvents()), [['binary', toHex(body)]]);
  });

  it('client receives 64KiB binary in a single unmasked frame (82 7f 00 00 00 00 00 01 00 00 ...), in pieces', () => {
    const body = Buffer.alloc(65536);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const wire = Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), body]);
    const { conn, h } = open('client');
    for (let i = 0; i < wire.length; i += 1000) conn.receiveData(Buffer.from(wire.subarray(i, i + 1000)));
    const events = h.takeEvents();
    assert.equal(events.length, 1);
    const m = events[0]!;
    assert.ok(m.type === 'message' && m.isBinary);
    assert.ok(m.data.equals(body));
  });

  it('server receives 256-byte and 64KiB masked binary messages fed byte by byte / in one chunk', () => {
    for (const size of [256, 65536]) {
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i++) body[i] = (i * 13 + 5) & 0xff;
      const { conn, h } = open('server');
      const wire = frame(Opcode.Binary, body, { mask: Buffer.from([0xde, 0xad, 0xbe, 0xef]) });
      if (size === 256) feedBytewise(conn, wire);
      else conn.receiveData(wire);
      const events = h.takeEvents();
      assert.equal(events.length, 1);
      const m = events[0]!;
      assert.ok(m.type === 'message' && m.isBinary && m.data.equals(body), `size ${size}`);
    }
  });
});

describe('Connection: receiving data messages', () => {
  for (const role of ['server', 'client'] as const) {
    it(`${role}: text and binary, empty ones included, in one chunk and byte by byte`, () => {
      const wire = Buffer.concat([
        peerFrame(role, Opcode.Text, 'héllo wörld €𝄞'),
        peerFrame(role, Opcode.Binary, Buffer.from([0, 1, 2, 255])),
        peerFrame(role, Opcode.Text, ''),
        peerFrame(role, Opcode.Binary, Buffer.alloc(0)),
        peerFrame(role, Opcode.Text, 'x'.repeat(200)),
      ]);
      const expected = [['text', 'héllo wörld €𝄞'], ['binary', '000102ff'], ['text', ''], ['binary', ''], ['text', 'x'.repeat(200)]];
      for (const bytewise of [false, true]) {
        const { conn, h } = open(role);
        if (bytewise) feedBytewise(conn, Buffer.from(wire));
        else conn.receiveData(Buffer.from(wire));
        assert.deepEqual(simple(h.takeEvents()), expected);
        assert.equal(h.takeWritten().length, 0);
        assert.equal(conn.state, 'open');
        assert.equal(conn.messagesIn, 5);
      }
    });

    it(`${role}: fragmented messages with control frames interleaved (RFC 6455 5.4)`, () => {
      // '€' (e2 82 ac) is split across fragments, with a ping between its bytes.
      const euro = Buffer.from('€');
      const wire = Buffer.concat([
        peerFrame(role, Opcode.Text, Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), { fin: false }),
        peerFrame(role, Opcode.Ping, 'p1'),
        peerFrame(role, Opcode.Continuation, euro.subarray(1, 2), { fin: false }),
        peerFrame(role, Opcode.Pong, 'q1'),
        peerFrame(role, Opcode.Continuation, '', { fin: false }),
        peerFrame(role, Opcode.Ping, ''),
        peerFrame(role, Opcode.Continuation, Buffer.concat([euro.subarray(2), Buffer.from('b')])),
        peerFrame(role, Opcode.Binary, Buffer.from([1]), { fin: false }),
        peerFrame(role, Opcode.Ping, 'p2'),
        peerFrame(role, Opcode.Continuation, Buffer.from([2])),
      ]);
      for (const bytewise of [false, true]) {
        const { conn, h } = open(role);
        if (bytewise) feedBytewise(conn, Buffer.from(wire));
        else conn.receiveData(Buffer.from(wire));
        assert.deepEqual(simple(h.takeEvents()), [
          ['ping', toHex(Buffer.from('p1'))],
          ['pong', toHex(Buffer.from('q1'))],
          ['ping', ''],
          ['text', 'a€b'],
          ['ping', toHex(Buffer.from('p2'))],
          ['binary', '0102'],
        ]);
        const pongs = decodeFrames(h.takeWritten());
        assert.deepEqual(
          pongs.map((f) => [f.opcode, f.payload.toString(), f.mask !== null]),
          [[Opcode.Pong, 'p1', role === 'client'], [Opcode.Pong, '', role === 'client'], [Opcode.Pong, 'p2', role === 'client']],
        );
      }
    });
  }

  it('a ping whose payload is split across reads is answered with the whole payload', () => {
    const { conn, h } = open('server');
    const payload = Buffer.alloc(125);
    for (let i = 0; i < payload.length; i++) payload[i] = i;
    const wire = frame(Opcode.Ping, payload);
    conn.receiveData(Buffer.from(wire.subarray(0, 10)));
    conn.receiveData(Buffer.from(wire.subarray(10, 70)));
    assert.deepEqual(h.takeEvents(), []);
    conn.receiveData(Buffer.from(wire.subarray(70)));
    assert.deepEqual(simple(h.takeEvents()), [['ping', toHex(payload)]]);
    assert.equal(toHex(h.takeWritten()), '8a7d' + toHex(payload));
  });

  it('onPongRange: a pong read whole comes as its range of the read; one split across reads, or without onPongRange, through onPong', () => {
    class PongRanges extends RecordingHandler {
      ranges: unknown[][] = [];
      onPongRange(chunk: Buffer, start: number, end: number): void {
        this.ranges.push([chunk.toString('latin1', start, end), start, end]);
      }
    }
    const h = new PongRanges();
    const { conn } = open('server', {}, h);
    const pong = frame(Opcode.Pong, '1763800000123');
    const text = frame(Opcode.Text, 'x');
    conn.receiveData(Buffer.concat([text, pong, text]));
    assert.deepEqual(h.ranges, [['1763800000123', text.length + 6, text.length + 6 + 13]]);
    assert.deepEqual(simple(h.takeEvents()), [['text', 'x'], ['text', 'x']]);
    h.ranges = [];
    conn.receiveData(Buffer.from(pong.subarray(0, 9)));
    conn.receiveData(Buffer.from(pong.subarray(9)));
    assert.deepEqual(h.ranges, []);
    assert.deepEqual(simple(h.takeEvents()), [['pong', toHex(Buffer.from('1763800000123'))]]);
    conn.receiveData(frame(Opcode.Ping, 'p'));
    assert.deepEqual(simple(h.takeEvents()), [['ping', '70']], 'pings still come through onPing');
    const plain = open('server');
    plain.conn.receiveData(pong);
    assert.deepEqual(simple(plain.h.takeEvents()), [['pong', toHex(Buffer.from('1763800000123'))]]);
  });

  it('autoPong: false reports pings without answering', () => {
    const { conn, h } = open('server', { autoPong: false });
    conn.receiveData(frame(Opcode.Ping, 'x'));
    assert.deepEqual(simple(h.takeEvents()), [['ping', '78']]);
    assert.equal(h.takeWritten().length, 0);
  });

  it('uses the isUtf8 option for complete single-frame text messages, except those already known to be ASCII', () => {
    for (const role of ['server', 'client'] as const) {
      const seen: string[] = [];
      const { conn, h } = open(role, {
        isUtf8: (b) => {
          seen.push(Buffer.from(b).toString());
          return isUtf8(b);
        },
      });
      const mid = 'm'.repeat(ASCII_SCAN_MAX + 1);
      const long = 'l'.repeat(200);
      const wide = 'é'.repeat(100);
      conn.receiveData(Buffer.concat(['héllo', mid, long, 'hello', wide].map((t) => peerFrame(role, Opcode.Text, t))));
      // Server: masked frames have their bytes OR-ed while unmasked, so ASCII ones of any length skip the
      // validator; client: unmasked frames of up to ASCII_SCAN_MAX bytes are scanned ('hello').
      assert.deepEqual(seen, role === 'server' ? ['héllo', wide] : ['héllo', mid, long, wide], role);
      assert.deepEqual(simple(h.takeEvents()), [['text', 'héllo'], ['text', mid], ['text', long], ['text', 'hello'], ['text', wide]]);
    }
  });

  it('fails short single-frame text that is not UTF-8 (the ASCII scan only ever says yes)', () => {
    for (const bad of [Buffer.from([0x61, 0xc0, 0x80]), Buffer.from([0xff]), Buffer.from('ab\xed\xa0\x80', 'latin1')]) {
      const { conn, h } = open('server');
      conn.receiveData(frame(Opcode.Text, bad));
      const errors = h.takeEvents().filter((e) => e.type === 'error');
      assert.equal(errors.length, 1, toHex(bad));
      assert.equal((errors[0] as { error: LifelineError }).error.closeCode, 1007);
    }
  });

  describe('onMessageRange', () => {
    /** A handler that takes ranges: records each with a copy of its bytes, and checks them again after the read. */
    class RangeHandler extends RecordingHandler {
      ranges: Array<{ chunk: Buffer; start: number; end: number; bytes: string; isBinary: boolean }> = [];
      onMessageRange(chunk: Buffer, start: number, end: number, isBinary: boolean): void {
        assert.ok(start >= 0 && start <= end && end <= chunk.length);
        this.ranges.push({ chunk, start, end, bytes: toHex(chunk.subarray(start, end)), isBinary });
      }
    }

    it('gets every single-frame message as a range of the read, bytes unchanged after it', () => {
      const h = new RangeHandler();
      const { conn } = open('server', {}, h);
      const read = Buffer.concat([
        frame(Opcode.Text, 'first'),
        frame(Opcode.Binary, Buffer.from([0, 1, 2, 0xff])),
        frame(Opcode.Text, ''),
        frame(Opcode.Text, 'é'.repeat(100)),
        frame(Opcode.Ping, 'p'),
        frame(Opcode.Text, 'last'),
      ]);
      conn.receiveData(read);
      assert.deepEqual(
        h.ranges.map((r) => [r.bytes, r.isBinary]),
        [
          [toHex(Buffer.from('first')), false],
          ['000102ff', true],
          ['', false],
          [toHex(Buffer.from('é'.repeat(100))), false],
          [toHex(Buffer.from('last')), false],
        ],
      );
      // The ranges still hold the message once the whole read was parsed (later frames were unmasked in place).
      for (const r of h.ranges) assert.equal(toHex(r.chunk.subarray(r.start, r.end)), r.bytes);
      assert.ok(h.ranges.filter((r) => r.end > r.start).every((r) => r.chunk === read), 'ranges of the read itself, not copies');
      assert.deepEqual(simple(h.takeEvents()), [['ping', '70']]);
    });

    it('fragmented messages, and frames split across reads, still come whole through onMessage', () => {
      const h = new RangeHandler();
      const { conn } = open('server', {}, h);
      conn.receiveData(Buffer.concat([frame(Opcode.Text, 'ab', { fin: false }), frame(Opcode.Continuation, 'cd')]));
      const split = frame(Opcode.Binary, Buffer.from('0123456789'));
      conn.receiveData(split.subarray(0, 9));
      conn.receiveData(split.subarray(9));
      assert.deepEqual(h.ranges, []);
      assert.deepEqual(simple(h.takeEvents()), [['text', 'abcd'], ['binary', toHex(Buffer.from('0123456789'))]]);
    });

    it('accepts a single-frame text message exactly when it is UTF-8 (short ASCII scan or validator), property', () => {
      // Mostly ASCII with some high bytes, up to 200 bytes: both sides of ASCII_SCAN_MAX and of the word unmask (128).
      const byte = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 0x7f }) }, { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) });
      // Server: masked frames (unmasking sees the bytes); client: unmasked ones (the ASCII scan does).
      fc.assert(
        fc.property(fc.array(byte, { maxLength: 200 }), fc.constantFrom<Role>('server', 'client'), (bytes, role) => {
          const payload = Buffer.from(bytes);
          const h = new RangeHandler();
          const { conn } = open(role, {}, h);
          conn.receiveData(peerFrame(role, Opcode.Text, payload));
          const failed = h.takeEvents().some((e) => e.type === 'error');
          assert.equal(failed, !isUtf8(payload));
          assert.deepEqual(h.ranges.map((r) => r.bytes), failed ? [] : [toHex(payload)]);
        }),
        { numRuns: 500 },
      );
    });

    it('invalid UTF-8 fails the connection before the handler sees a range', () => {
      const h = new RangeHandler();
      const { conn } = open('server', {}, h);
      conn.receiveData(frame(Opcode.Text, Buffer.from([0x68, 0xff])));
      assert.deepEqual(h.ranges, []);
      assert.equal(h.takeEvents().filter((e) => e.type === 'error').length, 1);
    });
  });

  it('a frame exactly at maxFrameSize and a message exactly at maxMessageSize are accepted', () => {
    const { conn, h } = open('server', { maxFrameSize: 10, maxMessageSize: 20 });
    conn.receiveData(frame(Opcode.Binary, Buffer.alloc(10, 1)));
    conn.receiveData(Buffer.concat([frame(Opcode.Text, 'a'.repeat(10), { fin: false }), frame(Opcode.Continuation, 'b'.repeat(10))]));
    assert.deepEqual(simple(h.takeEvents()), [['binary', '01'.repeat(10)], ['text', 'a'.repeat(10) + 'b'.repeat(10)]]);
  });

  it('maxFrameSize defaults to maxMessageSize, and 0 means no limit', () => {
    const a = open('server', { maxMessageSize: 5 });
    a.conn.receiveData(frame(Opcode.Binary, Buffer.alloc(6), { fin: false }));
    assert.deepEqual(simple(a.h.takeEvents()), [['error', 'WS_ERR_FRAME_TOO_BIG', 1009], ['close-transport']]);
    const b = open('server', { maxMessageSize: 0 });
    const big = Buffer.alloc(200_000, 3);
    b.conn.receiveData(frame(Opcode.Binary, big));
    const ev = b.h.takeEvents();
    assert.equal(ev.length, 1);
    assert.ok(ev[0]!.type === 'message' && ev[0]!.data.equals(big));
  });
});

describe('Connection: protocol errors fail the connection with the right close code', () => {
  const S = 'server' as const;
  const frag = frame(Opcode.Text, 'frag', { fin: false });

  // RFC 6455 5.1: "The server MUST close the connection upon receiving a frame that is not masked."
  it('server: unmasked client frame -> 1002', () => {
    expectFailure(S, [frame(Opcode.Text, 'Hello', { mask: null })], 'WS_ERR_EXPECTED_MASK', 1002);
    expectFailure(S, [hex('81 05 48 65 6c 6c 6f')], 'WS_ERR_EXPECTED_MASK', 1002);
    expectFailure(S, [frame(Opcode.Ping, '', { mask: null })], 'WS_ERR_EXPECTED_MASK', 1002);
  });

  // RFC 6455 5.1: "A client MUST close a connection if it detects a masked frame."
  it('client: masked server frame -> 1002 (the close frame the client writes is masked)', () => {
    expectFailure('client', [hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')], 'WS_ERR_UNEXPECTED_MASK', 1002);
    expectFailure('client', [frame(Opcode.Close, closePayload(1000))], 'WS_ERR_UNEXPECTED_MASK', 1002);
  });

  it('client: the failing close frame carries the pooled mask key', () => {
    const { conn, h } = open('client', { randomFill: countingFill });
    conn.receiveData(frame(Opcode.Text, 'x'));
    // 1002 = 03 ea, masked with 00 01 02 03.
    assert.equal(toHex(h.takeWritten()), '8882' + '00010203' + '03eb');
  });

  // RFC 6455 5.2: "RSV1, RSV2, RSV3: MUST be 0 unless an extension is negotiated that defines meanings."
  for (const [bit, rsv] of [['RSV1', 4], ['RSV2', 2], ['RSV3', 1], ['RSV1+RSV2+RSV3', 7]] as const) {
    it(`${bit} without an extension -> 1002 (server and client)`, () => {
      expectFailure(S, [frame(Opcode.Text, 'x', { rsv })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002);
      expectFailure('client', [frame(Opcode.Binary, 'x', { rsv, mask: null })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002);
      expectFailure(S, [frame(Opcode.Ping, 'x', { rsv })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002);
      expectFailure(S, [frag, frame(Opcode.Continuation, 'x', { rsv })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002);
    });
  }

  // RFC 6455 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; "If an unknown opcode is received,
  // the receiving endpoint MUST _Fail the WebSocket Connection_."
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    it(`reserved opcode 0x${op.toString(16)} -> 1002`, () => {
      expectFailure(S, [frame(op, 'x')], 'WS_ERR_INVALID_OPCODE', 1002);
      expectFailure(S, [frame(op, '')], 'WS_ERR_INVALID_OPCODE', 1002);
      expectFailure('client', [frame(op, 'x', { mask: null })], 'WS_ERR_INVALID_OPCODE', 1002);
      // Also in the middle of a fragmented message.
      expectFailure(S, [frag, frame(op, 'x')], 'WS_ERR_INVALID_OPCODE', 1002);
    });
  }

  // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less."
  it('control frame with more than 125 bytes -> 1002 (ping, pong, close; 16-bit and 64-bit lengths)', () => {
    expectFailure(S, [frame(Opcode.Ping, Buffer.alloc(126))], 'WS_ERR_CONTROL_TOO_LONG', 1002);
    expectFailure(S, [frame(Opcode.Pong, Buffer.alloc(126))], 'WS_ERR_CONTROL_TOO_LONG', 1002);
    expectFailure(S, [frame(Opcode.Close, closePayload(1000, 'x'.repeat(124)))], 'WS_ERR_CONTROL_TOO_LONG', 1002);
    expectFailure('client', [frame(Opcode.Ping, Buffer.alloc(70000), { mask: null })], 'WS_ERR_CONTROL_TOO_LONG', 1002);
    // Only the header is needed to decide.
    expectFailure(S, [hex('89 fe 00 7e 00 00 00 00')], 'WS_ERR_CONTROL_TOO_LONG', 1002);
  });

  // RFC 6455 5.5: "Control frames themselves MUST NOT be fragmented."
  it('fragmented control frame -> 1002', () => {
    expectFailure(S, [frame(Opcode.Ping, 'x', { fin: false })], 'WS_ERR_FRAGMENTED_CONTROL', 1002);
    expectFailure(S, [frame(Opcode.Pong, '', { fin: false })], 'WS_ERR_FRAGMENTED_CONTROL', 1002);
    expectFailure(S, [frame(Opcode.Close, closePayload(1000), { fin: false })], 'WS_ERR_FRAGMENTED_CONTROL', 1002);
    expectFailure(S, [frag, frame(Opcode.Ping, 'x', { fin: false })], 'WS_ERR_FRAGMENTED_CONTROL', 1002);
  });

  // RFC 6455 5.4: a fragmented message is one frame with FIN clear and a non-zero opcode,
  // then continuation frames; anything else is a protocol error.
  it('continuation frame without a message in progress -> 1002', () => {
    expectFailure(S, [frame(Opcode.Continuation, 'x')], 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
    expectFailure(S, [frame(Opcode.Continuation, 'x', { fin: false })], 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
    expectFailure('client', [frame(Opcode.Continuation, '', { mask: null })], 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
    // After a complete message.
    expectFailure(S, [frame(Opcode.Text, 'ok'), frame(Opcode.Continuation, 'x')], 'WS_ERR_UNEXPECTED_CONTINUATION', 1002, {}, [['text', 'ok']]);
    expectFailure(S, [frag, frame(Opcode.Continuation, 'x'), frame(Opcode.Continuation, 'y')], 'WS_ERR_UNEXPECTED_CONTINUATION', 1002, {}, [['text', 'fragx']]);
  });

  it('new text or binary frame while a fragmented message is in progress -> 1002', () => {
    expectFailure(S, [frag, frame(Opcode.Text, 'x')], 'WS_ERR_EXPECTED_CONTINUATION', 1002);
    expectFailure(S, [frag, frame(Opcode.Binary, 'x')], 'WS_ERR_EXPECTED_CONTINUATION', 1002);
    expectFailure(S, [frag, frame(Opcode.Ping, 'p'), frame(Opcode.Text, 'x', { fin: false })], 'WS_ERR_EXPECTED_CONTINUATION', 1002, {}, [['ping', '70']]);
    expectFailure('client', [frame(Opcode.Binary, 'b', { fin: false, mask: null }), frame(Opcode.Text, '', { mask: null })], 'WS_ERR_EXPECTED_CONTINUATION', 1002);
  });

  // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
  it('non-minimal payload length -> 1002', () => {
    expectFailure(S, [hex('81 fe 00 05 37 fa 21 3d 7f 9f 4d 51 58')], 'WS_ERR_NON_MINIMAL_LENGTH', 1002);
    expectFailure(S, [hex('82 ff 00 00 00 00 00 00 ff ff 00 00 00 00')], 'WS_ERR_NON_MINIMAL_LENGTH', 1002);
    expectFailure('client', [hex('81 7e 00 05 48 65 6c 6c 6f')], 'WS_ERR_NON_MINIMAL_LENGTH', 1002);
  });

  it('64-bit length with the most significant bit set -> 1002', () => {
    expectFailure(S, [hex('82 ff 80 00 00 00 00 01 00 00 00 00 00 00')], 'WS_ERR_INVALID_LENGTH', 1002);
  });

  // RFC 6455 8.1: text must be valid UTF-8; 7.4.1: 1007 for inconsistent data.
  it('invalid UTF-8 in a text message -> 1007', () => {
    expectFailure(S, [frame(Opcode.Text, hex('ff'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('48 65 ed a0 80 6c 6f'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('c0 80'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('f4 90 80 80'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure('client', [frame(Opcode.Text, hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64'), { mask: null })], 'WS_ERR_INVALID_UTF8', 1007);
    // In a continuation frame, and across fragments.
    expectFailure(S, [frag, frame(Opcode.Continuation, hex('80'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('e2 82'), { fin: false }), frame(Opcode.Continuation, hex('41'))], 'WS_ERR_INVALID_UTF8', 1007);
    // A message that ends inside a code point.
    expectFailure(S, [frame(Opcode.Text, hex('41 e2 82'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('41 e2'), { fin: false }), frame(Opcode.Continuation, hex('82'))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Text, hex('f0 9d 84'), { fin: false }), frame(Opcode.Continuation, '')], 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('invalid UTF-8 in a binary message is fine', () => {
    const { conn, h } = open('server');
    conn.receiveData(frame(Opcode.Binary, hex('ff c0 80 ed a0 80')));
    assert.deepEqual(simple(h.takeEvents()), [['binary', 'ffc080eda080']]);
  });

  it('limits: frame over maxFrameSize -> 1009 from the header alone', () => {
    expectFailure(S, [frame(Opcode.Binary, Buffer.alloc(11)).subarray(0, 6)], 'WS_ERR_FRAME_TOO_BIG', 1009, { maxFrameSize: 10 });
    expectFailure(S, [frame(Opcode.Text, 'x'.repeat(11))], 'WS_ERR_FRAME_TOO_BIG', 1009, { maxFrameSize: 10, maxMessageSize: 100 });
    expectFailure(S, [frag, frame(Opcode.Continuation, 'y'.repeat(11))], 'WS_ERR_FRAME_TOO_BIG', 1009, { maxFrameSize: 10, maxMessageSize: 100 });
    // A 2^53-1 byte frame header with the default limits.
    expectFailure('client', [hex('82 7f 00 1f ff ff ff ff ff ff')], 'WS_ERR_FRAME_TOO_BIG', 1009);
  });

  it('limits: message over maxMessageSize -> 1009 as soon as the header that crosses it arrives', () => {
    expectFailure(S, [frame(Opcode.Binary, Buffer.alloc(11))], 'WS_ERR_MESSAGE_TOO_BIG', 1009, { maxMessageSize: 10, maxFrameSize: 0 });
    expectFailure(
      S,
      [frame(Opcode.Text, 'a'.repeat(6), { fin: false }), frame(Opcode.Ping, ''), frame(Opcode.Continuation, 'b'.repeat(5)).subarray(0, 6)],
      'WS_ERR_MESSAGE_TOO_BIG',
      1009,
      { maxMessageSize: 10 },
      [['ping', '']],
    );
  });

  it('a length above 2^53-1 -> 1009', () => {
    expectFailure(S, [hex('82 ff 00 20 00 00 00 00 00 00 00 00 00 00')], 'WS_ERR_UNSUPPORTED_LENGTH', 1009);
  });

  // RFC 6455 7.4.1/7.4.2: 1005, 1006, 1015 MUST NOT be sent; 0-999 are not used; 1016-2999 reserved.
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]) {
    it(`close frame with invalid code ${code} -> 1002`, () => {
      expectFailure(S, [frame(Opcode.Close, closePayload(code))], 'WS_ERR_INVALID_CLOSE_CODE', 1002);
      expectFailure('client', [frame(Opcode.Close, closePayload(code, 'why'), { mask: null })], 'WS_ERR_INVALID_CLOSE_CODE', 1002);
    });
  }

  // RFC 6455 5.5.1: the body, if any, starts with a 2-byte code.
  it('close frame with a 1-byte payload -> 1002', () => {
    expectFailure(S, [frame(Opcode.Close, hex('03'))], 'WS_ERR_INVALID_CLOSE_PAYLOAD', 1002);
    expectFailure('client', [frame(Opcode.Close, hex('e8'), { mask: null })], 'WS_ERR_INVALID_CLOSE_PAYLOAD', 1002);
  });

  // RFC 6455 5.5.1: the reason is UTF-8; 7.4.1: 1007.
  it('close frame with an invalid UTF-8 reason -> 1007', () => {
    expectFailure(S, [frame(Opcode.Close, closePayload(1000, hex('ff')))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure(S, [frame(Opcode.Close, closePayload(1000, hex('61 e2 82')))], 'WS_ERR_INVALID_UTF8', 1007);
    expectFailure('client', [frame(Opcode.Close, closePayload(3000, hex('ed a0 80')), { mask: null })], 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('messages before the error are delivered, and pings before it answered', () => {
    expectFailure(S, [Buffer.concat([frame(Opcode.Text, 'one'), frame(Opcode.Ping, 'p'), frame(7, '')])], 'WS_ERR_INVALID_OPCODE', 1002, {}, [
      ['text', 'one'],
      ['ping', '70'],
    ]);
  });
});

describe('Connection: fail fast on invalid UTF-8 (RFC 6455 8.1)', () => {
  it('fails when the first invalid byte arrives, before the frame is complete', () => {
    const payload = Buffer.concat([Buffer.from('valid prefix €'), hex('ff'), Buffer.from('never seen'.repeat(20))]);
    const wire = frame(Opcode.Text, payload);
    const invalidAt = wire.length - payload.length + Buffer.byteLength('valid prefix €');
    const { conn, h } = open('server');
    for (let i = 0; i < wire.length; i++) {
      conn.receiveData(Buffer.from(wire.subarray(i, i + 1)));
      const events = h.takeEvents();
      if (i < invalidAt) {
        assert.deepEqual(events, [], `no event before byte ${i}`);
      } else if (i === invalidAt) {
        assert.deepEqual(simple(events), [['error', 'WS_ERR_INVALID_UTF8', 1007], ['close-transport']]);
        assert.equal(toHex(h.takeWritten()), '880203ef');
      } else {
        assert.deepEqual(events, []);
      }
    }
    assert.equal(h.takeWritten().length, 0);
  });

  it('fails on a partial frame whose bytes so far contain an invalid sequence (one chunk)', () => {
    const wire = frame(Opcode.Text, Buffer.concat([Buffer.from('abc'), hex('c0 80'), Buffer.alloc(100, 0x41)]));
    const { conn, h } = open('server');
    conn.receiveData(Buffer.from(wire.subarray(0, 6 + 4 + 5)));
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_INVALID_UTF8', 1007], ['close-transport']]);
  });

  it('fails in a continuation frame before it is complete', () => {
    const { conn, h } = open('client');
    conn.receiveData(frame(Opcode.Text, 'Hel', { fin: false, mask: null }));
    const cont = frame(Opcode.Continuation, Buffer.concat([Buffer.from('lo'), hex('f5'), Buffer.alloc(50, 0x41)]), { mask: null });
    conn.receiveData(Buffer.from(cont.subarray(0, 2 + 2)));
    assert.deepEqual(h.takeEvents(), []);
    conn.receiveData(Buffer.from(cont.subarray(4, 5)));
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_INVALID_UTF8', 1007], ['close-transport']]);
    const [close] = decodeFrames(h.takeWritten());
    assert.equal(close!.payload.readUInt16BE(0), 1007);
    assert.ok(close!.mask);
  });

  it('a sequence that only becomes invalid in the next fragment fails at its first byte', () => {
    const { conn, h } = open('server');
    conn.receiveData(frame(Opcode.Text, hex('41 f0 9d'), { fin: false }));
    assert.deepEqual(h.takeEvents(), []);
    const cont = frame(Opcode.Continuation, hex('84 41 41 41 41'));
    conn.receiveData(Buffer.from(cont.subarray(0, 7))); // header (6) + 84: still fine
    assert.deepEqual(h.takeEvents(), []);
    conn.receiveData(Buffer.from(cont.subarray(7, 8))); // 41 where a continuation byte was needed
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_INVALID_UTF8', 1007], ['close-transport']]);
  });
});

describe('Connection: close handshake (RFC 6455 7.1)', () => {
  it("server: receiving close echoes the code and asks the transport to close (the server closes TCP first, 7.1.1)", () => {
    const { conn, h } = open('server');
    assert.equal(conn.state, 'open');
    conn.receiveData(frame(Opcode.Close, closePayload(1000, 'bye')));
    assert.deepEqual(simple(h.takeEvents()), [['close-frame', 1000, 'bye'], ['close-transport']]);
    assert.equal(toHex(h.takeWritten()), '880203e8');
    assert.equal(conn.state, 'closing');
    assert.equal(conn.isCloseSent, true);
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1000, 'bye', true]]);
    assert.equal(conn.state, 'closed');
    // Idempotent.
    conn.transportClosed();
    assert.deepEqual(h.takeEvents(), []);
  });

  it('client: receiving close echoes the code (masked) and does NOT close the transport; the server does', () => {
    const { conn, h } = open('client');
    conn.receiveData(frame(Opcode.Close, closePayload(1001, 'restart'), { mask: null }));
    assert.deepEqual(simple(h.takeEvents()), [['close-frame', 1001, 'restart']]);
    // 1001 = 03 e9 masked with 37 fa -> 34 13.
    assert.equal(toHex(h.takeWritten()), '888237fa213d3413');
    assert.equal(conn.state, 'closing');
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1001, 'restart', true]]);
  });

  for (const role of ['server', 'client'] as const) {
    it(`${role}: a close frame without a body is answered with an empty close; onClosed gets 1005`, () => {
      const { conn, h } = open(role);
      conn.receiveData(peerFrame(role, Opcode.Close, ''));
      assert.deepEqual(simple(h.takeEvents()), role === 'server' ? [['close-frame', 1005, ''], ['close-transport']] : [['close-frame', 1005, '']]);
      const written = decodeFrames(h.takeWritten());
      assert.deepEqual(written.map((f) => [f.opcode, f.payload.length]), [[Opcode.Close, 0]]);
      conn.transportClosed();
      assert.deepEqual(simple(h.takeEvents()), [['closed', 1005, '', true]]);
    });

    it(`${role}: valid codes 1000-1003, 1007-1014, 3000, 4999 are echoed`, () => {
      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
        const { conn, h } = open(role);
        conn.receiveData(peerFrame(role, Opcode.Close, closePayload(code, 'ünïcode reason')));
        assert.deepEqual(simple(h.takeEvents())[0], ['close-frame', code, 'ünïcode reason']);
        const [reply] = decodeFrames(h.takeWritten());
        assert.equal(reply!.payload.readUInt16BE(0), code);
      }
    });

    it(`${role}: nothing after the peer's close frame is processed`, () => {
      const { conn, h } = open(role);
      conn.receiveData(
        Buffer.concat([peerFrame(role, Opcode.Close, closePayload(1000)), peerFrame(role, Opcode.Text, 'after'), peerFrame(role, Opcode.Ping, 'x'), hex('ff ff ff')]),
      );
      const ev = simple(h.takeEvents());
      assert.deepEqual(ev[0], ['close-frame', 1000, '']);
      assert.ok(!ev.some((e) => (e as unknown[])[0] === 'text' || (e as unknown[])[0] === 'ping' || (e as unknown[])[0] === 'error'));
      assert.equal(decodeFrames(h.takeWritten()).length, 1);
    });

    it(`${role}: EOF without a close frame -> onClosed(1006, not clean)`, () => {
      const { conn, h } = open(role);
      conn.receiveData(peerFrame(role, Opcode.Text, 'hi'));
      conn.receiveData(peerFrame(role, Opcode.Text, 'partial').subarray(0, 4));
      conn.transportClosed();
      assert.deepEqual(simple(h.takeEvents()), [['text', 'hi'], ['closed', 1006, '', false]]);
      assert.equal(conn.state, 'closed');
      assert.equal(h.takeWritten().length, 0);
    });

    it(`${role}: we sent close, the transport died before the reply -> 1006, not clean`, () => {
      const { conn, h } = open(role);
      conn.close(1000);
      conn.transportClosed();
      assert.deepEqual(simple(h.takeEvents()), [['closed', 1006, '', false]]);
    });
  }

  it('server initiates: close frame out, messages still received while closing, reply ends it', () => {
    const { conn, h } = open('server');
    conn.close(1001, 'going');
    assert.equal(toHex(h.takeWritten()), '880703e9' + toHex(Buffer.from('going')));
    assert.equal(conn.state, 'closing');
    assert.deepEqual(h.takeEvents(), []);
    // RFC 6455 7.1.2: the peer may still be sending; data is delivered until its close arrives.
    conn.receiveData(frame(Opcode.Text, 'in flight'));
    // A ping after our close frame is reported but not answered (we sent our last frame).
    conn.receiveData(frame(Opcode.Ping, 'p'));
    assert.equal(h.takeWritten().length, 0);
    conn.receiveData(frame(Opcode.Close, closePayload(1001, 'ok')));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'in flight'], ['ping', '70'], ['close-frame', 1001, 'ok'], ['close-transport']]);
    assert.equal(h.takeWritten().length, 0, 'no second close frame');
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1001, 'ok', true]]);
  });

  it('client initiates: masked close out; the server reply does not close the transport', () => {
    const { conn, h } = open('client');
    conn.close(3000, 'x');
    // 3000 = 0b b8, 'x' = 78, masked with 37 fa 21.
    assert.equal(toHex(h.takeWritten()), '888337fa213d' + toHex(Buffer.from([0x0b ^ 0x37, 0xb8 ^ 0xfa, 0x78 ^ 0x21])));
    conn.receiveData(frame(Opcode.Close, closePayload(3000), { mask: null }));
    assert.deepEqual(simple(h.takeEvents()), [['close-frame', 3000, '']]);
    assert.equal(h.takeWritten().length, 0);
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 3000, '', true]]);
  });

  it('close() without a code sends an empty close frame; a second close() does nothing', () => {
    const { conn, h } = open('server');
    conn.close();
    assert.equal(toHex(h.takeWritten()), '8800');
    conn.close(1000, 'again');
    assert.equal(h.takeWritten().length, 0);
  });

  it('close() with a 123-byte reason fills a 125-byte control frame', () => {
    const { conn, h } = open('server');
    conn.close(4000, 'r'.repeat(123));
    const [f] = decodeFrames(h.takeWritten());
    assert.equal(f!.payload.length, 125);
    assert.equal(f!.payload.readUInt16BE(0), 4000);
  });

  it('a failure after our close frame was sent writes no second close frame', () => {
    const { conn, h } = open('server');
    conn.close(1000);
    h.takeWritten();
    conn.receiveData(frame(Opcode.Text, 'x', { mask: null }));
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_EXPECTED_MASK', 1002], ['close-transport']]);
    assert.equal(h.takeWritten().length, 0);
    conn.transportClosed();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1006, '', false]]);
  });

  it('input after transportClosed() is ignored', () => {
    const { conn, h } = open('server');
    conn.transportClosed();
    h.takeEvents();
    conn.receiveData(frame(Opcode.Text, 'late'));
    assert.deepEqual(h.takeEvents(), []);
  });
});

describe('Connection: handler re-entrancy', () => {
  it('close() from onMessage: later frames in the same chunk are still delivered until the peer closes', () => {
    class Closer extends RecordingHandler {
      conn!: Connection;
      override onMessage(data: Buffer, isBinary: boolean): void {
        super.onMessage(data, isBinary);
        this.conn.close(1000);
      }
    }
    const h = new Closer();
    const { conn } = open('server', {}, h);
    h.conn = conn;
    conn.receiveData(Buffer.concat([frame(Opcode.Text, 'a'), frame(Opcode.Text, 'b'), frame(Opcode.Close, closePayload(1000))]));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'a'], ['text', 'b'], ['close-frame', 1000, ''], ['close-transport']]);
    assert.equal(toHex(h.takeWritten()), '880203e8');
  });

  it('transportClosed() from onError: no close frame, no closeTransport, onClosed once', () => {
    class Dropper extends RecordingHandler {
      conn!: Connection;
      override onError(err: LifelineError): void {
        super.onError(err);
        this.conn.transportClosed();
      }
    }
    const h = new Dropper();
    const { conn } = open('server', {}, h);
    h.conn = conn;
    conn.receiveData(frame(Opcode.Text, 'x', { mask: null }));
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_EXPECTED_MASK', 1002], ['closed', 1006, '', false]]);
    assert.equal(h.takeWritten().length, 0);
  });
  it('close() from onCloseFrame: the application code goes out instead of the echo, once', () => {
    class Answerer extends RecordingHandler {
      conn!: Connection;
      override onCloseFrame(code: number, reason: string): void {
        super.onCloseFrame(code, reason);
        this.conn.close(4000, 'mine');
      }
    }
    const h = new Answerer();
    const { conn } = open('server', {}, h);
    h.conn = conn;
    conn.receiveData(frame(Opcode.Close, closePayload(1000)));
    const closes = decodeFrames(h.takeWritten());
    assert.deepEqual(closes.map((f) => [f.opcode, f.payload.readUInt16BE(0), f.payload.subarray(2).toString()]), [[Opcode.Close, 4000, 'mine']]);
    const ev = simple(h.takeEvents());
    assert.deepEqual(ev[0], ['close-frame', 1000, '']);
    assert.ok(ev.slice(1).every((e) => (e as unknown[])[0] === 'close-transport'));
  });

  // As for onError above: a handler may finish the connection from inside onCloseFrame.
  // After onClosed nothing may be written any more.
  it('transportClosed() from onCloseFrame: nothing is written after onClosed', () => {
    class Dropper extends RecordingHandler {
      conn!: Connection;
      override onCloseFrame(code: number, reason: string): void {
        super.onCloseFrame(code, reason);
        this.conn.transportClosed();
      }
    }
    const h = new Dropper();
    const { conn } = open('server', {}, h);
    h.conn = conn;
    conn.receiveData(frame(Opcode.Close, closePayload(1000)));
    assert.deepEqual(simple(h.takeEvents()), [['close-frame', 1000, ''], ['closed', 1000, '', false]]);
    assert.equal(toHex(h.takeWritten()), '', 'no close reply after the connection was finished');
  });
});

describe('Connection: sending', () => {
  it("server send('Hello') is the RFC 5.7 unmasked frame 81 05 48 65 6c 6c 6f", () => {
    const { conn, h } = open('server');
    conn.send('Hello');
    assert.equal(toHex(h.takeWritten()), '810548656c6c6f');
    assert.equal(conn.messagesOut, 1);
    assert.equal(conn.bytesOut, 7);
  });

  it("client send('Hello') with key 37 fa 21 3d is the RFC 5.7 masked frame 81 85 37 fa 21 3d 7f 9f 4d 51 58", () => {
    const { conn, h } = open('client');
    conn.send('Hello');
    assert.equal(toHex(h.takeWritten()), '818537fa213d7f9f4d5158');
    assert.equal(conn.bytesOut, 11);
  });

  it('client uses a fresh key from randomFill for every frame (RFC 6455 5.3), refilling the pool when used up', () => {
    let fills = 0;
    const { conn, h } = open('client', {
      randomFill: (b) => {
        fills++;
        countingFill(b);
      },
    });
    conn.send('a');
    conn.send(Buffer.from([1]));
    conn.ping('p');
    const frames = decodeFrames(h.takeWritten());
    assert.deepEqual(frames.map((f) => toHex(f.mask!)), ['00010203', '04050607', '08090a0b']);
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.toString('latin1')]), [[1, 'a'], [2, '\x01'], [9, 'p']]);
    assert.equal(fills, 1);
    // The pool holds 2048 keys; the next one needs a refill.
    for (let i = 3; i < 2048; i++) conn.send('');
    assert.equal(fills, 1);
    h.takeWritten();
    conn.send('z');
    assert.equal(fills, 2);
    assert.equal(toHex(decodeFrames(h.takeWritten())[0]!.mask!), '00010203');
  });

  it("server sendFragments(['Hel', 'lo']) is the RFC 5.7 fragmented frame pair 01 03 48 65 6c 80 02 6c 6f", () => {
    const { conn, h } = open('server');
    conn.sendFragments(['Hel', 'lo'], false);
    assert.equal(toHex(h.takeWritten()), '010348656c80026c6f');
  });

  it('server: binary and length encodings (RFC 6455 5.2) and the large-payload path', () => {
    const { conn, h } = open('server');
    conn.send(Buffer.from([1, 2, 3]));
    assert.equal(toHex(h.takeWritten()), '8203010203');
    const b256 = Buffer.alloc(256, 0xab);
    conn.send(b256);
    assert.equal(toHex(h.takeWritten()), '827e0100' + toHex(b256));
    const b64k = Buffer.alloc(65536, 0xcd);
    conn.send(b64k);
    const w = h.takeWritten();
    assert.equal(toHex(w.subarray(0, 10)), '827f0000000000010000');
    assert.ok(w.subarray(10).equals(b64k));
    conn.send('x'.repeat(200));
    assert.equal(toHex(h.takeWritten().subarray(0, 4)), '817e00c8');
    conn.send('é€𝄞');
    assert.equal(toHex(h.takeWritten()), '8109c3a9e282acf09d849e');
  });

  it('client: masked 256-byte and 64KiB payloads round-trip through the decoder', () => {
    const { conn, h } = open('client', { randomFill: countingFill });
    for (const size of [0, 125, 126, 256, 1025, 65535, 65536]) {
      const b = Buffer.alloc(size);
      for (let i = 0; i < size; i++) b[i] = (i * 31) & 0xff;
      conn.send(b);
      const [f, ...rest] = decodeFrames(h.takeWritten());
      assert.equal(rest.length, 0);
      assert.equal(f!.opcode, Opcode.Binary);
      assert.ok(f!.mask);
      assert.ok(f!.payload.equals(b), `size ${size}`);
    }
  });

  it('send(): the binary flag overrides the data type; Uint8Array views are sent as their bytes', () => {
    const { conn, h } = open('server');
    conn.send('abc', true);
    conn.send(Buffer.from('abc'), false);
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    conn.send(backing.subarray(2, 5));
    assert.equal(toHex(h.takeWritten()), '8203616263' + '8103616263' + '8203010203');
  });

  it('ping() and pong(): server unmasked, client masked, 125 bytes at most', () => {
    const s = open('server');
    s.conn.ping('Hello');
    s.conn.pong();
    s.conn.ping(Buffer.alloc(125, 1));
    assert.equal(toHex(s.h.takeWritten()), '890548656c6c6f' + '8a00' + '897d' + '01'.repeat(125));
    assert.throws(() => s.conn.ping(Buffer.alloc(126)), (e: unknown) => e instanceof UsageError && e.code === 'WS_ERR_CONTROL_TOO_LONG');
    assert.throws(() => s.conn.pong('x'.repeat(126)), UsageError);
    assert.equal(s.h.takeWritten().length, 0);
    const c = open('client');
    c.conn.pong('Hello');
    assert.equal(toHex(c.h.takeWritten()), '8a8537fa213d7f9f4d5158');
  });

  it('ping(n) and pong(n): a number goes out as its decimal text, server and client', () => {
    const s = open('server');
    s.conn.ping(1763800000123);
    s.conn.pong(0);
    s.conn.ping(-1);
    s.conn.ping(1.5);
    assert.equal(toHex(s.h.takeWritten()), '890d' + toHex(Buffer.from('1763800000123')) + '8a0130' + '89022d31' + '8903312e35');
    assert.equal(s.conn.bytesOut, 15 + 3 + 4 + 5);
    const c = open('client', { randomFill: countingFill });
    c.conn.ping(42);
    c.conn.pong(Number.MAX_SAFE_INTEGER);
    assert.deepEqual(decodeFrames(c.h.takeWritten()).map((f) => [f.opcode, f.payload.toString('latin1'), f.mask !== null]), [
      [Opcode.Ping, '42', true],
      [Opcode.Pong, String(Number.MAX_SAFE_INTEGER), true],
    ]);
  });

  it('ping(n) with writeFrame: a whole number >= 0 is handed over as the number and its digit count, others as text', () => {
    class FrameRecorder extends RecordingHandler {
      frames: unknown[][] = [];
      writeFrame(b0: number, payload: Uint8Array | string | number, length: number): void {
        this.frames.push([b0, typeof payload === 'object' ? toHex(Buffer.from(payload)) : payload, length]);
      }
    }
    const h = new FrameRecorder();
    const { conn } = open('server', {}, h);
    conn.ping(0);
    conn.ping(99999);
    conn.pong(Number.MAX_SAFE_INTEGER);
    conn.ping(-7);
    conn.ping(2.5);
    assert.deepEqual(h.frames, [
      [0x89, 0, 1],
      [0x89, 99999, 5],
      [0x8a, Number.MAX_SAFE_INTEGER, 16],
      [0x89, '-7', 2],
      [0x89, '2.5', 3],
    ]);
    assert.equal(conn.bytesOut, 3 + 7 + 18 + 4 + 5);
    assert.equal(h.takeWritten().length, 0, 'nothing through write()');
  });

  it('sendEncodedControl: the given ping or pong frame, as is, through writeBytes or write(); server only; anything else refused', () => {
    const frame89 = Buffer.from([0x89, 0x04, 0x31, 0x32, 0x33, 0x34]);
    const a = open('server');
    a.conn.sendEncodedControl(frame89);
    a.conn.sendEncodedControl(frame89);
    assert.equal(toHex(a.h.takeWritten()), '890431323334'.repeat(2));
    assert.equal(a.conn.bytesOut, 12);
    class RangeRecorder extends RecordingHandler {
      ranges: unknown[][] = [];
      writeBytes(src: Buffer, start: number, end: number): void {
        this.ranges.push([src, start, end]);
      }
    }
    const h = new RangeRecorder();
    const b = open('server', {}, h);
    b.conn.sendEncodedControl(frame89);
    assert.deepEqual(h.ranges, [[frame89, 0, 6]], 'the shared buffer itself, no copy or view');
    assert.equal(b.conn.bytesOut, 6);
    const c = open('client');
    assert.throws(() => c.conn.sendEncodedControl(frame89), (e: unknown) => e instanceof UsageError && e.code === 'WS_ERR_INVALID_ARGUMENT');
    assert.equal(c.h.takeWritten().length, 0);
    const invalid = (e: unknown): boolean => e instanceof UsageError && e.code === 'WS_ERR_INVALID_ARGUMENT';
    const notOne = [
      Buffer.from([0x89]), // no length byte
      Buffer.from([0x88, 0x02, 0x03, 0xe8]), // a close frame: close() keeps the handshake's state
      Buffer.from([0x81, 0x01, 0x61]), // a data frame
      Buffer.from([0x09, 0x01, 0x61]), // no FIN
      Buffer.from([0xc9, 0x01, 0x61]), // RSV1
      Buffer.from([0x89, 0x81, 1, 2, 3, 4, 0x61]), // masked
      Buffer.from([0x89, 0x02, 0x61]), // length past the buffer
      Buffer.from([0x89, 0x01, 0x61, 0x89, 0x00]), // two frames
      Buffer.concat([Buffer.from([0x89, 0x7e, 0x00, 0x7e]), Buffer.alloc(126)]), // over 125 bytes
    ];
    for (const f of notOne) assert.throws(() => a.conn.sendEncodedControl(f), invalid, toHex(f.subarray(0, 4)));
    assert.equal(a.h.takeWritten().length, 0);
    assert.equal(a.conn.bytesOut, 12);
    a.conn.sendEncodedControl(Buffer.from([0x8a, 0x00]));
    a.conn.sendEncodedControl(Buffer.concat([Buffer.from([0x89, 0x7d]), Buffer.alloc(125, 7)]));
    assert.equal(a.h.takeWritten().length, 2 + 127, 'an empty pong and a 125-byte ping are whole frames');
    a.conn.close(1000);
    a.h.takeWritten();
    assert.throws(() => a.conn.sendEncodedControl(frame89), (e: unknown) => e instanceof UsageError && e.code === 'WS_ERR_SEND_AFTER_CLOSE');
    assert.equal(a.h.takeWritten().length, 0);
  });

  it('sendFragments: one frame per fragment, client masked with one key each', () => {
    const { conn, h } = open('client', { randomFill: countingFill });
    conn.sendFragments([Buffer.from([1]), Buffer.alloc(0), Buffer.from([2, 3])], true);
    const frames = decodeFrames(h.takeWritten());
    assert.deepEqual(
      frames.map((f) => [f.fin, f.opcode, toHex(f.payload), toHex(f.mask!)]),
      [[false, 2, '01', '00010203'], [false, 0, '', '04050607'], [true, 0, '0203', '08090a0b']],
    );
    assert.throws(() => conn.sendFragments([], false), UsageError);
  });

  it('auto-fragmentation via fragmentSize (server)', () => {
    const { conn, h } = open('server', { fragmentSize: 4 });
    conn.send('Hello world');
    assert.equal(toHex(h.takeWritten()), '0104' + toHex(Buffer.from('Hell')) + '0004' + toHex(Buffer.from('o wo')) + '8003' + toHex(Buffer.from('rld')));
    conn.send('four');
    assert.equal(toHex(h.takeWritten()), '8104' + toHex(Buffer.from('four')), 'exactly fragmentSize: one frame');
    conn.send(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    assert.equal(toHex(h.takeWritten()), '020401020304' + '800405060708');
    conn.send('');
    assert.equal(toHex(h.takeWritten()), '8100');
    assert.equal(conn.messagesOut, 4);
  });

  it('auto-fragmentation via fragmentSize (client: each fragment masked with its own key)', () => {
    const { conn, h } = open('client', { fragmentSize: 3, randomFill: countingFill });
    conn.send('€uro'); // e2 82 ac 75 72 6f: split inside nothing, 3 + 3
    const frames = decodeFrames(h.takeWritten());
    assert.deepEqual(
      frames.map((f) => [f.fin, f.opcode, toHex(f.payload), toHex(f.mask!)]),
      [[false, 1, 'e282ac', '00010203'], [true, 0, '75726f', '04050607']],
    );
  });

  it('a fragmented send is received whole by a peer connection', () => {
    const client = open('client', { fragmentSize: 5, randomFill: countingFill });
    const server = open('server');
    const text = 'The quick brown 🦊 jumps over the lazy 🐶'.repeat(3);
    client.conn.send(text);
    server.conn.receiveData(client.h.takeWritten());
    assert.deepEqual(simple(server.h.takeEvents()), [['text', text]]);
  });
});

describe('Connection: a client masks long payloads with the bulk mask', () => {
  it('every length around the threshold and past the kernel memory: with the SIMD kernel, without it, with a given one, and beside a native unmask', () => {
    const calls: number[] = [];
    const simdMask = sharedSimdMask()!;
    const recording: BulkMask = (src, dst, off, key) => {
      calls.push(src.length);
      simdMask(src, dst, off, key);
    };
    const native = (buf: Buffer, mask: Buffer): void => {
      for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ mask[i & 3]!;
    };
    const sizes = [0, 1, 5, BULK_MASK_MIN - 1, BULK_MASK_MIN, BULK_MASK_MIN + 3, 1000, 16384, 65536 + 77, 140_001];
    for (const opts of [{}, { bulkMask: null }, { bulkMask: recording }, { unmask: native, bulkUnmask: null }] as Array<Partial<ConnectionOptions>>) {
      const { conn, h } = open('client', { randomFill: countingFill, ...opts });
      const payloads = sizes.map((n, k) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + k) & 0xff)));
      for (const p of payloads) conn.send(p);
      const frames = decodeFrames(h.takeWritten());
      assert.equal(frames.length, payloads.length);
      frames.forEach((f, k) => {
        // Keys 00 01 02 03, 04 05 06 07, ...: each frame has its own, and the reference unmask in decodeFrames undoes it.
        assert.deepEqual([...f.mask!], [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3]);
        assert.ok(f.payload.equals(payloads[k]!), `payload of ${sizes[k]} B`);
      });
    }
    // The given one masked exactly the payloads of BULK_MASK_MIN bytes and more.
    assert.deepEqual(calls, sizes.filter((n) => n >= BULK_MASK_MIN));
  });

  it('a server connection keeps no bulk mask (servers never mask): the prototype default', () => {
    const server = new Connection(new RecordingHandler(), { role: 'server', bulkMask: sharedSimdMask() });
    assert.equal(Object.hasOwn(server, 'bulkMask'), false);
    const client = new Connection(new RecordingHandler(), { role: 'client' });
    assert.equal((client as unknown as { bulkMask: BulkMask | null }).bulkMask, sharedSimdMask());
  });
});

describe('Connection: send -> receive round trip (property)', () => {
  it('whatever one side sends (any role, fragmentSize, sendFragments, pings between), the other receives exactly', () => {
    const msgArb = fc.oneof(
      fc.record({ kind: fc.constant('text' as const), data: fc.string({ unit: 'binary', maxLength: 40, size: 'max' }) }),
      fc.record({ kind: fc.constant('binary' as const), data: fc.uint8Array({ maxLength: 300, size: 'max' }) }),
      fc.record({ kind: fc.constant('fragments' as const), data: fc.array(fc.string({ unit: 'grapheme', maxLength: 5 }), { minLength: 1, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom<Role>('server', 'client'), fc.nat(50), fc.array(msgArb, { maxLength: 8 }), fc.integer(), (role, fragmentSize, msgs, seed) => {
        let x = seed >>> 0;
        const sender = open(role, {
          fragmentSize,
          randomFill: (b) => {
            for (let i = 0; i < b.length; i++) b[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
          },
        });
        const receiver = open(role === 'server' ? 'client' : 'server');
        const expected: unknown[] = [];
        for (const m of msgs) {
          if (m.kind === 'text') {
            sender.conn.send(m.data);
            expected.push(['text', Buffer.from(m.data).toString()]);
          } else if (m.kind === 'binary') {
            sender.conn.send(Buffer.from(m.data));
            expected.push(['binary', toHex(m.data)]);
          } else if (m.kind === 'fragments') {
            sender.conn.sendFragments(m.data, false);
            expected.push(['text', m.data.join('')]);
          } else {
            sender.conn.ping(Buffer.from(m.data));
            expected.push(['ping', toHex(m.data)]);
          }
        }
        const wire = sender.h.takeWritten();
        // Client frames are masked and server frames are not: the receiver enforces it.
        for (const f of decodeFrames(wire)) {
          assert.equal(f.mask !== null, role === 'client');
        }
        receiver.conn.receiveData(wire);
        assert.deepEqual(simple(receiver.h.takeEvents()), expected);
        assert.equal(decodeFrames(receiver.h.takeWritten()).filter((f) => f.opcode === Opcode.Pong).length, msgs.filter((m) => m.kind === 'ping').length);
      }),
      { numRuns: 300 },
    );
  });

  it('with fragmentSize, every data frame of send() carries at most fragmentSize bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom<Role>('server', 'client'), fc.integer({ min: 1, max: 20 }), fc.uint8Array({ maxLength: 100, size: 'max' }), (role, size, data) => {
        const { conn, h } = open(role, { fragmentSize: size, randomFill: countingFill });
        conn.send(Buffer.from(data));
        const frames = decodeFrames(h.takeWritten());
        assert.equal(frames.length, Math.max(1, Math.ceil(data.length / size)));
        frames.forEach((f, i) => {
          assert.ok(f.payload.length <= size);
          assert.equal(f.opcode, i === 0 ? Opcode.Binary : Opcode.Continuation);
          assert.equal(f.fin, i === frames.length - 1);
        });
        assert.ok(Buffer.concat(frames.map((f) => f.payload)).equals(Buffer.from(data)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('Connection: misuse raises UsageError', () => {
  const isUsage = (code: string) => (e: unknown): boolean => e instanceof UsageError && e.code === code && e.closeCode === 0;

  it('send, sendFragments, ping and pong after close()', () => {
    for (const role of ['server', 'client'] as const) {
      const { conn, h } = open(role);
      conn.close(1000);
      h.takeWritten();
      assert.throws(() => conn.send('x'), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
      assert.throws(() => conn.send(Buffer.from([1])), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
      assert.throws(() => conn.sendFragments(['a'], false), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
      assert.throws(() => conn.ping(), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
      assert.throws(() => conn.pong(), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
      assert.equal(h.takeWritten().length, 0);
    }
  });

  it('send after the peer closed (our reply went out), after a failure, and after transportClosed()', () => {
    const a = open('server');
    a.conn.receiveData(frame(Opcode.Close, closePayload(1000)));
    assert.throws(() => a.conn.send('x'), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
    const b = open('server');
    b.conn.receiveData(frame(Opcode.Text, 'x', { mask: null }));
    assert.throws(() => b.conn.send('x'), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
    const c = open('client');
    c.conn.transportClosed();
    assert.throws(() => c.conn.send('x'), isUsage('WS_ERR_SEND_AFTER_CLOSE'));
    // close() after the end is a no-op, not an error.
    c.conn.close(1000);
    assert.equal(c.h.takeWritten().length, 0);
  });

  for (const code of [1005, 1006, 1015, 1004, 999, 0, 2999, 5000, -1, Number.NaN]) {
    it(`close(${code}) throws WS_ERR_INVALID_CLOSE_CODE and writes nothing`, () => {
      const { conn, h } = open('server');
      assert.throws(() => conn.close(code), isUsage('WS_ERR_INVALID_CLOSE_CODE'));
      assert.equal(h.takeWritten().length, 0);
      assert.equal(conn.state, 'open');
      conn.send('still open');
      assert.equal(decodeFrames(h.takeWritten()).length, 1);
    });
  }

  // A non-integer code is not a close code: it must be refused, not silently truncated by
  // writeUInt16BE (close(1000.5) would put 1000 on the wire).
  for (const code of [1000.5, 3000.25]) {
    it(`close(${code}) (not an integer) throws WS_ERR_INVALID_CLOSE_CODE and writes nothing`, () => {
      const { conn, h } = open('server');
      assert.throws(() => conn.close(code), isUsage('WS_ERR_INVALID_CLOSE_CODE'));
      assert.equal(toHex(h.takeWritten()), '', 'nothing written');
      assert.equal(conn.state, 'open');
    });
  }

  it('close() with a reason over 123 bytes, or a reason without a code', () => {
    const { conn, h } = open('server');
    assert.throws(() => conn.close(1000, 'r'.repeat(124)), isUsage('WS_ERR_CLOSE_REASON_TOO_LONG'));
    assert.throws(() => conn.close(1000, 'é'.repeat(62)), isUsage('WS_ERR_CLOSE_REASON_TOO_LONG'));
    assert.throws(() => conn.close(undefined, 'why'), isUsage('WS_ERR_INVALID_ARGUMENT'));
    assert.equal(h.takeWritten().length, 0);
    assert.equal(conn.state, 'open');
  });

  it('invalid options are rejected at construction', () => {
    const h = new RecordingHandler();
    assert.throws(() => new Connection(h, { role: 'peer' as Role }), isUsage('WS_ERR_INVALID_OPTION'));
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => new Connection(h, { role: 'server', maxMessageSize: bad }), isUsage('WS_ERR_INVALID_OPTION'));
      assert.throws(() => new Connection(h, { role: 'server', maxFrameSize: bad }), isUsage('WS_ERR_INVALID_OPTION'));
      assert.throws(() => new Connection(h, { role: 'server', fragmentSize: bad }), isUsage('WS_ERR_INVALID_OPTION'));
    }
  });

  it("settings at their defaults are the prototype's (no field per connection); others are the connection's own", () => {
    const SETTINGS = ['role', 'maxMessageSize', 'maxFrameSize', 'codec', 'fragmentSize', 'autoPong', 'randomFill'];
    const ownSettings = (c: Connection): string[] => Object.keys(c).filter((k) => SETTINGS.includes(k));
    const h = new RecordingHandler();
    assert.deepEqual(ownSettings(new Connection(h, { role: 'server' })), []);
    assert.deepEqual(ownSettings(new Connection(h, { role: 'server', maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE, autoPong: true })), []);
    assert.deepEqual(ownSettings(new Connection(h, { role: 'client', randomFill: rfcKeyFill })), ['role', 'randomFill']);
    assert.deepEqual(ownSettings(new Connection(h, { role: 'server', maxMessageSize: 1000 })), ['maxMessageSize', 'maxFrameSize']);
    assert.deepEqual(ownSettings(new Connection(h, { role: 'server', fragmentSize: 10, autoPong: false })), ['fragmentSize', 'autoPong']);
    // That own settings are the ones in force: the limits tests above (maxFrameSize defaults to maxMessageSize...).
  });
});

// ------------------------------------------------------------------------------------------
// The codec interface (what permessage-deflate looks like to the connection), with a fake
// codec whose "compression" is the identity and whose callbacks the test fires by hand.

class ManualCodec implements MessageCodec {
  readonly threshold: number;
  /** Jobs waiting for the test to run them (only when async). */
  compressJobs: Array<() => void> = [];
  decompressJobs: Array<() => void> = [];
  calls: string[] = [];
  private inflating: Buffer[] = [];
  constructor(
    private readonly opts: { threshold?: number; asyncCompress?: boolean; asyncDecompress?: boolean; inflateError?: Error; compressError?: Error } = {},
  ) {
    this.threshold = opts.threshold ?? 0;
  }
  compress(data: Buffer, fin: boolean, cb: (err: Error | null, result?: Buffer) => void): void {
    this.calls.push(`compress ${data.toString('latin1')} ${fin}`);
    const copy = Buffer.from(data);
    const job = () => (this.opts.compressError ? cb(this.opts.compressError) : cb(null, copy));
    if (this.opts.asyncCompress) this.compressJobs.push(job);
    else job();
  }
  decompress(data: Buffer, fin: boolean, cb: (err: Error | null, result?: Buffer) => void): void {
    this.calls.push(`decompress ${data.toString('latin1')} ${fin}`);
    this.inflating.push(Buffer.from(data));
    const job = () => {
      if (this.opts.inflateError) return cb(this.opts.inflateError);
      if (!fin) return cb(null, undefined);
      const out = Buffer.concat(this.inflating);
      this.inflating = [];
      cb(null, out);
    };
    if (this.opts.asyncDecompress) this.decompressJobs.push(job);
    else job();
  }
  close(): void {
    this.calls.push('close');
  }
  runAll(): void {
    while (this.compressJobs.length > 0 || this.decompressJobs.length > 0) {
      this.compressJobs.shift()?.();
      this.decompressJobs.shift()?.();
    }
  }
}

describe('Connection: with a message codec (RFC 7692 framing rules)', () => {
  it('RSV1 marks a compressed message; the codec gets each frame with its FIN and returns the message on the last', () => {
    const codec = new ManualCodec();
    const { conn, h } = open('server', { codec });
    conn.receiveData(frame(Opcode.Text, 'whole', { rsv: 4 }));
    conn.receiveData(Buffer.concat([frame(Opcode.Binary, 'ab', { rsv: 4, fin: false }), frame(Opcode.Ping, 'p'), frame(Opcode.Continuation, 'cd')]));
    conn.receiveData(frame(Opcode.Text, 'plain'));
    assert.deepEqual(simple(h.takeEvents()), [['text', 'whole'], ['ping', '70'], ['binary', toHex(Buffer.from('abcd'))], ['text', 'plain']]);
    assert.deepEqual(codec.calls, ['decompress whole true', 'decompress ab false', 'decompress cd true']);
  });

  it('RSV1 on a continuation frame or a control frame is still a protocol error (RFC 7692 6.1)', () => {
    expectFailure('server', [frame(Opcode.Text, 'a', { rsv: 4, fin: false }), frame(Opcode.Continuation, 'b', { rsv: 4 })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002, { codec: new ManualCodec() });
    expectFailure('server', [frame(Opcode.Ping, '', { rsv: 4 })], 'WS_ERR_RSV_NOT_NEGOTIATED', 1002, { codec: new ManualCodec() });
  });

  it('while the codec inflates asynchronously, later input waits, so events keep their order', () => {
    const codec = new ManualCodec({ asyncDecompress: true });
    const { conn, h } = open('server', { codec });
    conn.receiveData(Buffer.concat([frame(Opcode.Text, 'first', { rsv: 4 }), frame(Opcode.Ping, 'p'), frame(Opcode.Text, 'second')]));
    conn.receiveData(frame(Opcode.Text, 'third'));
    assert.deepEqual(h.takeEvents(), []);
    assert.equal(h.takeWritten().length, 0);
    codec.runAll();
    assert.deepEqual(simple(h.takeEvents()), [['text', 'first'], ['ping', '70'], ['text', 'second'], ['text', 'third']]);
    assert.equal(toHex(h.takeWritten()), '8a0170');
  });

  it('inflated messages are checked against maxMessageSize (1009) and UTF-8 (1007); codec errors fail with 1007', () => {
    expectFailure('server', [frame(Opcode.Binary, Buffer.alloc(11), { rsv: 4 })], 'WS_ERR_MESSAGE_TOO_BIG', 1009, { codec: new ManualCodec(), maxMessageSize: 10, maxFrameSize: 100 });
    expectFailure('server', [frame(Opcode.Text, hex('ed a0 80'), { rsv: 4 })], 'WS_ERR_INVALID_UTF8', 1007, { codec: new ManualCodec() });
    expectFailure('server', [frame(Opcode.Text, 'x', { rsv: 4 })], 'WS_ERR_INFLATE', 1007, { codec: new ManualCodec({ inflateError: new Error('bad block') }) });
  });

  it('sending: messages at or above the threshold go out compressed with RSV1, smaller ones plain', () => {
    const codec = new ManualCodec({ threshold: 4 });
    const { conn, h } = open('server', { codec });
    conn.send('abc');
    conn.send('abcd');
    assert.equal(toHex(h.takeWritten()), '8103616263' + 'c104' + toHex(Buffer.from('abcd')));
  });

  it('sending with fragmentSize: RSV1 only on the first frame of a compressed message (RFC 7692 6.1)', () => {
    const codec = new ManualCodec();
    const { conn, h } = open('server', { codec, fragmentSize: 2 });
    conn.send(Buffer.from('abcde'));
    assert.deepEqual(
      decodeFrames(h.takeWritten()).map((f) => [f.fin, f.rsv, f.opcode, f.payload.toString()]),
      [[false, 4, 2, 'ab'], [false, 0, 0, 'cd'], [true, 0, 0, 'e']],
    );
  });

  it('while a message is being compressed, later messages and close() wait behind it; pings do not', () => {
    const codec = new ManualCodec({ threshold: 3, asyncCompress: true });
    const { conn, h } = open('client', { codec, randomFill: countingFill });
    conn.send('big message');
    conn.send('s');
    conn.ping('p');
    conn.close(1000);
    assert.deepEqual(decodeFrames(h.takeWritten()).map((f) => [f.opcode, f.payload.toString('latin1')]), [[Opcode.Ping, 'p']]);
    codec.runAll();
    assert.deepEqual(
      decodeFrames(h.takeWritten()).map((f) => [f.opcode, f.rsv, f.payload.toString('latin1')]),
      [[Opcode.Text, 4, 'big message'], [Opcode.Text, 0, 's'], [Opcode.Close, 0, '\x03\xe8']],
    );
  });

  it('unencodedBytes counts data payloads not yet framed (being compressed or queued behind), and onSendProgress follows each finished job', () => {
    const codec = new ManualCodec({ threshold: 3, asyncCompress: true });
    let progress = 0;
    const h = new RecordingHandler();
    (h as RecordingHandler & { onSendProgress(): void }).onSendProgress = () => progress++;
    const { conn } = open('server', { codec }, h);
    assert.equal(conn.unencodedBytes, 0);
    conn.send('big message'); // 11 B, compressing
    conn.send('s'); // 1 B, under the threshold, queued behind it
    conn.sendFragments(['ab', 'cd'], false); // 4 B, queued as one message
    conn.ping('p'); // control frames are not data: not counted
    assert.equal(conn.unencodedBytes, 11 + 1 + 4);
    assert.equal(progress, 0);
    codec.runAll();
    assert.equal(conn.unencodedBytes, 0);
    assert.equal(progress, 1);
    assert.deepEqual(
      decodeFrames(h.takeWritten()).map((f) => [f.opcode, f.payload.toString('latin1')]),
      [[Opcode.Ping, 'p'], [Opcode.Text, 'big message'], [Opcode.Text, 's'], [Opcode.Text, 'abcd']],
    );
    // Without a codec job in flight nothing waits: a plain message is framed at once.
    conn.send('x');
    assert.equal(conn.unencodedBytes, 0);
  });

  it('discardQueuedMessages() drops the data messages queued behind a compression job, keeps the one in the compressor and the close frame', () => {
    const codec = new ManualCodec({ threshold: 3, asyncCompress: true });
    const { conn, h } = open('server', { codec });
    conn.send('first message'); // 13 B, compressing
    conn.send('second one'); // 10 B, queued (to be compressed)
    conn.send('t'); // 1 B, queued (plain)
    const out = conn.messagesOut;
    assert.equal(conn.discardQueuedMessages(), 2);
    assert.equal(conn.messagesOut, out - 2);
    assert.equal(conn.unencodedBytes, 13);
    conn.close(1008, 'slow consumer');
    assert.equal(conn.discardQueuedMessages(), 0);
    codec.runAll();
    assert.equal(conn.unencodedBytes, 0);
    assert.deepEqual(
      decodeFrames(h.takeWritten()).map((f) => [f.opcode, f.payload.subarray(f.opcode === Opcode.Close ? 2 : 0).toString('latin1')]),
      [[Opcode.Text, 'first message'], [Opcode.Close, 'slow consumer']],
    );
  });

  it('a compression error fails the connection with 1011', () => {
    const codec = new ManualCodec({ compressError: new Error('zlib died') });
    const { conn, h } = open('server', { codec });
    conn.send('x');
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_DEFLATE', 1011], ['close-transport']]);
    assert.equal(toHex(h.takeWritten()), '880203f3');
  });

  // RFC 6455 5.5.1: "After sending a Close frame, the endpoint MUST NOT send any more data frames."
  for (const role of ['server', 'client'] as const) {
    it(`${role}: no data frame follows our close reply when the peer closes while a message is being compressed`, () => {
      const codec = new ManualCodec({ threshold: 3, asyncCompress: true });
      const { conn, h } = open(role, { codec, randomFill: countingFill });
      conn.send('big message'); // compressing
      conn.send('s'); // queued behind it, plain
      conn.receiveData(peerFrame(role, Opcode.Close, closePayload(1000)));
      codec.runAll();
      const opcodes = decodeFrames(h.takeWritten()).map((f) => f.opcode);
      const closeAt = opcodes.indexOf(Opcode.Close);
      assert.ok(closeAt >= 0, 'the close frame is answered');
      assert.deepEqual(opcodes.slice(closeAt + 1), [], `frames written after the close frame: ${JSON.stringify(opcodes)}`);
    });
  }

  it('no data frame follows the close frame sent on failure while a message is being compressed', () => {
    const codec = new ManualCodec({ threshold: 3, asyncCompress: true });
    const { conn, h } = open('server', { codec });
    conn.send('big message'); // compressing
    conn.send('s'); // queued behind it, plain
    conn.receiveData(frame(7, '')); // reserved opcode: fail with 1002
    assert.deepEqual(simple(h.takeEvents()), [['error', 'WS_ERR_INVALID_OPCODE', 1002], ['close-transport']]);
    codec.runAll();
    const opcodes = decodeFrames(h.takeWritten()).map((f) => f.opcode);
    assert.deepEqual(opcodes, [Opcode.Close], `frames written: ${JSON.stringify(opcodes)}`);
  });

  it('transportClosed() closes the codec, and late codec callbacks are ignored', () => {
    const codec = new ManualCodec({ asyncCompress: true, asyncDecompress: true });
    const { conn, h } = open('server', { codec });
    conn.send('out');
    conn.receiveData(frame(Opcode.Text, 'in', { rsv: 4 }));
    conn.transportClosed();
    assert.ok(codec.calls.includes('close'));
    codec.runAll();
    assert.deepEqual(simple(h.takeEvents()), [['closed', 1006, '', false]]);
    assert.equal(h.takeWritten().length, 0);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ProtocolError } from '../../../src/protocol/errors.js';
import { BULK_UNMASK_MIN, FrameParser, type FrameSink, phaseZeroUnmask } from '../../../src/protocol/parser.js';
import { type BulkUnmask, sharedSimdUnmask } from '../../../src/protocol/simd-unmask.js';
import { frame } from '../../helpers/recording.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

type SinkEvent =
  | { t: 'header'; fin: boolean; rsv: number; opcode: number; masked: boolean; length: number }
  | { t: 'payload'; data: string; last: boolean }
  | { t: 'error'; code: string; closeCode: number };

/** A sink that records everything; `decide` may stop or pause. */
class RecordingSink implements FrameSink {
  events: SinkEvent[] = [];
  onHeader: (e: SinkEvent & { t: 'header' }) => boolean = () => true;
  onPayload: (data: Buffer, last: boolean) => boolean | 'pause' = () => true;

  onFrameHeader(fin: boolean, rsv: number, opcode: number, masked: boolean, length: number): boolean {
    const e = { t: 'header' as const, fin, rsv, opcode, masked, length };
    this.events.push(e);
    return this.onHeader(e);
  }
  onFramePayload(chunk: Buffer, start: number, end: number, last: boolean): boolean | 'pause' {
    assert.ok(start >= 0 && start <= end && end <= chunk.length, `range [${start}, ${end}) outside a chunk of ${chunk.length}`);
    const data = chunk.subarray(start, end);
    this.events.push({ t: 'payload', data: data.toString('hex'), last });
    return this.onPayload(data, last);
  }
  onParseError(err: ProtocolError): void {
    this.events.push({ t: 'error', code: err.code, closeCode: err.closeCode });
  }

  /** Frames as [header, concatenated payload hex], merging payload slices. */
  frames(): Array<{ fin: boolean; rsv: number; opcode: number; masked: boolean; length: number; payload: string }> {
    const out: Array<{ fin: boolean; rsv: number; opcode: number; masked: boolean; length: number; payload: string }> = [];
    let open = false;
    for (const e of this.events) {
      if (e.t === 'header') {
        assert.equal(open, false, 'header while a payload is still open');
        out.push({ fin: e.fin, rsv: e.rsv, opcode: e.opcode, masked: e.masked, length: e.length, payload: '' });
        open = true;
      } else if (e.t === 'payload') {
        assert.equal(open, true, 'payload without a header');
        out[out.length - 1]!.payload += e.data;
        if (e.last) open = false;
      }
    }
    return out;
  }
}

/** `wire` cut into chunks of the given sizes, cycled (each a copy). */
function cutCycled(wire: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0, i = 0; off < wire.length; i++) {
    const n = cuts[i % cuts.length]!;
    chunks.push(Buffer.from(wire.subarray(off, off + n)));
    off += n;
  }
  return chunks;
}

function parseAll(chunks: Buffer[]): RecordingSink {
  const sink = new RecordingSink();
  const p = new FrameParser(sink);
  for (const c of chunks) p.push(c);
  return sink;
}

function splitEvery(buf: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += n) out.push(Buffer.from(buf.subarray(i, i + n)));
  return out;
}

describe('FrameParser: RFC 6455 5.7 examples', () => {
  it("single-frame unmasked text 'Hello': 81 05 48 65 6c 6c 6f", () => {
    const sink = parseAll([hex('81 05 48 65 6c 6c 6f')]);
    assert.deepEqual(sink.events, [
      { t: 'header', fin: true, rsv: 0, opcode: 1, masked: false, length: 5 },
      { t: 'payload', data: Buffer.from('Hello').toString('hex'), last: true },
    ]);
  });

  it("single-frame masked text 'Hello': 81 85 37 fa 21 3d 7f 9f 4d 51 58 is unmasked", () => {
    const sink = parseAll([hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')]);
    assert.deepEqual(sink.frames(), [{ fin: true, rsv: 0, opcode: 1, masked: true, length: 5, payload: Buffer.from('Hello').toString('hex') }]);
  });

  it("fragmented unmasked text: 01 03 48 65 6c ('Hel') then 80 02 6c 6f ('lo')", () => {
    const sink = parseAll([hex('01 03 48 65 6c 80 02 6c 6f')]);
    assert.deepEqual(sink.frames(), [
      { fin: false, rsv: 0, opcode: 0x1, masked: false, length: 3, payload: Buffer.from('Hel').toString('hex') },
      { fin: true, rsv: 0, opcode: 0x0, masked: false, length: 2, payload: Buffer.from('lo').toString('hex') },
    ]);
  });

  it("ping 'Hello' (89 05 ...) and masked pong 'Hello' (8a 85 37 fa 21 3d ...)", () => {
    const sink = parseAll([hex('89 05 48 65 6c 6c 6f'), hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58')]);
    assert.deepEqual(sink.frames(), [
      { fin: true, rsv: 0, opcode: 0x9, masked: false, length: 5, payload: Buffer.from('Hello').toString('hex') },
      { fin: true, rsv: 0, opcode: 0xa, masked: true, length: 5, payload: Buffer.from('Hello').toString('hex') },
    ]);
  });

  it('256 bytes binary in a single unmasked frame: 82 7e 01 00 [256 bytes]', () => {
    const body = Buffer.alloc(256, 0x5a);
    const sink = parseAll([Buffer.concat([hex('82 7e 01 00'), body])]);
    assert.deepEqual(sink.frames(), [{ fin: true, rsv: 0, opcode: 2, masked: false, length: 256, payload: body.toString('hex') }]);
  });

  it('64KiB binary in a single unmasked frame: 82 7f 00 00 00 00 00 01 00 00 [65536 bytes]', () => {
    const body = Buffer.alloc(65536);
    for (let i = 0; i < body.length; i++) body[i] = i & 0xff;
    const sink = parseAll([Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), body])]);
    const frames = sink.frames();
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.length, 65536);
    assert.equal(frames[0]!.payload, body.toString('hex'));
  });
});

describe('FrameParser: incremental input', () => {
  const stream = Buffer.concat([
    frame(0x1, 'Hello, world'),
    frame(0x9, 'p'),
    frame(0x2, Buffer.alloc(300, 7)),
    frame(0x0, '', { fin: true }),
    frame(0x2, Buffer.alloc(0)),
    frame(0x1, 'x', { mask: null }),
    frame(0x2, Buffer.alloc(70000, 1), { mask: Buffer.from([1, 2, 3, 4]) }),
  ]);
  const expected = parseAll([Buffer.from(stream)]).frames();

  it('the reference stream decodes to the frames that were built', () => {
    assert.deepEqual(
      expected.map((f) => [f.opcode, f.length, f.masked]),
      [[1, 12, true], [9, 1, true], [2, 300, true], [0, 0, true], [2, 0, true], [1, 1, false], [2, 70000, true]],
    );
    assert.equal(expected[0]!.payload, Buffer.from('Hello, world').toString('hex'));
    assert.equal(expected[2]!.payload, Buffer.alloc(300, 7).toString('hex'));
    assert.equal(expected[6]!.payload, Buffer.alloc(70000, 1).toString('hex'));
  });

  for (const n of [1, 2, 3, 5, 13, 1000]) {
    it(`gives the same frames fed ${n} byte(s) at a time`, () => {
      assert.deepEqual(parseAll(splitEvery(stream, n)).frames(), expected);
    });
  }

  it('gives the same frames for every single split point of the small frames', () => {
    const small = stream.subarray(0, frame(0x1, 'Hello, world').length + frame(0x9, 'p').length + 20);
    const want = parseAll([Buffer.from(small)]).frames();
    assert.equal(want.length, 3);
    for (let cut = 0; cut <= small.length; cut++) {
      const sink = parseAll([Buffer.from(small.subarray(0, cut)), Buffer.from(small.subarray(cut))]);
      assert.deepEqual(sink.frames(), want, `cut ${cut}`);
    }
  });

  it('any split of any sequence of frames gives the same frames (property)', () => {
    const frameArb = fc.record({
      opcode: fc.integer({ min: 0, max: 15 }),
      fin: fc.boolean(),
      rsv: fc.integer({ min: 0, max: 7 }),
      masked: fc.boolean(),
      // Mostly small payloads around the 7-bit/16-bit boundary, sometimes around the 16/64-bit one.
      payload: fc.oneof(
        { weight: 20, arbitrary: fc.uint8Array({ maxLength: 140, size: 'max' }) },
        { weight: 1, arbitrary: fc.integer({ min: 65530, max: 65540 }).map((n) => new Uint8Array(n).fill(n & 0xff)) },
      ),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, rawCuts) => {
        const bufs = frames.map((f) =>
          frame(f.opcode, Buffer.from(f.payload), { fin: f.fin, rsv: f.rsv, mask: f.masked ? Buffer.from([9, 0x80, 0xff, 0x31]) : null }),
        );
        const all = Buffer.concat(bufs);
        const cuts = [...new Set(rawCuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of [...cuts, all.length]) {
          chunks.push(Buffer.from(all.subarray(prev, c)));
          prev = c;
        }
        const got = parseAll(chunks).frames();
        assert.deepEqual(
          got,
          frames.map((f) => ({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked, length: f.payload.length, payload: Buffer.from(f.payload).toString('hex') })),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('an empty frame gets exactly one empty slice with last=true', () => {
    const sink = parseAll([hex('82 00'), hex('89 80 01 02 03 04')]);
    assert.deepEqual(sink.events, [
      { t: 'header', fin: true, rsv: 0, opcode: 2, masked: false, length: 0 },
      { t: 'payload', data: '', last: true },
      { t: 'header', fin: true, rsv: 0, opcode: 9, masked: true, length: 0 },
      { t: 'payload', data: '', last: true },
    ]);
  });

  it('payload slices are reported as they arrive, last only on the final one', () => {
    const sink = parseAll([hex('82 05 01 02'), hex('03'), hex('04 05 82')]);
    assert.deepEqual(sink.events.slice(0, 4), [
      { t: 'header', fin: true, rsv: 0, opcode: 2, masked: false, length: 5 },
      { t: 'payload', data: '0102', last: false },
      { t: 'payload', data: '03', last: false },
      { t: 'payload', data: '0405', last: true },
    ]);
    // The trailing 82 is the start of a header still waiting for its second byte.
    assert.equal(sink.events.length, 4);
  });

  it('reports RSV bits as a 3-bit number and any opcode (validation is the sink job)', () => {
    const sink = parseAll([hex('f3 00'), hex('4f 00'), hex('2b 00'), hex('1c 00')]);
    assert.deepEqual(
      sink.frames().map((f) => [f.fin, f.rsv, f.opcode]),
      [[true, 7, 3], [false, 4, 15], [false, 2, 11], [false, 1, 12]],
    );
  });

  it('ignores empty chunks', () => {
    const sink = new RecordingSink();
    const p = new FrameParser(sink);
    p.push(Buffer.alloc(0));
    p.push(hex('81'));
    p.push(Buffer.alloc(0));
    p.push(hex('01 41'));
    assert.deepEqual(sink.frames(), [{ fin: true, rsv: 0, opcode: 1, masked: false, length: 1, payload: '41' }]);
  });
});

describe('FrameParser: payload length encoding (RFC 6455 5.2)', () => {
  const accepted: Array<[string, string, number]> = [
    ['7-bit 125', '82 7d', 125],
    ['16-bit 126 (smallest 16-bit)', '82 7e 00 7e', 126],
    ['16-bit 65535', '82 7e ff ff', 65535],
    ['64-bit 65536 (smallest 64-bit)', '82 7f 00 00 00 00 00 01 00 00', 65536],
    ['64-bit 2^32+5', '82 7f 00 00 00 01 00 00 00 05', 2 ** 32 + 5],
    ['64-bit 2^53-1', '82 7f 00 1f ff ff ff ff ff ff', Number.MAX_SAFE_INTEGER],
  ];
  for (const [name, h, len] of accepted) {
    it(`accepts ${name}`, () => {
      const sink = parseAll([hex(h)]);
      assert.deepEqual(sink.events, [{ t: 'header', fin: true, rsv: 0, opcode: 2, masked: false, length: len }]);
    });
  }

  // "the minimal number of bytes MUST be used to encode the length"
  const nonMinimal: Array<[string, string]> = [
    ['16-bit 0', '82 7e 00 00'],
    ['16-bit 5', '82 7e 00 05'],
    ['16-bit 125', '82 7e 00 7d'],
    ['64-bit 0', '82 7f 00 00 00 00 00 00 00 00'],
    ['64-bit 125', '82 7f 00 00 00 00 00 00 00 7d'],
    ['64-bit 126', '82 7f 00 00 00 00 00 00 00 7e'],
    ['64-bit 65535', '82 7f 00 00 00 00 00 00 ff ff'],
    ['masked 16-bit 5', '82 fe 00 05 01 02 03 04'],
  ];
  for (const [name, h] of nonMinimal) {
    it(`rejects non-minimal ${name} with WS_ERR_NON_MINIMAL_LENGTH (1002) and stops`, () => {
      const sink = parseAll([hex(h), hex('81 01 41')]);
      assert.deepEqual(sink.events, [{ t: 'error', code: 'WS_ERR_NON_MINIMAL_LENGTH', closeCode: 1002 }]);
    });
  }

  // "the most significant bit MUST be 0"
  for (const h of ['82 7f 80 00 00 00 00 00 00 00', '82 7f ff ff ff ff ff ff ff ff', '82 7f 80 00 00 00 00 01 00 00']) {
    it(`rejects a 64-bit length with the top bit set (${h}) with 1002`, () => {
      const sink = parseAll([hex(h)]);
      assert.deepEqual(sink.events, [{ t: 'error', code: 'WS_ERR_INVALID_LENGTH', closeCode: 1002 }]);
    });
  }

  for (const h of ['82 7f 00 20 00 00 00 00 00 00', '82 7f 7f ff ff ff ff ff ff ff']) {
    it(`rejects a length above 2^53-1 (${h}) with 1009`, () => {
      const sink = parseAll([hex(h)]);
      assert.deepEqual(sink.events, [{ t: 'error', code: 'WS_ERR_UNSUPPORTED_LENGTH', closeCode: 1009 }]);
    });
  }

  it('rejects a non-minimal length split across chunks too', () => {
    const sink = parseAll(splitEvery(hex('82 ff 00 00 00 00 00 00 00 10 01 02 03 04'), 1));
    assert.deepEqual(sink.events, [{ t: 'error', code: 'WS_ERR_NON_MINIMAL_LENGTH', closeCode: 1002 }]);
  });
});

describe('FrameParser: stopping', () => {
  it('stops for good when onFrameHeader returns false', () => {
    const sink = new RecordingSink();
    sink.onHeader = () => false;
    const p = new FrameParser(sink);
    p.push(hex('81 01 41 81 01 42'));
    p.push(hex('81 01 43'));
    assert.deepEqual(sink.events, [{ t: 'header', fin: true, rsv: 0, opcode: 1, masked: false, length: 1 }]);
  });

  it('stops for good when onFramePayload returns false', () => {
    const sink = new RecordingSink();
    sink.onPayload = () => false;
    const p = new FrameParser(sink);
    p.push(hex('82 04 01 02'));
    p.push(hex('03 04 81 01 42'));
    assert.deepEqual(sink.events, [
      { t: 'header', fin: true, rsv: 0, opcode: 2, masked: false, length: 4 },
      { t: 'payload', data: '0102', last: false },
    ]);
  });

  it('stop() drops later input', () => {
    const sink = new RecordingSink();
    const p = new FrameParser(sink);
    p.push(hex('81 01 41 81'));
    p.stop();
    p.push(hex('01 42'));
    assert.equal(sink.frames().length, 1);
  });
});

describe('FrameParser: cold fields (memory per idle connection)', () => {
  const COLD = ['spill', 'spillLen', 'paused', 'pending'];
  const ownCold = (p: FrameParser): string[] => Object.keys(p).filter((k) => COLD.includes(k));

  it('whole headers and a stop leave them on the prototype; a split header or a pause makes all four own, in one order', () => {
    const whole = new FrameParser(new RecordingSink());
    whole.push(Buffer.concat([frame(0x1, 'abc'), frame(0x2, Buffer.alloc(200, 1))]));
    whole.stop();
    assert.deepEqual(ownCold(whole), []);

    const sink = new RecordingSink();
    const split = new FrameParser(sink);
    const f = frame(0x1, 'split');
    split.push(f.subarray(0, 3));
    split.push(f.subarray(3));
    assert.deepEqual(ownCold(split), COLD);
    assert.deepEqual(sink.frames().map((x) => x.payload), [Buffer.from('split').toString('hex')]);

    const pausing = new RecordingSink();
    pausing.onPayload = () => 'pause';
    const paused = new FrameParser(pausing);
    paused.push(Buffer.concat([frame(0x1, 'a'), frame(0x1, 'b')]));
    assert.equal(paused.isPaused, true);
    assert.deepEqual(ownCold(paused), COLD);
  });
});

describe('FrameParser: pause and resume', () => {
  it("holds input after 'pause' and replays it, in order, on resume()", () => {
    const sink = new RecordingSink();
    let pauseOn = '41';
    sink.onPayload = (d) => (d.toString('hex') === pauseOn ? 'pause' : true);
    const p = new FrameParser(sink);
    p.push(hex('81 01 41 81 01 42'));
    assert.equal(p.isPaused, true);
    assert.equal(sink.frames().length, 1);
    // Input pushed while paused waits behind the held remainder.
    p.push(hex('81 01 43 81'));
    p.push(hex('01 44'));
    assert.equal(sink.frames().length, 1);
    pauseOn = '43';
    p.resume();
    assert.equal(p.isPaused, true, 'paused again on the third frame');
    assert.deepEqual(sink.frames().map((f) => f.payload), ['41', '42', '43']);
    p.resume();
    assert.equal(p.isPaused, false);
    assert.deepEqual(sink.frames().map((f) => f.payload), ['41', '42', '43', '44']);
    p.push(hex('81 01 45'));
    assert.deepEqual(sink.frames().map((f) => f.payload), ['41', '42', '43', '44', '45']);
  });

  it('pausing on an empty frame holds the rest', () => {
    const sink = new RecordingSink();
    let first = true;
    sink.onPayload = () => {
      if (first) {
        first = false;
        return 'pause';
      }
      return true;
    };
    const p = new FrameParser(sink);
    p.push(hex('82 00 81 01 41'));
    assert.equal(sink.frames().length, 1);
    p.resume();
    assert.deepEqual(sink.frames().map((f) => f.payload), ['', '41']);
  });

  it('pausing at the very end of a chunk holds nothing and later chunks queue', () => {
    const sink = new RecordingSink();
    let first = true;
    sink.onPayload = () => {
      if (first) {
        first = false;
        return 'pause';
      }
      return true;
    };
    const p = new FrameParser(sink);
    p.push(hex('81 01 41'));
    assert.equal(p.isPaused, true);
    p.push(hex('81 01 42'));
    assert.equal(sink.frames().length, 1);
    p.resume();
    assert.deepEqual(sink.frames().map((f) => f.payload), ['41', '42']);
  });

  it('resume() without pause does nothing; stop() while paused drops held input', () => {
    const sink = new RecordingSink();
    sink.onPayload = () => 'pause';
    const p = new FrameParser(sink);
    p.push(hex('81 01 41 81 01 42'));
    p.stop();
    p.resume();
    p.push(hex('81 01 43'));
    assert.deepEqual(sink.frames().map((f) => f.payload), ['41']);
    const p2 = new FrameParser(new RecordingSink());
    p2.resume();
    assert.equal(p2.isPaused, false);
  });

  it('a pause mid-payload resumes with the right mask phase', () => {
    const sink = new RecordingSink();
    let n = 0;
    sink.onPayload = () => (n++ === 0 ? 'pause' : true);
    const p = new FrameParser(sink);
    const f = frame(0x2, Buffer.from('abcdefghij'), { mask: Buffer.from([0x11, 0x22, 0x33, 0x44]) });
    p.push(Buffer.from(f.subarray(0, 9))); // header (6) + 3 payload bytes
    p.push(Buffer.from(f.subarray(9)));
    p.resume();
    assert.equal(sink.frames()[0]!.payload, Buffer.from('abcdefghij').toString('hex'));
  });
});

describe('FrameParser: an injected native unmask (bufferutil-style, key at phase 0, through phaseZeroUnmask)', () => {
  /** A reference "native" unmask: whole buffer, key at phase 0; counts its calls. */
  function referenceUnmask() {
    const calls: number[] = [];
    const fn = (buf: Buffer, mask: Buffer): void => {
      calls.push(buf.length);
      for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ mask[i & 3]!;
    };
    return { fn, calls };
  }

  it('gives the same payloads as the built-in unmask for masked frames split anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 3000 }), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
        (payloads, key, cuts) => {
          const wire = Buffer.concat(payloads.map((p) => frame(0x2, Buffer.from(p), { mask: Buffer.from(key) })));
          // Cut the stream at the given (cycled) sizes so slices start at every mask phase.
          const chunks = cutCycled(wire, cuts);
          const plain = parseAll(chunks.map((c) => Buffer.from(c)));
          const native = referenceUnmask();
          const accel = new RecordingSink();
          const b = new FrameParser(accel, phaseZeroUnmask(native.fn));
          for (const c of chunks) b.push(Buffer.from(c));
          assert.deepEqual(accel.frames(), plain.frames());
          assert.deepEqual(accel.frames().map((f) => f.payload), payloads.map((p) => Buffer.from(p).toString('hex')));
          // Small slices stay on the built-in path; only slices of >= BULK_UNMASK_MIN bytes use the injected one.
          for (const n of native.calls) assert.ok(n >= BULK_UNMASK_MIN, `native called for a ${n}-byte slice`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is really used for large slices (one call for a 16 KiB frame in one chunk)', () => {
    const native = referenceUnmask();
    const sink = new RecordingSink();
    const p = new FrameParser(sink, phaseZeroUnmask(native.fn));
    const payload = Buffer.alloc(16384, 0x5a);
    p.push(frame(0x2, payload, { mask: hex('01 02 03 04') }));
    assert.deepEqual(native.calls, [16384]);
    assert.equal(sink.frames()[0]!.payload, payload.toString('hex'));
  });
});

describe('FrameParser: the WebAssembly SIMD bulk unmask', () => {
  it('the parser uses it for slices of BULK_UNMASK_MIN bytes and more, with the same payloads as without it', () => {
    const simd = sharedSimdUnmask();
    assert.ok(simd !== null, 'WebAssembly SIMD is missing on this runtime');
    const sizes: number[] = [];
    const spy: BulkUnmask = (buf, start, end, key, off) => {
      sizes.push(end - start);
      return simd(buf, start, end, key, off);
    };
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 6 }),
        fc.integer(),
        (lengths, key, cuts, seed) => {
          const payloads = lengths.map((n, i) => Buffer.from(Array.from({ length: n }, (_, j) => (seed + i * 7 + j * 31) & 0xff)));
          const wire = Buffer.concat(payloads.map((p) => frame(0x2, p, { mask: Buffer.from(key) })));
          const chunks = cutCycled(wire, cuts);
          const plain = parseAll(chunks.map((c) => Buffer.from(c)));
          sizes.length = 0;
          const fast = new RecordingSink();
          const b = new FrameParser(fast, spy);
          for (const c of chunks) b.push(Buffer.from(c));
          assert.deepEqual(fast.frames(), plain.frames());
          assert.deepEqual(fast.frames().map((f) => f.payload), payloads.map((p) => p.toString('hex')));
          for (const n of sizes) assert.ok(n >= BULK_UNMASK_MIN, `bulk unmask called for a ${n}-byte slice`);
        },
      ),
      { numRuns: 200 },
    );
    // And it is really called: one call for a 16 KiB frame in one chunk, none for a short one.
    sizes.length = 0;
    const p = new FrameParser(new RecordingSink(), spy);
    p.push(frame(0x2, Buffer.alloc(BULK_UNMASK_MIN - 1, 1), { mask: Buffer.from([1, 2, 3, 4]) }));
    p.push(frame(0x2, Buffer.alloc(16384, 1), { mask: Buffer.from([1, 2, 3, 4]) }));
    assert.deepEqual(sizes, [16384]);
  });

});

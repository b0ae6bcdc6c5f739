import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CloseCode,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  encodeFrameHeader,
  frameHeaderSize,
  isControlOpcode,
  isValidWireCloseCode,
  maskInto,
  unmaskInPlace,
  UNMASK_BITS_UNKNOWN,
} from '../../../src/protocol/frame.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Reference XOR, one byte at a time: RFC 6455 5.3 "j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j". */
function naiveMask(data: Uint8Array, mask: Uint8Array, offset = 0): Buffer {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ mask[(i + offset) % 4]!;
  return out;
}

// RFC 6455 5.7 sample key.
const RFC_KEY = hex('37 fa 21 3d');

describe('opcodes and constants', () => {
  it('match RFC 6455 5.2 / 11.8', () => {
    assert.deepEqual(
      [Opcode.Continuation, Opcode.Text, Opcode.Binary, Opcode.Close, Opcode.Ping, Opcode.Pong],
      [0x0, 0x1, 0x2, 0x8, 0x9, 0xa],
    );
    assert.equal(MAX_CONTROL_PAYLOAD, 125);
  });

  it('isControlOpcode is true exactly for 0x8-0xF (RFC 6455 5.5)', () => {
    for (let op = 0; op < 16; op++) assert.equal(isControlOpcode(op), op >= 8, `opcode ${op}`);
  });

  it('CloseCode values match RFC 6455 7.4.1 and the IANA registry', () => {
    assert.equal(CloseCode.Normal, 1000);
    assert.equal(CloseCode.GoingAway, 1001);
    assert.equal(CloseCode.ProtocolError, 1002);
    assert.equal(CloseCode.UnsupportedData, 1003);
    assert.equal(CloseCode.NoStatus, 1005);
    assert.equal(CloseCode.Abnormal, 1006);
    assert.equal(CloseCode.InvalidPayload, 1007);
    assert.equal(CloseCode.PolicyViolation, 1008);
    assert.equal(CloseCode.MessageTooBig, 1009);
    assert.equal(CloseCode.MandatoryExtension, 1010);
    assert.equal(CloseCode.InternalError, 1011);
    assert.equal(CloseCode.ServiceRestart, 1012);
    assert.equal(CloseCode.TryAgainLater, 1013);
    assert.equal(CloseCode.BadGateway, 1014);
    assert.equal(CloseCode.TlsHandshake, 1015);
  });
});

describe('encodeFrameHeader', () => {
  // RFC 6455 5.2: "Payload length: 7 bits, 7+16 bits, or 7+64 bits. [...] If 0-125,
  // that is the payload length. If 126, the following 2 bytes interpreted as a 16-bit
  // unsigned integer are the payload length. If 127, the following 8 bytes interpreted
  // as a 64-bit unsigned integer (the most significant bit MUST be 0) are the payload
  // length. Multibyte length quantities are expressed in network byte order. [...] the
  // minimal number of bytes MUST be used to encode the length."
  const unmasked: Array<[number, string]> = [
    [0, '82 00'],
    [1, '82 01'],
    [125, '82 7d'],
    [126, '82 7e 00 7e'],
    [127, '82 7e 00 7f'],
    [256, '82 7e 01 00'],
    [65535, '82 7e ff ff'],
    [65536, '82 7f 00 00 00 00 00 01 00 00'],
    [2 ** 32 - 1, '82 7f 00 00 00 00 ff ff ff ff'],
    [2 ** 32, '82 7f 00 00 00 01 00 00 00 00'],
    [2 ** 32 + 5, '82 7f 00 00 00 01 00 00 00 05'],
    [0x1234_5678_9abc, '82 7f 00 00 12 34 56 78 9a bc'],
    [Number.MAX_SAFE_INTEGER, '82 7f 00 1f ff ff ff ff ff ff'],
  ];
  for (const [len, fixture] of unmasked) {
    it(`length ${len}, unmasked -> ${fixture}`, () => {
      const h = encodeFrameHeader(true, Opcode.Binary, false, len, null);
      assert.equal(toHex(h), toHex(hex(fixture)));
      assert.equal(frameHeaderSize(len, false), h.length);
    });
    it(`length ${len}, masked: MASK bit set and key after the length`, () => {
      const h = encodeFrameHeader(true, Opcode.Binary, false, len, RFC_KEY);
      const expected = hex(fixture);
      expected[1] = expected[1]! | 0x80;
      assert.equal(toHex(h), toHex(Buffer.concat([expected, RFC_KEY])));
      assert.equal(frameHeaderSize(len, true), h.length);
    });
  }

  it('first byte: FIN, RSV1 and the opcode (RFC 6455 5.2)', () => {
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Text, false, 5, null)), '8105');
    assert.equal(toHex(encodeFrameHeader(false, Opcode.Text, false, 3, null)), '0103');
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Continuation, false, 2, null)), '8002');
    assert.equal(toHex(encodeFrameHeader(false, Opcode.Continuation, false, 0, null)), '0000');
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Text, true, 5, null)), 'c105');
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Close, false, 2, null)), '8802');
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Ping, false, 0, null)), '8900');
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Pong, false, 125, null)), '8a7d');
  });

  it('RFC 6455 5.7: headers of the sample frames', () => {
    // Single-frame unmasked text: 0x81 0x05 ...
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Text, false, 5, null)), '8105');
    // Single-frame masked text: 0x81 0x85 0x37 0xfa 0x21 0x3d ...
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Text, false, 5, RFC_KEY)), '818537fa213d');
    // 256 bytes binary in a single unmasked frame: 0x82 0x7E 0x0100
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Binary, false, 256, null)), '827e0100');
    // 64KiB binary in a single unmasked frame: 0x82 0x7F 0x0000000000010000
    assert.equal(toHex(encodeFrameHeader(true, Opcode.Binary, false, 65536, null)), '827f0000000000010000');
  });

  it('frameHeaderSize agrees with encodeFrameHeader for arbitrary lengths', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.boolean(), (len, masked) => {
        const h = encodeFrameHeader(true, Opcode.Binary, false, len, masked ? RFC_KEY : null);
        assert.equal(frameHeaderSize(len, masked), h.length);
        // Decode it back.
        const len7 = h[1]! & 0x7f;
        const decoded = len7 < 126 ? len7 : len7 === 126 ? h.readUInt16BE(2) : Number(h.readBigUInt64BE(2));
        assert.equal(decoded, len);
        assert.equal((h[1]! & 0x80) !== 0, masked);
      }),
      { numRuns: 500 },
    );
  });
});

describe('masking (RFC 6455 5.3)', () => {
  it("RFC 6455 5.7: 'Hello' masked with 37 fa 21 3d is 7f 9f 4d 51 58", () => {
    const unmaskedFrame = hex('81 05 48 65 6c 6c 6f');
    const maskedFrame = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
    assert.equal(unmaskedFrame.subarray(2).toString(), 'Hello');

    // Client side: header + maskInto.
    const out = Buffer.alloc(11);
    encodeFrameHeader(true, Opcode.Text, false, 5, RFC_KEY).copy(out, 0);
    maskInto(Buffer.from('Hello'), out, 6, RFC_KEY);
    assert.equal(toHex(out), toHex(maskedFrame));

    // Server side: unmask in place.
    const payload = Buffer.from(maskedFrame.subarray(6));
    unmaskInPlace(payload, 0, payload.length, RFC_KEY, 0);
    assert.equal(payload.toString(), 'Hello');
  });

  it("RFC 6455 5.7: the masked 'Hello' unmasks correctly in every split", () => {
    for (let cut = 0; cut <= 5; cut++) {
      const payload = hex('7f 9f 4d 51 58');
      unmaskInPlace(payload, 0, cut, RFC_KEY, 0);
      unmaskInPlace(payload, cut, 5, RFC_KEY, cut);
      assert.equal(payload.toString(), 'Hello', `cut at ${cut}`);
    }
  });

  it('unmaskInPlace word path (>= 96 bytes): every buffer alignment, phase and length matches the byte-wise reference, nothing outside touched', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 90, max: 700 }),
        (key, byteOffset, start, phase, len) => {
          // A view at an arbitrary offset into a larger ArrayBuffer, as pooled Node buffers are.
          const backing = new Uint8Array(byteOffset + start + len + 9);
          for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 7) & 0xff;
          const base = Buffer.from(backing.buffer, byteOffset, backing.length - byteOffset);
          const before = Buffer.from(base);
          unmaskInPlace(base, start, start + len, key, phase);
          const expected = Buffer.from(before);
          naiveMask(before.subarray(start, start + len), key, phase).copy(expected, start);
          assert.equal(toHex(base), toHex(expected));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('unmaskInPlace in a read of 256 bytes or more (small frames take the word path there): frames one after another match the reference, bits included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 256, max: 900 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 20 }),
        (byteOffset, readLength, slack, frames) => {
          // A read at an arbitrary offset into a larger ArrayBuffer, cut into
          // frames of 0-120 bytes (below, across and above the thresholds).
          // With no slack the read ends where its ArrayBuffer does, as Node's
          // reads do: its last 1-3 bytes are then outside any whole 32-bit word.
          const backing = new Uint8Array(byteOffset + readLength + slack);
          for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 7) & 0xff;
          const read = Buffer.from(backing.buffer, byteOffset, readLength);
          const expected = Buffer.from(read);
          let at = 0;
          // The last frame runs to the end of the read.
          for (const [key, len, phase] of [...frames, [frames[0]![0], readLength, 3] as const]) {
            const end = Math.min(readLength, at + len);
            const bits = unmaskInPlace(read, at, end, key, phase);
            const ref = naiveMask(expected.subarray(at, end), key, phase);
            ref.copy(expected, at);
            assert.equal(bits, ref.reduce((a, b) => a | b, 0), `bits of frame at ${at}`);
            at = end;
          }
          assert.equal(toHex(read), toHex(expected));
          const untouched = (from: number, to: number): string => toHex(Buffer.from(Array.from({ length: to - from }, (_, k) => ((from + k) * 131 + 7) & 0xff)));
          assert.equal(toHex(backing.subarray(0, byteOffset)), untouched(0, byteOffset), 'nothing before the read touched');
          assert.equal(toHex(backing.subarray(byteOffset + readLength)), untouched(byteOffset + readLength, backing.length), 'nothing after it');
        },
      ),
      { numRuns: 500 },
    );
  });

  it('unmaskInPlace at the very end of a read whose length is not a multiple of 4: every start, phase and alignment of the last bytes', () => {
    const key = hex('f1 82 c3 04');
    for (let length = 256; length < 264; length++) {
      for (let byteOffset = 0; byteOffset < 4; byteOffset++) {
        for (let start = length - byteOffset - 13; start < length - byteOffset; start++) {
          for (let phase = 0; phase < 4; phase++) {
            // The read is the whole of its ArrayBuffer past byteOffset, as Node's are.
            const backing = new Uint8Array(length);
            for (let i = 0; i < length; i++) backing[i] = (i * 29 + 3) & 0xff;
            const before = Buffer.from(backing);
            const read = Buffer.from(backing.buffer, byteOffset);
            const bits = unmaskInPlace(read, start, read.length, key, phase);
            const ref = naiveMask(before.subarray(byteOffset + start), key, phase);
            const expected = Buffer.concat([before.subarray(0, byteOffset + start), ref]);
            const what = `length ${length} byteOffset ${byteOffset} start ${start} phase ${phase}`;
            assert.equal(toHex(backing), toHex(expected), what);
            assert.equal(bits, ref.reduce((a, b) => a | b, 0), what);
          }
        }
      }
    }
  });

  it('unmaskInPlace at every mask phase offset, start and length, touching nothing outside the range', () => {
    const key = hex('a1 b2 c3 d4');
    const base = Buffer.alloc(40);
    for (let i = 0; i < base.length; i++) base[i] = (i * 37 + 11) & 0xff;
    for (let phase = 0; phase < 8; phase++) {
      for (let start = 0; start < 5; start++) {
        for (let len = 0; len <= 21; len++) {
          const buf = Buffer.from(base);
          unmaskInPlace(buf, start, start + len, key, phase);
          const expected = Buffer.from(base);
          naiveMask(base.subarray(start, start + len), key, phase).copy(expected, start);
          assert.equal(toHex(buf), toHex(expected), `phase ${phase} start ${start} len ${len}`);
        }
      }
    }
  });

  it('unmaskInPlace returns the unmasked bytes OR-ed together (the ASCII hint), on the byte and the word path', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat(7), fc.nat(3), (data, key, phase, start) => {
        const buf = Buffer.concat([Buffer.alloc(start, 0xff), Buffer.from(data), Buffer.alloc(3, 0xff)]);
        const bits = unmaskInPlace(buf, start, start + data.length, key, phase);
        const unmasked = naiveMask(Buffer.from(data), key, phase);
        assert.equal(bits, unmasked.reduce((a, b) => a | b, 0));
        assert.notEqual(bits, UNMASK_BITS_UNKNOWN);
      }),
      { numRuns: 1000 },
    );
  });

  it('unmaskInPlace word path: one non-ASCII byte anywhere in an ASCII payload shows in the hint (every word of the four-word loop and its remainder)', () => {
    const key = hex('5a 0f c3 81');
    for (const len of [96, 97, 98, 99, 100, 101, 102, 103, 131]) {
      for (let start = 0; start < 4; start++) {
        for (let phase = 0; phase < 4; phase++) {
          const ascii = Buffer.alloc(len, 0x61);
          const masked = naiveMask(ascii, key, phase);
          const buf = Buffer.concat([Buffer.alloc(start, 0xff), masked, Buffer.alloc(3, 0xff)]);
          assert.ok(unmaskInPlace(Buffer.from(buf), start, start + len, key, phase) < 0x80, `all ASCII: len ${len} start ${start} phase ${phase}`);
          for (let at = 0; at < len; at++) {
            const one = Buffer.from(ascii);
            one[at] = 0xc3;
            const b = Buffer.concat([Buffer.alloc(start, 0x00), naiveMask(one, key, phase), Buffer.alloc(3, 0x00)]);
            const bits = unmaskInPlace(b, start, start + len, key, phase);
            assert.ok((bits & 0x80) !== 0, `0xc3 at ${at}: len ${len} start ${start} phase ${phase}`);
            assert.equal(b.subarray(start, start + len).toString('latin1'), one.toString('latin1'));
          }
        }
      }
    }
  });

  it('unmaskInPlace word path: right in buffers of any offset, one after another (the cached 32-bit view follows the buffer)', () => {
    const key = hex('0f f0 aa 55');
    // Pooled Buffers (shared ArrayBuffer, odd byteOffsets) and ones of their own, alternating.
    for (let n = 0; n < 50; n++) {
      const own = n % 2 === 0;
      const data = Buffer.from(Array.from({ length: 96 + n }, (_, i) => (i * 31 + n) & 0xff));
      const buf = own ? Buffer.from(new Uint8Array(data)) : Buffer.from(data);
      const expected = naiveMask(data, key, n);
      unmaskInPlace(buf, 0, buf.length, key, n);
      assert.equal(toHex(buf), toHex(expected), `buffer ${n} (${own ? 'own' : 'pooled'}, offset ${buf.byteOffset})`);
    }
  });

  it('unmaskInPlace is an involution', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64, size: 'max' }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat(1000), (data, key, phase) => {
        const buf = Buffer.from(data);
        unmaskInPlace(buf, 0, buf.length, key, phase);
        unmaskInPlace(buf, 0, buf.length, key, phase);
        assert.equal(toHex(buf), toHex(data));
      }),
      { numRuns: 300 },
    );
  });

  it('chunk-by-chunk unmasking (maskOffset = bytes seen so far) equals one-shot masking', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200, size: 'max' }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.nat(200), { maxLength: 8 }),
        (data, key, rawCuts) => {
          const cuts = [...new Set(rawCuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          const buf = Buffer.from(data);
          let prev = 0;
          for (const c of [...cuts, data.length]) {
            unmaskInPlace(buf, prev, c, key, prev);
            prev = c;
          }
          assert.equal(toHex(buf), toHex(naiveMask(data, key)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('maskInto writes masked bytes at dstOffset for every length 0..20 and leaves the rest alone', () => {
    const key = hex('01 80 fe 7f');
    for (let len = 0; len <= 20; len++) {
      for (let off = 0; off < 5; off++) {
        const src = Buffer.alloc(len);
        for (let i = 0; i < len; i++) src[i] = (i * 91 + 3) & 0xff;
        const dst = Buffer.alloc(off + len + 3, 0xee);
        maskInto(src, dst, off, key);
        const expected = Buffer.alloc(off + len + 3, 0xee);
        naiveMask(src, key).copy(expected, off);
        assert.equal(toHex(dst), toHex(expected), `len ${len} off ${off}`);
      }
    }
  });

  it('maskInto agrees with the reference on arbitrary data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300, size: 'max' }), fc.uint8Array({ minLength: 4, maxLength: 4 }), (data, key) => {
        const dst = Buffer.alloc(data.length);
        maskInto(data, dst, 0, key);
        assert.equal(toHex(dst), toHex(naiveMask(data, key)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('isValidWireCloseCode (RFC 6455 7.4.1, 7.4.2)', () => {
  // [from, to inclusive, may be sent in a close frame]
  const table: Array<[number, number, boolean]> = [
    [0, 999, false], // 0-999: not used (7.4.2)
    [1000, 1003, true], // normal, going away, protocol error, unsupported data
    [1004, 1004, false], // reserved
    [1005, 1006, false], // no status / abnormal: MUST NOT be set in a close frame
    [1007, 1014, true], // invalid payload .. bad gateway (IANA registry)
    [1015, 1015, false], // TLS handshake: MUST NOT be set in a close frame
    [1016, 2999, false], // reserved for future RFCs
    [3000, 4999, true], // libraries, frameworks and applications
    [5000, 65535, false], // undefined
  ];
  for (const [from, to, ok] of table) {
    it(`${from}-${to}: ${ok ? 'valid' : 'invalid'}`, () => {
      for (let code = from; code <= to; code++) {
        assert.equal(isValidWireCloseCode(code), ok, `code ${code}`);
      }
    });
  }

  it('non-integer and non-finite numbers are not close codes', () => {
    for (const code of [1000.5, 1001.0001, 3000.25, 4999.9, Number.NaN, Infinity, -Infinity, -1000]) {
      assert.equal(isValidWireCloseCode(code), false, `code ${code}`);
    }
  });

  it('table covers every 16-bit code exactly once', () => {
    let next = 0;
    for (const [from, to] of table) {
      assert.equal(from, next);
      next = to + 1;
    }
    assert.equal(next, 65536);
  });
});

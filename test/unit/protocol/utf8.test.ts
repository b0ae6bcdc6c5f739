import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { ASCII_SCAN_MAX, Utf8Validator, isShortAscii, isValidUtf8 } from '../../../src/protocol/utf8.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Feeds `buf` one byte at a time; returns the index of the first byte update() rejects, or -1. */
function failIndexByteByByte(buf: Uint8Array): number {
  const v = new Utf8Validator();
  for (let i = 0; i < buf.length; i++) {
    if (!v.update(buf, i, i + 1)) return i;
  }
  return -1;
}

/** Validates `buf` fed in chunks cut at `cuts`; true when every update passes and it ends on a boundary. */
function validateInChunks(buf: Uint8Array, cuts: number[]): boolean {
  const v = new Utf8Validator();
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const c of [...points, buf.length]) {
    if (!v.update(buf, prev, c)) return false;
    prev = c;
  }
  return v.atBoundary;
}

/**
 * Reference for fail-fast: the first index i such that buf[0..i] cannot be the
 * prefix of any valid UTF-8 string. A prefix is extendable iff some completion
 * of 0-3 continuation bytes makes it valid; trying the boundaries of every
 * continuation range (Unicode table 3-7) is enough.
 */
const COMPLETION_BYTES = [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf];
function extendable(prefix: Buffer): boolean {
  if (isUtf8(prefix)) return true;
  const tryLen = (p: Buffer, left: number): boolean => {
    if (left === 0) return false;
    for (const b of COMPLETION_BYTES) {
      const q = Buffer.concat([p, Buffer.of(b)]);
      if (isUtf8(q) || tryLen(q, left - 1)) return true;
    }
    return false;
  };
  return tryLen(prefix, 3);
}
function referenceFailIndex(buf: Uint8Array): number {
  for (let i = 0; i < buf.length; i++) {
    // buf[0..i) is an extendable prefix here, so any non-continuation byte in it starts a
    // code point: checking the window from such a byte (at most a few back) is enough.
    let start = Math.max(0, i - 4);
    while (start > 0 && (buf[start]! & 0xc0) === 0x80) start--;
    if (!extendable(Buffer.from(buf.subarray(start, i + 1)))) return i;
  }
  return -1;
}

describe('Utf8Validator: valid vectors', () => {
  const valid: Array<[string, string]> = [
    ['empty', ''],
    ['ASCII', '48 65 6c 6c 6f'],
    ['NUL and DEL', '00 7f'],
    ['U+0080 (first 2-byte)', 'c2 80'],
    ['U+00E9 é', 'c3 a9'],
    ['U+07FF (last 2-byte)', 'df bf'],
    ['U+0800 (first 3-byte)', 'e0 a0 80'],
    ['U+20AC €', 'e2 82 ac'],
    ['U+D7FF (last before surrogates)', 'ed 9f bf'],
    ['U+E000 (first after surrogates)', 'ee 80 80'],
    ['U+FFFD', 'ef bf bd'],
    ['U+FFFF (last 3-byte)', 'ef bf bf'],
    ['U+10000 (first 4-byte)', 'f0 90 80 80'],
    ['U+1D11E 𝄞', 'f0 9d 84 9e'],
    ['U+FFFFF', 'f3 bf bf bf'],
    ['U+100000', 'f4 80 80 80'],
    ['U+10FFFF (last code point)', 'f4 8f bf bf'],
    // Autobahn 6.2: "Hello-µ@ßöäüàá-UTF-8!!"
    ['Autobahn 6.2', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!').toString('hex')],
    // "κόσμε" (Markus Kuhn's test file)
    ['kosme', 'ce ba e1 bd b9 cf 83 ce bc ce b5'],
  ];
  for (const [name, h] of valid) {
    it(name, () => {
      const buf = hex(h);
      assert.equal(isValidUtf8(buf), true);
      assert.equal(failIndexByteByByte(buf), -1);
      const v = new Utf8Validator();
      assert.equal(v.update(buf, 0, buf.length), true);
      assert.equal(v.atBoundary, true);
      assert.equal(isUtf8(buf), true, 'fixture sanity');
    });
  }
});

describe('Utf8Validator: invalid vectors fail at the first invalid byte', () => {
  // [name, bytes, index of the first byte that makes the input invalid]
  const invalid: Array<[string, string, number]> = [
    ['overlong 2-byte NUL C0 80', 'c0 80', 0],
    ['overlong 2-byte C1 BF', 'c1 bf', 0],
    ['overlong 3-byte E0 80 80', 'e0 80 80', 1],
    ['overlong 3-byte E0 9F BF', 'e0 9f bf', 1],
    ['overlong 4-byte F0 80 80 80', 'f0 80 80 80', 1],
    ['overlong 4-byte F0 8F BF BF', 'f0 8f bf bf', 1],
    ['surrogate U+D800 ED A0 80', 'ed a0 80', 1],
    ['surrogate U+DFFF ED BF BF', 'ed bf bf', 1],
    ['surrogate pair as CESU-8', 'ed a0 bd ed b2 a9', 1],
    ['above U+10FFFF: F4 90 80 80', 'f4 90 80 80', 1],
    ['above U+10FFFF: F4 BF BF BF', 'f4 bf bf bf', 1],
    ['F5 lead', 'f5 80 80 80', 0],
    ['F7 lead', 'f7 bf bf bf', 0],
    ['F8 (old 5-byte) lead', 'f8 88 80 80 80', 0],
    ['FC (old 6-byte) lead', 'fc 84 80 80 80 80', 0],
    ['FE', 'fe', 0],
    ['FF', 'ff', 0],
    ['stray continuation 80', '80', 0],
    ['stray continuation BF', 'bf', 0],
    ['stray continuation after ASCII', '41 42 80', 2],
    ['extra continuation after a 2-byte sequence', 'c3 a9 a9', 2],
    ['extra continuation after a 4-byte sequence', 'f0 9d 84 9e 80', 4],
    ['truncated 2-byte then ASCII', 'c3 41', 1],
    ['truncated 3-byte then ASCII', 'e2 82 41', 2],
    ['truncated 4-byte then ASCII', 'f0 9d 84 41', 3],
    ['truncated 3-byte then a new lead', 'e2 82 e2 82 ac', 2],
    ['truncated 4-byte then a new lead', 'f0 9d c3 a9', 2],
    // Autobahn 6.4.1-like: valid "κόσμε" then a surrogate, then more text.
    ['kosme + ED A0 80 + edited', 'ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64', 12],
    // Autobahn 6.4.2-like: F4 90 in the middle.
    ['kosme + F4 90 80 80', 'ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80 65 64 69 74 65 64', 12],
  ];
  for (const [name, h, at] of invalid) {
    it(`${name} -> byte ${at}`, () => {
      const buf = hex(h);
      assert.equal(isUtf8(buf), false, 'fixture sanity');
      assert.equal(isValidUtf8(buf), false);
      assert.equal(failIndexByteByByte(buf), at);
      assert.equal(referenceFailIndex(buf), at, 'reference agrees');
      // The bytes before the failure are accepted as a prefix.
      const v = new Utf8Validator();
      assert.equal(v.update(buf, 0, at), true);
      const whole = new Utf8Validator();
      assert.equal(whole.update(buf, 0, buf.length), false);
    });
  }

  const truncated: Array<[string, string]> = [
    ['lone 2-byte lead', 'c3'],
    ['lone 3-byte lead', 'e2'],
    ['3-byte missing one', 'e2 82'],
    ['lone 4-byte lead', 'f0'],
    ['4-byte missing two', 'f0 9d'],
    ['4-byte missing one', 'f0 9d 84'],
    ['valid text then a truncated sequence', '48 69 20 e2 82'],
  ];
  for (const [name, h] of truncated) {
    it(`truncated at the end: ${name} (not invalid yet, but not at a boundary)`, () => {
      const buf = hex(h);
      assert.equal(isValidUtf8(buf), false);
      assert.equal(failIndexByteByByte(buf), -1, 'no byte is invalid by itself');
      const v = new Utf8Validator();
      assert.equal(v.update(buf, 0, buf.length), true);
      assert.equal(v.atBoundary, false);
      assert.equal(referenceFailIndex(buf), -1);
    });
  }
});

describe('Utf8Validator: state handling', () => {
  it('reset() clears a pending sequence', () => {
    const v = new Utf8Validator();
    assert.equal(v.update(hex('e2 82'), 0, 2), true);
    assert.equal(v.atBoundary, false);
    v.reset();
    assert.equal(v.atBoundary, true);
    assert.equal(v.update(hex('41'), 0, 1), true);
  });

  it('a narrowed range (E0, ED, F0, F4) applies to the next byte only, across chunk boundaries', () => {
    const v = new Utf8Validator();
    // E0 then A0 (chunk 1 / chunk 2), then 80 in chunk 3: U+0800.
    assert.equal(v.update(hex('e0'), 0, 1), true);
    assert.equal(v.update(hex('a0'), 0, 1), true);
    assert.equal(v.update(hex('80'), 0, 1), true);
    assert.equal(v.atBoundary, true);
    // F4 8F then BF BF, split after the lead byte.
    assert.equal(v.update(hex('f4'), 0, 1), true);
    assert.equal(v.update(hex('8f bf bf'), 0, 3), true);
    assert.equal(v.atBoundary, true);
    // ED then 80 across chunks is fine; ED then A0 across chunks is not.
    assert.equal(v.update(hex('ed'), 0, 1), true);
    assert.equal(v.update(hex('80 80'), 0, 2), true);
    assert.equal(v.update(hex('ed'), 0, 1), true);
    assert.equal(v.update(hex('a0'), 0, 1), false);
  });

  it('update() honours start/end and ignores bytes outside the range', () => {
    const buf = hex('ff 41 c3 a9 ff');
    const v = new Utf8Validator();
    assert.equal(v.update(buf, 1, 4), true);
    assert.equal(v.atBoundary, true);
    assert.equal(isValidUtf8(buf, 1, 4), true);
    assert.equal(isValidUtf8(buf, 1, 3), false);
    assert.equal(isValidUtf8(buf, 0, 4), false);
    assert.equal(isValidUtf8(buf, 2, 5), false);
  });

  it('isValidUtf8 does not leak state between calls', () => {
    assert.equal(isValidUtf8(hex('e2 82')), false);
    assert.equal(isValidUtf8(hex('41')), true);
    assert.equal(isValidUtf8(hex('ff')), false);
    assert.equal(isValidUtf8(hex('ac')), false, 'must not complete the earlier E2 82');
    assert.equal(isValidUtf8(hex('')), true);
  });
});

describe('Utf8Validator: exhaustive agreement with buffer.isUtf8', () => {
  it('every 1- and 2-byte input', () => {
    const b1 = Buffer.alloc(1);
    for (let a = 0; a < 256; a++) {
      b1[0] = a;
      assert.equal(isValidUtf8(b1), isUtf8(b1), `byte ${a.toString(16)}`);
    }
    const b2 = Buffer.alloc(2);
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        b2[0] = a;
        b2[1] = b;
        if (isValidUtf8(b2) !== isUtf8(b2)) assert.fail(`bytes ${b2.toString('hex')}`);
      }
    }
  });

  it('every 3-byte input with a lead byte E0..EF, and 4-byte inputs F0..F7 x all x boundary bytes', () => {
    const b3 = Buffer.alloc(3);
    for (let a = 0xe0; a <= 0xef; a++) {
      for (let b = 0; b < 256; b++) {
        for (let c = 0; c < 256; c++) {
          b3[0] = a;
          b3[1] = b;
          b3[2] = c;
          if (isValidUtf8(b3) !== isUtf8(b3)) assert.fail(`bytes ${b3.toString('hex')}`);
        }
      }
    }
    const edges = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
    const b4 = Buffer.alloc(4);
    for (let a = 0xf0; a <= 0xf7; a++) {
      for (let b = 0; b < 256; b++) {
        for (const c of edges) {
          for (const d of edges) {
            b4[0] = a;
            b4[1] = b;
            b4[2] = c;
            b4[3] = d;
            if (isValidUtf8(b4) !== isUtf8(b4)) assert.fail(`bytes ${b4.toString('hex')}`);
          }
        }
      }
    }
  });
});

/** Byte arrays that look like UTF-8 often enough to reach deep states: valid pieces mixed with random bytes. */
const utf8ishBytes = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 4 }).map((s) => Buffer.from(s)),
      fc.uint8Array({ minLength: 1, maxLength: 2 }).map((a) => Buffer.from(a)),
      fc.constantFrom(...[0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x9f, 0xa0, 0x8f, 0x90].map((b) => Buffer.of(b))),
    ),
    { maxLength: 30, size: 'max' },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

describe('Utf8Validator: properties', () => {
  it('Buffer.from(s) validates for any string s, in any split', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme', size: 'medium' }),
          fc.string({ unit: 'binary', size: 'medium' }),
          fc.string({ unit: 'grapheme-composite', size: 'medium' }),
        ),
        fc.array(fc.nat(), { maxLength: 10 }),
        (s, cuts) => {
          const buf = Buffer.from(s);
          assert.equal(isValidUtf8(buf), true);
          assert.equal(validateInChunks(buf, cuts), true);
          assert.equal(failIndexByteByByte(buf), -1);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('agrees with buffer.isUtf8 on arbitrary bytes fed in arbitrary splits', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64, size: 'max' }), utf8ishBytes), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const expected = isUtf8(bytes);
        assert.equal(isValidUtf8(bytes), expected);
        assert.equal(validateInChunks(bytes, cuts), expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('fails fast: byte-by-byte, the failure is at the first byte that no continuation could make valid', () => {
    fc.assert(
      fc.property(utf8ishBytes, (bytes) => {
        const at = failIndexByteByByte(bytes);
        assert.equal(at, referenceFailIndex(bytes));
        if (at >= 0) {
          // And fed whole, update() rejects it too, while the prefix before it is accepted.
          assert.equal(new Utf8Validator().update(bytes, 0, bytes.length), false);
          assert.equal(new Utf8Validator().update(bytes, 0, at), true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('isShortAscii (the short-message fast path before the validator)', () => {
  it('true only for ranges of at most ASCII_SCAN_MAX bytes, all below 0x80; only the range is read', () => {
    const buf = Buffer.alloc(ASCII_SCAN_MAX + 4, 0x7f);
    buf[0] = 0xff;
    buf[buf.length - 1] = 0x80;
    assert.equal(isShortAscii(buf, 1, 1 + ASCII_SCAN_MAX), true, 'exactly ASCII_SCAN_MAX bytes, non-ASCII on both sides');
    assert.equal(isShortAscii(buf, 1, 2 + ASCII_SCAN_MAX), false, 'one byte too long (left to the validator)');
    assert.equal(isShortAscii(buf, 0, 10), false, 'starts on 0xff');
    assert.equal(isShortAscii(buf, buf.length - 5, buf.length), false, 'ends on 0x80');
    assert.equal(isShortAscii(buf, 5, 5), true, 'empty range');
  });

  it('never says yes to bytes that are not valid UTF-8, property', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: ASCII_SCAN_MAX + 8 }), (bytes) => {
        if (isShortAscii(bytes, 0, bytes.length)) assert.ok(isUtf8(bytes) && bytes.every((b) => b < 0x80));
        else assert.ok(bytes.length > ASCII_SCAN_MAX || bytes.some((b) => b >= 0x80));
      }),
      { numRuns: 1000 },
    );
  });
});

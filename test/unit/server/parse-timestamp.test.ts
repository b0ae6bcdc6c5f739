// parseTimestamp: how the server reads back the timestamp its protocol ping
// carried from the pong's payload. Whole numbers of up to 15 digits are read
// off the bytes; every payload must give exactly what Number() of its latin1
// text gives (the behaviour before the fast path), NaN included.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseTimestamp as parseRange } from '../../../src/server/lifeline-server.js';

const parseTimestamp = (b: Buffer): number => parseRange(b, 0, b.length);

const viaNumber = (b: Buffer): number => Number(b.toString('latin1'));

describe('parseTimestamp', () => {
  it('reads Date.now()-sized timestamps and small ones', () => {
    assert.equal(parseTimestamp(Buffer.from('1763800000123')), 1763800000123);
    assert.equal(parseTimestamp(Buffer.from('0')), 0);
    assert.equal(parseTimestamp(Buffer.from('999999999999999')), 999999999999999);
    assert.equal(parseTimestamp(Buffer.from('007')), 7);
  });

  it('anything else goes the way Number() goes: empty is 0, junk is NaN, fractions and 16+ digits parse', () => {
    assert.equal(parseTimestamp(Buffer.alloc(0)), 0);
    assert.ok(Number.isNaN(parseTimestamp(Buffer.from('keepalive'))));
    assert.equal(parseTimestamp(Buffer.from('1763800000123.25')), 1763800000123.25);
    assert.equal(parseTimestamp(Buffer.from(' 12 ')), 12);
    assert.equal(parseTimestamp(Buffer.from('1234567890123456')), 1234567890123456);
  });

  it('reads only its range of a larger chunk (digits on both sides)', () => {
    const chunk = Buffer.from('99' + '1763800000123' + '77');
    assert.equal(parseRange(chunk, 2, 15), 1763800000123);
    assert.equal(parseRange(chunk, 2, 2), 0, 'an empty range, as Number() of nothing');
    const junk = Buffer.from('12x.5e3');
    assert.equal(parseRange(junk, 3, 5), 0.5, "the general path reads the range's text only");
  });

  it('agrees with Number() on any payload (property)', () => {
    const digits = fc.stringMatching(/^[0-9]{1,18}$/);
    const anyBytes = fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(digits.map((s) => Buffer.from(s, 'latin1')), anyBytes), (b) => {
        assert.ok(Object.is(parseTimestamp(b), viaNumber(b)), JSON.stringify(b.toString('latin1')));
      }),
      { numRuns: 2000 },
    );
  });
});

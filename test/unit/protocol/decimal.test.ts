// decimalDigits / putDecimalBefore: the digits of sequence numbers and ping
// timestamps, written without a string, must be exactly String(n)'s.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { decimalDigits, putDecimalBefore } from '../../../src/protocol/decimal.js';

/** The digits as written into a buffer with a guard byte on each side. */
function written(n: number): { text: string; first: number; guards: [number, number] } {
  const len = decimalDigits(n);
  const buf = new Uint8Array(len + 2).fill(0xee);
  const first = putDecimalBefore(buf, len + 1, n);
  return { text: Buffer.from(buf.subarray(1, len + 1)).toString('latin1'), first, guards: [buf[0]!, buf[len + 1]!] };
}

describe('decimal digits', () => {
  // Every power of ten and its neighbours, across both branches' boundaries
  // and the 32-bit one where putDecimalBefore switches to float division.
  const boundaries: number[] = [0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  for (let p = 1; p <= 1e15; p *= 10) boundaries.push(p - 1, p, p + 1);

  it('match String(n) at every power of ten, its neighbours, 2^31, 2^32 and 2^53 - 1', () => {
    for (const n of boundaries) {
      assert.equal(decimalDigits(n), String(n).length, `decimalDigits(${n})`);
      const w = written(n);
      assert.equal(w.text, String(n), `putDecimalBefore(${n})`);
      assert.equal(w.first, 1, `returns where the first digit is, for ${n}`);
      assert.deepEqual(w.guards, [0xee, 0xee], `writes nothing outside its digits, for ${n}`);
    }
  });

  it('match String(n) for any safe integer >= 0', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.maxSafeNat()), (n) => {
        const w = written(n);
        return decimalDigits(n) === String(n).length && w.text === String(n) && w.first === 1 && w.guards[0] === 0xee && w.guards[1] === 0xee;
      }),
      { numRuns: 2000 },
    );
  });
});

// RandomPool: random values cut from one pooled buffer. Each byte of a fill
// is handed out once, in order; a value that does not fit in what is left
// takes a fresh fill; what was handed out is wiped from the pool.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';

import { UsageError } from '../../../src/protocol/errors.js';
import { RandomPool, randomPool } from '../../../src/protocol/random-pool.js';

/** A fill that writes a counter (1, 2, 3, ...) across fills, and keeps what it filled. */
function countingFill() {
  let next = 1;
  const fills: Uint8Array[] = [];
  return {
    fills,
    fill(buf: Uint8Array): void {
      for (let i = 0; i < buf.length; i++) buf[i] = next++ & 0xff;
      fills.push(buf);
    },
  };
}

const hex = (...b: number[]) => Buffer.from(b).toString('hex');

describe('RandomPool', () => {
  it('hands out the bytes of one fill in order, each once, in the encoding asked for', () => {
    const src = countingFill();
    const pool = new RandomPool(8, src.fill);
    assert.equal(src.fills.length, 0, 'nothing is filled before the first take');
    assert.equal(pool.take(3, 'hex'), hex(1, 2, 3));
    assert.equal(pool.take(2, 'base64'), Buffer.from([4, 5]).toString('base64'));
    assert.equal(pool.take(3, 'base64url'), Buffer.from([6, 7, 8]).toString('base64url'));
    assert.equal(src.fills.length, 1, 'eight bytes taken, one fill');
  });

  it('fills again when a value does not fit in what is left, and skips the rest', () => {
    const src = countingFill();
    const pool = new RandomPool(8, src.fill);
    assert.equal(pool.take(5, 'hex'), hex(1, 2, 3, 4, 5));
    // 3 bytes left (6, 7, 8): a 4-byte value comes from the next fill (9..16).
    assert.equal(pool.take(4, 'hex'), hex(9, 10, 11, 12));
    assert.equal(src.fills.length, 2);
  });

  it('wipes what it handed out from the pool', () => {
    const src = countingFill();
    const pool = new RandomPool(8, src.fill);
    pool.take(3, 'hex');
    const buf = src.fills[0]!;
    assert.deepEqual([...buf], [0, 0, 0, 4, 5, 6, 7, 8]);
  });

  it('refuses sizes and counts it cannot serve', () => {
    for (const size of [0, -1, 1.5, 65537, Number.NaN]) {
      assert.throws(() => new RandomPool(size), UsageError, `size ${size}`);
    }
    const pool = new RandomPool(16);
    for (const n of [0, -1, 2.5, 17, Number.NaN]) {
      assert.throws(() => pool.take(n, 'hex'), UsageError, `take ${n}`);
    }
    assert.equal(pool.take(16, 'hex').length, 32, 'the whole pool at once is allowed');
  });

  it('the shared pool gives distinct values of the right length from the real CSPRNG', () => {
    const seen = new Set<string>();
    // More than one fill of the default 4 KiB pool.
    for (let i = 0; i < 600; i++) {
      const v = randomPool.take(12, 'base64url');
      assert.equal(Buffer.from(v, 'base64url').length, 12);
      seen.add(v);
    }
    assert.equal(seen.size, 600);
  });
});

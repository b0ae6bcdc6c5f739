// Reconnect delays (src/session/backoff.ts): exponential backoff with full
// jitter. Attempt n (0-based) waits floor(random() * min(cap, base * 2^n)) ms,
// i.e. uniformly in [0, ceiling). Bounds, mean, cap, reset, give-up and
// option validation, all with a seeded random source.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { BackoffPolicy, seededRandom } from '../../../src/session/backoff.js';
import { UsageError } from '../../../src/protocol/errors.js';

const expectedCeiling = (base: number, cap: number, n: number): number => Math.min(cap, base * 2 ** n);

describe('seededRandom', () => {
  it('is deterministic per seed, differs between seeds, and stays in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(Array.from({ length: 1000 }, () => b()), xs);
    assert.notDeepEqual(Array.from({ length: 1000 }, () => c()), xs);
    for (const x of xs) assert.ok(x >= 0 && x < 1, String(x));
  });

  it('is roughly uniform: 10 buckets of 100k draws each hold 10% +- 0.5%', () => {
    const r = seededRandom(7);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) buckets[Math.floor(r() * 10)]!++;
    // Binomial sd per bucket: sqrt(n * 0.1 * 0.9) ~ 95, i.e. 0.095%; 0.5% is over 5 sd.
    for (const b of buckets) assert.ok(Math.abs(b / n - 0.1) < 0.005, `bucket share ${b / n}`);
  });
});

describe('BackoffPolicy', () => {
  it('defaults: base 500, cap 30000, unlimited attempts', () => {
    const p = new BackoffPolicy();
    assert.equal(p.base, 500);
    assert.equal(p.cap, 30_000);
    assert.equal(p.maxAttempts, Infinity);
    assert.equal(p.attempts, 0);
  });

  it('ceiling(n) = min(cap, base * 2^n), also for huge n (no NaN/Infinity)', () => {
    const p = new BackoffPolicy({ base: 100, cap: 10_000 });
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => p.ceiling(n)), [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    assert.equal(p.ceiling(1024), 10_000, '2^1024 is Infinity in floating point');
    assert.equal(p.ceiling(1e9), 10_000);
  });

  it('every delay lies in [0, min(cap, base*2^n)) and is an integer', () => {
    const base = 250;
    const cap = 20_000;
    const p = new BackoffPolicy({ base, cap, random: seededRandom(1) });
    for (let run = 0; run < 200; run++) {
      p.reset();
      for (let n = 0; n < 20; n++) {
        const d = p.next();
        assert.ok(Number.isInteger(d), `attempt ${n}: ${d}`);
        assert.ok(d >= 0 && d < expectedCeiling(base, cap, n), `attempt ${n}: ${d} not in [0, ${expectedCeiling(base, cap, n)})`);
      }
    }
  });

  it('the extremes of random() map to 0 and ceiling - 1', () => {
    let x = 0;
    const p = new BackoffPolicy({ base: 100, cap: 1000, random: () => x });
    x = 0;
    assert.equal(p.next(), 0);
    x = 1 - Number.EPSILON;
    assert.equal(p.next(), 199);
    x = 0.5;
    assert.equal(p.next(), 200);
  });

  it('mean delay per attempt is close to ceiling/2 (full jitter), spread over the whole range', () => {
    const base = 500;
    const cap = 30_000;
    const attempts = 10;
    const runs = 20_000;
    const p = new BackoffPolicy({ base, cap, random: seededRandom(2024) });
    const sum = new Array<number>(attempts).fill(0);
    const min = new Array<number>(attempts).fill(Infinity);
    const max = new Array<number>(attempts).fill(-Infinity);
    for (let r = 0; r < runs; r++) {
      p.reset();
      for (let n = 0; n < attempts; n++) {
        const d = p.next();
        sum[n]! += d;
        min[n] = Math.min(min[n]!, d);
        max[n] = Math.max(max[n]!, d);
      }
    }
    for (let n = 0; n < attempts; n++) {
      const c = expectedCeiling(base, cap, n);
      const mean = sum[n]! / runs;
      // floor(U * c) has mean (c - 1) / 2 and sd ~ c / sqrt(12); the sd of the
      // mean of `runs` draws is c / sqrt(12 * runs) ~ 0.002 c. 1% of c is ~5 sd.
      assert.ok(Math.abs(mean - (c - 1) / 2) < 0.01 * c, `attempt ${n}: mean ${mean}, ceiling ${c}`);
      // Full jitter: some tries go almost at once, some wait almost the ceiling.
      assert.ok(min[n]! < 0.01 * c, `attempt ${n}: min ${min[n]}`);
      assert.ok(max[n]! > 0.99 * c - 1, `attempt ${n}: max ${max[n]}`);
    }
  });

  it('the cap is reached and held', () => {
    const p = new BackoffPolicy({ base: 100, cap: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 30 }, () => p.next());
    assert.deepEqual(delays.slice(0, 5), [99, 199, 399, 799, 999]);
    for (const d of delays.slice(4)) assert.equal(d, 999);
    assert.equal(p.attempts, 30);
  });

  it('a cap equal to base: every attempt draws from [0, base)', () => {
    const p = new BackoffPolicy({ base: 300, cap: 300, random: seededRandom(5) });
    for (let i = 0; i < 1000; i++) {
      const d = p.next();
      assert.ok(d >= 0 && d < 300);
    }
  });

  it('reset() starts again from the base ceiling', () => {
    const p = new BackoffPolicy({ base: 100, cap: 100_000, random: () => 0.999999 });
    for (let i = 0; i < 8; i++) p.next();
    assert.equal(p.attempts, 8);
    assert.equal(p.next(), 25_599);
    p.reset();
    assert.equal(p.attempts, 0);
    assert.deepEqual([p.next(), p.next(), p.next()], [99, 199, 399]);
  });

  it('maxAttempts: -1 once used up, and stays -1 (without drawing) until reset', () => {
    let draws = 0;
    const p = new BackoffPolicy({
      base: 100,
      cap: 1000,
      maxAttempts: 3,
      random: () => {
        draws++;
        return 0.5;
      },
    });
    assert.deepEqual([p.next(), p.next(), p.next()], [50, 100, 200]);
    assert.equal(p.next(), -1);
    assert.equal(p.next(), -1);
    assert.equal(draws, 3, 'no random draw for a refused attempt');
    assert.equal(p.attempts, 3);
    p.reset();
    assert.equal(p.next(), 50);
  });

  it('maxAttempts 1: exactly one try', () => {
    const p = new BackoffPolicy({ maxAttempts: 1, random: () => 0 });
    assert.equal(p.next(), 0);
    assert.equal(p.next(), -1);
  });

  it('same seed, same delays: reproducible chaos runs', () => {
    const a = new BackoffPolicy({ base: 10, cap: 5000, random: seededRandom(99) });
    const b = new BackoffPolicy({ base: 10, cap: 5000, random: seededRandom(99) });
    const da = Array.from({ length: 50 }, () => a.next());
    assert.deepEqual(Array.from({ length: 50 }, () => b.next()), da);
  });

  describe('validation', () => {
    const bad: Array<[string, ConstructorParameters<typeof BackoffPolicy>[0], RegExp]> = [
      ['base 0', { base: 0 }, /backoff\.base must be a positive number, got 0/],
      ['negative base', { base: -5 }, /backoff\.base/],
      ['NaN base', { base: NaN }, /backoff\.base/],
      ['infinite base', { base: Infinity, cap: Infinity }, /backoff\.base/],
      ['cap below base', { base: 1000, cap: 999 }, /backoff\.cap must be a number >= base, got 999/],
      ['NaN cap', { cap: NaN }, /backoff\.cap/],
      ['infinite cap', { cap: Infinity }, /backoff\.cap/],
      ['cap below the default base', { cap: 100 }, /backoff\.cap/],
      ['maxAttempts 0', { maxAttempts: 0 }, /backoff\.maxAttempts must be >= 1, got 0/],
      ['negative maxAttempts', { maxAttempts: -1 }, /backoff\.maxAttempts/],
      ['NaN maxAttempts', { maxAttempts: NaN }, /backoff\.maxAttempts/],
    ];
    for (const [what, opts, re] of bad) {
      it(`rejects ${what} with a UsageError WS_ERR_INVALID_OPTION`, () => {
        assert.throws(
          () => new BackoffPolicy(opts),
          (err: unknown) => {
            assert.ok(err instanceof UsageError);
            assert.equal(err.code, 'WS_ERR_INVALID_OPTION');
            assert.match(err.message, re);
            return true;
          },
        );
      });
    }

    it('accepts the boundaries: cap == base, maxAttempts 1, a fractional base', () => {
      assert.doesNotThrow(() => new BackoffPolicy({ base: 1, cap: 1, maxAttempts: 1 }));
      assert.doesNotThrow(() => new BackoffPolicy({ base: 0.5, cap: 0.5 }));
    });
  });

  it('property: for any valid options and seed, the n-th delay is an integer in [0, min(cap, base*2^n)), and reset replays the sequence shape', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        (base, extra, attempts, seed) => {
          const cap = base + extra;
          const p = new BackoffPolicy({ base, cap, maxAttempts: attempts, random: seededRandom(seed) });
          for (let n = 0; n < attempts; n++) {
            const d = p.next();
            assert.ok(Number.isInteger(d) && d >= 0 && d < expectedCeiling(base, cap, n), `n=${n} d=${d}`);
            assert.equal(p.attempts, n + 1);
          }
          assert.equal(p.next(), -1);
          p.reset();
          const d0 = p.next();
          assert.ok(d0 >= 0 && d0 < base);
        },
      ),
      { numRuns: 300 },
    );
  });
});

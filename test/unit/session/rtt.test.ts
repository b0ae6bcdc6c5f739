// RttEstimator: RFC 6298 section 2 smoothing and the adaptive liveness timeout
// clamp(srtt + k*rttvar, floor, ceiling). Expected values are computed by hand
// below; every one is a whole number of 1/1024 ms (the estimator's unit), so
// equality is exact. Elsewhere the estimator rounds to that unit: a property
// below bounds its distance from the formula computed in doubles.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { RttEstimator } from '../../../src/session/rtt.js';

function fed(...samples: number[]): RttEstimator {
  const r = new RttEstimator();
  for (const s of samples) r.sample(s);
  return r;
}

describe('RttEstimator before any sample', () => {
  it('has no estimate and min/max/last are empty', () => {
    const r = new RttEstimator();
    assert.equal(r.samples, 0);
    assert.ok(Number.isNaN(r.last));
    assert.ok(Number.isNaN(r.srtt));
    assert.ok(Number.isNaN(r.rttvar));
    assert.deepEqual(r.snapshot(), { last: null, smoothed: null, variation: null, min: null, max: null, samples: 0 });
  });

  it('timeout() is `initial`, clamped to floor..ceiling', () => {
    const r = new RttEstimator();
    assert.equal(r.timeout(4, 1000, 5000, 3000), 3000);
    assert.equal(r.timeout(4, 1000, 5000, 9000), 5000, 'initial above the ceiling is clamped down');
    assert.equal(r.timeout(4, 1000, 5000, 10), 1000, 'initial below the floor is clamped up');
  });
});

describe('RFC 6298 smoothing', () => {
  it('first sample R: SRTT = R, RTTVAR = R/2 (RFC 6298 2.2)', () => {
    const r = fed(100);
    assert.equal(r.srtt, 100);
    assert.equal(r.rttvar, 50);
    assert.equal(r.last, 100);
    assert.equal(r.samples, 1);
  });

  it('later samples: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R| using the OLD SRTT, then SRTT = 7/8 SRTT + 1/8 R (RFC 6298 2.3)', () => {
    // Worked by hand for samples 100, 200, 50, 300:
    //   #1 R=100: srtt = 100,                             rttvar = 50
    //   #2 R=200: rttvar = .75*50   + .25*|100-200|      = 37.5 + 25         = 62.5
    //             srtt   = .875*100 + .125*200           = 87.5 + 25         = 112.5
    //   #3 R=50:  rttvar = .75*62.5 + .25*|112.5-50|     = 46.875 + 15.625   = 62.5
    //             srtt   = .875*112.5 + .125*50          = 98.4375 + 6.25    = 104.6875
    //   #4 R=300: rttvar = .75*62.5 + .25*|104.6875-300| = 46.875 + 48.828125 = 95.703125
    //             srtt   = .875*104.6875 + .125*300      = 91.6015625 + 37.5  = 129.1015625
    // (Updating SRTT first would give rttvar 59.375 at #2: the order matters.)
    const r = new RttEstimator();
    const expected: Array<[number, number, number]> = [
      [100, 100, 50],
      [200, 112.5, 62.5],
      [50, 104.6875, 62.5],
      [300, 129.1015625, 95.703125],
    ];
    for (const [sample, srtt, rttvar] of expected) {
      r.sample(sample);
      assert.equal(r.srtt, srtt, `srtt after ${sample}`);
      assert.equal(r.rttvar, rttvar, `rttvar after ${sample}`);
      assert.equal(r.last, sample);
    }
    assert.equal(r.samples, 4);
    assert.equal(r.min, 50);
    assert.equal(r.max, 300);
  });

  it('timeout = srtt + k*rttvar within the bounds, clamped outside them', () => {
    const r = fed(100, 200, 50, 300);
    // 129.1015625 + 4 * 95.703125 = 129.1015625 + 382.8125 = 511.9140625
    assert.equal(r.timeout(4, 100, 1000, 9999), 511.9140625);
    // k = 1: 129.1015625 + 95.703125 = 224.8046875
    assert.equal(r.timeout(1, 100, 1000, 9999), 224.8046875);
    assert.equal(r.timeout(4, 600, 1000, 9999), 600, 'raised to the floor');
    assert.equal(r.timeout(4, 100, 400, 9999), 400, 'cut to the ceiling');
    assert.equal(r.timeout(4, 100, 1000, 1), 511.9140625, '`initial` no longer matters once samples exist');
  });

  it('a constant RTT converges: rttvar -> 0, srtt -> R, timeout -> floor', () => {
    const r = new RttEstimator();
    for (let i = 0; i < 200; i++) r.sample(200);
    assert.equal(r.srtt, 200);
    assert.ok(r.rttvar < 1e-20, `rttvar ${r.rttvar}`);
    assert.equal(r.timeout(4, 250, 5000, 5000), 250);
  });

  it('a zero RTT gives srtt = rttvar = 0 and timeout = floor', () => {
    const r = fed(0);
    assert.equal(r.srtt, 0);
    assert.equal(r.rttvar, 0);
    assert.equal(r.timeout(4, 1000, 4000, 4000), 1000);
  });

  it('tracks min, max and last', () => {
    const r = fed(30, 10, 70, 20);
    assert.equal(r.min, 10);
    assert.equal(r.max, 70);
    assert.equal(r.last, 20);
  });

  it('snapshot() rounds to hundredths', () => {
    const r = fed(100, 200, 50, 300);
    assert.deepEqual(r.snapshot(), { last: 300, smoothed: 129.1, variation: 95.7, min: 50, max: 300, samples: 4 });
  });
});

describe('bad samples are ignored', () => {
  for (const bad of [-1, -0.001, -Infinity, NaN, Infinity]) {
    it(`ignores ${bad}`, () => {
      const r = fed(100, 200);
      const before = { ...r.snapshot(), srtt: r.srtt, rttvar: r.rttvar };
      r.sample(bad);
      assert.deepEqual({ ...r.snapshot(), srtt: r.srtt, rttvar: r.rttvar }, before);
      const empty = new RttEstimator();
      empty.sample(bad);
      assert.equal(empty.samples, 0, 'a bad first sample does not count as the first');
      assert.equal(empty.timeout(4, 10, 100, 70), 70);
    });
  }
});

describe('properties', () => {
  it('for any sample sequence: min <= srtt <= max, rttvar >= 0, floor <= timeout <= ceiling', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constantFrom(-5, NaN, Infinity)), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (samples, floor, extra) => {
          const r = new RttEstimator();
          for (const s of samples) r.sample(s);
          const good = samples.filter((s) => Number.isFinite(s) && s >= 0);
          assert.equal(r.samples, good.length);
          const ceiling = floor + extra;
          const t = r.timeout(4, floor, ceiling, ceiling);
          assert.ok(t >= floor && t <= ceiling, `timeout ${t} outside ${floor}..${ceiling}`);
          if (good.length > 0) {
            const lo = Math.min(...good);
            const hi = Math.max(...good);
            assert.equal(r.min, lo);
            assert.equal(r.max, hi);
            assert.equal(r.last, good[good.length - 1]);
            // A convex combination of samples stays within their range, the
            // samples rounded to the estimator's unit (1/1024 ms): half a unit.
            const half = 1 / 2048;
            assert.ok(r.srtt >= lo - half && r.srtt <= hi + half, `srtt ${r.srtt} outside ${lo}..${hi}`);
            assert.ok(r.rttvar >= 0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('fixed point: 1/1024 ms', () => {
  /** RFC 6298 2.2-2.3 in doubles, the reference the estimator's rounding is measured against. */
  function exact(samples: number[]): { srtt: number; rttvar: number } {
    let srtt = NaN;
    let rttvar = NaN;
    samples.forEach((r, i) => {
      if (i === 0) {
        srtt = r;
        rttvar = r / 2;
      } else {
        rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - r);
        srtt = 0.875 * srtt + 0.125 * r;
      }
    });
    return { srtt, rttvar };
  }

  it('srtt and rttvar are whole numbers of 1/1024 ms, within 8 and 13 of them of the formula in doubles', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 120_000 }), fc.double({ min: 0, max: 1e5, noNaN: true })), { minLength: 1, maxLength: 200 }), (samples) => {
        const r = fed(...samples);
        const want = exact(samples);
        assert.ok(Number.isInteger(r.srtt * 1024) && Number.isInteger(r.rttvar * 1024), `srtt ${r.srtt}, rttvar ${r.rttvar}`);
        assert.ok(Math.abs(r.srtt - want.srtt) <= 8 / 1024, `srtt ${r.srtt} vs ${want.srtt}`);
        assert.ok(Math.abs(r.rttvar - want.rttvar) <= 13 / 1024, `rttvar ${r.rttvar} vs ${want.rttvar}`);
      }),
      { numRuns: 500 },
    );
  });

  it('a steady RTT after a jittery start: srtt reaches it exactly and rttvar reaches 0', () => {
    const r = fed(1, 30, 7, 250, 3, 0.4, 99.9);
    for (let i = 0; i < 300; i++) r.sample(40);
    assert.equal(r.srtt, 40);
    assert.equal(r.rttvar, 0);
  });
});

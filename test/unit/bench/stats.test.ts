// The bench's per-repetition goal ratios (bench/lib/stats.mjs perRepRatios):
// paired within a repetition, good runs only, in repetition order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { median, perRepRatios } from '../../../bench/lib/stats.mjs';

type Run = { server: string; rep: number; ok: boolean; perCpu: number };
const fig = (r: Run) => r.perCpu;

describe('bench stats: per-repetition ratios', () => {
  it('pairs each repetition of one server with the same repetition of the other', () => {
    const runs: Run[] = [
      { server: 'lifeline', rep: 1, ok: true, perCpu: 90 },
      { server: 'net', rep: 1, ok: true, perCpu: 100 },
      { server: 'lifeline', rep: 2, ok: true, perCpu: 60 },
      { server: 'net', rep: 2, ok: true, perCpu: 50 },
      { server: 'uws', rep: 2, ok: true, perCpu: 1 },
    ];
    assert.deepEqual(perRepRatios(runs, 'lifeline', 'net', fig), [0.9, 1.2]);
    // The ratio of the medians (75 / 75 = 1) hides that one repetition went each way.
    assert.equal(median(runs.filter((r) => r.server === 'lifeline').map(fig)) / median(runs.filter((r) => r.server === 'net').map(fig)), 1);
  });

  it('leaves out repetitions where either run failed or is missing, and sorts by repetition', () => {
    const runs: Run[] = [
      { server: 'net', rep: 3, ok: true, perCpu: 100 },
      { server: 'lifeline', rep: 3, ok: true, perCpu: 95 },
      { server: 'lifeline', rep: 1, ok: true, perCpu: 80 },
      { server: 'net', rep: 1, ok: false, perCpu: 100 },
      { server: 'lifeline', rep: 2, ok: true, perCpu: 70 },
      { server: 'net', rep: 4, ok: true, perCpu: 100 },
      { server: 'net', rep: 5, ok: true, perCpu: 0 },
      { server: 'lifeline', rep: 5, ok: true, perCpu: 10 },
    ];
    assert.deepEqual(perRepRatios(runs, 'lifeline', 'net', fig), [0.95]);
  });

  it('is empty when the servers never shared a repetition', () => {
    assert.deepEqual(perRepRatios([{ server: 'lifeline', rep: 1, ok: true, perCpu: 1 }], 'lifeline', 'net', fig), []);
  });
});

// relativeClock: the server's heartbeat time, counted in whole milliseconds
// from the moment it was made (from 1), over the same timers as its base clock.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { FakeClock, relativeClock, systemClock } from '../../../src/session/clock.js';

describe('relativeClock', () => {
  it('starts at 1 (a timestamp of 0 reads as none) and follows its base', () => {
    const base = new FakeClock(1_763_800_000_000);
    const c = relativeClock(base);
    assert.equal(c.now(), 1);
    base.advance(1234);
    assert.equal(c.now(), 1235);
    assert.equal(c.epoch + c.now(), base.now(), 'epoch + now() is the base time');
    base.jump(25 * 24 * 3600 * 1000);
    assert.equal(c.now(), 1235 + 25 * 24 * 3600 * 1000, 'past 2^31 ms it still counts (as a plain double)');
  });

  it('whole milliseconds from a fractional base, never decreasing', () => {
    const base = new FakeClock(1000.75);
    const c = relativeClock(base);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      base.advance(0.3);
      seen.push(c.now());
    }
    for (const t of seen) assert.ok(Number.isInteger(t), `${t}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!);
    assert.equal(seen.at(-1), Math.floor(base.now() - 999.75));
    assert.ok(seen.at(-1)! >= 6 && seen.at(-1)! <= 7);
  });

  it("arms and clears the base's timers", () => {
    const base = new FakeClock();
    const c = relativeClock(base);
    const fired: number[] = [];
    c.setTimeout(() => fired.push(c.now()), 100);
    const h = c.setTimeout(() => fired.push(-1), 50);
    c.clearTimeout(h);
    assert.equal(base.pending, 1);
    base.advance(200);
    assert.deepEqual(fired, [101]);
  });

  it('over the system clock: a small whole number', () => {
    const c = relativeClock(systemClock);
    const t = c.now();
    assert.ok(Number.isInteger(t) && t >= 1 && t < 1000, `${t}`);
  });
});

// The bench's CPU canary (bench/lib/canary.mjs): when a reading counts as a
// slow phase, that a lone slow reading gets a second look, that waiting for
// a fast CPU stops when the CPU reads fast or the wait runs out, and that the
// real child answers with positive figures on the CPU it is pinned to.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs module without type declarations
import { COMPUTE_SLOW, Canaries, MEMORY_SLOW, canaryFlag, slowness } from '../../../bench/lib/canary.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const best = { computeUs: 50, memoryNs: 16 };

type Reading = { computeUs: number; memoryNs: number };

/** Canaries whose sample() hands out the given readings in order (the last one again when they run out). */
class ScriptedCanaries extends Canaries {
  // What the untyped base class has, as this test uses it.
  declare byCpu: Map<number, { child: null; best: Reading }>;
  declare waitedMs: number;
  declare maxTotalWaitMs: number;
  declare read: (cpu: number) => Promise<Reading | null>;
  declare waitFast: (cpu: number, maxMs?: number, everyMs?: number) => Promise<{ waitedMs: number; last: Reading | null }>;
  readings: Reading[];
  samples = 0;
  constructor(readings: Reading[]) {
    super(ROOT);
    this.readings = readings;
    this.byCpu.set(0, { child: null, best: { computeUs: Infinity, memoryNs: Infinity } });
  }
  async sample(cpu: number) {
    const r = this.readings[Math.min(this.samples++, this.readings.length - 1)]!;
    const c = this.byCpu.get(cpu)!;
    c.best = { computeUs: Math.min(c.best.computeUs, r.computeUs), memoryNs: Math.min(c.best.memoryNs, r.memoryNs) };
    return r;
  }
}

describe('bench canary: slow readings', () => {
  it('is slow only beyond the thresholds over the best reading', () => {
    assert.equal(slowness({ computeUs: 50 * COMPUTE_SLOW, memoryNs: 16 * MEMORY_SLOW }, best), null);
    assert.match(slowness({ computeUs: 50 * COMPUTE_SLOW + 1, memoryNs: 16 }, best), /^compute 64 us vs best 50$/);
    assert.match(slowness({ computeUs: 50, memoryNs: 16 * MEMORY_SLOW + 1 }, best), /^memory 33 ns vs best 16$/);
    assert.equal(slowness(null, best), null);
  });

  it('flags a run by either reading, naming the CPU', () => {
    const fast = { computeUs: 51, memoryNs: 17 };
    const slow = { computeUs: 90, memoryNs: 17 };
    assert.equal(canaryFlag(1, fast, fast, best), null);
    assert.match(canaryFlag(1, slow, fast, best), /^CPU 1 in a slow phase \(canary: compute 90 us vs best 50\)$/);
    assert.match(canaryFlag(0, fast, slow, best), /^CPU 0 in a slow phase/);
    assert.equal(canaryFlag(0, null, null, best), null);
  });
});

describe('bench canary: second look and waiting', () => {
  it('takes a slow reading again, and the second one counts', async () => {
    const c = new ScriptedCanaries([best, { computeUs: 50, memoryNs: 48 }, { computeUs: 51, memoryNs: 17 }]);
    assert.deepEqual(await c.read(0), best);
    assert.deepEqual(await c.read(0), { computeUs: 51, memoryNs: 17 });
    assert.equal(c.samples, 3);
  });

  it('keeps a reading that is slow on the second look too', async () => {
    const c = new ScriptedCanaries([best, { computeUs: 95, memoryNs: 16 }, { computeUs: 92, memoryNs: 16 }]);
    await c.read(0);
    assert.deepEqual(await c.read(0), { computeUs: 92, memoryNs: 16 });
  });

  it('waits until the CPU reads fast', async () => {
    const slow = { computeUs: 95, memoryNs: 16 };
    const c = new ScriptedCanaries([best, slow, slow, slow, slow, best]);
    await c.read(0);
    const { last } = await c.waitFast(0, 10_000, 1);
    assert.deepEqual(last, best);
    assert.equal(c.samples, 6);
  });

  it('stops waiting when the wait runs out, and counts what it waited', async () => {
    const slow = { computeUs: 95, memoryNs: 16 };
    const c = new ScriptedCanaries([best, slow]);
    await c.read(0);
    const { waitedMs, last } = await c.waitFast(0, 600, 50);
    assert.deepEqual(last, slow);
    assert.ok(waitedMs >= 600, `waited ${waitedMs} ms`);
    assert.equal(c.waitedMs, waitedMs);
  });

  it('stops waiting once the invocation has waited its total', async () => {
    const slow = { computeUs: 95, memoryNs: 16 };
    const c = new ScriptedCanaries([best, slow]);
    await c.read(0);
    c.waitedMs = c.maxTotalWaitMs;
    const before = c.samples;
    await c.waitFast(0, 60_000, 1);
    // One read (with its second look), no waiting loop.
    assert.equal(c.samples - before, 2);
  });
});

describe('bench canary: the real child', () => {
  it('answers with positive readings on the CPU it is pinned to', async () => {
    const c = new Canaries(ROOT);
    try {
      const r = await c.sample(0);
      assert.ok(r && r.computeUs > 0 && r.memoryNs > 0, JSON.stringify(r));
      const again = await c.sample(0);
      assert.ok(again && again.computeUs > 0);
      assert.equal(c.best(0).computeUs, Math.min(r.computeUs, again.computeUs));
    } finally {
      await c.stopAll();
    }
  });
});

describe('bench canary: a canary that cannot be read', () => {
  // Runs would go unwatched without a word: the bench must say so, once per CPU.
  it('says once that a CPU is unwatched when the canary cannot start, and stops asking', async () => {
    const warnings: string[] = [];
    const c = new Canaries(ROOT, { command: () => ['lifeline-no-such-command', []], warn: (l: string) => warnings.push(l) });
    try {
      assert.equal(await c.sample(3), null);
      assert.equal(await c.sample(3), null);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /CPU canary on CPU 3 cannot be read \(.*ENOENT.*\); runs on CPU 3 are not watched/);
    } finally {
      await c.stopAll();
    }
  });

  it('says so when the canary answers with readings that are not positive', async () => {
    const warnings: string[] = [];
    // A stand-in child: ready, then every sample read as zero.
    const script = "process.stdout.write('ready\\n'); require('readline').createInterface({ input: process.stdin }).on('line', (l) => process.stdout.write(`sample ${l.split(' ')[1]} {\"computeUs\":0,\"memoryNs\":0}\\n`));";
    const c = new Canaries(ROOT, { command: () => [process.execPath, ['-e', script]], warn: (l: string) => warnings.push(l) });
    try {
      assert.equal(await c.sample(1), null);
      assert.equal(await c.read(1), null);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /CPU 1 cannot be read \(readings not positive \(0 us, 0 ns\)\)/);
    } finally {
      await c.stopAll();
    }
  });
});

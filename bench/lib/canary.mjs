// The CPU canary: is a CPU of a measured run in one of this VM's slow
// phases? On the shared 2-vCPU machines the bench runs on, a vCPU has
// phases, tens of seconds to minutes long, in which the same user-space work
// takes about 1.7x the CPU time and loads from the shared cache several
// times longer, with no steal and no other process of ours to show for it
// (so the other-load flags miss them; presumably other tenants of the host).
// In scenario a they cost the WebSocket servers, ours and uWebSockets.js
// alike, a third of their msgs per server-CPU-s and raw `net` about a
// tenth, so a repetition that falls into one moves the goals' ratios more
// than any change of code does (docs/BENCHMARKS.md, "Slow phases, and the
// CPU canary").
//
// The canary (bench/canary.mjs, a child pinned to each CPU a pinned run
// uses: the server's and the loadgen's, whose speed moves the server's CPU
// per message too) times a fixed piece of compute and a random walk through
// memory just before and just after each measured run. A reading more than
// COMPUTE_SLOW (or MEMORY_SLOW) times the fastest one seen on that CPU in
// this invocation flags the run, which is then done again like a run
// disturbed by other load; before a run the bench waits (a bounded time) for
// the canaries to read fast.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Child } from './child.mjs';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Thresholds over the best reading. Quiet readings here: compute 45-53 us
 * (up to 1.15x the best), memory 15-18 ns (with a lone reading of up to 3x
 * now and then: a burst of milliseconds, which the second look of read()
 * leaves out); in slow phases compute 80-108 us and memory several times
 * its quiet figure.
 */
export const COMPUTE_SLOW = 1.25;
export const MEMORY_SLOW = 2;
/** A slow reading is taken again this much later; the second one counts. */
const SECOND_LOOK_MS = 250;

/** @typedef {{ computeUs: number, memoryNs: number }} CanaryReading */

/**
 * Why `reading` is slow against `best` (the fastest readings so far, this
 * one included), or null when it is not (or either is missing).
 * @param {CanaryReading | null} reading
 * @param {CanaryReading} best
 */
export function slowness(reading, best) {
  if (!reading) return null;
  const why = [];
  if (reading.computeUs > COMPUTE_SLOW * best.computeUs) why.push(`compute ${reading.computeUs.toFixed(0)} us vs best ${best.computeUs.toFixed(0)}`);
  if (reading.memoryNs > MEMORY_SLOW * best.memoryNs) why.push(`memory ${reading.memoryNs.toFixed(0)} ns vs best ${best.memoryNs.toFixed(0)}`);
  return why.length ? why.join(', ') : null;
}

/** The flag for a run on `cpu` whose canary read `before` and `after` (null: not read), or null. */
export function canaryFlag(cpu, before, after, best) {
  const why = slowness(before, best) ?? slowness(after, best);
  return why ? `CPU ${cpu} in a slow phase (canary: ${why})` : null;
}

/** One canary child per CPU, started on first use; `stopAll()` at the end. */
export class Canaries {
  /**
   * @param {string} root the project's root (the children's cwd)
   * @param {{ command?: (cpu: number) => [string, string[]], warn?: (line: string) => void }} [opts]
   *   command: what runs the canary on a CPU (default `taskset -c CPU node bench/canary.mjs`);
   *   warn: where the one line about a canary that cannot be read goes (default stderr)
   */
  constructor(root, opts = {}) {
    this.root = root;
    this.command = opts.command ?? ((cpu) => ['taskset', ['-c', String(cpu), process.execPath, path.join(BENCH, 'canary.mjs')]]);
    this.warn = opts.warn ?? ((line) => console.error(line));
    /** @type {Map<number, {child: Child, best: CanaryReading}>} */
    this.byCpu = new Map();
    /** CPUs whose canary failed: not asked again (each is reported once). */
    this.unavailable = new Set();
    /** Milliseconds waited for a fast CPU so far; waits stop at `maxTotalWaitMs`. */
    this.waitedMs = 0;
    this.maxTotalWaitMs = 5 * 60_000;
  }

  /** A reading on `cpu` (the best readings are updated with it); null when the canary cannot be read. */
  async sample(cpu) {
    if (this.unavailable.has(cpu)) return null;
    let c = this.byCpu.get(cpu);
    try {
      if (!c) {
        const [cmd, args] = this.command(cpu);
        const child = new Child(cmd, args, { cwd: this.root, stdin: true, name: `canary on CPU ${cpu}` });
        c = { child, best: { computeUs: Infinity, memoryNs: Infinity } };
        this.byCpu.set(cpu, c);
        await child.waitLine((l) => l === 'ready', '"ready"', 30_000);
      }
      const { computeUs, memoryNs } = await c.child.request('sample', 10_000);
      if (!(computeUs > 0 && memoryNs > 0)) throw new Error(`readings not positive (${computeUs} us, ${memoryNs} ns)`);
      c.best = { computeUs: Math.min(c.best.computeUs, computeUs), memoryNs: Math.min(c.best.memoryNs, memoryNs) };
      return { computeUs, memoryNs };
    } catch (err) {
      // Unwatched runs would otherwise look like quiet ones: say so, once per CPU.
      this.unavailable.add(cpu);
      this.warn(`warning: the CPU canary on CPU ${cpu} cannot be read (${String(err?.message ?? err).split('\n')[0]}); runs on CPU ${cpu} are not watched for slow phases`);
      await c?.child.stop().catch(() => {});
      return null;
    }
  }

  /**
   * A reading on `cpu` to judge a run by: a reading that is slow is taken
   * again SECOND_LOOK_MS later and the second one is returned, so that a
   * burst of a few milliseconds does not pass for a phase.
   */
  async read(cpu) {
    const first = await this.sample(cpu);
    if (!slowness(first, this.best(cpu))) return first;
    await sleep(SECOND_LOOK_MS);
    return (await this.sample(cpu)) ?? first;
  }

  /** The fastest readings on `cpu` so far. */
  best(cpu) {
    return this.byCpu.get(cpu)?.best ?? { computeUs: Infinity, memoryNs: Infinity };
  }

  /**
   * Waits, up to `maxMs` (and while this invocation's waits stay under
   * maxTotalWaitMs), until the canary on `cpu` reads fast; samples every
   * `everyMs`. Returns { waitedMs, last } (last: the last reading, or null).
   */
  async waitFast(cpu, maxMs = 30_000, everyMs = 2_000) {
    const start = Date.now();
    let last = await this.read(cpu);
    while (last && slowness(last, this.best(cpu)) && Date.now() - start < maxMs && this.waitedMs + (Date.now() - start) < this.maxTotalWaitMs) {
      await sleep(everyMs);
      last = await this.read(cpu);
    }
    const waitedMs = Date.now() - start;
    this.waitedMs += waitedMs;
    return { waitedMs, last };
  }

  /** waitFast() on each of `cpus` in turn; returns the milliseconds waited in all. */
  async waitFastAll(cpus) {
    let waitedMs = 0;
    for (const cpu of cpus) waitedMs += (await this.waitFast(cpu)).waitedMs;
    return waitedMs;
  }

  /** read() on each of `cpus`: { [cpu]: reading | null }. */
  async readAll(cpus) {
    const out = {};
    for (const cpu of cpus) out[cpu] = await this.read(cpu);
    return out;
  }

  async stopAll() {
    await Promise.all([...this.byCpu.values()].map((c) => c.child.stop()));
    this.byCpu.clear();
  }
}

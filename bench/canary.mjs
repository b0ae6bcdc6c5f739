#!/usr/bin/env node
// The CPU canary's child (bench/lib/canary.mjs starts it, pinned with
// taskset to the CPU a server runs on): two fixed pieces of work, timed in
// this process's own CPU time, on request. Between requests it waits on
// stdin and uses no CPU.
//
// - compute: XOR a 64 KiB buffer with a 4-byte key and sum it (the shape of
//   unmasking a frame; it stays in the core's own caches), 20 passes per
//   sample, microseconds per pass.
// - memory: a random walk through a 4 MiB cycle, 100,000 dependent loads
//   per sample, nanoseconds per load. 4 MiB is more than a core's own L2
//   (1 MiB here) and less than the L3 it shares with the host's other
//   tenants: the walk runs from L3 while the neighbours leave it be, and
//   slows several times over when they thrash it.
//
// Five samples each per request; the answer is the fastest sample of each.
// Taking the fastest leaves out a sample that an interrupt or a context
// switch fell into; what is left moves with how fast this CPU and its
// memory serve user code right now.
//
// Protocol (bench/lib/child.mjs `request`): `sample <id>` ->
// `sample <id> {"computeUs": N, "memoryNs": M}`.
import readline from 'node:readline';

const buf = Buffer.alloc(65536, 7);
const key = Buffer.from([1, 2, 3, 4]);
const PASSES = 20;
const LOADS = 100_000;
const SAMPLES = 5;
// 1 Mi entries of 4 B: a single cycle in random order (Sattolo's shuffle), so
// each load's address depends on the one before and the prefetcher cannot help.
const CYCLE = sattoloCycle(1024 * 1024);
let sink = 0;
let at = 0;

function sattoloCycle(n) {
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) next[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * i);
    const t = next[i];
    next[i] = next[j];
    next[j] = t;
  }
  return next;
}

function compute() {
  let s = 0;
  for (let p = 0; p < PASSES; p++) {
    for (let i = 0; i < buf.length; i++) {
      buf[i] ^= key[i & 3];
      s += buf[i];
    }
  }
  sink += s;
}

function memory() {
  let p = at;
  for (let i = 0; i < LOADS; i++) p = CYCLE[p];
  at = p;
}

/** The fastest of SAMPLES runs of `fn`, in CPU microseconds. */
function fastest(fn) {
  let best = Infinity;
  for (let k = 0; k < SAMPLES; k++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, c.user + c.system);
  }
  return best;
}

// Warm up: the first runs happen before V8 has optimized the loops.
for (let k = 0; k < 4; k++) {
  compute();
  memory();
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, id] = line.split(' ');
  if (cmd !== 'sample') return;
  const computeUs = fastest(compute) / PASSES;
  const memoryNs = (fastest(memory) * 1000) / LOADS;
  process.stdout.write(`sample ${id} ${JSON.stringify({ computeUs: Math.round(computeUs * 10) / 10, memoryNs: Math.round(memoryNs * 10) / 10 })}\n`);
});
process.stdout.write('ready\n');

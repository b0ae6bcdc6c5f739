#!/usr/bin/env node
// The chaos run of test/chaos/exactly-once.test.ts, standalone and longer:
//
//   npm run chaos                       10,000 cuts
//   npm run chaos -- --cuts 1000 --seed 42
//
// Options: --cuts N (default 10000), --seed S (default: random, printed),
// --rate MS (sender tick, default 2), --per-tick K (messages per tick and
// side, default 3), --gap MS (longest random wait before a cut, default 50),
// --kinds rst,blackhole,... (default all), --heartbeat INTERVAL:TIMEOUT
// (default: interval 150, timeout 50..200), --fragment BYTES (frame size,
// default 4096, 0: unfragmented), --deflate (permessage-deflate both ways;
// lower the rate with it, e.g. --rate 5 --per-tick 2, or compression becomes
// the bottleneck), --timeout S (whole run).
//
// Prints progress every 500 cuts, the full result as JSON, and last one line:
//   chaos: N cuts, M messages each way, L lost, D duplicated
// (M: messages sent in the smaller direction; the JSON has both). Exits 1
// when anything was lost, duplicated, out of order, corrupted, a session was
// lost, or the run could not complete.
//
// Runs the TypeScript sources through tsx: node --import tsx scripts/chaos.ts

import { parseArgs } from 'node:util';

import { CUT_KINDS, problems, runChaos, summaryLine, type ChaosOptions, type CutKind } from '../test/chaos/chaos-runner.js';

function fail(message: string): never {
  console.error(`chaos: ${message}`);
  process.exit(2);
}

function int(name: string, raw: string | undefined, dflt: number, min = 0): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        cuts: { type: 'string' },
        seed: { type: 'string' },
        rate: { type: 'string' },
        'per-tick': { type: 'string' },
        gap: { type: 'string' },
        kinds: { type: 'string' },
        heartbeat: { type: 'string' },
        fragment: { type: 'string' },
        deflate: { type: 'boolean' },
        timeout: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
}

const values = parseCommandLine();
const cuts = int('cuts', values.cuts, 10_000);
const seed = int('seed', values.seed, Math.floor(Math.random() * 2 ** 32));
const options: ChaosOptions = {
  cuts,
  seed,
  rateMs: int('rate', values.rate, 2, 1),
  perTick: int('per-tick', values['per-tick'], 3, 1),
  maxGapMs: int('gap', values.gap, 50, 1),
  fragmentSize: int('fragment', values.fragment, 4096),
  deflate: values.deflate === true,
  progressEvery: 500,
  log: (line) => console.log(line),
};
if (values.timeout !== undefined) options.timeoutMs = int('timeout', values.timeout, 0, 1) * 1000;
if (values.kinds !== undefined) {
  const kinds = values.kinds.split(',').map((k) => k.trim());
  for (const k of kinds) if (!(CUT_KINDS as readonly string[]).includes(k)) fail(`unknown kind ${JSON.stringify(k)} (kinds: ${CUT_KINDS.join(', ')})`);
  options.kinds = kinds as CutKind[];
}
if (values.heartbeat !== undefined) {
  const m = /^(\d+):(\d+)$/.exec(values.heartbeat);
  if (!m) fail(`--heartbeat must be INTERVAL_MS:TIMEOUT_MS, got ${JSON.stringify(values.heartbeat)}`);
  const timeout = Number(m[2]);
  options.heartbeat = { interval: Number(m[1]), timeoutFloor: timeout, timeoutCeiling: timeout, timeoutInitial: timeout };
}

console.log(
  `chaos start: ${cuts} cuts, seed ${seed}, kinds ${(options.kinds ?? CUT_KINDS).join(',')}, ` +
    `${options.perTick} messages per ${options.rateMs} ms each way, fragments ${options.fragmentSize || 'off'}, deflate ${options.deflate ? 'on' : 'off'}`,
);
const result = await runChaos(options);
const bad = problems(result);
console.log(JSON.stringify(result));
for (const p of bad) console.error(`chaos: PROBLEM ${p}`);
console.log(summaryLine(result));
process.exit(bad.length > 0 ? 1 : 0);

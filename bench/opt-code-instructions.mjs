#!/usr/bin/env node
// Where the instructions go inside one optimized function of the server's
// in-process path (bench/inproc.mjs): each machine instruction V8 generated
// for it, with how often it ran per call, counted by valgrind's callgrind.
// bench/inproc-instructions.mjs says which function costs what per message;
// this says what in that function does: a loop and its trip count, a check
// repeated in every iteration, a call that was not inlined and what it
// costs, an inline cache going through the generic path.
//
// How: one callgrind run (--dump-instr=yes) of `node --single-threaded
// --print-opt-code --print-opt-code-filter=NAME bench/inproc.mjs`, so that V8
// prints the function's code with its addresses in the same process whose
// instructions callgrind counts; lib/opt-code.mjs joins the two. A function
// optimized more than once has one listing per version: each version's
// calls are summed, and the one called most is listed.
//
//   node bench/opt-code-instructions.mjs --function NAME [--only plain|session]
//        [--messages 100000] [--rounds 2] [--min 0.5] [--all]
//        [--window 16] [--conns 100] [--size 32] [--binary] [--ack-every 32]
//
// --min hides instructions that ran less than that many times per call
// (--all shows every one that ran). Needs valgrind and a built dist/. About
// a minute per run on 2 cores. Instructions are not time (cache misses do
// not show), and the listing is V8's for this Node version.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { annotate, codeRange, instructionCounts, parseOptimizedCode } from './lib/opt-code.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const { values } = parseArgs({
  options: {
    function: { type: 'string' },
    only: { type: 'string', default: 'session' },
    messages: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '2' },
    min: { type: 'string', default: '0.5' },
    all: { type: 'boolean', default: false },
    window: { type: 'string' },
    conns: { type: 'string' },
    size: { type: 'string' },
    binary: { type: 'boolean', default: false },
    'ack-every': { type: 'string' },
  },
});
const NAME = values.function;
if (!NAME || !/^[\w$]+$/.test(NAME)) throw new Error(`--function takes a function's name (as V8 prints it: sendData, onDataMessage), got ${NAME}`);
if (values.only !== 'plain' && values.only !== 'session') throw new Error(`--only must be plain or session, got ${values.only}`);
const MIN = values.all ? 0 : Number(values.min);
if (!(MIN >= 0)) throw new Error(`--min must be a number >= 0, got ${values.min}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opt-code-'));
const cgOut = path.join(dir, 'callgrind.out');
const codeOut = path.join(dir, 'code.txt');
const args = [
  '--tool=callgrind',
  '--dump-instr=yes',
  '--compress-pos=no',
  '--compress-strings=no',
  `--callgrind-out-file=${cgOut}`,
  process.execPath,
  '--single-threaded',
  '--print-opt-code',
  `--print-opt-code-filter=${NAME}`,
  path.join(HERE, 'inproc.mjs'),
  '--only',
  values.only,
  '--rounds',
  values.rounds,
  '--messages',
  values.messages,
];
for (const k of ['window', 'conns', 'size', 'ack-every']) if (values[k]) args.push(`--${k}`, values[k]);
if (values.binary) args.push('--binary');

const code = fs.openSync(codeOut, 'w');
const status = await new Promise((resolve, reject) => {
  const p = spawn('valgrind', args, { stdio: ['ignore', code, 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  p.on('error', (e) => reject(new Error(`valgrind could not start (apt-get install valgrind): ${e.message}`)));
  p.on('close', (c) => resolve({ c, err }));
});
fs.closeSync(code);
if (status.c !== 0) throw new Error(`callgrind run failed (${status.c}):\n${status.err}`);

const versions = parseOptimizedCode(fs.readFileSync(codeOut, 'utf8'), NAME);
if (versions.length === 0) {
  console.error(`V8 printed no optimized code named ${NAME}: was it inlined everywhere, or never optimized? (${codeOut})`);
  process.exit(1);
}
const cg = fs.readFileSync(cgOut, 'utf8');
const annotated = versions.map((v) => {
  const { lo, hi } = codeRange(v);
  return { v, a: annotate(v, instructionCounts(cg, lo, hi)) };
});
console.log(`${NAME}: ${versions.length} optimized version(s) (${values.only} mode, bench/inproc.mjs --messages ${values.messages} --rounds ${values.rounds})`);
for (const [i, { v, a }] of annotated.entries()) {
  console.log(`  version ${i + 1} (${v.kind ?? '?'}, ${v.instructions.length} instructions): ${a.entries} calls, ${a.selfPerEntry.toFixed(1)} instructions of its own per call + ${a.callsPerEntry.toFixed(1)} in what it calls`);
  if (v.inlined.length > 0) console.log(`    inlined: ${[...new Set(v.inlined)].join(', ')}`);
}
const best = annotated.reduce((x, y) => (y.a.entries > x.a.entries ? y : x));
console.log(`\nversion ${annotated.indexOf(best) + 1}, per call: own count, cost of calls made there, instruction${MIN > 0 ? ` (ran >= ${MIN} times per call)` : ''}`);
for (const r of best.a.rows) {
  if (r.perEntry < MIN && r.callPerEntry === 0) continue;
  const calls = r.callPerEntry > 0 ? r.callPerEntry.toFixed(1) : '';
  console.log(`${r.offset.toString(16).padStart(6)} ${r.perEntry.toFixed(2).padStart(7)} ${calls.padStart(8)}  ${r.text}`);
}
fs.rmSync(dir, { recursive: true, force: true });

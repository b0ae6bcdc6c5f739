#!/usr/bin/env node
// Instructions per echoed message on the server's in-process path
// (bench/inproc.mjs), counted by valgrind's callgrind: a figure that does
// not move with the machine's load, where CPU time per message on this
// shared 2-core VM moves by 5-10% between runs in-process (10-30% on
// sockets). For deciding whether a change to the
// plain or the session path helps, not for claims about speed (instructions
// are not time: cache misses and branch mispredictions do not show).
//
// How: each mode runs bench/inproc.mjs under callgrind four times, with N and
// 2N messages, and with --build-only at N and 2N (the frames the bench
// builds, which cost more in session mode). Fixed costs (startup, the
// handshakes, V8 compiling the path) are the same in the N and 2N runs, so
// (full(2N) - full(N) - (build(2N) - build(N))) / 2N is what one more
// message costs the server (2N: each run does a warm-up round and a
// measured one). `node --single-threaded`, so V8's compiler and GC work on
// the main thread, where it is counted, not in helper threads. Three
// buckets: code V8 generated (no symbol); V8's heap (allocation slow paths,
// the collectors: HEAP below); everything else built in (builtins such as
// the inline caches, the runtime, libc). The full runs also write V8's
// symbol map (--perf-basic-prof), which names the generated code: the top
// functions are listed with their instructions per message (what V8
// inlined into a function counts as the function's; the bench's own
// functions appear too, and the frames it builds are not subtracted
// there), and so are the top built-ins by name. Repeatable: generated code
// within about 1% from run to run; the built-ins mostly (one native
// function, detail::sprp, read 26-77 per message in different runs); the
// heap bucket moves with where the collector runs in the N and 2N runs.
//
//   node bench/inproc-instructions.mjs [--only plain|session] [--messages 100000] [--top 12]
//                                      [--window 16] [--conns 100] [--size 32] [--binary]
//                                      [--ack-every 32]
//
// Needs valgrind (Debian: apt-get install valgrind) and a built dist/ (as
// bench/inproc.mjs does). About 3.5 minutes per mode on 2 cores; two runs
// at a time.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';

import { generatedCodeName, nativeFunctionName, readPerfMap, shortName } from './lib/perf-map.mjs';

const run = promisify(execFile);
const HERE = path.dirname(new URL(import.meta.url).pathname);
const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    messages: { type: 'string', default: '100000' },
    window: { type: 'string' },
    size: { type: 'string' },
    binary: { type: 'boolean', default: false },
    conns: { type: 'string' },
    'ack-every': { type: 'string' },
    top: { type: 'string', default: '12' },
  },
});
const N = Number(values.messages);
if (!Number.isInteger(N) || N < 1000) throw new Error(`--messages must be an integer >= 1000, got ${values.messages}`);
const TOP = Number(values.top);
if (!Number.isInteger(TOP) || TOP < 0) throw new Error(`--top must be an integer >= 0, got ${values.top}`);
const modes = values.only ? [values.only] : ['plain', 'session'];
for (const m of modes) if (m !== 'plain' && m !== 'session') throw new Error(`--only must be plain or session, got ${m}`);

try {
  await run('valgrind', ['--version']);
  await run('sh', ['-c', 'command -v callgrind_annotate']);
} catch {
  console.error('valgrind (with callgrind_annotate) is needed: apt-get install valgrind');
  process.exit(2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inproc-ir-'));

/**
 * One callgrind run of inproc.mjs; resolves with its output file and, for a
 * full run, V8's symbol map (valgrind runs node in its own process: same pid).
 */
function callgrind(mode, messages, buildOnly) {
  const out = path.join(dir, `${mode}-${messages}-${buildOnly ? 'build' : 'full'}.out`);
  const args = ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '--single-threaded'];
  if (!buildOnly) args.push('--perf-basic-prof');
  args.push(path.join(HERE, 'inproc.mjs'));
  args.push('--only', mode, '--rounds', '1', '--messages', String(messages));
  // Passed through to bench/inproc.mjs: --window 1 --conns 1 is a read per message, as in scenario c.
  if (values.window) args.push('--window', values.window);
  if (values.conns) args.push('--conns', values.conns);
  if (values.size) args.push('--size', values.size);
  if (values.binary) args.push('--binary');
  if (values['ack-every']) args.push('--ack-every', values['ack-every']);
  if (buildOnly) args.push('--build-only');
  return new Promise((resolve, reject) => {
    const p = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`callgrind run failed (${code}):\n${err.slice(-2000)}`));
      let symbols = null;
      if (!buildOnly) {
        const mapFile = `/tmp/perf-${p.pid}.map`;
        symbols = readPerfMap(mapFile);
        fs.rmSync(mapFile, { force: true });
      }
      resolve({ out, symbols });
    });
  });
}

/**
 * V8's heap: allocation slow paths, the collectors, their bookkeeping. Apart
 * from the rest of the built-ins because it is what moves from run to run
 * (where a collection falls in the N and 2N runs); the rest mostly repeats.
 */
const HEAP = /v8::internal::(?:\w+::)*(?:Heap|Scaveng|MarkCompact|MinorMarkCompact|MarkingVisitor|MarkingWorklist|Sweeper|ConcurrentMarking|IncrementalMarking|GCTracer|MemoryAllocator|MemoryChunk|BasicMemoryChunk|Evacuat|RememberedSet|SlotSet|TypedSlot|PagedSpace|SemiSpace|NewSpace|PagedNewSpace|LargeObjectSpace|LocalHeap|Page\b|MemoryReducer|ArrayBufferSweeper|ArrayBufferList|LinearAllocationArea|MainAllocator|FreeList|Worklist|HeapObjectVisitor|RootVisitor|ObjectVisitor|GlobalHandles|EphemeronTable|StringTable::|WeakObjects)|Runtime_AllocateIn(?:Young|Old)Generation|Builtins_(?:AllocateRegularIn\w+|RecordWrite\w*)/;

/** Instructions in V8's generated code (no symbol), by function where the map names it; in the heap (HEAP); and in everything else (built-ins, runtime, libc), by function. */
async function buckets({ out: file, symbols }) {
  const { stdout } = await run('callgrind_annotate', ['--threshold=100', file], { maxBuffer: 256 << 20 });
  let jit = 0;
  let heap = 0;
  let rest = 0;
  const byFunction = new Map();
  const byBuiltin = new Map();
  let listing = false;
  for (const line of stdout.split('\n')) {
    if (line.includes('file:function')) {
      listing = true;
      continue;
    }
    const m = listing && /^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$/.exec(line);
    if (!m) continue;
    const n = Number(m[1].replaceAll(',', ''));
    if (m[2].startsWith('???:0x')) {
      jit += n;
      const name = generatedCodeName(symbols, m[2]);
      byFunction.set(name, (byFunction.get(name) ?? 0) + n);
    } else if (HEAP.test(m[2])) {
      heap += n;
    } else {
      rest += n;
      const name = nativeFunctionName(m[2]);
      byBuiltin.set(name, (byBuiltin.get(name) ?? 0) + n);
    }
  }
  return { jit, heap, rest, other: heap + rest, byFunction, byBuiltin };
}

/** Two callgrind runs at a time (a 2-core machine); results in the order given. */
async function pairwise(jobs) {
  const out = [];
  for (let i = 0; i < jobs.length; i += 2) out.push(...(await Promise.all(jobs.slice(i, i + 2).map((j) => j()))));
  return out;
}

const results = {};
for (const mode of modes) {
  const files = await pairwise([
    () => callgrind(mode, N, false),
    () => callgrind(mode, 2 * N, false),
    () => callgrind(mode, N, true),
    () => callgrind(mode, 2 * N, true),
  ]);
  const [f1, f2, b1, b2] = await Promise.all(files.map(buckets));
  const per = (k) => (f2[k] - f1[k] - (b2[k] - b1[k])) / (2 * N);
  results[mode] = { jit: per('jit'), other: per('other'), heap: per('heap'), rest: per('rest') };
  const r = results[mode];
  console.log(
    `${mode.padEnd(8)} ${(r.jit + r.other).toFixed(0).padStart(5)} instructions per message: ${r.jit.toFixed(0)} in V8's generated code, ` +
      `${r.rest.toFixed(0)} in built-ins, runtime and libc, ${r.heap.toFixed(0)} in V8's heap (allocation slow paths, GC)`,
  );
  if (TOP > 0) {
    const names = new Set([...f1.byFunction.keys(), ...f2.byFunction.keys()]);
    const rows = [...names].map((k) => [((f2.byFunction.get(k) ?? 0) - (f1.byFunction.get(k) ?? 0)) / (2 * N), k]);
    rows.sort((a, b) => b[0] - a[0]);
    console.log('  generated code, by function:');
    for (const [v, k] of rows.slice(0, TOP)) console.log(`  ${v.toFixed(0).padStart(6)}  ${shortName(k)}`);
    // Built-ins net of the bench's frame building (the --build-only runs), as the totals are.
    const delta = (k) => ((f2.byBuiltin.get(k) ?? 0) - (f1.byBuiltin.get(k) ?? 0) - ((b2.byBuiltin.get(k) ?? 0) - (b1.byBuiltin.get(k) ?? 0))) / (2 * N);
    const bnames = new Set([...f1.byBuiltin.keys(), ...f2.byBuiltin.keys()]);
    const brows = [...bnames].map((k) => [delta(k), k]).filter(([v]) => v >= 0.5);
    brows.sort((a, b) => b[0] - a[0]);
    console.log('  built-ins, runtime and libc, by function:');
    for (const [v, k] of brows.slice(0, TOP)) console.log(`  ${v.toFixed(0).padStart(6)}  ${k.length > 100 ? `${k.slice(0, 97)}...` : k}`);
  }
}
if (results.plain && results.session) {
  const t = (r) => r.jit + r.other;
  console.log(`plain/session ${(t(results.plain) / t(results.session)).toFixed(3)} (generated code alone: ${(results.plain.jit / results.session.jit).toFixed(3)})`);
}
fs.rmSync(dir, { recursive: true, force: true });

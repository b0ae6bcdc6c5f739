#!/usr/bin/env node
// What one heartbeat ping costs an idle server, in instructions: scenario d's
// idle-CPU goal, but counted (valgrind's callgrind) rather than timed, so the
// VM's neighbours do not move it. The idle server (from dist/) runs under
// callgrind with counting off; N plain WebSocket peers connect and answer
// pings; after a warm-up, counting is switched on for a window of steady
// pinging (callgrind_control), and the total is divided by the pings the
// server sent in it. Split into V8's compiler, its collector, generated code,
// built-ins, libc and the rest (Node's C++, libuv, V8's runtime): the
// compiler and the collector run when they run, so the split says what a
// window caught of them. Then the top functions of the generated code (named
// through V8's perf map, --perf-basic-prof; what V8 inlined counts as the
// caller's) and of the built-ins, per ping.
//
//   node bench/ping-instructions.mjs [--server idle-lifeline|idle-net-ping] [--connections 500]
//                                    [--interval-ms 3000] [--warm 40] [--window 60] [--top 12] [--keep DIR]
//
// --keep DIR copies the window's callgrind dump and V8's perf map into DIR,
// for `callgrind_annotate --tree=caller` (who calls a built-in: generated
// code shows as ???:0xADDR, which the perf map names).
//
// idle-lifeline runs heartbeat 'normal' with the interval given; idle-net-ping
// is Node's floor (one pre-encoded ping written per socket, the pong only
// stamped). Under callgrind a server runs some 50 times slower: 500
// connections pinged every 3 s keep it below a third of one CPU. About 2
// minutes with the defaults. Needs valgrind (apt-get install valgrind).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Child } from './lib/child.mjs';
import { generatedCodeName, nativeFunctionName, readPerfMap, shortName } from './lib/perf-map.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'idle-lifeline' },
    connections: { type: 'string', default: '500' },
    'interval-ms': { type: 'string', default: '3000' },
    warm: { type: 'string', default: '40' },
    window: { type: 'string', default: '60' },
    top: { type: 'string', default: '12' },
    keep: { type: 'string' },
  },
});
const N = Number(values.connections);
const INTERVAL = Number(values['interval-ms']);
const WARM_MS = Number(values.warm) * 1000;
const WINDOW_MS = Number(values.window) * 1000;
const TOP = Number(values.top);
const SERVER_ARGS = {
  'idle-lifeline': ['--heartbeat', JSON.stringify({ preset: 'normal', interval: INTERVAL })],
  'idle-net-ping': ['--interval-ms', String(INTERVAL)],
};
if (!(N > 0 && INTERVAL > 0 && WARM_MS >= 0 && WINDOW_MS > 0 && Number.isInteger(TOP) && TOP >= 0) || !SERVER_ARGS[values.server]) {
  console.error('usage: node bench/ping-instructions.mjs [--server idle-lifeline|idle-net-ping] [--connections 500] [--interval-ms 3000] [--warm 40] [--window 60] [--top 12] [--keep DIR]');
  process.exit(2);
}
try {
  execFileSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control && command -v callgrind_annotate'], { stdio: 'ignore' });
} catch {
  console.error('valgrind (with callgrind_control and callgrind_annotate) is needed: apt-get install valgrind');
  process.exit(2);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ping-ir-'));
const outFile = path.join(work, 'callgrind.out');
const children = [];
let perfMap = null;
process.on('exit', () => {
  for (const c of children) c.proc.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
  if (perfMap) fs.rmSync(perfMap, { force: true });
});

// --single-threaded: V8 compiles and collects on the main thread, where
// callgrind's counting of the window sees it (the bench's /proc CPU figure
// counts those threads too).
const server = new Child(
  'valgrind',
  ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outFile}`, process.execPath, '--expose-gc', '--single-threaded', '--perf-basic-prof', path.join(HERE, 'servers', `${values.server}.mjs`), ...SERVER_ARGS[values.server]],
  { cwd: work, stdin: true, name: values.server },
);
children.push(server);
// valgrind runs node in its own process, so the map is named after the same pid.
perfMap = `/tmp/perf-${server.pid}.map`;
const port = await server.listeningPort(120_000);
const gen = new Child(process.execPath, [path.join(HERE, 'idle-loadgen.mjs'), '--port', String(port), '--connections', String(N), '--mode', 'ws', '--concurrency', '32'], { stdin: true, name: 'idle-loadgen' });
children.push(gen);
await gen.ready(300_000);

await sleep(WARM_MS);
const before = await server.request('stats', 60_000);
execFileSync('callgrind_control', ['-i', 'on', String(server.pid)], { stdio: 'ignore' });
const t0 = Date.now();
await sleep(WINDOW_MS);
execFileSync('callgrind_control', ['-i', 'off', String(server.pid)], { stdio: 'ignore' });
const seconds = (Date.now() - t0) / 1000;
const after = await server.request('stats', 60_000);
// The dump callgrind_control asks for is written as outFile.1 (outFile is the one written at exit).
execFileSync('callgrind_control', ['-d', String(server.pid)], { stdio: 'ignore' });
const dump = `${outFile}.1`;
for (let i = 0; i < 100 && !fs.existsSync(dump); i++) await sleep(100);
await Promise.all(children.map((c) => c.stop()));

if (values.keep) {
  fs.mkdirSync(values.keep, { recursive: true });
  fs.copyFileSync(dump, path.join(values.keep, 'callgrind.out'));
  if (fs.existsSync(perfMap)) fs.copyFileSync(perfMap, path.join(values.keep, 'perf.map'));
}

const pings = after.pingsSent - before.pingsSent;
const pongs = after.pongsReceived - before.pongsReceived;
if (!(pings > 0)) throw new Error(`ping-instructions: no ping in the window (${JSON.stringify({ before, after })})`);
if (after.closes > 0) console.log(`warning: ${after.closes} connections closed during the run (the server fell behind its heartbeat?)`);

const BUCKETS = [
  ['V8 compiler', /v8::internal::compiler::|v8::internal::maglev::|Pipeline|Zone::/],
  ['V8 collector', /Marking|MarkCompact|Sweep|Scaveng|Evacuat|RememberedSet|v8::internal::Heap::/],
  ['generated code', /\?\?\?:0x[0-9a-f]+ \[\?\?\?\]/],
  ['built-ins', /Builtins_/],
  ['libc', /libc\.so|\/malloc\//],
];
const sums = new Map([...BUCKETS.map(([name]) => [name, 0]), ['the rest', 0]]);
let total = 0;
const symbols = readPerfMap(perfMap);
const byGenerated = new Map();
const byBuiltin = new Map();
const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', dump], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
for (const line of annotated.split('\n')) {
  const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
  if (!m || m[2].startsWith('PROGRAM TOTALS')) continue;
  const n = Number(m[1].replaceAll(',', ''));
  const bucket = BUCKETS.find(([, re]) => re.test(m[2]))?.[0] ?? 'the rest';
  sums.set(bucket, sums.get(bucket) + n);
  total += n;
  if (bucket === 'generated code') {
    const name = generatedCodeName(symbols, m[2]);
    byGenerated.set(name, (byGenerated.get(name) ?? 0) + n);
  } else if (bucket === 'built-ins') {
    const name = nativeFunctionName(m[2]);
    byBuiltin.set(name, (byBuiltin.get(name) ?? 0) + n);
  }
}
console.log(`${values.server}: ${N} connections, ping interval ${INTERVAL} ms, ${seconds.toFixed(1)} s counted after ${WARM_MS / 1000} s of warm-up: ${pings} pings, ${pongs} pongs`);
console.log(`${Math.round(total / pings).toLocaleString('en-US')} instructions per ping:`);
for (const [name, n] of sums) console.log(`  ${Math.round(n / pings).toLocaleString('en-US').padStart(8)}  ${name}`);
for (const [title, map] of [['generated code', byGenerated], ['built-ins', byBuiltin]]) {
  if (TOP === 0) break;
  console.log(`${title}, top ${TOP} by function, per ping:`);
  const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  for (const [name, n] of rows) console.log(`  ${Math.round(n / pings).toLocaleString('en-US').padStart(8)}  ${shortName(name)}`);
}

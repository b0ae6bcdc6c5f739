#!/usr/bin/env node
// Where an echo server's CPU per message goes on real sockets, two servers
// side by side: each runs under the load of a bench scenario (server on CPU
// 0, loadgen on CPU 1, as run.mjs places them) while `perf record` samples
// the server's CPU clock (every thread) for exactly the measured part, and
// the samples become nanoseconds of CPU per echoed message, by area (the
// kernel, V8's generated code, V8's built-ins, V8's heap, the rest of Node,
// libc) and by function. The servers alternate within each repetition
// (A B A B ...) and the medians are reported, with the difference B - A.
//
// Why beside bench/inproc-instructions.mjs: that one counts instructions in
// process, exactly, but without sockets, and instructions are not time; this
// one measures time where the bench's ratios are taken, kernel included,
// with sampling's noise (about 1/sqrt(samples) per row) and its overhead:
// the sampling itself adds to what it measures (at 1 kHz, 5-10% on the
// 2-CPU VM), so compare the two servers of one run, not a run with a bench
// figure. The figure from /proc (the server's CPU over the same window,
// exact from schedstat where the kernel has it, else utime + stime:
// lib/proc.mjs processCpu;
// sampling included) is printed beside the samples' total as a check, and
// the server's read and write system calls per message (/proc/PID/io)
// beside it: a change in how a server batches its writes shows there
// exactly, where its CPU moves within the machine's noise. A
// run that the CPU canaries (lib/canary.mjs) find in a slow phase is done
// again, up to --retries times.
//
//   node bench/socket-profile.mjs [--scenario g] [--servers plain,session]
//        [--reps 3] [--messages 2000000] [--warmup 50000] [--freq 1000] [--top 20]
//        [--retries 3] [--connections N]
//
// --scenario: a, b or g (g: the session layer's two servers, the default);
// --servers: two of that scenario's servers (a and b: lifeline, ws, uws,
// socketio, net-batched, net-perframe; b also net-wsfloor and lifeline-simd); --freq: samples
// per second of server CPU; --messages: round trips per run (default
// twice the scenario's full count); --connections: in place of the
// scenario's (same window and size per connection). Needs Linux perf (Debian: apt-get install
// linux-perf) with the right to sample another process (root, or
// kernel.perf_event_paranoid <= 1), taskset, and a built dist/.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Canaries, canaryFlag } from './lib/canary.mjs';
import { Child } from './lib/child.mjs';
import { ECHO_ENV, echoLoadgenArgs } from './lib/echo-load.mjs';
import { AREAS, functionDiff, parsePerfReport, perMessage } from './lib/perf-areas.mjs';
import { clockTicks, cpuBetween, processCpu, processSyscalls, syscallsBetween } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { NO_ADDON_SERVERS, SCENARIOS, SERVERS, SESSION_SERVERS, WS_FLOOR_SERVERS } from './scenarios.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const USAGE = 'usage: node bench/socket-profile.mjs [--scenario a|b|g] [--servers A,B] [--reps 3] [--messages N] [--warmup N] [--freq 1000] [--top 20] [--retries 3] [--connections N]';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'g' },
    servers: { type: 'string' },
    reps: { type: 'string', default: '3' },
    messages: { type: 'string' },
    warmup: { type: 'string' },
    freq: { type: 'string', default: '1000' },
    retries: { type: 'string', default: '3' },
    connections: { type: 'string' },
    top: { type: 'string', default: '20' },
  },
});

function die(msg) {
  console.error(`socket-profile: ${msg}`);
  process.exit(2);
}

const scId = values.scenario;
if (!['a', 'b', 'g'].includes(scId)) die(`--scenario must be a, b or g\n${USAGE}`);
const sc = SCENARIOS[scId];
const table = scId === 'g' ? SESSION_SERVERS : scId === 'b' ? { ...SERVERS, ...WS_FLOOR_SERVERS, ...NO_ADDON_SERVERS } : SERVERS;
const pair = (values.servers ?? (scId === 'g' ? 'plain,session' : 'net-batched,lifeline')).split(',');
if (pair.length !== 2 || pair.some((s) => !table[s])) die(`--servers takes two of ${Object.keys(table).join(', ')}\n${USAGE}`);
const REPS = Number(values.reps);
const MESSAGES = Number(values.messages ?? 2 * sc.full.messages);
const WARMUP = Number(values.warmup ?? sc.full.warmup);
const FREQ = Number(values.freq);
const TOP = Number(values.top);
const RETRIES = Number(values.retries);
// The scenario's load, or as many connections as asked (what a connection's
// own memory costs shows in how the CPU per message moves with their number).
const LOAD = { ...sc.loadgen, connections: Number(values.connections ?? sc.loadgen.connections) };
if (!(REPS >= 1 && MESSAGES >= 1000 && WARMUP >= 0 && FREQ >= 10 && FREQ <= 20000 && TOP >= 0 && RETRIES >= 0 && LOAD.connections >= 1)) die(USAGE);
// cpu-clock counts nanoseconds: a fixed period makes every sample the same CPU time.
const PERIOD_NS = Math.round(1e9 / FREQ);

if (process.platform !== 'linux') die('needs Linux (perf, /proc)');
for (const [cmd, args] of [['perf', ['--version']], ['taskset', ['--version']]]) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    die(`${cmd} not found (Debian: apt-get install ${cmd === 'perf' ? 'linux-perf' : 'util-linux'})`);
  }
}
if (!fs.existsSync(path.join(ROOT, 'dist', 'server', 'index.js'))) die('no dist/: run `npm run build` first');
if (os.availableParallelism() < 2) die('needs 2 CPUs (server and loadgen pinned apart)');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'socket-profile-'));
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.proc.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const TICK = clockTicks();
// The CPU canaries of run.mjs (lib/canary.mjs) on both CPUs: this VM's slow
// phases double the CPU per message of a run that falls into one, more than
// the differences this tool looks for. A run whose canary read slow is done
// again (up to --retries times).
const CPUS = [0, 1];
const canaries = new Canaries(ROOT);

function spawnChild(cmd, args, opts) {
  const c = new Child(cmd, args, { cwd: ROOT, env: ECHO_ENV, ...opts });
  children.add(c);
  c.exited.then(() => children.delete(c));
  return c;
}

/** Writes `line` to perf's control FIFO and reads its answer from the other. */
async function perfControl(fifos, line) {
  await fifos.ctl.write(`${line}\n`);
  const { bytesRead, buffer } = await fifos.ack.read(Buffer.alloc(16), 0, 16, null);
  if (!buffer.subarray(0, bytesRead).toString().startsWith('ack')) throw new Error(`perf did not acknowledge "${line}"`);
}

/**
 * Opens perf's control FIFOs (each open waits for perf to open the other
 * end), or throws if perf exits first (no right to sample, say).
 */
async function openControl(perf, ctl, ack) {
  const gone = perf.exited.then(() => {
    throw new Error(`perf record exited before it took control${perf.stderrTail()}`);
  });
  const ctlFh = await Promise.race([fs.promises.open(ctl, 'w'), gone]);
  const ackFh = await Promise.race([fs.promises.open(ack, 'r'), gone]);
  gone.catch(() => {});
  return { ctl: ctlFh, ack: ackFh };
}

let runCount = 0;

/** One measured run of `id`: its samples per message, and its CPU per message from /proc. */
async function profileRun(id, rep) {
  const def = table[id];
  // V8's symbol map names the generated code in perf's report.
  const server = spawnChild('taskset', ['-c', '0', process.execPath, '--perf-basic-prof', path.join(HERE, def.script), ...(def.args ?? [])], {
    name: `${id} server`,
    ...(def.env ? { env: { ...ECHO_ENV, ...def.env } } : {}),
  });
  try {
    const port = await server.listeningPort(15000);
    const loadgen = spawnChild('taskset', ['-c', '1', process.execPath, ...echoLoadgenArgs(port, LOAD, def, MESSAGES, WARMUP)], { stdin: true, name: 'loadgen' });
    await loadgen.waitLine((l) => l === 'ready', '"ready"', 120000);
    // perf starts with its events off and turns them on when told, so the
    // samples cover the measured part only (not startup or the warm-up).
    const tag = `${id}-${rep}-${++runCount}`; // a run done again gets files of its own
    const data = path.join(work, `${tag}.data`);
    const ctl = path.join(work, `ctl-${tag}`);
    const ack = path.join(work, `ack-${tag}`);
    execFileSync('mkfifo', [ctl, ack]);
    const perf = spawnChild('perf', ['record', '-q', '-D', '-1', '--control', `fifo:${ctl},${ack}`, '-e', 'cpu-clock', '-c', String(PERIOD_NS), '-p', String(server.pid), '-o', data], { name: 'perf' });
    const fifos = await openControl(perf, ctl, ack);
    const canaryBefore = await canaries.readAll(CPUS);
    await perfControl(fifos, 'enable');
    const before = processCpu(server.pid);
    const callsBefore = processSyscalls(server.pid);
    loadgen.write('go\n');
    const resultLine = await loadgen.waitLine((l) => l.startsWith('result '), 'result', 60000 + MESSAGES / 5);
    const after = processCpu(server.pid);
    const callsAfter = processSyscalls(server.pid);
    await perfControl(fifos, 'disable');
    const canaryAfter = await canaries.readAll(CPUS);
    await fifos.ctl.close();
    await fifos.ack.close();
    perf.proc.kill('SIGINT');
    // perf record writes its file on SIGINT and then ends by that signal.
    const { code, signal } = await perf.exited;
    if (!(code === 0 || signal === 'SIGINT') || !fs.existsSync(data)) throw new Error(`perf record exited ${signal ?? code}${perf.stderrTail()}`);
    const r = JSON.parse(resultLine.slice('result '.length));
    if (!r.ok) throw new Error(`${id}: the loadgen reported a failure: ${r.outcome} ${(r.errors ?? [])[0] ?? ''}`);
    await loadgen.exited;
    const report = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', 'dso,sym', '-n', '-q', '-t', '\t'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
    // V8's perf map (one per server process, megabytes) is read by perf report only.
    for (const f of [data, ctl, ack, `/tmp/perf-${server.pid}.map`]) fs.rmSync(f, { force: true });
    const pm = perMessage(parsePerfReport(report), PERIOD_NS, r.received);
    const procNs = (cpuBetween(before, after, TICK).sec * 1e9) / r.received;
    const slow = CPUS.map((cpu) => canaryFlag(cpu, canaryBefore[cpu], canaryAfter[cpu], canaries.best(cpu))).filter(Boolean);
    // Write calls per message: how well a server batches, and where a
    // change of its writes (the session's standalone acks) shows exactly.
    const between = syscallsBetween(callsBefore, callsAfter);
    const calls = between && { reads: between.reads / r.received, writes: between.writes / r.received };
    return { ...pm, procNs, calls, msgsPerSec: r.msgsPerSec, slow };
  } finally {
    await server.stop();
  }
}

const runs = Object.fromEntries(pair.map((id) => [id, []]));
const started = Date.now();
console.log(`socket profile, scenario ${scId} (${sc.title}${LOAD.connections !== sc.loadgen.connections ? `; ${LOAD.connections} connections` : ''}): ${pair.join(' vs ')}, ${REPS} repetition(s) of ${MESSAGES.toLocaleString('en-US')} round trips (+${WARMUP.toLocaleString('en-US')} warm-up), perf cpu-clock every ${(PERIOD_NS / 1000).toLocaleString('en-US')} us of server CPU; node ${process.version}\n`);
let flagged = 0;
try {
  for (let rep = 1; rep <= REPS; rep++) {
    for (const id of pair) {
      for (let attempt = 0; ; attempt++) {
        await canaries.waitFastAll(CPUS);
        const r = await profileRun(id, rep);
        const again = r.slow.length > 0 && attempt < RETRIES;
        const line = `  rep ${rep} ${id.padEnd(12)} ${Math.round(r.msgsPerSec).toLocaleString('en-US').padStart(9)} msgs/s  samples ${r.total.toFixed(0)} ns/msg (generated code ${r.areas.jit.toFixed(0)})  /proc ${r.procNs.toFixed(0)} ns/msg${r.calls ? `  syscalls/msg r+w ${r.calls.reads.toFixed(3)}+${r.calls.writes.toFixed(3)}` : ''}`;
        console.log(line + (r.slow.length ? `  [${r.slow.join('; ')}]${again ? ' -> again' : ' (kept: out of retries)'}` : ''));
        if (again) continue;
        if (r.slow.length) flagged++;
        runs[id].push(r);
        break;
      }
    }
  }
} finally {
  await canaries.stopAll();
}

const [A, B] = pair;
const fmt = (x) => x.toFixed(1).padStart(9);
const col = (s, w) => s.padEnd(w);
const W = Math.max(...AREAS.map((a) => a.label.length), 24);
console.log(`\nserver CPU per echoed message, ns (medians of ${REPS}; ${B} - ${A} in the last column)`);
console.log(`${col('area', W)} ${A.padStart(9)} ${B.padStart(9)}      diff`);
for (const a of AREAS) {
  const x = median(runs[A].map((r) => r.areas[a.id]));
  const y = median(runs[B].map((r) => r.areas[a.id]));
  if (x === 0 && y === 0) continue;
  console.log(`${col(a.label, W)} ${fmt(x)} ${fmt(y)} ${fmt(y - x)}`);
}
const tx = median(runs[A].map((r) => r.total));
const ty = median(runs[B].map((r) => r.total));
console.log(`${col('all samples', W)} ${fmt(tx)} ${fmt(ty)} ${fmt(ty - tx)}`);
const px = median(runs[A].map((r) => r.procNs));
const py = median(runs[B].map((r) => r.procNs));
console.log(`${col('/proc CPU (schedstat, or ticks)', W)} ${fmt(px)} ${fmt(py)} ${fmt(py - px)}`);
if (runs[A].every((r) => r.calls) && runs[B].every((r) => r.calls)) {
  const fc = (x) => x.toFixed(3).padStart(9);
  for (const k of ['reads', 'writes']) {
    const x = median(runs[A].map((r) => r.calls[k]));
    const y = median(runs[B].map((r) => r.calls[k]));
    console.log(`${col(`${k.slice(0, -1)} system calls per message`, W)} ${fc(x)} ${fc(y)} ${fc(y - x)}`);
  }
}
console.log(`${B}'s CPU per message over ${A}'s: ${(py / px).toFixed(2)}x by /proc, ${(ty / tx).toFixed(2)}x by samples (messages per CPU-s, ${B} / ${A}: ${(px / py).toFixed(2)} and ${(tx / ty).toFixed(2)})`);
// Within a repetition the two runs are back to back: their ratio moves less
// with the machine's slow phases than the ratio of the medians does.
const pairRatios = runs[A].map((r, i) => r.procNs / runs[B][i].procNs);
console.log(`messages per CPU-s, ${B} / ${A}, per repetition (/proc): ${pairRatios.map((x) => x.toFixed(2)).join(', ')}; median ${median(pairRatios).toFixed(2)}`);
if (TOP > 0) {
  console.log(`\nfunctions with the largest difference, ns per message (medians of ${REPS})`);
  console.log(`${A.padStart(9)} ${B.padStart(9)}      diff  function (shared object)`);
  for (const f of functionDiff(runs[A], runs[B], TOP)) console.log(`${fmt(f.a)} ${fmt(f.b)} ${fmt(f.diff)}  ${f.name.replace('file://' + ROOT + '/', '')}`);
}
if (flagged) console.log(`\n${flagged} run(s) kept although a CPU was in a slow phase: treat the figures with care.`);
console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);

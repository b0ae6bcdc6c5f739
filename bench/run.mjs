#!/usr/bin/env node
// The bench suite: `npm run bench` (full) or `npm run bench -- --quick`.
//
// For every echo scenario (scenarios.mjs) and every repetition, each server runs in
// turn (lifeline, ws, uws, socketio, net-batched, net-perframe, lifeline, ...),
// each in a fresh process of its own, driven by bench/loadgen.mjs in another
// process. Around the measured part of each run (after connect and warm-up)
// the server's CPU time is read from /proc (the scheduler's exact run time
// of its threads, /proc/PID/task/*/schedstat, where /proc/PID/stat's 10 ms
// ticks would be 2% of a half-second figure at each end; the ticks where
// there is no schedstat: lib/proc.mjs), so results come both as
// messages per second and as messages per server-CPU-second (the second is
// steadier on a busy or small machine, and the one the goals use). Medians
// over the repetitions are printed with ratios to ws, uws and net-batched (raw
// TCP, the physical reference), then the issue's goals as PASS/MISS, and
// everything is written as JSON to bench/results/<timestamp>.json with a bar
// chart of the ratios next to it (<timestamp>.svg; latest.json/.svg for a
// full run, latest-quick.json/.svg for a quick one).
//
// Echo scenarios: a (100 connections x 32 B text, window 16: throughput),
// b (10 x 16 KiB binary, window 4: bulk), c (1 x 32 B, window 1: round-trip
// latency p50/p99/p99.9 in microseconds, and throughput).
//
// Scenario d (alias `idle`) is different: 10,000 idle connections per server
// with heartbeats on, memory per connection after GC and idle CPU over a 30 s
// window (quick: 2,000 connections, 6 s), lifeline next to ws with its README
// heartbeat and a plain net server, all in one shared window; see
// lib/idle.mjs. --pin and --retries apply to echo scenarios only; --cpu-prof to
// echo scenarios and e (a profile of the measured broadcasts only).
//
// Scenarios e (alias `broadcast`) and f (alias `hold`) are run by
// lib/broadcast.mjs and lib/hold.mjs, loaded only when they run: where a file
// is missing the scenario is skipped with a note.
//
// Scenario g (alias `session`) runs scenario a's load against lifeline without
// (WebSocketServer, plain peers) and with its session layer (LifelineServer,
// loadgen speaking lifeline.v1: seq/ack per message, standalone acks every 32)
// and reports the ratio session/plain (goal: >= 0.8).
//
// Every run also reports the browser bundle's size (scripts/build-browser.mjs:
// minified and min+gzip; goal <= 6 KB min+gzip) in the output and the JSON.
//
// Options:
//   --quick               a smoke test, under a minute in all: 1 repetition,
//                         a 100k round trips, b 4k, c 5k; idle: 2,000
//                         connections, 6 s window
//   --reps N              repetitions (default: 3 full, 1 quick)
//   --messages N          round trips per run (marks the run "custom", as do
//                         all options below but --no-write/--no-wait/--retries)
//   --connections N, --size BYTES, --window N
//                         override the scenario's load (--connections also sets
//                         scenario d's idle connections per server)
//   --idle-sec S          scenario d: length of the idle window, seconds
//   --idle-sequential     scenario d: one idle window per server instead of one
//                         shared by all (slower; same numbers, less crosstalk)
//   --scenario a[,d]      scenarios to run, by id or alias (a, b, c = echo,
//                         d = idle, e = broadcast, f = hold, g = session;
//                         default: all)
//   --servers x[,y]       servers to run (default: all of each scenario's).
//                         Echo (a, b, c): lifeline, ws, uws, socketio,
//                         net-batched, net-perframe; b also net-wsfloor
//                         (its floor). Session (g):
//                         plain (baseline), session. Idle: net, ws,
//                         ws-5s, lifeline, lifeline-aggr, lifeline-v1,
//                         lifeline-v1-aggr, lifeline-off. e and f get the
//                         list as it is and pick what they know.
//   --unpinned            let the kernel place server and loadgen (a, b and g pin
//                         the server to CPU 0 and the loadgen to CPU 1 by default)
//   --pin                 pin the server to CPU 0 and the loadgen to CPU 1 (taskset),
//                         in every echo scenario
//   --latency-pin MODE    scenario c's placement: same (default: server and
//                         loadgen on the same CPU), split (CPU 0 and 1), none
//   --cpu-prof            run the servers under `node --cpu-prof` and print the
//                         top self-time functions (numbers then include profiler
//                         overhead and are not written to latest*.json)
//   --no-write            don't write bench/results/
//   --retries N           redo a run flagged for other load up to N times
//                         (default 2; quick: 0)
//   --no-wait             start each run at once, even if the machine is busy
//                         (by default a run waits up to 60 s for other load to
//                         fall below a third of a CPU, and a run of a server a
//                         goal reads up to 30 s per CPU for the CPU canary to
//                         read fast: bench/README.md, "Slow phases")

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './lib/child.mjs';
import { ECHO_ENV, echoLoadgenArgs } from './lib/echo-load.mjs';
import { formatIdleSummary, runIdleScenario } from './lib/idle.mjs';
import { clockTicks, cpuBetween, cpuCount, hasProc, machineTicks, processCpu, processSyscalls, syscallsBetween } from './lib/proc.mjs';
import { max, median, min, perRepRatios } from './lib/stats.mjs';
import { BASELINE, IDLE_SERVERS, NO_ADDON_SERVERS, REFERENCES, SCENARIOS, SERVERS, SESSION_SERVERS, WS_FLOOR_SERVERS } from './scenarios.mjs';
import { formatProfile, summarizeProfile } from './profile.mjs';
import { renderChart } from './lib/chart.mjs';
import { Canaries, canaryFlag } from './lib/canary.mjs';
import { floorOf, floorText, missedByFloor } from './lib/floor.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const RESULTS = path.join(BENCH, 'results');

/** A run is flagged when more than this share of one CPU went to steal or to other processes. */
const STEAL_FLAG = 0.02;
const OTHER_FLAG = 0.1;

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  // The header comment is the manual.
  const src = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const head = src.slice(src.indexOf('\n') + 1).split('\n\n')[0];
  console.log(head.replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    messages: { type: 'string' },
    connections: { type: 'string' },
    size: { type: 'string' },
    window: { type: 'string' },
    scenario: { type: 'string' },
    servers: { type: 'string' },
    pin: { type: 'boolean', default: false },
    unpinned: { type: 'boolean', default: false },
    'latency-pin': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'no-wait': { type: 'boolean', default: false },
    retries: { type: 'string' },
    'idle-sec': { type: 'string' },
    'idle-sequential': { type: 'boolean', default: false },
  },
  strict: true,
});

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`bench: --${name} must be a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

function nonNegativeInt(name, v) {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`bench: --${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

function listArg(name, v, known, aliases = {}) {
  const list = v ? v.split(',').map((s) => s.trim()).filter(Boolean).map((x) => aliases[x] ?? x) : Object.keys(known);
  for (const x of list) {
    if (!(x in known)) {
      console.error(`bench: unknown ${name} ${JSON.stringify(x)} (known: ${[...Object.keys(known), ...Object.keys(aliases)].join(', ')})`);
      process.exit(2);
    }
  }
  return [...new Set(list)];
}

const SCENARIO_ALIASES = Object.fromEntries(Object.entries(SCENARIOS).filter(([, sc]) => sc.alias).map(([id, sc]) => [sc.alias, id]));

const mode = opt.quick ? 'quick' : 'full';
const custom = opt.reps !== undefined || opt.messages !== undefined || opt.connections !== undefined || opt.size !== undefined || opt.window !== undefined || opt.scenario !== undefined || opt.servers !== undefined || opt.pin || opt.unpinned || opt['cpu-prof'] || opt['idle-sec'] !== undefined || opt['idle-sequential'] || opt['latency-pin'] !== undefined;
const scenarioIds = listArg('scenario', opt.scenario, SCENARIOS, SCENARIO_ALIASES);
// Each scenario runs the requested servers it knows (echo: SERVERS, idle: its
// own). Module scenarios (e, f) have their own server names, unknown here: when
// one of them runs, names no other scenario knows are passed on, not refused.
const moduleScenarioSelected = scenarioIds.some((id) => SCENARIOS[id].kind === 'module');
const requestedServers =
  opt.servers === undefined
    ? null
    : moduleScenarioSelected
      ? opt.servers.split(',').map((x) => x.trim()).filter(Boolean)
      : listArg('server', opt.servers, { ...SERVERS, ...NO_ADDON_SERVERS, ...WS_FLOOR_SERVERS, ...IDLE_SERVERS, ...SESSION_SERVERS });
/** An echo scenario's servers (its own, or SERVERS) and the one ratios are taken against. */
const echoServers = (sc) => sc.servers ?? SERVERS;
const echoBaseline = (sc) => sc.baseline ?? BASELINE;
/** The servers an echo scenario reports ratios to (columns and JSON `vs`). */
const echoReferences = (sc) => sc.references ?? REFERENCES;
const scenarioServers = (sc) => {
  const known = sc.kind === 'idle' ? sc.servers : echoServers(sc);
  return requestedServers === null ? Object.keys(known) : requestedServers.filter((id) => id in known);
};
const PROFILE_DIR = path.join(RESULTS, 'profiles');

if (!hasProc()) {
  console.error('bench: /proc is not available; server CPU cannot be measured (Linux only)');
  process.exit(2);
}
if (!fs.existsSync(path.join(ROOT, 'dist', 'server', 'index.js'))) {
  console.error('bench: dist/ is missing; run `npm run bench` (its prebench hook builds) or `npm run build`');
  process.exit(2);
}
if (opt['latency-pin'] !== undefined && !['same', 'split', 'none'].includes(opt['latency-pin'])) {
  console.error(`bench: --latency-pin must be same, split or none, got ${JSON.stringify(opt['latency-pin'])}`);
  process.exit(2);
}
if ((opt.pin || opt['latency-pin'] === 'split') && cpuCount() < 2) {
  console.error('bench: --pin needs at least 2 CPUs');
  process.exit(2);
}

const TICK = clockTicks();
// Quick runs are too short (fractions of a second, CPU in 10 ms ticks) for the
// disturbance flags to mean much, and a smoke test should stay under a minute:
// no retries unless asked for.
const retries = opt.retries === undefined ? (opt.quick ? 0 : 2) : nonNegativeInt('retries', opt.retries);

/**
 * How an echo scenario places its server and loadgen: 'split' (server on CPU
 * 0, loadgen on CPU 1: --pin), 'same' (both on the last CPU), or 'none' (the
 * kernel decides). Scenario c defaults to 'same' (scenarios.mjs `pin`): with
 * one message in flight only one side runs at a time, and a round trip
 * between two CPUs of a VM costs two cross-CPU wake-ups (~60-80 us on the
 * 2-CPU machine, against ~20 us on one CPU), noise that would swamp the
 * servers' own differences. --latency-pin overrides it.
 */
function pinModeOf(sc) {
  if (opt.pin) return 'split';
  if (opt.unpinned) return 'none';
  // A scenario's own placement needs the CPUs for it.
  if (sc.pin === 'split' && cpuCount() < 2) return 'none';
  if (sc.loadgen?.latency && opt['latency-pin'] !== undefined) return opt['latency-pin'];
  return sc.pin ?? 'none';
}

/** The CPU a process of `role` ('server' or 'loadgen') is pinned to, or null (pinMode 'none'). */
function cpuOf(role, pinMode) {
  if (pinMode === 'none') return null;
  return pinMode === 'same' ? cpuCount() - 1 : role === 'server' ? 0 : 1;
}

/** [command, args] for a node process; `role` is 'server' or 'loadgen'. */
function nodeCmd(args, role, pinMode) {
  const cpu = cpuOf(role, pinMode);
  if (cpu === null) return [process.execPath, args];
  return ['taskset', ['-c', String(cpu), process.execPath, ...args]];
}

/** The servers a scenario's goals read: each goal's own, its reference and its floor. */
function goalServers(sc) {
  return new Set((sc.goals ?? []).flatMap((g) => [g.of, g.vs, g.floor].filter(Boolean)));
}

/** The CPU canaries of pinned echo runs (lib/canary.mjs); stopped at the end of main(). */
const canaries = new Canaries(ROOT);

const QUIET_BUSY = 0.33;
const QUIET_MAX_WAIT_MS = 60_000;
/** The sample before each run; shorter in quick mode, which runs ~20 servers in under a minute. */
const QUIET_SAMPLE_MS = opt.quick ? 250 : 500;

/**
 * Waits until the machine is quiet (busy below a third of one CPU over a
 * 500 ms sample) or the wait limit passes. Returns how long it waited and the
 * last busy share seen. Other agents and test runs share small machines.
 */
async function waitQuiet() {
  const start = Date.now();
  let busy = NaN;
  for (;;) {
    const a = machineTicks();
    await new Promise((r) => setTimeout(r, QUIET_SAMPLE_MS));
    const b = machineTicks();
    busy = (b.busy - a.busy) / TICK / (QUIET_SAMPLE_MS / 1000);
    if (busy < QUIET_BUSY || opt['no-wait'] || Date.now() - start > QUIET_MAX_WAIT_MS) break;
  }
  return { waitedMs: Date.now() - start, busyBefore: busy };
}

/** One server on one scenario: a fresh server process and a fresh loadgen process. */
async function runOnce(scenarioId, sc, params, serverId, rep) {
  const serverArgs = [];
  let profileFile = null;
  if (opt['cpu-prof']) {
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    profileFile = path.join(PROFILE_DIR, `${scenarioId}-${serverId}-rep${rep}.cpuprofile`);
    fs.rmSync(profileFile, { force: true });
    serverArgs.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${path.basename(profileFile)}`);
  }
  const serverDef = echoServers(sc)[serverId];
  serverArgs.push(path.join(BENCH, serverDef.script), ...(serverDef.args ?? []));
  const quiet = await waitQuiet();
  const pinMode = pinModeOf(sc);
  // The canaries on the server's and the loadgen's CPUs (lib/canary.mjs):
  // wait for them to read fast, then read them just before and just after
  // the measured part. Only for the servers a goal reads (the others are
  // context, and waiting out a slow phase for socket.io's 15 s runs would
  // cost minutes); unpinned runs have no CPUs of their own to watch; quick
  // runs skip them.
  const watched = !opt.quick && pinMode !== 'none' && goalServers(sc).has(serverId);
  const canaryCpus = watched ? [...new Set([cpuOf('server', pinMode), cpuOf('loadgen', pinMode)])] : [];
  const canaryWaitedMs = opt['no-wait'] ? 0 : await canaries.waitFastAll(canaryCpus);
  const [scmd, sargs] = nodeCmd(serverArgs, 'server', pinMode);
  const server = new Child(scmd, sargs, { cwd: ROOT, env: serverDef.env ? { ...ECHO_ENV, ...serverDef.env } : ECHO_ENV, name: `${serverId} server` });
  let loadgen = null;
  try {
    const listening = await server.waitLine((l) => l.startsWith('listening '), '"listening <port>"', 15000);
    const port = Number(listening.split(' ')[1]);
    const [lcmd, largs] = nodeCmd(echoLoadgenArgs(port, sc.loadgen, serverDef, params.messages, params.warmup), 'loadgen', pinMode);
    loadgen = new Child(lcmd, largs, { cwd: ROOT, stdin: true, env: ECHO_ENV, name: 'loadgen' });
    const first = await loadgen.waitLine((l) => l === 'ready' || l.startsWith('result '), '"ready"', 120000);
    let before = null;
    let t0 = 0n;
    let canaryBefore = {};
    if (first === 'ready') {
      canaryBefore = await canaries.readAll(canaryCpus);
      before = { server: processCpu(server.pid), loadgen: processCpu(loadgen.pid), machine: machineTicks(), io: processSyscalls(server.pid), lgio: processSyscalls(loadgen.pid) };
      t0 = process.hrtime.bigint();
      loadgen.write('go\n');
    }
    // Generous: ws at its slowest here does ~50k msgs/s on a busy 2-CPU box.
    const timeoutMs = 60000 + params.messages / 5;
    const resultLine = await loadgen.waitLine((l) => l.startsWith('result '), 'result', timeoutMs);
    const wallSec = before ? Number(process.hrtime.bigint() - t0) / 1e9 : NaN;
    const after = { server: processCpu(server.pid), loadgen: processCpu(loadgen.pid), machine: machineTicks(), io: processSyscalls(server.pid), lgio: processSyscalls(loadgen.pid) };
    const canaryAfter = before ? await canaries.readAll(canaryCpus) : {};
    const r = JSON.parse(resultLine.slice('result '.length));
    await loadgen.exited;
    if (before === null || before.server === null || before.loadgen === null || after.server === null || after.loadgen === null) {
      return { server: serverId, rep, ok: false, lost: r.lost ?? NaN, flags: [`FAILED: ${(r.errors ?? ['no measurement'])[0]}`], errors: r.errors ?? ['no measurement'] };
    }

    // The scheduler's exact CPU time where the kernel gives it (lib/proc.mjs cpuBetween), else ticks.
    const serverCpu = cpuBetween(before.server, after.server, TICK);
    const serverUserSec = serverCpu.userSec;
    const serverSysSec = serverCpu.sysSec;
    const serverCpuSec = serverCpu.sec;
    const loadgenCpuSec = cpuBetween(before.loadgen, after.loadgen, TICK).sec;
    const busySec = (after.machine.busy - before.machine.busy) / TICK;
    const stealSec = (after.machine.steal - before.machine.steal) / TICK;
    const otherSec = Math.max(0, busySec - serverCpuSec - loadgenCpuSec);
    const stealShare = stealSec / wallSec;
    const otherShare = otherSec / wallSec;
    // System calls per message say how well the server batches its socket I/O.
    const io = syscallsBetween(before.io, after.io);
    const lgio = syscallsBetween(before.lgio, after.lgio);
    const flags = [];
    if (stealShare > STEAL_FLAG) flags.push(`steal ${(100 * stealShare).toFixed(0)}% of a CPU`);
    if (otherShare > OTHER_FLAG) flags.push(`other load ${(100 * otherShare).toFixed(0)}% of a CPU`);
    if (quiet.busyBefore >= QUIET_BUSY) flags.push(`machine busy before the run (${(100 * quiet.busyBefore).toFixed(0)}% of a CPU)`);
    for (const cpu of canaryCpus) {
      const slow = canaryFlag(cpu, canaryBefore[cpu], canaryAfter[cpu], canaries.best(cpu));
      if (slow) flags.push(slow);
    }
    if (!r.ok) flags.push(`FAILED: ${r.outcome}, lost ${r.lost}${r.errors.length ? `: ${r.errors[0]}` : ''}`);
    return {
      server: serverId,
      rep,
      ok: r.ok,
      sent: r.sent,
      received: r.received,
      lost: r.lost,
      verified: r.verified,
      elapsedMs: r.elapsedMs,
      msgsPerSec: r.msgsPerSec,
      serverCpuSec,
      serverUserSec,
      serverSysSec,
      cpuClock: serverCpu.clock,
      serverCpuSecTicks: serverCpu.ticksSec,
      serverMinorFaultsPerMsg: r.received > 0 ? (after.server.minorFaults - before.server.minorFaults) / r.received : NaN,
      msgsPerServerCpuSec: serverCpuSec > 0 ? r.received / serverCpuSec : NaN,
      serverCpuShare: serverCpuSec / wallSec,
      loadgenCpuSec,
      loadgenCpuShare: loadgenCpuSec / wallSec,
      stealShare,
      otherShare,
      serverReadsPerMsg: io && r.received > 0 ? io.reads / r.received : NaN,
      serverWritesPerMsg: io && r.received > 0 ? io.writes / r.received : NaN,
      loadgenReadsPerMsg: lgio && r.received > 0 ? lgio.reads / r.received : NaN,
      loadgenWritesPerMsg: lgio && r.received > 0 ? lgio.writes / r.received : NaN,
      ...(r.latencyUs ? { latencyUs: r.latencyUs } : {}),
      ...(canaryCpus.length
        ? { canary: { waitedMs: canaryWaitedMs, cpus: Object.fromEntries(canaryCpus.map((cpu) => [cpu, { before: canaryBefore[cpu], after: canaryAfter[cpu], best: canaries.best(cpu) }])) } }
        : {}),
      quiet,
      flags,
      errors: r.errors,
      profile: profileFile ? path.relative(ROOT, profileFile) : undefined,
    };
  } finally {
    if (loadgen) await loadgen.stop();
    const { code, signal } = await server.stop();
    if (code !== 0 && code !== null) console.error(`  (${serverId} server exited ${code}${server.stderrTail()})`);
    if (signal) console.error(`  (${serverId} server killed by ${signal})`);
  }
}

function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

/** A run's canary readings, per CPU: `cpu0 50/17->51/18` (compute us/memory ns, before -> after), and any wait for a fast CPU. */
function fmtCanaries(canary) {
  const one = (c) => (c ? `${c.computeUs.toFixed(0)}/${c.memoryNs.toFixed(0)}` : '-');
  const cpus = Object.entries(canary.cpus).map(([cpu, c]) => `cpu${cpu} ${one(c.before)}->${one(c.after)}`);
  return cpus.join(' ') + (canary.waitedMs >= 1000 ? ` (waited ${(canary.waitedMs / 1000).toFixed(0)} s)` : '');
}

function fmtPct(x) {
  return Number.isFinite(x) ? `${Math.round(100 * x)}%` : '-';
}

function fmtFixed(x) {
  return Number.isFinite(x) ? x.toFixed(3) : '-';
}

function fmtRatio(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Median of one latency percentile (µs) over the good runs that have it. */
function medianLatency(good, key) {
  return median(good.filter((r) => r.latencyUs).map((r) => r.latencyUs[key]));
}

/**
 * Medians per server over the good runs, and ratios of each server to the
 * baseline (vsBaseline*) and to every reference that ran (`vs[ref]`:
 * msgsPerSec and perCpuSec, higher is better; with latency also p50/p99/p999
 * as this server's latency / the reference's, lower is better).
 */
function summarize(serverIds, runs, baseline = BASELINE, references = []) {
  const by = {};
  for (const id of serverIds) {
    const rs = runs.filter((r) => r.server === id);
    const good = rs.filter((r) => r.ok);
    const hasLatency = good.some((r) => r.latencyUs);
    by[id] = {
      runs: rs.length,
      failed: rs.length - good.length,
      lost: rs.reduce((a, r) => a + (Number.isFinite(r.lost) ? r.lost : 0), 0),
      msgsPerSec: median(good.map((r) => r.msgsPerSec)),
      msgsPerSecMin: good.length ? min(good.map((r) => r.msgsPerSec)) : NaN,
      msgsPerSecMax: good.length ? max(good.map((r) => r.msgsPerSec)) : NaN,
      msgsPerServerCpuSec: median(good.map((r) => r.msgsPerServerCpuSec)),
      serverCpuShare: median(good.map((r) => r.serverCpuShare)),
      loadgenCpuShare: median(good.map((r) => r.loadgenCpuShare)),
      loadgenCpuShareMax: good.length ? max(good.map((r) => r.loadgenCpuShare)) : NaN,
      serverReadsPerMsg: median(good.map((r) => r.serverReadsPerMsg)),
      serverWritesPerMsg: median(good.map((r) => r.serverWritesPerMsg)),
      ...(hasLatency ? { latencyUs: { p50: medianLatency(good, 'p50'), p90: medianLatency(good, 'p90'), p99: medianLatency(good, 'p99'), p999: medianLatency(good, 'p999'), max: medianLatency(good, 'max'), mean: medianLatency(good, 'mean') } } : {}),
      flagged: rs.filter((r) => r.flags.length > 0).length,
      // Runs whose CPU came from the ticks, not the exact clock (lib/proc.mjs cpuBetween).
      cpuFromTicks: good.filter((r) => r.cpuClock === 'ticks').length,
    };
  }
  for (const id of serverIds) {
    const s = by[id];
    if (by[baseline]) {
      s.vsBaselineMsgsPerSec = s.msgsPerSec / by[baseline].msgsPerSec;
      s.vsBaselinePerCpuSec = s.msgsPerServerCpuSec / by[baseline].msgsPerServerCpuSec;
    }
    s.vs = {};
    for (const ref of references) {
      const r = by[ref];
      if (!r) continue;
      s.vs[ref] = { msgsPerSec: s.msgsPerSec / r.msgsPerSec, perCpuSec: s.msgsPerServerCpuSec / r.msgsPerServerCpuSec };
      if (s.latencyUs && r.latencyUs) {
        for (const k of ['p50', 'p99', 'p999']) s.vs[ref][k] = s.latencyUs[k] / r.latencyUs[k];
      }
    }
  }
  return by;
}

function fmtUs(x) {
  return Number.isFinite(x) ? (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)) : '-';
}

function printSummary(serverIds, params, summary, baseline = BASELINE, references = []) {
  const refs = references.filter((ref) => summary[ref]);
  const hasLatency = serverIds.some((id) => summary[id].latencyUs);
  // With references: one column per reference, "msgs/s ratio | per-CPU-s ratio".
  const ratioHeader = refs.length ? refs.map((ref) => `vs ${ref} msgs/s|CPU-s`) : [`vs ${baseline} msgs/s`, `vs ${baseline} per CPU-s`];
  const header = [
    'server',
    'msgs/s',
    'min..max',
    'msgs/server-CPU-s',
    ...(hasLatency ? ['p50 us', 'p99 us', 'p99.9 us'] : []),
    'server CPU',
    'loadgen CPU',
    'syscalls/msg r+w',
    'lost',
    ...ratioHeader,
  ];
  const rows = serverIds.map((id) => {
    const s = summary[id];
    const lat = s.latencyUs ?? {};
    return [
      id,
      fmtInt(s.msgsPerSec),
      `${fmtInt(s.msgsPerSecMin)}..${fmtInt(s.msgsPerSecMax)}`,
      fmtInt(s.msgsPerServerCpuSec),
      ...(hasLatency ? [fmtUs(lat.p50), fmtUs(lat.p99), fmtUs(lat.p999)] : []),
      fmtPct(s.serverCpuShare),
      fmtPct(s.loadgenCpuShare),
      `${fmtFixed(s.serverReadsPerMsg)}+${fmtFixed(s.serverWritesPerMsg)}`,
      String(s.lost) + (s.failed ? ` (${s.failed} failed)` : ''),
      ...(refs.length
        ? refs.map((ref) => (s.vs[ref] ? `${fmtRatio(s.vs[ref].msgsPerSec)}|${fmtRatio(s.vs[ref].perCpuSec)}` : '-'))
        : [fmtRatio(s.vsBaselineMsgsPerSec), fmtRatio(s.vsBaselinePerCpuSec)]),
    ];
  });
  console.log(table(header, rows));
  console.log(
    `medians of ${params.reps} rep(s); CPU columns are shares of one CPU during the measured part; syscalls/msg are the server's read and write calls per round trip (/proc/PID/io)` +
      (hasLatency ? '; p50/p99/p99.9: round-trip latency seen by the loadgen, microseconds' : '') +
      (refs.length ? `; vs X: this server's msgs/s and msgs per server-CPU-s over X's (higher is better)` : '') +
      '.' +
      (serverIds.some((id) => summary[id].flagged) ? ' Some runs were flagged (see above): treat with care.' : '') +
      (serverIds.some((id) => summary[id].cpuFromTicks > 0)
        ? ` Server CPU from 10 ms ticks, not the exact clock, in ${serverIds.reduce((a, id) => a + summary[id].cpuFromTicks, 0)} run(s) (a thread ended during the run, or no schedstat).`
        : ''),
  );
  // The loadgen must not be what limits msgs/s: say so when it used (nearly) a whole core.
  const busy = serverIds.filter((id) => summary[id].loadgenCpuShareMax >= LOADGEN_SATURATED);
  if (busy.length) {
    console.log(
      `note: the loadgen used >= ${fmtPct(LOADGEN_SATURATED)} of a CPU in runs of ${busy.join(', ')}: there msgs/s may be capped by the loadgen (or by the 2nd CPU it shares); msgs per server-CPU-s is not.`,
    );
  }
}

/** Loadgen CPU share (of one CPU) above which it may be what limits msgs/s. */
const LOADGEN_SATURATED = 0.9;

/**
 * The issue's goals for one scenario (scenarios.mjs `goals`), from the
 * medians: value = metric(of) / metric(vs); pass = value op target, or null
 * when a side did not run (or failed).
 */
function computeGoals(scenarioId, sc, summary, runs = []) {
  // The same names on a summary (medians) and on one run.
  const metric = (s, m) => (!s ? NaN : m === 'perCpu' ? s.msgsPerServerCpuSec : m === 'msgsPerSec' ? s.msgsPerSec : (s.latencyUs?.[m] ?? NaN));
  return (sc.goals ?? []).map((g) => {
    const value = metric(summary[g.of], g.metric) / metric(summary[g.vs], g.metric);
    const ok = Number.isFinite(value);
    const perRep = perRepRatios(runs, g.of, g.vs, (r) => metric(r, g.metric));
    return {
      id: g.id,
      scenario: scenarioId,
      text: g.text,
      of: g.of,
      vs: g.vs,
      metric: g.metric,
      op: g.op,
      value: ok ? value : null,
      target: g.target,
      pass: ok ? (g.op === '<=' ? value <= g.target : value >= g.target) : null,
      // The ratio within each repetition (lib/stats.mjs perRepRatios): how far the verdict could swing.
      ...(perRep.length > 1 ? { perRep: perRep.map((x) => Math.round(x * 1000) / 1000) } : {}),
      // Goals against uWS: the same comparison for Node's floor (raw net), run alongside.
      floor: g.floor ? floorOf(g.floor, metric(summary[g.floor], g.metric), metric(summary[g.vs], g.metric), g.op, g.target) : null,
    };
  });
}

/** A goal's value or target: two decimals, more for small shares (idle CPU), none for big figures (MB). */
function fmtGoalNum(x) {
  const a = Math.abs(x);
  return a === 0 ? '0' : a >= 100 ? x.toFixed(0) : a >= 0.1 ? x.toFixed(2) : x.toPrecision(2);
}

/** One line per goal: PASS / MISS / n/a, the value and the target. */
function formatGoals(goals) {
  const w = Math.max(0, ...goals.map((g) => String(g.id).length));
  return goals
    .map((g) => {
      const verdict = g.pass === null || g.pass === undefined ? ' n/a' : g.pass ? 'PASS' : 'MISS';
      const v = typeof g.value === 'number' && Number.isFinite(g.value) ? fmtGoalNum(g.value) : 'not measured';
      const t = `${g.op ? `${g.op} ` : ''}${typeof g.target === 'number' ? fmtGoalNum(g.target) : String(g.target ?? '')}`;
      const spread = g.perRep?.length > 1 ? `; per repetition ${fmtGoalNum(Math.min(...g.perRep))}-${fmtGoalNum(Math.max(...g.perRep))}` : '';
      return `  ${verdict}  ${String(g.id).padEnd(w)}  ${v} (target ${t})  ${g.text ?? ''}${spread}${floorText(g)}`;
    })
    .join('\n');
}

/** Writes the JSON and the chart (SVG) under results/: timestamped, and latest*.{json,svg} for a full or quick run. */
function writeResults(doc) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = doc.startedAt.replace(/[:.]/g, '-');
  const names = [stamp];
  if (!custom) names.push(mode === 'full' ? 'latest' : 'latest-quick');
  const outputs = [
    ['json', JSON.stringify(doc, null, 2) + '\n'],
    ['svg', renderChart(doc)],
  ];
  const written = [];
  for (const [ext, text] of outputs) {
    for (const name of names) {
      const f = `${name}.${ext}`;
      const tmp = path.join(RESULTS, `${f}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, path.join(RESULTS, f));
      written.push(path.relative(ROOT, path.join(RESULTS, f)));
    }
  }
  return written;
}

/** The version of an installed package (its package.json, read directly: some export maps hide it), or null. */
function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * uWebSockets.js must be its native binary, never the package's JS fallback
 * (servers/uws-echo.mjs loads the .node file directly and refuses otherwise).
 * Checked once before anything runs, so that a broken install stops the
 * bench at once, loudly, instead of after minutes of other scenarios.
 */
function checkUwsNative() {
  try {
    return execFileSync(process.execPath, [path.join(BENCH, 'servers', 'uws-echo.mjs'), '--check'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    console.error(String(err.stderr || err.message).trim());
    console.error('bench: uWebSockets.js native binary not available: refusing to run (leave uws out with --servers to bench without it)');
    process.exit(1);
  }
}

function gitRev() {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${rev}+dirty-src` : rev;
  } catch {
    return null;
  }
}

/** The issue's budget for the browser client, min+gzip. */
const BUNDLE_GOAL_GZIP = 6 * 1024;

/**
 * Builds the browser bundle (scripts/build-browser.mjs --json) and returns its
 * size: { file, bytes (minified), gzipBytes (min+gzip), goalGzipBytes, withinGoal }.
 */
function measureBrowserBundle() {
  try {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-browser.mjs'), '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const line = out.trim().split('\n').pop();
    const r = JSON.parse(line);
    return { ...r, goalGzipBytes: BUNDLE_GOAL_GZIP, withinGoal: r.gzipBytes <= BUNDLE_GOAL_GZIP };
  } catch (err) {
    return { error: String(err.stderr || err.message).trim().slice(0, 500), goalGzipBytes: BUNDLE_GOAL_GZIP };
  }
}

function formatBundle(b) {
  if (b.error) return `browser bundle: build failed: ${b.error}`;
  return table(
    ['browser bundle', 'minified', 'min+gzip', 'goal min+gzip'],
    [[b.file, `${fmtInt(b.bytes)} B`, `${fmtInt(b.gzipBytes)} B (${(b.gzipBytes / 1024).toFixed(2)} KB)`, `<= ${fmtInt(b.goalGzipBytes)} B: ${b.withinGoal ? 'met' : 'MISSED'}`]],
  );
}

/**
 * Which unmask lifeline's servers use for long payloads (they inherit this
 * process's environment: LIFELINE_NO_NATIVE, LIFELINE_NO_SIMD): 'bufferutil',
 * 'simd' or 'none', as dist/ decides it.
 */
async function lifelineUnmaskKind() {
  try {
    const m = await import('../dist/transport/node/native.js');
    // dist/ builds from before the SIMD kernel: bufferutil or nothing.
    return m.bulkUnmaskKind ?? (m.nativeUnmask ? 'bufferutil' : 'none');
  } catch (err) {
    return `unknown (${err.message})`;
  }
}

async function main() {
  const startedAt = new Date().toISOString();
  const cpus = os.cpus();
  const env = {
    node: process.version,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpuCount(),
    clockTicks: TICK,
    platform: `${os.platform()} ${os.release()}`,
    loadavgAtStart: os.loadavg(),
    pinned: opt.pin,
    cpuProfile: opt['cpu-prof'],
    git: gitRev(),
    wsVersion: pkgVersion('ws'),
    uwsPackageVersion: pkgVersion('@trufflesuite/uws-js-unofficial'),
    socketioVersion: pkgVersion('socket.io'),
    echoMallocTrimThreshold: ECHO_ENV.MALLOC_TRIM_THRESHOLD_,
    lifelineUnmask: await lifelineUnmaskKind(),
    // Whether per-process CPU can come from the exact clock here (each run records the clock it used: cpuClock).
    cpuClock: Number.isFinite(processCpu(process.pid)?.ns) ? 'schedstat' : 'ticks',
  };
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  console.log(`lifeline bench (${mode}${custom ? ', custom' : ''}): ${command}`);
  console.log(`node ${env.node}, ${env.cpus} x ${env.cpuModel}, ws ${env.wsVersion}, git ${env.git ?? '?'}${opt.pin ? ', pinned' : ''}; lifeline's unmask for long payloads: ${env.lifelineUnmask}; process CPU from ${env.cpuClock === 'schedstat' ? 'the scheduler (schedstat, exact)' : `/proc/PID/stat ticks (1/${TICK} s)`}`);
  if (env.cpus < 3) console.log(`note: ${env.cpus} CPUs: server and loadgen each need about one; other load on this machine skews msgs/s (msgs per server-CPU-s less so).`);
  if (scenarioIds.some((id) => (SCENARIOS[id].kind ?? 'echo') === 'echo' && scenarioServers(SCENARIOS[id]).includes('uws'))) {
    console.log(`${checkUwsNative()} (uWebSockets.js ${env.uwsPackageVersion}); socket.io ${env.socketioVersion ?? 'missing'}`);
  }

  if (scenarioIds.some((id) => (SCENARIOS[id].kind ?? 'echo') === 'echo')) {
    console.log(`echo scenarios: servers and loadgens run with MALLOC_TRIM_THRESHOLD_=${ECHO_ENV.MALLOC_TRIM_THRESHOLD_} (glibc keeps freed read buffers instead of faulting them in again; bench/README.md)`);
  }
  const browserBundle = measureBrowserBundle();
  console.log(formatBundle(browserBundle));
  const doc = { startedAt, mode, custom, command, env, browserBundle, scenarios: {}, goals: [] };
  let failures = 0;
  for (const scenarioId of scenarioIds) {
    const scenarioStart = Date.now();
    try {
      if (SCENARIOS[scenarioId].kind === 'module') {
        failures += await moduleScenario(doc, scenarioId);
        continue;
      }
      const serverIds = scenarioServers(SCENARIOS[scenarioId]);
      if (serverIds.length === 0) {
        console.log(`\nscenario ${scenarioId}: none of the requested servers runs here, skipped`);
        continue;
      }
      if (SCENARIOS[scenarioId].kind === 'idle') {
        failures += await idleScenario(doc, scenarioId, serverIds);
        continue;
      }
      const sc = { ...SCENARIOS[scenarioId], loadgen: { ...SCENARIOS[scenarioId].loadgen } };
      for (const k of ['connections', 'size', 'window']) {
        if (opt[k] !== undefined) sc.loadgen[k] = k === 'size' ? nonNegativeInt(k, opt[k]) : positiveInt(k, opt[k]);
      }
      if (opt.connections !== undefined || opt.size !== undefined || opt.window !== undefined) {
        sc.title = `echo round trip, ${sc.loadgen.connections} connections x ${sc.loadgen.size} B ${sc.loadgen.binary ? 'binary' : 'text'}, window ${sc.loadgen.window}${sc.loadgen.latency ? ', latency' : ''} (custom)`;
      }
      const base = sc[mode];
      const params = {
        messages: opt.messages !== undefined ? positiveInt('messages', opt.messages) : base.messages,
        warmup: base.warmup,
        reps: opt.reps !== undefined ? positiveInt('reps', opt.reps) : base.reps,
        pin: pinModeOf(sc),
      };
      console.log(`\nscenario ${scenarioId}: ${sc.title}; ${fmtInt(params.messages)} round trips per run (+${fmtInt(params.warmup)} warm-up), ${params.reps} rep(s)${params.pin === 'same' ? `; server and loadgen pinned to CPU ${cpuCount() - 1}` : params.pin === 'split' ? '; server pinned to CPU 0, loadgen to CPU 1' : ''}`);
      const runs = [];
      const discarded = [];
      for (let rep = 1; rep <= params.reps; rep++) {
        for (const serverId of serverIds) {
          let r;
          for (let attempt = 1; ; attempt++) {
            try {
              r = await runOnce(scenarioId, sc, params, serverId, rep);
            } catch (err) {
              r = { server: serverId, rep, ok: false, lost: NaN, flags: [`FAILED: ${err.message}`], errors: [err.message] };
            }
            r.attempt = attempt;
            const disturbed = r.ok && r.flags.length > 0;
            console.log(
              `  rep ${rep} ${serverId.padEnd(12)} ${fmtInt(r.msgsPerSec).padStart(9)} msgs/s  ${fmtInt(r.msgsPerServerCpuSec).padStart(9)} msgs/server-CPU-s  ` +
                `server ${fmtPct(r.serverCpuShare).padStart(4)}  loadgen ${fmtPct(r.loadgenCpuShare).padStart(4)}  lost ${r.lost}` +
                (r.canary ? `  canary ${fmtCanaries(r.canary)}` : '') +
                (r.flags.length ? `  [${r.flags.join('; ')}]` : '') +
                (disturbed && attempt <= retries ? '  -> discarded, again' : ''),
            );
            // A run disturbed by other load is done again (up to --retries times);
            // the discarded ones stay in the JSON.
            if (!disturbed || attempt > retries) break;
            discarded.push(r);
          }
          runs.push(r);
          if (!r.ok) failures++;
        }
      }
      const baseline = echoBaseline(sc);
      const references = echoReferences(sc);
      const summary = summarize(serverIds, runs, baseline, references);
      console.log('');
      printSummary(serverIds, params, summary, baseline, references);
      if (sc.servers) {
        for (const id of serverIds) console.log(`  ${id}: ${sc.servers[id].what}`);
      }
      let sessionRatio;
      if (scenarioId === 'g' && summary.session && summary.plain) {
        // The issue's goal: the session layer costs at most 20% (ratio >= 0.8).
        sessionRatio = { msgsPerSec: summary.session.vsBaselineMsgsPerSec, perServerCpuSec: summary.session.vsBaselinePerCpuSec, goal: 0.8 };
        const verdict = (x) => (Number.isFinite(x) ? (x >= 0.8 ? 'meets >= 0.8' : 'BELOW 0.8') : '-');
        console.log(
          `session/plain: ${fmtRatio(sessionRatio.msgsPerSec)} msgs/s (${verdict(sessionRatio.msgsPerSec)}), ` +
            `${fmtRatio(sessionRatio.perServerCpuSec)} msgs per server-CPU-s (${verdict(sessionRatio.perServerCpuSec)}); goal: session layer costs at most 20%`,
        );
      }
      const goals = computeGoals(scenarioId, sc, summary, runs);
      if (goals.length) {
        console.log(`goals, scenario ${scenarioId} (from the medians):\n${formatGoals(goals)}`);
        doc.goals.push(...goals);
      }
      const profiles = {};
      if (opt['cpu-prof']) {
        for (const r of runs) {
          if (!r.profile || !fs.existsSync(path.join(ROOT, r.profile))) continue;
          const s = summarizeProfile(path.join(ROOT, r.profile), 10);
          profiles[r.profile] = s;
          console.log(`\nprofile ${r.profile} (${r.server}, rep ${r.rep}):\n${formatProfile(s)}`);
        }
      }
      doc.scenarios[scenarioId] = {
        title: sc.title,
        loadgen: sc.loadgen,
        params,
        baseline,
        ...(sc.servers ? { servers: Object.fromEntries(serverIds.map((id) => [id, sc.servers[id].what])) } : {}),
        references: references.filter((ref) => summary[ref]),
        ...(sessionRatio ? { sessionRatio } : {}),
        goals,
        runs,
        discarded,
        summary,
        ...(opt['cpu-prof'] ? { profiles } : {}),
      };
    } finally {
      // How long each scenario takes, for planning runs (README, CI budgets).
      const sec = (Date.now() - scenarioStart) / 1000;
      if (doc.scenarios[scenarioId]) doc.scenarios[scenarioId].elapsedSec = Math.round(sec * 10) / 10;
      console.log(`(scenario ${scenarioId}: ${sec.toFixed(1)} s)`);
    }
  }
  console.log(`\n${formatBundle(browserBundle)}`);
  if (doc.goals.length) {
    const count = (v) => doc.goals.filter((g) => g.pass === v).length;
    const below = missedByFloor(doc.goals);
    const floorNote = below > 0 ? `, ${below} of the misses missed by Node's floor too` : '';
    console.log(`\ngoals (${count(true)} PASS, ${count(false)} MISS${floorNote}, ${count(null)} n/a):\n${formatGoals(doc.goals)}`);
  }
  if (!opt['no-write']) {
    const files = writeResults(doc);
    console.log(`\nwrote ${files.join(', ')}`);
  }
  if (failures > 0) {
    console.error(`\nbench: ${failures} run(s) failed or lost messages`);
    process.exitCode = 1;
  }
}

/** Scenario d (idle connections): lib/idle.mjs does the work. Returns the number of failed runs. */
async function idleScenario(doc, scenarioId, serverIds) {
  const sc = SCENARIOS[scenarioId];
  const base = sc[mode];
  const params = {
    connections: opt.connections !== undefined ? positiveInt('connections', opt.connections) : base.connections,
    windowSec: opt['idle-sec'] !== undefined ? positiveInt('idle-sec', opt['idle-sec']) : base.windowSec,
    steadySec: base.steadySec ?? 0,
    steadyGapSec: base.steadyGapSec ?? 0,
    reps: opt.reps !== undefined ? positiveInt('reps', opt.reps) : base.reps,
    sequential: opt['idle-sequential'],
  };
  // The ws pairs and the net reference first: the ratios need them.
  const order = [sc.reference, ...new Set(serverIds.map((id) => sc.servers[id].pair).filter(Boolean))];
  const ids = [...order.filter((id) => serverIds.includes(id)), ...serverIds.filter((id) => !order.includes(id))];
  console.log(`\nscenario ${scenarioId} (${sc.alias}): ${sc.title}; ${fmtInt(params.connections)} connections per server, ${params.windowSec} s idle window${params.steadySec > 0 ? ` + ${params.steadySec} s steady window` : ''}, ${params.reps} rep(s)`);
  for (const id of ids) console.log(`  ${id.padEnd(17)} ${sc.servers[id].what}`);
  if (opt.pin || opt['cpu-prof']) console.log('  (--pin and --cpu-prof do not apply to the idle scenario)');
  const ctx = { ROOT, BENCH, TICK, waitQuiet, log: (l) => console.log(l), STEAL_FLAG, OTHER_FLAG };
  let result;
  try {
    result = await runIdleScenario(ctx, sc, ids, params);
  } catch (err) {
    console.error(`bench: scenario ${scenarioId}: ${err.message}`);
    doc.scenarios[scenarioId] = { kind: 'idle', title: sc.title, params, error: err.message };
    return 1;
  }
  console.log('');
  console.log(formatIdleSummary(sc, ids, params, result.summary, table));
  const goals = adoptGoals(scenarioId, result.goals);
  doc.goals.push(...goals);
  doc.scenarios[scenarioId] = { kind: 'idle', alias: sc.alias, title: sc.title, params, servers: Object.fromEntries(ids.map((id) => [id, sc.servers[id].what])), runs: result.runs, summary: result.summary, goals };
  return result.runs.filter((r) => !r.ok).length;
}

/**
 * Goals reported by another scenario's code (d, e, f), in this file's shape:
 * `scenario` added, `pass` a boolean or null, and `op` ('>=' / '<=') taken
 * from the goal, else from the first '<=' / '>=' / '<' / '>' in its text
 * (the chart needs the direction).
 */
function adoptGoals(scenarioId, goals) {
  if (!Array.isArray(goals)) return [];
  return goals.map((g) => {
    const m = /(<=|>=|<|>)/.exec(String(g.text ?? ''));
    const op = g.op ?? (m ? (m[1][0] === '<' ? '<=' : '>=') : undefined);
    return { scenario: scenarioId, ...g, ...(op ? { op } : {}), value: typeof g.value === 'number' && Number.isFinite(g.value) ? g.value : null, pass: typeof g.pass === 'boolean' ? g.pass : null };
  });
}

/**
 * Scenarios e and f: a module of their own (scenarios.mjs `module`) runs the
 * whole scenario and formats its summary. Loaded here, only now, so that the
 * suite still runs where the file does not exist (yet). Returns the number of
 * failures (a failed load counts; a missing file does not).
 */
async function moduleScenario(doc, scenarioId) {
  const sc = SCENARIOS[scenarioId];
  const file = path.join(BENCH, sc.module);
  if (!fs.existsSync(file)) {
    console.log(`\nscenario ${scenarioId} not available (${path.relative(ROOT, file)} does not exist); skipped`);
    doc.scenarios[scenarioId] = { kind: 'module', alias: sc.alias, skipped: `${path.relative(ROOT, file)} not found` };
    return 0;
  }
  console.log(`\nscenario ${scenarioId} (${sc.alias}): ${path.relative(ROOT, file)}`);
  let run;
  let format;
  let known = null;
  try {
    const m = await import(file);
    run = m[sc.run];
    format = m[sc.format];
    known = sc.serversExport && m[sc.serversExport] ? m[sc.serversExport] : null;
    if (typeof run !== 'function') throw new Error(`${path.relative(ROOT, file)} does not export ${sc.run}()`);
  } catch (err) {
    console.error(`bench: scenario ${scenarioId}: cannot load ${path.relative(ROOT, file)}: ${err.message}`);
    doc.scenarios[scenarioId] = { kind: 'module', alias: sc.alias, error: `load: ${err.message}` };
    return 1;
  }
  // --servers: only the names this module knows (others belong to other scenarios).
  let servers;
  if (requestedServers !== null) {
    servers = known ? requestedServers.filter((id) => id in known) : requestedServers;
    if (servers.length === 0) {
      console.log(`  none of the requested servers runs here (it knows ${known ? Object.keys(known).join(', ') : '?'}), skipped`);
      return 0;
    }
  }
  const opts = {
    quick: opt.quick,
    root: ROOT,
    bench: BENCH,
    log: (l) => console.log(l),
    // Shared machinery, for modules that want it (all optional to use).
    waitQuiet,
    tick: TICK,
    table,
    noWait: opt['no-wait'],
    retries,
    reps: opt.reps !== undefined ? positiveInt('reps', opt.reps) : undefined,
    servers,
    pin: opt.pin,
    cpuProfile: opt['cpu-prof'],
    stealFlag: STEAL_FLAG,
    otherFlag: OTHER_FLAG,
  };
  let result;
  try {
    result = await run(opts);
  } catch (err) {
    console.error(`bench: scenario ${scenarioId}: ${err.stack ?? err.message}`);
    doc.scenarios[scenarioId] = { kind: 'module', alias: sc.alias, error: err.message };
    return 1;
  }
  // The module's summary prints its own goal lines; the overall list at the end repeats them.
  let printed = false;
  if (typeof format === 'function') {
    try {
      console.log('');
      console.log(format(result));
      printed = true;
    } catch (err) {
      console.error(`bench: scenario ${scenarioId}: ${sc.format}() failed: ${err.message}`);
    }
  }
  const goals = adoptGoals(scenarioId, result?.goals);
  if (goals.length) {
    if (!printed) console.log(`goals, scenario ${scenarioId}:\n${formatGoals(goals)}`);
    doc.goals.push(...goals);
  }
  doc.scenarios[scenarioId] = { kind: 'module', alias: sc.alias, ...result, goals };
  // Failures: what the module says (failures / failed runs / ok: false).
  if (Number.isFinite(result?.failures)) return result.failures;
  if (Array.isArray(result?.runs)) return result.runs.filter((r) => r && r.ok === false).length;
  return result?.ok === false ? 1 : 0;
}

main().then(
  () => canaries.stopAll(),
  async (err) => {
    console.error(`bench: ${err.stack ?? err}`);
    await canaries.stopAll();
    process.exit(1);
  },
);

#!/usr/bin/env node
// The bench suite: `npm run bench` (full) or `npm run bench -- --quick`.
//
// For every echo scenario (scenarios.mjs) and every repetition, each server runs in
// turn (lifeline, ws, lifeline, ws, ...), each in a fresh process of its own,
// driven by bench/loadgen.mjs in another process. Around the measured part of
// each run (after connect and warm-up) the server's CPU time is read from
// /proc/PID/stat, so results come both as messages per second and as messages
// per server-CPU-second (the second is steadier on a busy or small machine).
// Medians over the repetitions are printed with ratios to ws, and everything is
// written as JSON to bench/results/<timestamp>.json (and latest.json for a
// full run, latest-quick.json for a quick one).
//
// Scenario d (alias `idle`) is different: 10,000 idle connections per server
// with heartbeats on, memory per connection after GC and idle CPU over a 30 s
// window (quick: 2,000 connections, 6 s), lifeline next to ws with its README
// heartbeat and a plain net server, all in one shared window; see
// lib/idle.mjs. --pin, --cpu-prof and --retries apply to echo scenarios only.
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
//   --quick               100k round trips, 1 repetition; idle: 2,000
//                         connections, 6 s window (a smoke test, ~30 s in all)
//   --reps N              repetitions (default: 3 full, 1 quick)
//   --messages N          round trips per run (marks the run "custom", as do
//                         all options below but --no-write/--no-wait/--retries)
//   --connections N, --size BYTES, --window N
//                         override the scenario's load (--connections also sets
//                         scenario d's idle connections per server)
//   --idle-sec S          scenario d: length of the idle window, seconds
//   --idle-sequential     scenario d: one idle window per server instead of one
//                         shared by all (slower; same numbers, less crosstalk)
//   --scenario a[,d]      scenarios to run, by id or alias (a = echo,
//                         d = idle, g = session; default: all)
//   --servers x[,y]       servers to run (default: all of each scenario's; ws is
//                         the baseline). Echo: lifeline, ws. Session (g):
//                         plain (baseline), session. Idle: net, ws,
//                         ws-5s, lifeline, lifeline-aggr, lifeline-v1,
//                         lifeline-v1-aggr, lifeline-off
//   --pin                 pin the server to CPU 0 and the loadgen to CPU 1 (taskset)
//   --cpu-prof            run the servers under `node --cpu-prof` and print the
//                         top self-time functions (numbers then include profiler
//                         overhead and are not written to latest*.json)
//   --no-write            don't write bench/results/
//   --retries N           redo a run flagged for other load up to N times (default 2)
//   --no-wait             start each run at once, even if the machine is busy
//                         (by default a run waits up to 60 s for other load to
//                         fall below a third of a CPU)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './lib/child.mjs';
import { formatIdleSummary, runIdleScenario } from './lib/idle.mjs';
import { clockTicks, cpuCount, hasProc, machineTicks, processSyscalls, processTicks } from './lib/proc.mjs';
import { max, median, min } from './lib/stats.mjs';
import { BASELINE, IDLE_SERVERS, SCENARIOS, SERVERS, SESSION_SERVERS } from './scenarios.mjs';
import { formatProfile, summarizeProfile } from './profile.mjs';

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
    'cpu-prof': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'no-wait': { type: 'boolean', default: false },
    retries: { type: 'string', default: '2' },
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
const custom = opt.reps !== undefined || opt.messages !== undefined || opt.connections !== undefined || opt.size !== undefined || opt.window !== undefined || opt.scenario !== undefined || opt.servers !== undefined || opt.pin || opt['cpu-prof'] || opt['idle-sec'] !== undefined || opt['idle-sequential'];
const scenarioIds = listArg('scenario', opt.scenario, SCENARIOS, SCENARIO_ALIASES);
// Each scenario runs the requested servers it knows (echo: SERVERS, idle: its own).
const requestedServers = opt.servers === undefined ? null : listArg('server', opt.servers, { ...SERVERS, ...IDLE_SERVERS, ...SESSION_SERVERS });
/** An echo scenario's servers (its own, or SERVERS) and the one ratios are taken against. */
const echoServers = (sc) => sc.servers ?? SERVERS;
const echoBaseline = (sc) => sc.baseline ?? BASELINE;
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
if (opt.pin && cpuCount() < 2) {
  console.error('bench: --pin needs at least 2 CPUs');
  process.exit(2);
}

const TICK = clockTicks();
const retries = Number.isSafeInteger(Number(opt.retries)) && Number(opt.retries) >= 0 ? Number(opt.retries) : positiveInt('retries', opt.retries);

function nodeCmd(args, cpu) {
  return opt.pin ? ['taskset', ['-c', String(cpu), process.execPath, ...args]] : [process.execPath, args];
}

const QUIET_BUSY = 0.33;
const QUIET_MAX_WAIT_MS = 60_000;

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
    await new Promise((r) => setTimeout(r, 500));
    const b = machineTicks();
    busy = (b.busy - a.busy) / TICK / 0.5;
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
  serverArgs.push(path.join(BENCH, serverDef.script));
  const quiet = await waitQuiet();
  const [scmd, sargs] = nodeCmd(serverArgs, 0);
  const server = new Child(scmd, sargs, { cwd: ROOT, name: `${serverId} server` });
  let loadgen = null;
  try {
    const listening = await server.waitLine((l) => l.startsWith('listening '), '"listening <port>"', 15000);
    const port = Number(listening.split(' ')[1]);
    const lg = sc.loadgen;
    const [lcmd, largs] = nodeCmd(
      [
        path.join(BENCH, 'loadgen.mjs'),
        '--port', String(port),
        '--connections', String(lg.connections),
        '--size', String(lg.size),
        '--window', String(lg.window),
        '--messages', String(params.messages),
        '--warmup', String(params.warmup),
        '--control',
        ...(serverDef.loadgenArgs ?? []),
      ],
      1,
    );
    loadgen = new Child(lcmd, largs, { cwd: ROOT, stdin: true, name: 'loadgen' });
    const first = await loadgen.waitLine((l) => l === 'ready' || l.startsWith('result '), '"ready"', 120000);
    let before = null;
    let t0 = 0n;
    if (first === 'ready') {
      before = { server: processTicks(server.pid), loadgen: processTicks(loadgen.pid), machine: machineTicks(), io: processSyscalls(server.pid), lgio: processSyscalls(loadgen.pid) };
      t0 = process.hrtime.bigint();
      loadgen.write('go\n');
    }
    // Generous: ws at its slowest here does ~50k msgs/s on a busy 2-CPU box.
    const timeoutMs = 60000 + params.messages / 5;
    const resultLine = await loadgen.waitLine((l) => l.startsWith('result '), 'result', timeoutMs);
    const wallSec = before ? Number(process.hrtime.bigint() - t0) / 1e9 : NaN;
    const after = { server: processTicks(server.pid), loadgen: processTicks(loadgen.pid), machine: machineTicks(), io: processSyscalls(server.pid), lgio: processSyscalls(loadgen.pid) };
    const r = JSON.parse(resultLine.slice('result '.length));
    await loadgen.exited;
    if (before === null || after.server === null || after.loadgen === null) {
      return { server: serverId, rep, ok: false, lost: r.lost ?? NaN, flags: [`FAILED: ${(r.errors ?? ['no measurement'])[0]}`], errors: r.errors ?? ['no measurement'] };
    }

    const serverCpuSec = (after.server - before.server) / TICK;
    const loadgenCpuSec = (after.loadgen - before.loadgen) / TICK;
    const busySec = (after.machine.busy - before.machine.busy) / TICK;
    const stealSec = (after.machine.steal - before.machine.steal) / TICK;
    const otherSec = Math.max(0, busySec - serverCpuSec - loadgenCpuSec);
    const stealShare = stealSec / wallSec;
    const otherShare = otherSec / wallSec;
    // System calls per message say how well the server batches its socket I/O.
    const io = before.io && after.io ? { reads: after.io.reads - before.io.reads, writes: after.io.writes - before.io.writes } : null;
    const lgio = before.lgio && after.lgio ? { reads: after.lgio.reads - before.lgio.reads, writes: after.lgio.writes - before.lgio.writes } : null;
    const flags = [];
    if (stealShare > STEAL_FLAG) flags.push(`steal ${(100 * stealShare).toFixed(0)}% of a CPU`);
    if (otherShare > OTHER_FLAG) flags.push(`other load ${(100 * otherShare).toFixed(0)}% of a CPU`);
    if (quiet.busyBefore >= QUIET_BUSY) flags.push(`machine busy before the run (${(100 * quiet.busyBefore).toFixed(0)}% of a CPU)`);
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

function summarize(serverIds, runs, baseline = BASELINE) {
  const by = {};
  for (const id of serverIds) {
    const rs = runs.filter((r) => r.server === id);
    const good = rs.filter((r) => r.ok);
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
      serverReadsPerMsg: median(good.map((r) => r.serverReadsPerMsg)),
      serverWritesPerMsg: median(good.map((r) => r.serverWritesPerMsg)),
      flagged: rs.filter((r) => r.flags.length > 0).length,
    };
  }
  if (by[baseline]) {
    for (const id of serverIds) {
      by[id].vsBaselineMsgsPerSec = by[id].msgsPerSec / by[baseline].msgsPerSec;
      by[id].vsBaselinePerCpuSec = by[id].msgsPerServerCpuSec / by[baseline].msgsPerServerCpuSec;
    }
  }
  return by;
}

function printSummary(serverIds, params, summary, baseline = BASELINE) {
  const header = ['server', 'msgs/s', 'min..max', 'msgs/server-CPU-s', 'server CPU', 'loadgen CPU', 'syscalls/msg r+w', 'lost', `vs ${baseline} msgs/s`, `vs ${baseline} per CPU-s`];
  const rows = serverIds.map((id) => {
    const s = summary[id];
    return [
      id,
      fmtInt(s.msgsPerSec),
      `${fmtInt(s.msgsPerSecMin)}..${fmtInt(s.msgsPerSecMax)}`,
      fmtInt(s.msgsPerServerCpuSec),
      fmtPct(s.serverCpuShare),
      fmtPct(s.loadgenCpuShare),
      `${fmtFixed(s.serverReadsPerMsg)}+${fmtFixed(s.serverWritesPerMsg)}`,
      String(s.lost) + (s.failed ? ` (${s.failed} failed)` : ''),
      fmtRatio(s.vsBaselineMsgsPerSec),
      fmtRatio(s.vsBaselinePerCpuSec),
    ];
  });
  console.log(table(header, rows));
  console.log(
    `medians of ${params.reps} rep(s); CPU columns are shares of one CPU during the measured part; syscalls/msg are the server's read and write calls per round trip (/proc/PID/io).` +
      (serverIds.some((id) => summary[id].flagged) ? ' Some runs were flagged (see above): treat with care.' : ''),
  );
}

function writeResults(doc) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = doc.startedAt.replace(/[:.]/g, '-');
  const files = [`${stamp}.json`];
  if (!custom) files.push(mode === 'full' ? 'latest.json' : 'latest-quick.json');
  const text = JSON.stringify(doc, null, 2) + '\n';
  for (const f of files) {
    const tmp = path.join(RESULTS, `${f}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(RESULTS, f));
  }
  return files.map((f) => path.relative(ROOT, path.join(RESULTS, f)));
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
    wsVersion: JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'ws', 'package.json'), 'utf8')).version,
  };
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  console.log(`lifeline bench (${mode}${custom ? ', custom' : ''}): ${command}`);
  console.log(`node ${env.node}, ${env.cpus} x ${env.cpuModel}, ws ${env.wsVersion}, git ${env.git ?? '?'}${opt.pin ? ', pinned' : ''}`);
  if (env.cpus < 3) console.log(`note: ${env.cpus} CPUs: server and loadgen each need about one; other load on this machine skews msgs/s (msgs per server-CPU-s less so).`);

  const browserBundle = measureBrowserBundle();
  console.log(formatBundle(browserBundle));
  const doc = { startedAt, mode, custom, command, env, browserBundle, scenarios: {} };
  let failures = 0;
  for (const scenarioId of scenarioIds) {
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
      sc.title = `echo round trip, ${sc.loadgen.connections} connections x ${sc.loadgen.size} B text, window ${sc.loadgen.window} (custom)`;
    }
    const base = sc[mode];
    const params = {
      messages: opt.messages !== undefined ? positiveInt('messages', opt.messages) : base.messages,
      warmup: base.warmup,
      reps: opt.reps !== undefined ? positiveInt('reps', opt.reps) : base.reps,
    };
    console.log(`\nscenario ${scenarioId}: ${sc.title}; ${fmtInt(params.messages)} round trips per run (+${fmtInt(params.warmup)} warm-up), ${params.reps} rep(s)`);
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
            `  rep ${rep} ${serverId.padEnd(8)} ${fmtInt(r.msgsPerSec).padStart(9)} msgs/s  ${fmtInt(r.msgsPerServerCpuSec).padStart(9)} msgs/server-CPU-s  ` +
              `server ${fmtPct(r.serverCpuShare).padStart(4)}  loadgen ${fmtPct(r.loadgenCpuShare).padStart(4)}  lost ${r.lost}` +
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
    const summary = summarize(serverIds, runs, baseline);
    console.log('');
    printSummary(serverIds, params, summary, baseline);
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
      ...(sessionRatio ? { sessionRatio } : {}),
      runs,
      discarded,
      summary,
      ...(opt['cpu-prof'] ? { profiles } : {}),
    };
  }
  console.log(`\n${formatBundle(browserBundle)}`);
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
    reps: opt.reps !== undefined ? positiveInt('reps', opt.reps) : base.reps,
    sequential: opt['idle-sequential'],
  };
  // The ws pairs and the net reference first: the ratios need them.
  const order = [sc.reference, ...new Set(serverIds.map((id) => sc.servers[id].pair).filter(Boolean))];
  const ids = [...order.filter((id) => serverIds.includes(id)), ...serverIds.filter((id) => !order.includes(id))];
  console.log(`\nscenario ${scenarioId} (${sc.alias}): ${sc.title}; ${fmtInt(params.connections)} connections per server, ${params.windowSec} s idle window, ${params.reps} rep(s)`);
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
  doc.scenarios[scenarioId] = { kind: 'idle', title: sc.title, params, servers: Object.fromEntries(ids.map((id) => [id, sc.servers[id].what])), runs: result.runs, summary: result.summary };
  return result.runs.filter((r) => !r.ok).length;
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});

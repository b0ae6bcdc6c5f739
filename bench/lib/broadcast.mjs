// Scenario e: broadcast. N connections (10,000; quick 2,000) to one server;
// the server sends one 32-byte message to all of them, B times (200; quick
// 20), after W warm-up broadcasts (10; quick 5).
//
// Per server and repetition, in a fresh server process (servers/broadcast-*.mjs):
//
//   1. the receivers connect: idle-loadgen.mjs --broadcasts, one process by
//      default (--loadgens L splits N over L processes), raw sockets that
//      check every frame: broadcast k must arrive at every connection exactly
//      once, in order, with exactly the bytes of broadcastMessage(k)
//      (servers/broadcast-common.mjs; socket.io: inside its event packet);
//   2. the orchestrator (this file) triggers each broadcast with a line
//      `broadcast SEQ` on the server's stdin (a control channel outside the
//      measured sockets, so the broadcast set is exactly the N receivers);
//      each loadgen prints `done SEQ` once all its connections have SEQ;
//   3. window: by default (window 1) the next broadcast starts when every
//      connection has the previous one, so "time per broadcast" (command
//      sent -> last delivery seen) is the fan-out latency of one broadcast
//      on an otherwise idle server. --window K keeps up to K broadcasts in
//      flight (then the time per broadcast includes queueing behind the
//      earlier ones);
//   4. around the measured broadcasts: server and loadgen CPU from
//      /proc/PID/stat, machine CPU from /proc/stat (other load, steal).
//
// Reported per server (medians over reps): deliveries per second (N x B /
// wall time: with one loadgen on a 2-CPU box this is often bounded by the
// receivers, whose CPU share is shown next to it), deliveries per
// server-CPU-second (the steadier figure, and the goal's), time per broadcast
// p50 / p99. A lost, duplicated, reordered or corrupted delivery, a server
// that queued to fewer than N, or a closed connection fails the run.
//
// Goal (the issue): lifeline's deliveries per server-CPU-second >= 1.0 x
// uWebSockets.js app.publish().
//
// Interface for run.mjs: runBroadcastScenario(opts) -> result (JSON-safe:
// { params, runs, summary, goals }); formatBroadcastSummary(result) -> string.
// CLI: node bench/lib/broadcast.mjs [--quick] [--servers lifeline,uws,net,ws,socketio]
//      [--connections N] [--broadcasts B] [--warmup W] [--window K]
//      [--loadgens L] [--reps R] [--binary] [--no-wait] [--cpu-prof] [--json FILE]
//
// --cpu-prof (or cpuProfile: true): V8's CPU profiler (100 us sampling) runs
// in the server over just the measured broadcasts (control commands
// profstart/profstop), written to bench/results/profiles/e-SERVER-repN.cpuprofile
// and summarized (top self time) after the table. The profiler's own cost is
// in that run's CPU figures: compare profiles, not those numbers.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './child.mjs';
import { floorOf } from './floor.mjs';
import { checkScenarioOpts, commonScenarioOpts, failRun, fdPlan, formatGoals, table, waitQuiet } from './idle.mjs';
import { clockTicks, cpuBetween, machineTicks, processCpu } from './proc.mjs';
import { median } from './stats.mjs';
import { formatProfile, summarizeProfile } from '../profile.mjs';

/**
 * The servers of scenario e. `client` is the idle-loadgen mode of their
 * receivers. `lifeline-loop` (not run by default) is lifeline without
 * broadcast(): the per-client send loop, to see what broadcast() saves.
 */
export const BROADCAST_SERVERS = {
  lifeline: {
    script: 'servers/broadcast-lifeline.mjs',
    args: [],
    client: 'ws',
    what: 'lifeline WebSocketServer (dist/): server.broadcast(data, { binary }) (frame encoded once; falls back to a per-client send loop on a dist/ without it)',
  },
  'lifeline-loop': {
    script: 'servers/broadcast-lifeline.mjs',
    args: ['--loop'],
    client: 'ws',
    what: 'lifeline WebSocketServer (dist/) without broadcast(): for each client, if OPEN, send',
    optional: true,
  },
  uws: {
    script: 'servers/broadcast-uws.mjs',
    args: [],
    client: 'ws',
    what: "uWebSockets.js (native): ws.subscribe('b') on open, app.publish('b', data, isBinary)",
  },
  ws: {
    script: 'servers/broadcast-ws.mjs',
    args: [],
    client: 'ws',
    what: 'ws + bufferutil + utf-8-validate: its README broadcast (wss.clients.forEach: if OPEN, send)',
  },
  net: {
    script: 'servers/broadcast-net.mjs',
    args: [],
    client: 'ws',
    what: "Node's floor: node:http upgrade, then one socket.write(pre-encoded frame) per socket (no WebSocket layer at all)",
  },
  socketio: {
    script: 'servers/broadcast-socketio.mjs',
    args: [],
    client: 'eio',
    what: "socket.io, WebSocket transport only: io.emit('m', text)",
  },
};

export const BROADCAST_DEFAULTS = {
  full: { connections: 10_000, broadcasts: 200, warmup: 10, reps: 3 },
  quick: { connections: 2_000, broadcasts: 20, warmup: 5, reps: 1 },
};

/** The issue's goal: lifeline deliveries per server-CPU-second >= this x uws's. */
export const BROADCAST_GOAL = 1.0;

const STEAL_FLAG = 0.02;
const OTHER_FLAG = 0.1;
const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function percentile(xs, p) {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

/** Splits n into k near-equal positive parts. */
function split(n, k) {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/**
 * Sends broadcasts `from`..`to` with up to `window` in flight; resolves with
 * the time of each (ms, command written -> every loadgen printed `done SEQ`).
 * Rejects at the first `error` line of a loadgen, or when one broadcast
 * takes longer than `timeoutMs`.
 */
async function broadcastRange(server, loadgens, from, to, window, timeoutMs) {
  const times = [];
  const sentAt = new Map();
  let next = from;
  const send = () => {
    sentAt.set(next, process.hrtime.bigint());
    server.write(`broadcast ${next}\n`);
    next++;
  };
  for (let seq = from; seq <= to; seq++) {
    while (next <= to && next < seq + window) send();
    // Each loadgen's `done` lines come in order (a connection gets broadcasts in order).
    await Promise.all(
      loadgens.map(async (lg) => {
        const line = await lg.waitLine((l) => l === `done ${seq}` || l.startsWith('error '), `"done ${seq}"`, timeoutMs);
        if (line.startsWith('error ')) {
          const e = JSON.parse(line.slice('error '.length));
          throw new Error(`${lg.name}: ${e.errors?.[0] ?? 'a receiver failed'}`);
        }
      }),
    );
    times.push(Number(process.hrtime.bigint() - sentAt.get(seq)) / 1e6);
    sentAt.delete(seq);
  }
  return times;
}

/** One server, one repetition. */
async function runOne(o, id, rep, fd) {
  const def = BROADCAST_SERVERS[id];
  const TICK = clockTicks();
  const N = o.connections;
  const total = o.warmup + o.broadcasts;
  const r = { server: id, rep, ok: false, connections: N, broadcasts: o.broadcasts, flags: [], errors: [] };
  const spawnNode = (args, name) => {
    const [cmd, ...rest] = [...fd.prefix, process.execPath, ...args];
    return new Child(cmd, rest, { cwd: o.root, stdin: true, name });
  };
  let server = null;
  const loadgens = [];
  try {
    r.quiet = await waitQuiet({ noWait: o.noWait });
    server = spawnNode(['--expose-gc', path.join(BENCH, def.script), ...def.args, ...(o.binary ? ['--binary'] : [])], `${id} server`);
    const listening = await server.waitLine((l) => l.startsWith('listening '), '"listening <port>"', 15000);
    const port = Number(listening.split(' ')[1]);
    const t0c = process.hrtime.bigint();
    for (const [i, n] of split(N, o.loadgens).entries()) {
      loadgens.push(
        spawnNode(
          [
            path.join(BENCH, 'idle-loadgen.mjs'),
            '--port', String(port),
            '--connections', String(n),
            '--mode', def.client,
            '--broadcasts', String(total),
            ...(o.binary ? ['--binary'] : []),
          ],
          `${id} receivers ${i + 1}`,
        ),
      );
    }
    for (const lg of loadgens) {
      const first = await lg.waitLine((l) => l.startsWith('ready ') || l.startsWith('result '), '"ready"', 60000 + N * 5);
      if (first.startsWith('result ')) throw new Error(`connecting failed: ${JSON.parse(first.slice(7)).errors?.[0] ?? 'unknown'}`);
    }
    // The loadgens' connect() resolves when the kernel has accepted; wait for the server to hold them all.
    const deadline = Date.now() + 30000;
    let st;
    for (;;) {
      st = await server.request('stats');
      if (st.connections >= N || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    if (st.connections < N) throw new Error(`the server holds ${st.connections} of ${N} connections 30 s after the receivers had them open`);
    r.connectMs = Number(process.hrtime.bigint() - t0c) / 1e6;
    r.path = st.path;
    o.log(`  rep ${rep} ${id.padEnd(9)} ${N.toLocaleString('en-US')} receivers connected in ${(r.connectMs / 1000).toFixed(1)} s (${o.loadgens} process(es)); broadcasting with ${st.path}`);

    const perBroadcastTimeout = 30000 + N;
    r.warmupMs = await broadcastRange(server, loadgens, 1, o.warmup, o.window, perBroadcastTimeout);

    // ---- the measured broadcasts
    if (o.cpuProfile) await server.request('profstart');
    const k0 = { server: processCpu(server.pid), loadgens: loadgens.map((l) => processCpu(l.pid)), machine: machineTicks() };
    const t0 = process.hrtime.bigint();
    const times = await broadcastRange(server, loadgens, o.warmup + 1, total, o.window, perBroadcastTimeout);
    const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
    const k1 = { server: processCpu(server.pid), loadgens: loadgens.map((l) => processCpu(l.pid)), machine: machineTicks() };
    if (o.cpuProfile) r.profile = await keepProfile(o, server, `e-${id}-rep${rep}`);

    // ---- verification: every server said it queued to N, every receiver has all broadcasts.
    const queued = [];
    for (let seq = 1; seq <= total; seq++) {
      const line = await server.waitLine((l) => l.startsWith(`broadcast ${seq} `), `answer to broadcast ${seq}`, 10000);
      queued.push(JSON.parse(line.slice(`broadcast ${seq} `.length)).queued);
    }
    const stats = await Promise.all(loadgens.map((l) => l.request('stats')));
    const serverStats = await server.request('stats');
    const problems = [];
    const short = queued.findIndex((q) => q !== N);
    if (short !== -1) problems.push(`broadcast ${short + 1} was queued to ${queued[short]} of ${N} connections`);
    const open = stats.reduce((a, s) => a + s.open, 0);
    if (open !== N) problems.push(`${N - open} receiver connection(s) closed`);
    const minB = Math.min(...stats.map((s) => s.minBroadcasts));
    const maxB = Math.max(...stats.map((s) => s.maxBroadcasts));
    if (minB !== total || maxB !== total) problems.push(`receivers got ${minB}..${maxB} broadcasts each, expected ${total}`);
    if (serverStats.closes > 0) problems.push(`the server saw ${serverStats.closes} connection(s) close`);
    for (const s of stats) r.errors.push(...s.errors);
    if (r.errors.length) problems.push(r.errors[0]);

    // Exact where the kernel has schedstat, else ticks (lib/proc.mjs cpuBetween).
    const serverCpu = cpuBetween(k0.server, k1.server, TICK);
    const serverCpuSec = serverCpu.sec;
    const loadgenCpuSec = k1.loadgens.reduce((a, t, i) => a + cpuBetween(k0.loadgens[i], t, TICK).sec, 0);
    const busySec = (k1.machine.busy - k0.machine.busy) / TICK;
    const stealShare = (k1.machine.steal - k0.machine.steal) / TICK / wallSec;
    const otherShare = Math.max(0, busySec - serverCpuSec - loadgenCpuSec) / wallSec;
    const deliveries = N * o.broadcasts;
    Object.assign(r, {
      deliveries,
      wallSec,
      deliveriesPerSec: deliveries / wallSec,
      serverCpuSec,
      cpuClock: serverCpu.clock,
      deliveriesPerServerCpuSec: serverCpuSec > 0 ? deliveries / serverCpuSec : NaN,
      serverCpuShare: serverCpuSec / wallSec,
      loadgenCpuShare: loadgenCpuSec / wallSec,
      broadcastMs: { p50: percentile(times, 50), p99: percentile(times, 99), min: Math.min(...times), max: Math.max(...times) },
      otherShare,
      stealShare,
      serverStats,
      receivedBytes: stats.reduce((a, s) => a + s.bytesIn, 0),
    });
    if (!(serverCpuSec > 0)) r.flags.push('no server CPU measured: per-CPU-s figure undefined; use more --broadcasts');
    if (stealShare > STEAL_FLAG) r.flags.push(`steal ${(100 * stealShare).toFixed(0)}% of a CPU`);
    if (otherShare > OTHER_FLAG) r.flags.push(`other load ${(100 * otherShare).toFixed(0)}% of a CPU`);
    if (r.quiet.busyBefore >= 0.33) r.flags.push(`machine busy before the run (${(100 * r.quiet.busyBefore).toFixed(0)}% of a CPU)`);
    r.ok = problems.length === 0;
    for (const p of problems) r.flags.push(`FAILED: ${p}`);
  } catch (err) {
    failRun(r, err);
  } finally {
    // Server first: its side of each connection goes to TIME_WAIT, so the receivers' ports are free again.
    if (server) await server.stop();
    for (const l of loadgens) await l.stop();
  }
  return r;
}

/** Stops the server's CPU profiler; moves its file to results/profiles/NAME.cpuprofile and returns that path (relative to the root). */
async function keepProfile(o, server, name) {
  const { file, error } = await server.request('profstop');
  if (error) throw new Error(`profstop: ${error}`);
  const dir = path.join(BENCH, 'results', 'profiles');
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, `${name}.cpuprofile`);
  fs.renameSync(path.resolve(o.root, file), dest);
  return path.relative(o.root, dest);
}

function resolveOpts(opts) {
  const base = BROADCAST_DEFAULTS[opts.quick ? 'quick' : 'full'];
  const o = {
    ...commonScenarioOpts(opts, BENCH),
    servers: opts.servers ?? Object.keys(BROADCAST_SERVERS).filter((id) => !BROADCAST_SERVERS[id].optional),
    connections: opts.connections ?? base.connections,
    broadcasts: opts.broadcasts ?? base.broadcasts,
    warmup: opts.warmup ?? base.warmup,
    reps: opts.reps ?? base.reps,
    window: opts.window ?? 1,
    loadgens: opts.loadgens ?? 1,
    binary: Boolean(opts.binary),
    cpuProfile: Boolean(opts.cpuProfile),
  };
  checkScenarioOpts('broadcast', o, BROADCAST_SERVERS, ['connections', 'broadcasts', 'reps', 'window', 'loadgens']);
  if (!Number.isSafeInteger(o.warmup) || o.warmup < 0) throw new Error(`broadcast: warmup must be an integer >= 0, got ${o.warmup}`);
  if (o.loadgens > o.connections) throw new Error('broadcast: more loadgens than connections');
  if (o.binary && o.servers.includes('socketio')) throw new Error('broadcast: --binary does not apply to socketio (leave it out with servers)');
  return o;
}

/**
 * Scenario e. opts: { quick, root, log, servers?, connections?, broadcasts?,
 * warmup?, reps?, window?, loadgens?, binary?, noWait? }. Returns
 * { scenario, title, params, runs, summary, goals }.
 */
export async function runBroadcastScenario(opts = {}) {
  const o = resolveOpts(opts);
  // Each loadgen holds its share; the server holds all N. Both need fds for them.
  const fd = fdPlan(o.connections);
  const params = {
    connections: o.connections,
    broadcasts: o.broadcasts,
    warmup: o.warmup,
    reps: o.reps,
    window: o.window,
    loadgens: o.loadgens,
    messageBytes: 32,
    binary: o.binary,
    fdLimit: { need: fd.need, hard: fd.hard, via: fd.via },
  };
  o.log(
    `scenario e (broadcast): ${o.connections.toLocaleString('en-US')} connections, ${o.broadcasts} broadcasts of 32 B ${o.binary ? 'binary' : 'text'} ` +
      `(+${o.warmup} warm-up), window ${o.window}, ${o.reps} rep(s), servers ${o.servers.join(', ')}`,
  );
  const runs = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const id of o.servers) {
      const r = await runOne(o, id, rep, fd);
      runs.push(r);
      o.log(formatRunLine(r));
    }
  }
  const summary = summarize(o.servers, runs);
  return {
    scenario: 'e',
    title: 'broadcast: one 32-byte message to every connection, repeated',
    params,
    servers: Object.fromEntries(o.servers.map((id) => [id, BROADCAST_SERVERS[id].what])),
    runs,
    summary,
    goals: broadcastGoals(summary),
  };
}

function summarize(ids, runs) {
  const by = {};
  for (const id of ids) {
    const rs = runs.filter((r) => r.server === id);
    const good = rs.filter((r) => r.ok);
    const med = (f) => median(good.map(f));
    by[id] = {
      runs: rs.length,
      failed: rs.length - good.length,
      path: rs.find((r) => r.path)?.path ?? null,
      deliveriesPerSec: med((r) => r.deliveriesPerSec),
      deliveriesPerServerCpuSec: med((r) => r.deliveriesPerServerCpuSec),
      broadcastMsP50: med((r) => r.broadcastMs.p50),
      broadcastMsP99: med((r) => r.broadcastMs.p99),
      serverCpuShare: med((r) => r.serverCpuShare),
      loadgenCpuShare: med((r) => r.loadgenCpuShare),
      flagged: rs.filter((r) => r.flags.length > 0).length,
    };
  }
  if (by.uws) {
    for (const id of ids) by[id].perCpuVsUws = by[id].deliveriesPerServerCpuSec / by.uws.deliveriesPerServerCpuSec;
  }
  if (by.net) {
    for (const id of ids) by[id].perCpuVsNet = by[id].deliveriesPerServerCpuSec / by.net.deliveriesPerServerCpuSec;
  }
  return by;
}

/** Goal: lifeline deliveries per server-CPU-second >= 1.0 x uws's. */
export function broadcastGoals(summary) {
  if (!summary.lifeline || !summary.uws) return [];
  const value = summary.lifeline.deliveriesPerServerCpuSec / summary.uws.deliveriesPerServerCpuSec;
  return [
    {
      id: 'e-per-cpu-vs-uws',
      op: '>=',
      text:
        `lifeline deliveries per server-CPU-s >= ${BROADCAST_GOAL.toFixed(1)} x uws publish ` +
        `(${fmtInt(summary.lifeline.deliveriesPerServerCpuSec)} vs ${fmtInt(summary.uws.deliveriesPerServerCpuSec)}, ${fmtRatio(value)}; lifeline via ${summary.lifeline.path ?? '?'})`,
      value,
      target: BROADCAST_GOAL,
      pass: Number.isFinite(value) && value >= BROADCAST_GOAL,
      floor: summary.net ? floorOf('net', summary.net.deliveriesPerServerCpuSec, summary.uws.deliveriesPerServerCpuSec, '>=', BROADCAST_GOAL) : null,
    },
  ];
}

function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}
function fmtRatio(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}
function fmtPct(x) {
  return Number.isFinite(x) ? `${Math.round(100 * x)}%` : '-';
}
function fmtMs(x) {
  return Number.isFinite(x) ? x.toFixed(2) : '-';
}

function formatRunLine(r) {
  return (
    `  rep ${r.rep} ${r.server.padEnd(9)} ${fmtInt(r.deliveriesPerSec).padStart(11)} deliveries/s  ${fmtInt(r.deliveriesPerServerCpuSec).padStart(11)} per server-CPU-s  ` +
    `broadcast p50 ${fmtMs(r.broadcastMs?.p50)} ms p99 ${fmtMs(r.broadcastMs?.p99)} ms  server ${fmtPct(r.serverCpuShare)}  receivers ${fmtPct(r.loadgenCpuShare)}` +
    (r.flags.length ? `  [${r.flags.join('; ')}]` : '')
  );
}

/** The scenario's table, notes and goal lines, for the terminal. */
export function formatBroadcastSummary(result) {
  const { params: p, summary } = result;
  const ids = Object.keys(summary);
  const header = ['server', 'deliveries/s', 'per server-CPU-s', 'broadcast p50 ms', 'p99 ms', 'server CPU', 'receivers CPU', 'failed', 'per CPU-s vs uws', 'vs net'];
  const rows = ids.map((id) => {
    const s = summary[id];
    return [id, fmtInt(s.deliveriesPerSec), fmtInt(s.deliveriesPerServerCpuSec), fmtMs(s.broadcastMsP50), fmtMs(s.broadcastMsP99), fmtPct(s.serverCpuShare), fmtPct(s.loadgenCpuShare), String(s.failed), fmtRatio(s.perCpuVsUws), fmtRatio(s.perCpuVsNet)];
  });
  const lines = [
    table(header, rows),
    `${p.connections.toLocaleString('en-US')} connections, ${p.broadcasts} broadcasts of ${p.messageBytes} B (+${p.warmup} warm-up), ` +
      `${p.window === 1 ? 'one at a time (the next starts when every connection has the previous one)' : `up to ${p.window} in flight`}, ` +
      `${p.reps === 1 ? '1 rep' : `medians of ${p.reps} reps`}. Deliveries = connections x broadcasts, every one checked (once, in order, exact bytes). ` +
      'Per server-CPU-s: server CPU (the run time of its threads, from the scheduler) over the measured broadcasts. Broadcast time: command sent to the server -> last connection has it. ' +
      "vs net: against Node's floor (one socket.write of a pre-encoded frame per socket, servers/broadcast-net.mjs). " +
      `CPU columns: shares of one CPU; the receivers (${p.loadgens} process${p.loadgens === 1 ? '' : 'es'}) often bound deliveries/s on a small machine.` +
      (ids.some((id) => summary[id].flagged) ? ' Some runs were flagged (see above): treat with care.' : ''),
    ...ids.map((id) => `  ${id}: ${result.servers?.[id] ?? ''}${summary[id].path ? ` [${summary[id].path}]` : ''}`),
  ];
  if (result.goals?.length) lines.push(formatGoals(result.goals));
  for (const r of result.runs) {
    if (!r.profile) continue;
    const root = path.resolve(BENCH, '..');
    lines.push('', `profile ${r.profile} (${r.server}, rep ${r.rep}, measured broadcasts only):`, formatProfile(summarizeProfile(path.join(root, r.profile), 12)));
  }
  return lines.join('\n');
}

// ------------------------------------------------------------ CLI

async function cli() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      servers: { type: 'string' },
      connections: { type: 'string' },
      broadcasts: { type: 'string' },
      warmup: { type: 'string' },
      window: { type: 'string' },
      loadgens: { type: 'string' },
      reps: { type: 'string' },
      binary: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  const num = (k) => (values[k] === undefined ? undefined : Number(values[k]));
  const result = await runBroadcastScenario({
    quick: values.quick,
    root: path.resolve(BENCH, '..'),
    log: (l) => console.log(l),
    servers: values.servers?.split(',').map((s) => s.trim()).filter(Boolean),
    connections: num('connections'),
    broadcasts: num('broadcasts'),
    warmup: num('warmup'),
    window: num('window'),
    loadgens: num('loadgens'),
    reps: num('reps'),
    binary: values.binary,
    noWait: values['no-wait'],
    cpuProfile: values['cpu-prof'],
  });
  console.log(`\n${formatBroadcastSummary(result)}`);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
  if (result.runs.some((r) => !r.ok)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().catch((err) => {
    console.error(`broadcast: ${err.stack ?? err}`);
    process.exit(1);
  });
}

// Scenario f: hold. The issue asks for 100,000 idle connections held by one
// lifeline server with heartbeats on, RSS under 500 MB, and no missed
// heartbeat. The clients come from several idle-loadgen.mjs processes (each
// under its own file-descriptor limit), spread round-robin over the source
// addresses 127.0.0.2-127.0.0.9 (one address has only ~28k ephemeral ports).
//
// File descriptors: a process needs one per connection. When the hard limit
// (`ulimit -Hn`) is too low for the target and `prlimit` cannot raise it (no
// CAP_SYS_RESOURCE), the server's count is capped at hard limit - 200, the
// run says so LOUDLY, and memory is extrapolated to the target:
// RSS(100k) = RSS measured + marginal RSS per connection x (100,000 - held),
// where the marginal cost comes from connecting in two halves with a
// measurement between them (so fixed costs that come with the first
// connections, like V8's young generation growing to its maximum during the
// handshake burst, are not multiplied). The plain average (RSS before any
// connection + average per connection x 100,000) is reported
// too. Such results carry `extrapolated: true`.
//
// Heartbeats: lifeline's 'normal' preset scaled down as a whole (interval,
// timeout floor/ceiling/initial and late slack, all x interval / 25 s;
// --hb-interval, default 6 s, quick 3 s) so that every connection is pinged
// several times within the window (normal pings after 25 s of quiet, about
// the whole window). Scaling only the interval would not do: the monitor
// checks a ping's answer at ping + timeout and only then looks at the quiet
// time again, so with an interval below the timeout the pings come every
// ~timeout (15 s at first), not every interval. The loadgens answer every
// ping with a pong at once; a missed heartbeat is a ping the server saw go
// unanswered in time (server.stats().pingsMissed), and a connection closed
// for heartbeat timeout (or any other reason) is counted from both ends.
//
// Per server (fresh process, --expose-gc): mem (full GC) before any
// connection; connect all; mem; nice -5 for server and loadgens (as in
// scenario d); one idle window (server CPU from /proc/PID/stat, counters
// before and after); mem after the window.
//
// Interface for run.mjs: runHoldScenario(opts) -> result (JSON-safe:
// { params, runs, summary, goals }); formatHoldSummary(result) -> string.
// CLI: node bench/lib/hold.mjs [--quick] [--connections N] [--idle-sec S]
//      [--hb-interval MS] [--servers lifeline[,uws]] [--no-wait] [--json FILE]
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './child.mjs';
import { checkScenarioOpts, commonScenarioOpts, failRun, fileLimits, formatGoals, IDLE_NICE, portsPerAddress, setNice, SOURCE_ADDRESSES, table, waitQuiet } from './idle.mjs';
import { clockTicks, cpuBetween, machineTicks, processCpu } from './proc.mjs';

export const HOLD_DEFAULTS = {
  full: { connections: 100_000, windowSec: 30, hbIntervalMs: 6000 },
  quick: { connections: 5_000, windowSec: 10, hbIntervalMs: 3000 },
};

/** The issue's targets: RSS for 100,000 connections below 500 MB (10^6 bytes), no missed heartbeat. */
export const HOLD_GOALS = { rssBytes: 500e6, atConnections: 100_000 };

/** File descriptors the server keeps beyond its connections when capped (the brief's margin). */
const SERVER_FD_MARGIN = 200;
/** ...and each loadgen (Node, stdio, epoll, libuv; as scenario d). */
const LOADGEN_FD_MARGIN = 512;

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The servers f can run. lifeline: the scenario; uws (optional): the same
 * load on uWebSockets.js with its built-in heartbeat at the nearest cadence
 * (idleTimeout = 2 x interval, a multiple of 4 s: it pings after idleTimeout/2).
 */
export const HOLD_SERVERS = {
  lifeline: {
    script: 'servers/idle-lifeline.mjs',
    args: (o, n) => ['--heartbeat', JSON.stringify(scaledNormal(o.hbIntervalMs)), '--max-connections', String(n + 1000)],
    heartbeat: (o) => {
      const c = scaledNormal(o.hbIntervalMs);
      return `'normal' x ${(o.hbIntervalMs / NORMAL.interval).toFixed(2)}: ping after ${c.interval} ms quiet, answer within ${c.timeoutFloor}-${c.timeoutCeiling} ms (first ${c.timeoutInitial}), late slack ${c.lateSlack} ms`;
    },
  },
  uws: {
    script: 'servers/idle-uws.mjs',
    args: (o) => ['--idle-timeout', String(uwsIdleTimeout(o.hbIntervalMs))],
    heartbeat: (o) => `idleTimeout ${uwsIdleTimeout(o.hbIntervalMs)} s + sendPingsAutomatically (ping after ${uwsIdleTimeout(o.hbIntervalMs) / 2} s quiet)`,
  },
};

/** lifeline's 'normal' preset (src/session/heartbeat.ts HEARTBEAT_PRESETS). */
const NORMAL = { interval: 25_000, timeoutFloor: 5_000, timeoutCeiling: 15_000, timeoutInitial: 15_000, k: 4, lateSlack: 2_000 };

/** The 'normal' preset with every duration scaled so that its interval is `intervalMs`. */
export function scaledNormal(intervalMs) {
  const f = intervalMs / NORMAL.interval;
  const ms = (x) => Math.max(1, Math.round(x * f));
  return { interval: intervalMs, timeoutFloor: ms(NORMAL.timeoutFloor), timeoutCeiling: ms(NORMAL.timeoutCeiling), timeoutInitial: ms(NORMAL.timeoutInitial), k: NORMAL.k, lateSlack: ms(NORMAL.lateSlack) };
}

function uwsIdleTimeout(intervalMs) {
  return Math.max(8, 4 * Math.round((2 * intervalMs) / 4000));
}

/**
 * How many connections this machine lets one process hold: the target when
 * the hard fd limit allows it (or prlimit may raise it), else hard - 200.
 */
export function holdPlan(target) {
  const { hard } = fileLimits();
  const need = target + LOADGEN_FD_MARGIN;
  if (need <= hard) return { connections: target, capped: false, fdHard: hard, prefix: [], via: 'hard limit', perLoadgen: hard - LOADGEN_FD_MARGIN };
  const probe = spawnSync('prlimit', [`--nofile=${need}:${need}`, '--', 'true'], { stdio: 'ignore' });
  if (probe.status === 0) {
    return { connections: target, capped: false, fdHard: hard, prefix: ['prlimit', `--nofile=${need}:${need}`, '--'], via: 'prlimit', perLoadgen: target };
  }
  return { connections: Math.max(1, hard - SERVER_FD_MARGIN), capped: true, fdHard: hard, prefix: [], via: 'capped', perLoadgen: hard - LOADGEN_FD_MARGIN };
}

const KB = 1024;

async function runOne(o, id, plan) {
  const def = HOLD_SERVERS[id];
  const TICK = clockTicks();
  const N = plan.connections;
  const k = Math.max(2, Math.ceil(N / plan.perLoadgen));
  const shares = Array.from({ length: k }, (_, i) => Math.floor(N / k) + (i < N % k ? 1 : 0));
  const r = { server: id, ok: false, target: o.connections, connections: N, capped: plan.capped, extrapolated: plan.capped, loadgens: k, heartbeat: def.heartbeat(o), flags: [], errors: [] };
  const spawnNode = (args, name) => {
    const [cmd, ...rest] = [...plan.prefix, process.execPath, ...args];
    return new Child(cmd, rest, { cwd: o.root, stdin: true, name });
  };
  let server = null;
  const loadgens = [];
  try {
    r.quiet = await waitQuiet({ noWait: o.noWait });
    server = spawnNode(['--expose-gc', path.join(BENCH, def.script), ...def.args(o, N)], `${id} server`);
    const listening = await server.waitLine((l) => l.startsWith('listening '), '"listening <port>"', 15000);
    const port = Number(listening.split(' ')[1]);
    const memBaseline = await server.request('mem');
    const cpu0 = processCpu(server.pid);
    const t0 = process.hrtime.bigint();
    // Every loadgen spreads its connections over all eight addresses, so each
    // address carries N / 8 of them (well under its ~28k ports even at 100k).
    const startLoadgen = (i) =>
      spawnNode(
        [
          path.join(BENCH, 'idle-loadgen.mjs'),
          '--port', String(port),
          '--connections', String(shares[i]),
          '--mode', 'ws',
          '--local-addresses', SOURCE_ADDRESSES.join(','),
        ],
        `${id} loadgen ${i + 1}`,
      );
    /** Waits until `lgs` are ready and the server itself holds `n` connections. */
    const connected = async (lgs, n) => {
      for (const lg of lgs) {
        const first = await lg.waitLine((l) => l.startsWith('ready ') || l.startsWith('result '), '"ready"', 120000 + n * 5);
        if (first.startsWith('result ')) throw new Error(`${lg.name}: connecting failed: ${JSON.parse(first.slice(7)).errors?.[0] ?? 'unknown'}`);
      }
      const deadline = Date.now() + 60000;
      let st;
      for (;;) {
        st = await server.request('stats');
        if (st.connections >= n || Date.now() > deadline) break;
        await sleep(200);
      }
      if (st.connections < n) {
        const why = st.closes > 0 ? `; ${st.closes} closed: ${JSON.stringify(st.socketCloses ?? st.closeCodes ?? {})}` : '';
        throw new Error(`the server holds ${st.connections} of ${n} connections 60 s after the loadgens had them open${why}`);
      }
    };
    // Two steps, with `mem` in between: the difference between the two halves
    // is the marginal cost of a connection, without the fixed costs that come
    // with the first ones (V8's young generation grows to its maximum during
    // a burst of handshakes and keeps that size: megabytes, not per connection).
    const half = Math.ceil(k / 2);
    const nHalf = shares.slice(0, half).reduce((a, b) => a + b, 0);
    for (let i = 0; i < half; i++) loadgens.push(startLoadgen(i));
    await connected(loadgens, nHalf);
    const memHalf = await server.request('mem');
    for (let i = half; i < k; i++) loadgens.push(startLoadgen(i));
    await connected(loadgens, N);
    r.connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
    r.connectServerCpuMs = cpuBetween(cpu0, processCpu(server.pid), TICK).sec * 1000;
    const memAfterConnect = await server.request('mem');
    let why = setNice(server.pid, IDLE_NICE);
    for (const lg of loadgens) why ??= setNice(lg.pid, IDLE_NICE);
    r.nice = why === null ? IDLE_NICE : `unchanged (${why})`;
    o.log(`  ${id.padEnd(9)} ${N.toLocaleString('en-US')} connections open in ${(r.connectMs / 1000).toFixed(1)} s from ${k} loadgens over ${SOURCE_ADDRESSES[0]}-${SOURCE_ADDRESSES.at(-1).split('.').pop()}; idle window ${o.windowSec} s`);

    // ---- the idle window
    const counters = async () => [await server.request('stats'), await Promise.all(loadgens.map((l) => l.request('stats')))];
    const [s0, l0] = await counters();
    const k0 = processCpu(server.pid);
    const m0 = machineTicks();
    const w0 = process.hrtime.bigint();
    await sleep(o.windowSec * 1000);
    const k1 = processCpu(server.pid);
    const m1 = machineTicks();
    const wallSec = Number(process.hrtime.bigint() - w0) / 1e9;
    const [s1, l1] = await counters();
    const memAfter = await server.request('mem');

    const sum = (ls, f) => ls.reduce((a, x) => a + f(x), 0);
    const clientPings = (ls) => sum(ls, (x) => x.pingsReceived + x.appPingsReceived);
    const clientPongs = (ls) => sum(ls, (x) => x.pongsSent + x.appPongsSent);
    const serverCpu = cpuBetween(k0, k1, TICK);
    const serverCpuSec = serverCpu.sec;
    const busySec = (m1.busy - m0.busy) / TICK;
    const perConnRss = (memAfter.rss - memBaseline.rss) / N;
    const marginal = (memAfterConnect.rss - memHalf.rss) / (N - nHalf) + (memAfter.rss - memAfterConnect.rss) / N;
    const socketCloses = s1.socketCloses ?? s1.closeCodes ?? {};
    const heartbeatCloses = Object.entries(socketCloses)
      .filter(([key]) => /heartbeat/.test(key))
      .reduce((a, [, v]) => a + v, 0);
    const serverPings = s1.pingsSent === null || s1.pingsSent === undefined;
    Object.assign(r, {
      windowSec: wallSec,
      mem: { baseline: memBaseline, half: { connections: nHalf, ...memHalf }, afterConnect: memAfterConnect, afterWindow: memAfter },
      rssBytes: memAfter.rss,
      rssPerConnKB: perConnRss / KB,
      heapPerConnKB: (memAfter.heapUsed - memBaseline.heapUsed) / N / KB,
      // Where the RSS goes beyond live JS objects: V8's reserved heap pages, and Buffers / native memory.
      heapTotalPerConnKB: (memAfter.heapTotal - memBaseline.heapTotal) / N / KB,
      externalPerConnKB: (memAfter.external - memBaseline.external) / N / KB,
      rssPerConnKBAfterConnect: (memAfterConnect.rss - memBaseline.rss) / N / KB,
      // Marginal RSS per connection: second half of the connections over the
      // first, plus what the window added per connection (heartbeat state).
      rssMarginalPerConnKB: marginal / KB,
      // The issue's figure, what this server would need for the target: the
      // measured RSS plus the marginal cost of each connection still missing.
      rssAtTargetBytes: memAfter.rss + marginal * (HOLD_GOALS.atConnections - N),
      // The plain average instead (RSS before any connection + average per connection x target).
      rssAtTargetAverageBytes: memBaseline.rss + perConnRss * HOLD_GOALS.atConnections,
      serverCpuSec,
      cpuClock: serverCpu.clock,
      idleCpuShare: serverCpuSec / wallSec,
      otherShare: Math.max(0, busySec - serverCpuSec) / wallSec,
      pingsSent: serverPings ? clientPings(l1) - clientPings(l0) : s1.pingsSent - s0.pingsSent,
      pingsCountedBy: serverPings ? 'loadgen' : 'server',
      pongsReceived: s1.pongsReceived - s0.pongsReceived,
      clientPongsSent: clientPongs(l1) - clientPongs(l0),
      pingsMissedWindow: (s1.pingsMissed ?? 0) - (s0.pingsMissed ?? 0),
      pingsMissed: s1.pingsMissed ?? 0,
      heartbeatCloses,
      closes: s1.closes,
      closesBeforeWindow: s0.closes,
      socketCloses,
      clientCloses: sum(l1, (x) => x.closed + x.closeFrames),
      serverHeld: s1.connections,
      clientOpen: sum(l1, (x) => x.open),
      rtt: s1.rtt,
      serverStats: s1,
    });
    r.cpuUsPerPing = r.pingsSent > 0 ? (serverCpuSec * 1e6) / r.pingsSent : NaN;
    r.missed = r.pingsMissed + Math.max(r.heartbeatCloses, 0);
    for (const x of l1) r.errors.push(...x.errors);
    const problems = [];
    if (s1.closes > 0) problems.push(`the server saw ${s1.closes} connection(s) close (${s0.closes} before the window): ${JSON.stringify(socketCloses)}`);
    if (r.clientCloses > 0) problems.push(`the loadgens saw ${r.clientCloses} connection(s) closed`);
    if (r.serverHeld !== N) problems.push(`the server holds ${r.serverHeld} of ${N}`);
    if (r.clientOpen !== N) problems.push(`the loadgens have ${r.clientOpen} of ${N} open`);
    if (r.errors.length) problems.push(r.errors[0]);
    r.ok = problems.length === 0;
    for (const p of problems) r.flags.push(`FAILED: ${p}`);
    if (r.pingsSent < N) r.flags.push(`only ${r.pingsSent} pings for ${N} connections in the window: the heartbeat did not reach every connection`);
    if (r.pingsMissed > 0) r.flags.push(`${r.pingsMissed} ping(s) missed`);
    if (r.otherShare > 0.1) r.flags.push(`other load ${(100 * r.otherShare).toFixed(0)}% of a CPU during the window`);
  } catch (err) {
    failRun(r, err);
  } finally {
    if (server) await server.stop();
    for (const l of loadgens) await l.stop();
  }
  return r;
}

function resolveOpts(opts) {
  const base = HOLD_DEFAULTS[opts.quick ? 'quick' : 'full'];
  const o = {
    ...commonScenarioOpts(opts, BENCH),
    servers: opts.servers ?? ['lifeline'],
    connections: opts.connections ?? base.connections,
    windowSec: opts.windowSec ?? base.windowSec,
    hbIntervalMs: opts.hbIntervalMs ?? base.hbIntervalMs,
  };
  checkScenarioOpts('hold', o, HOLD_SERVERS, ['connections', 'windowSec', 'hbIntervalMs']);
  if (o.connections > SOURCE_ADDRESSES.length * portsPerAddress()) {
    throw new Error(`hold: ${o.connections} connections need more than the ${SOURCE_ADDRESSES.length} x ${portsPerAddress()} source ports of 127.0.0.2-9`);
  }
  return o;
}

/**
 * Scenario f. opts: { quick, root, log, servers? (['lifeline'], optionally
 * 'uws'), connections? (target, 100,000), windowSec?, hbIntervalMs?, noWait? }.
 * Returns { scenario, title, params, runs, summary, goals }.
 */
export async function runHoldScenario(opts = {}) {
  const o = resolveOpts(opts);
  const plan = holdPlan(o.connections);
  const params = {
    target: o.connections,
    connections: plan.connections,
    capped: plan.capped,
    extrapolated: plan.capped,
    fdHard: plan.fdHard,
    fdVia: plan.via,
    windowSec: o.windowSec,
    hbIntervalMs: o.hbIntervalMs,
    sourceAddresses: SOURCE_ADDRESSES,
  };
  if (plan.capped) {
    const bar = '!'.repeat(78);
    o.log(
      `${bar}\n!! scenario f: this machine's file-descriptor limit (hard ${plan.fdHard}, and prlimit cannot raise it)\n` +
        `!! caps the server at ${plan.connections.toLocaleString('en-US')} connections instead of ${o.connections.toLocaleString('en-US')}.\n` +
        `!! Memory for ${HOLD_GOALS.atConnections.toLocaleString('en-US')} is EXTRAPOLATED: measured RSS + marginal RSS per connection x the connections missing.\n` +
        `!! For the real thing: ulimit -Hn ${o.connections + LOADGEN_FD_MARGIN} (as root) or docker run --ulimit nofile=${o.connections + LOADGEN_FD_MARGIN}:${o.connections + LOADGEN_FD_MARGIN}.\n${bar}`,
    );
  }
  o.log(`scenario f (hold): ${plan.connections.toLocaleString('en-US')} idle connections${plan.capped ? ` (target ${o.connections.toLocaleString('en-US')}, capped)` : ''}, ${o.windowSec} s window, heartbeat interval ${o.hbIntervalMs} ms, servers ${o.servers.join(', ')}`);
  const runs = [];
  for (const id of o.servers) {
    const r = await runOne(o, id, plan);
    runs.push(r);
    o.log(formatRunLine(r));
  }
  const summary = Object.fromEntries(runs.map((r) => [r.server, r]));
  return {
    scenario: 'f',
    title: `hold ${o.connections.toLocaleString('en-US')} idle connections with heartbeats on: RSS, idle CPU, missed heartbeats`,
    params,
    runs,
    summary,
    goals: holdGoals(summary, params),
  };
}

/** Goals (lifeline): RSS at 100,000 connections < 500 MB; no missed heartbeat (with heartbeats that did happen). */
export function holdGoals(summary, params) {
  const l = summary.lifeline;
  if (!l) return [];
  const ex = params.extrapolated;
  const mb = l.rssAtTargetBytes / 1e6;
  const pinged = Number.isFinite(l.pingsSent) && l.pingsSent >= l.connections;
  return [
    {
      id: 'f-rss-100k',
      op: '<=', // the chart knows '<=' and '>='; pass below is the strict '< 500 MB'
      text: `lifeline RSS for ${HOLD_GOALS.atConnections.toLocaleString('en-US')} connections < ${HOLD_GOALS.rssBytes / 1e6} MB (${fmtMB(l.rssAtTargetBytes)}${ex ? `, extrapolated from ${l.connections.toLocaleString('en-US')}` : ''})`,
      value: mb,
      target: HOLD_GOALS.rssBytes / 1e6,
      pass: l.ok && Number.isFinite(mb) && mb < HOLD_GOALS.rssBytes / 1e6,
      extrapolated: ex,
    },
    {
      id: 'f-missed-heartbeats',
      op: '<=',
      text:
        `lifeline: no missed heartbeat (${fmtInt(l.pingsMissed)} missed, ${fmtInt(l.heartbeatCloses)} heartbeat closes, ` +
        `${fmtInt(l.pingsSent)} pings / ${fmtInt(l.pongsReceived)} pongs in the window${pinged ? '' : ': too few pings to tell'})`,
      value: l.missed,
      target: 0,
      pass: l.ok && l.missed === 0 && pinged,
      extrapolated: ex,
    },
  ];
}

function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}
function fmtMB(b) {
  return Number.isFinite(b) ? `${(b / 1e6).toFixed(1)} MB` : '-';
}
function fmtKB(x) {
  return Number.isFinite(x) ? x.toFixed(2) : '-';
}
function fmtCpu(x) {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-';
}

function formatRunLine(r) {
  return (
    `  ${r.server.padEnd(9)} held ${fmtInt(r.serverHeld)}  RSS ${fmtMB(r.rssBytes)} (${fmtKB(r.rssPerConnKB)} KB/conn avg, ${fmtKB(r.rssMarginalPerConnKB)} marginal; ${fmtMB(r.rssAtTargetBytes)} at 100k)  ` +
    `idle CPU ${fmtCpu(r.idleCpuShare)}  pings ${fmtInt(r.pingsSent)} pongs ${fmtInt(r.pongsReceived)} missed ${fmtInt(r.pingsMissed)}  closes ${r.closes ?? '-'}` +
    (r.flags.length ? `  [${r.flags.join('; ')}]` : '')
  );
}

/** The scenario's table, notes and goal lines, for the terminal. */
export function formatHoldSummary(result) {
  const { params: p, summary } = result;
  const ids = Object.keys(summary);
  const header = ['server', 'held', 'RSS MB', 'RSS/conn KB', 'marginal KB', 'heap/conn KB', 'RSS at 100k', 'at 100k (avg)', 'idle CPU', 'pings', 'pongs', 'missed', 'closes', 'CPU/ping us'];
  const rows = ids.map((id) => {
    const s = summary[id];
    return [
      id,
      fmtInt(s.serverHeld),
      Number.isFinite(s.rssBytes) ? (s.rssBytes / 1e6).toFixed(1) : '-',
      fmtKB(s.rssPerConnKB),
      fmtKB(s.rssMarginalPerConnKB),
      fmtKB(s.heapPerConnKB),
      fmtMB(s.rssAtTargetBytes) + (p.extrapolated ? ' (extrap.)' : ''),
      fmtMB(s.rssAtTargetAverageBytes),
      fmtCpu(s.idleCpuShare),
      fmtInt(s.pingsSent),
      fmtInt(s.pongsReceived),
      fmtInt(s.pingsMissed),
      String(s.closes ?? '-') + (s.ok ? '' : ' FAILED'),
      Number.isFinite(s.cpuUsPerPing) ? s.cpuUsPerPing.toFixed(1) : '-',
    ];
  });
  const lines = [
    table(header, rows),
    `${fmtInt(p.connections)} idle connections${p.capped ? ` (CAPPED by the fd limit ${p.fdHard}; target ${fmtInt(p.target)}: RSS at 100k is EXTRAPOLATED)` : ''} from 127.0.0.2-9, ` +
      `${p.windowSec} s idle window, heartbeat every ${p.hbIntervalMs} ms of quiet. RSS after a full GC (kernel socket buffers are not in it); ` +
      'RSS/conn = (after the window - before any connection) / held; marginal = second half of the connections over the first (+ the window\'s growth per connection); ' +
      'RSS at 100k = measured + marginal x the connections missing (the goal\'s figure); at 100k (avg) = before + RSS/conn x 100,000. ' +
      'Idle CPU: server CPU (the run time of its threads, from the scheduler) over the window (it includes answering the shortened heartbeat), share of one CPU. Missed: pings unanswered in time (server.stats().pingsMissed), whole run.',
    ...ids.map((id) => `  ${id}: heartbeat ${summary[id].heartbeat}`),
  ];
  if (result.goals?.length) lines.push(formatGoals(result.goals.map((g) => ({ ...g, text: g.text + (g.extrapolated ? ' [extrapolated]' : '') }))));
  return lines.join('\n');
}

// ------------------------------------------------------------ CLI

async function cli() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      servers: { type: 'string' },
      connections: { type: 'string' },
      'idle-sec': { type: 'string' },
      'hb-interval': { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  const num = (k) => (values[k] === undefined ? undefined : Number(values[k]));
  const result = await runHoldScenario({
    quick: values.quick,
    root: path.resolve(BENCH, '..'),
    log: (l) => console.log(l),
    servers: values.servers?.split(',').map((s) => s.trim()).filter(Boolean),
    connections: num('connections'),
    windowSec: num('idle-sec'),
    hbIntervalMs: num('hb-interval'),
    noWait: values['no-wait'],
  });
  console.log(`\n${formatHoldSummary(result)}`);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
  if (result.runs.some((r) => !r.ok) || result.goals.some((g) => !g.pass)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().catch((err) => {
    console.error(`hold: ${err.stack ?? err}`);
    process.exit(1);
  });
}

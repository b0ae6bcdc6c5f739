// Scenario d: N idle connections per server with heartbeats on.
//
// Every server variant (scenarios.mjs IDLE_SERVERS) runs in a process of its
// own under `node --expose-gc`, with its own idle-loadgen.mjs process holding
// N connections to it. For each variant in turn:
//
//   1. start the server; `mem` (full GC, process.memoryUsage()) = baseline;
//   2. start its loadgen, wait until every connection is open on both ends
//      (the server's own count), `mem` again = after connect; then both
//      processes get nice -5 (IDLE_NICE below) so that later setups can't
//      starve them;
//
// then, by default for all variants at once (a shared idle window: every
// variant sees the same machine, and the scenario takes one window, not one
// per server; --idle-sequential gives each variant a window of its own):
//
//   3. counters from every server and loadgen, server CPU from /proc
//      (lib/proc.mjs processCpu); idle for the window; CPU and counters again;
//   4. with `steadySec` > 0 (both modes), after a gap of `steadyGapSec`, the same
//      over a steady window: the first holds one-time costs (V8 optimizing
//      the ping path, V8's memory reducer after the connection burst), the
//      steady one what a long-running server pays, and the idle-CPU goal
//      reads it;
//   5. `mem` = after the last window: per connection = (after - baseline) / N.
//
// A connection closed by anyone during the run (the server's count, or the
// loadgen's: a close frame, a dropped socket) fails the variant.
//
// The issue's goals for this scenario (idleGoals): lifeline (the 'normal'
// preset) uses at most 1.15 x the RSS per connection of the bare net server,
// and no more idle CPU than uWebSockets.js with its built-in heartbeat.
//
// IDLE_PEERS (below) are the other libraries' servers, uws and socketio, in
// the shape of scenarios.mjs IDLE_SERVERS (which spreads them in). This file
// also runs on its own (the CLI at the end), e.g.
//   node bench/lib/idle.mjs --quick --servers net,ws,lifeline,uws,socketio
// and exports small helpers the broadcast (e) and hold (f) scenarios share.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './child.mjs';
import { floorOf, floorText } from './floor.mjs';
import { clockTicks, cpuBetween, machineTicks, processCpu } from './proc.mjs';
import { median } from './stats.mjs';

/**
 * Scenario d's peers from other libraries, in the shape of scenarios.mjs
 * IDLE_SERVERS (`client` is the idle-loadgen mode, `pair` the ws run with the
 * same ping cadence).
 */
export const IDLE_PEERS = {
  uws: {
    script: 'servers/idle-uws.mjs',
    args: ['--idle-timeout', '60'],
    client: 'ws',
    pair: 'ws',
    what: 'uWebSockets.js (native), built-in heartbeat: idleTimeout 60 + sendPingsAutomatically (ping after about 44 s quiet, close 16 s later)',
  },
  // The idle-CPU goal's reference: uWS at lifeline normal's cadence (ping
  // after 25 s of quiet). See servers/idle-uws.mjs for how uWS times pings.
  'uws-24s': {
    script: 'servers/idle-uws.mjs',
    args: ['--idle-timeout', '40'],
    client: 'ws',
    pair: 'ws',
    what: "uWebSockets.js (native), idleTimeout 40 + sendPingsAutomatically (ping after about 24 s quiet, close 16 s later): lifeline normal's cadence",
  },
  socketio: {
    script: 'servers/idle-socketio.mjs',
    args: [],
    client: 'eio',
    pair: 'ws',
    what: 'socket.io, WebSocket transport only, default heartbeat (Engine.IO ping every 25 s, pingTimeout 20 s)',
  },
};

/** The issue's targets for scenario d. */
export const IDLE_GOALS = { rssVsNet: 1.15 };

/** 127.0.0.2..127.0.0.9: loopback source addresses for more connections than one address has ports. */
export const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/** Ephemeral ports left free for everything else on the machine, per source address. */
const PORT_MARGIN = 2000;
/** File descriptors a process needs beyond its connections (stdio, epoll, libuv, V8). */
const FD_MARGIN = 512;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the machine is quiet (busy below a third of one CPU over a
 * 500 ms sample) or `maxWaitMs` passes, as run.mjs does before each run.
 * Returns how long it waited and the last busy share seen.
 */
export async function waitQuiet({ maxWaitMs = 60_000, noWait = false } = {}) {
  const tick = clockTicks();
  const start = Date.now();
  let busy = NaN;
  for (;;) {
    const a = machineTicks();
    await sleep(500);
    const b = machineTicks();
    busy = (b.busy - a.busy) / tick / 0.5;
    if (busy < 0.33 || noWait || Date.now() - start > maxWaitMs) break;
  }
  return { waitedMs: Date.now() - start, busyBefore: busy };
}

/** A plain text table: first column left-aligned, the others right-aligned. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Nice value of a server and its loadgen once their connections are open. The
 * next server's setup (a CPU-bound burst of handshakes) or other work on a
 * small machine could otherwise starve an idle loadgen long enough that a 1 s
 * heartbeat timeout fires on a live peer: an artefact of sharing one machine,
 * not something the servers did. Every server gets the same treatment.
 */
export const IDLE_NICE = -5;

/**
 * Sets the nice value of every thread of `pid` (on Linux it is per thread).
 * Returns null, or why it could not (e.g. EACCES without CAP_SYS_NICE).
 */
export function setNice(pid, nice) {
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) os.setPriority(Number(tid), nice);
    return null;
  } catch (err) {
    return err.code ?? err.message;
  }
}

/** Ephemeral ports per source address (net.ipv4.ip_local_port_range), minus a margin. */
export function portsPerAddress() {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && hi > lo) return hi - lo + 1 - PORT_MARGIN;
  } catch {
    // not Linux: assume the IANA range
  }
  return 16384 - PORT_MARGIN;
}

/** Soft and hard RLIMIT_NOFILE of this process (node raises the soft one to the hard one at start). */
export function fileLimits() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line.trim().split(/\s+/).slice(3, 5).map((x) => (x === 'unlimited' ? Infinity : Number(x)));
    return { soft, hard };
  } catch {
    return { soft: NaN, hard: NaN };
  }
}

/**
 * How the server and loadgen processes get enough file descriptors for
 * `connections`: returns a command prefix ([] when the hard limit suffices,
 * ['prlimit', '--nofile=N:N', '--'] when prlimit may raise it), or throws
 * with what to do.
 */
export function fdPlan(connections) {
  const need = connections + FD_MARGIN;
  const { hard } = fileLimits();
  if (need <= hard) return { prefix: [], need, hard, via: 'hard limit' };
  const probe = spawnSync('prlimit', [`--nofile=${need}:${need}`, '--', 'true'], { stdio: 'ignore' });
  if (probe.status === 0) return { prefix: ['prlimit', `--nofile=${need}:${need}`, '--'], need, hard, via: 'prlimit' };
  throw new Error(
    `${connections} connections need ${need} open files per process, but the hard limit (ulimit -Hn) is ${hard} ` +
      'and prlimit cannot raise it (that takes CAP_SYS_RESOURCE). Raise it before the run: as root `ulimit -Hn ' +
      `${need}\` in the shell, LimitNOFILE= for a systemd unit, \`docker run --ulimit nofile=${need}:${need}\` for a container.`,
  );
}

/**
 * Source addresses for `variants` concurrent variants of `connections` each.
 * Up to one address's worth of ports no address is bound (the kernel picks
 * 127.0.0.1 and, since each server has its own port, reuses ephemeral ports
 * across servers); beyond that each variant gets its own addresses from
 * 127.0.0.2-9 (a bind() takes the port on that address for every server).
 * Returns one list per variant, or null when 127.0.0.2-9 are not enough.
 */
export function addressPlan(connections, variants) {
  const cap = portsPerAddress();
  if (connections <= cap) return Array.from({ length: variants }, () => []);
  const k = Math.ceil(connections / cap);
  if (k * variants > SOURCE_ADDRESSES.length) return null;
  return Array.from({ length: variants }, (_, i) => SOURCE_ADDRESSES.slice(i * k, (i + 1) * k));
}

const KB = 1024;

function perConn(a, b, n) {
  if (!a || !b) return null;
  return {
    rssKB: (b.rss - a.rss) / n / KB,
    heapKB: (b.heapUsed - a.heapUsed) / n / KB,
    externalKB: (b.external - a.external) / n / KB,
  };
}

/**
 * Runs one group of variants: set up one after the other, then one shared
 * idle window. Returns one result per variant.
 */
async function runGroup(ctx, sc, ids, params, addresses, fd) {
  const { BENCH, ROOT, TICK, log } = ctx;
  const N = params.connections;
  const entries = ids.map((id, i) => ({
    id,
    v: sc.servers[id],
    addresses: addresses[i],
    server: null,
    loadgen: null,
    r: { server: id, rep: params.rep, ok: false, connections: N, client: sc.servers[id].client, localAddresses: addresses[i], flags: [], errors: [] },
  }));
  const spawnNode = (args, name, opts) => {
    const [cmd, ...rest] = [...fd.prefix, process.execPath, ...args];
    return new Child(cmd, rest, { cwd: ROOT, stdin: true, name, ...opts });
  };
  const fail = (e, msg) => {
    e.r.ok = false;
    e.failed = true;
    e.r.errors.push(msg);
    e.r.flags.push(`FAILED: ${msg}`);
  };

  try {
    // ---- setup, one variant at a time
    for (const e of entries) {
      try {
        e.server = spawnNode(['--expose-gc', path.join(BENCH, e.v.script), ...e.v.args], `${e.id} server`);
        const listening = await e.server.waitLine((l) => l.startsWith('listening '), '"listening <port>"', 15000);
        const port = Number(listening.split(' ')[1]);
        e.memBaseline = await e.server.request('mem');
        const cpu0 = processCpu(e.server.pid);
        const t0 = process.hrtime.bigint();
        e.loadgen = spawnNode(
          [
            path.join(BENCH, 'idle-loadgen.mjs'),
            '--port', String(port),
            '--connections', String(N),
            '--mode', e.v.client,
            ...(e.addresses.length ? ['--local-addresses', e.addresses.join(',')] : []),
          ],
          `${e.id} loadgen`,
        );
        const first = await e.loadgen.waitLine((l) => l.startsWith('ready ') || l.startsWith('result '), '"ready"', 60000 + N * 5);
        if (first.startsWith('result ')) {
          const res = JSON.parse(first.slice('result '.length));
          throw new Error(`connecting failed: ${res.errors?.[0] ?? 'unknown'}`);
        }
        // The loadgen's connect() resolves when the kernel has accepted; wait for the server to hold them all.
        const deadline = Date.now() + 30000;
        let st;
        for (;;) {
          st = await e.server.request('stats');
          if (st.connections >= N || Date.now() > deadline) break;
          await sleep(100);
        }
        if (st.connections < N) {
          e.r.serverStats = st;
          const why = st.closes > 0 ? `; ${st.closes} closed: ${JSON.stringify(st.socketCloses ?? st.closeCodes ?? {})}` : '';
          throw new Error(`the server holds ${st.connections} of ${N} connections 30 s after the loadgen had them open${why}`);
        }
        e.r.connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
        e.r.connectServerCpuMs = cpuBetween(cpu0, processCpu(e.server.pid), TICK).sec * 1000;
        e.memAfterConnect = await e.server.request('mem');
        const why = setNice(e.server.pid, IDLE_NICE) ?? setNice(e.loadgen.pid, IDLE_NICE);
        e.r.nice = why === null ? IDLE_NICE : `unchanged (${why})`;
        log(`  ${e.id.padEnd(17)} ${N.toLocaleString('en-US')} connections open in ${(e.r.connectMs / 1000).toFixed(1)} s${e.addresses.length ? ` from ${e.addresses.join(',')}` : ''}${e.r.nice === IDLE_NICE ? '' : `, nice ${e.r.nice}`}`);
      } catch (err) {
        fail(e, err.message);
        log(`  ${e.id.padEnd(17)} FAILED: ${err.message}`);
        if (e.loadgen) await e.loadgen.stop();
        if (e.server) await e.server.stop();
      }
    }

    // ---- the idle window, shared by every variant that got this far
    const live = entries.filter((e) => !e.failed);
    if (live.length === 0) return entries.map((e) => e.r);
    // A process that dies in the window fails its own variant, not the others.
    const ask = (child, cmd) => child.request(cmd).catch((err) => ({ requestFailed: err.message }));
    const counters = () => Promise.all(live.map(async (e) => [await ask(e.server, 'stats'), await ask(e.loadgen, 'stats')]));
    const cpuNow = () => live.map((e) => ({ server: processCpu(e.server.pid), loadgen: processCpu(e.loadgen.pid) }));
    // One measured interval: counters and CPU clocks (lib/proc.mjs: exact
    // where the kernel has schedstat; a server's idle window is a few tenths
    // of a second of CPU, where 10 ms ticks would be 3-4% of it at each end)
    // at both ends, nothing to wait for in between but time.
    const measure = async (sec) => {
      const c0 = await counters();
      const k0 = cpuNow();
      const m0 = machineTicks();
      const t0 = process.hrtime.bigint();
      await sleep(sec * 1000);
      const k1 = cpuNow();
      const m1 = machineTicks();
      const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
      const c1 = await counters();
      const busySec = (m1.busy - m0.busy) / TICK;
      // Each variant's server and loadgen CPU over the window (lib/proc.mjs cpuBetween).
      const cpu = live.map((e, i) => ({ server: cpuBetween(k0[i].server, k1[i].server, TICK), loadgen: cpuBetween(k0[i].loadgen, k1[i].loadgen, TICK) }));
      const oursSec = cpu.reduce((a, c) => a + c.server.sec + c.loadgen.sec, 0);
      return { c0, c1, cpu, wallSec, otherShare: Math.max(0, busySec - oursSec) / wallSec, stealShare: (m1.steal - m0.steal) / TICK / wallSec };
    };
    // The first window starts as soon as the last variant is connected: it
    // holds one-time costs (V8 optimizing the ping path on its first round,
    // V8's memory reducer shrinking the heap after the connection burst and
    // the `mem` probe's forced collections). The steady window, after a gap
    // that lets those finish, is what a long-running server pays.
    const first = await measure(params.windowSec);
    let steady = null;
    if (params.steadySec > 0) {
      await sleep(params.steadyGapSec * 1000);
      steady = await measure(params.steadySec);
    }
    const last = steady ?? first;
    const memAfter = await Promise.all(live.map((e) => ask(e.server, 'mem')));

    // Server CPU and heartbeat traffic of variant `i` over window `w`.
    const figures = (i, w) => {
      const [s0, l0] = w.c0[i];
      const [s1, l1] = w.c1[i];
      const serverCpu = w.cpu[i].server;
      const serverCpuSec = serverCpu.sec;
      const uwsLike = s1.pingsSent === null || s1.pingsSent === undefined;
      // uWS does not report its pings: then count those its peers received.
      const pingsSent = uwsLike ? l1.pingsReceived + l1.appPingsReceived - (l0.pingsReceived + l0.appPingsReceived) : s1.pingsSent - s0.pingsSent;
      return {
        windowSec: w.wallSec,
        serverCpuSec,
        idleCpuShare: serverCpuSec / w.wallSec,
        cpuClock: serverCpu.clock,
        loadgenCpuShare: w.cpu[i].loadgen.sec / w.wallSec,
        pingsSent,
        pingsCountedBy: uwsLike ? 'loadgen' : 'server',
        pongsReceived: s1.pongsReceived - s0.pongsReceived,
        pingsMissed: (s1.pingsMissed ?? 0) - (s0.pingsMissed ?? 0),
        clientPingsAnswered: l1.pongsSent + l1.appPongsSent - (l0.pongsSent + l0.appPongsSent),
        machineOtherShare: w.otherShare,
        stealShare: w.stealShare,
      };
    };

    live.forEach((e, i) => {
      const [s0] = first.c0[i];
      const [s1, l1] = last.c1[i];
      const r = e.r;
      const windows = steady ? [first, steady] : [first];
      const broken = [...windows.flatMap((w) => [...w.c0[i], ...w.c1[i]]), memAfter[i]].find((x) => x.requestFailed !== undefined);
      if (broken) {
        fail(e, broken.requestFailed);
        return;
      }
      const f = figures(i, first);
      const st = steady ? figures(i, steady) : null;
      Object.assign(r, f, {
        // `steady`: the same figures over the steady window (null without one).
        steady: st,
        mem: { baseline: e.memBaseline, afterConnect: e.memAfterConnect, afterWindow: memAfter[i] },
        perConn: perConn(e.memBaseline, memAfter[i], N),
        perConnAfterConnect: perConn(e.memBaseline, e.memAfterConnect, N),
        // Over the whole run: the verdict below needs every miss.
        pingsMissed: (s1.pingsMissed ?? 0) - (s0.pingsMissed ?? 0),
        closes: s1.closes,
        closesBeforeWindow: s0.closes,
        clientCloses: l1.closed + l1.closeFrames,
        serverHeld: s1.connections,
        clientOpen: l1.open,
        serverStats: s1,
        clientStats: { ...l1, errors: undefined },
      });
      r.errors.push(...l1.errors);
      // Verdict: every connection still open on both ends, nobody closed one.
      const problems = [];
      if (s1.closes > 0) {
        const why = s1.socketCloses ?? s1.closeCodes;
        problems.push(`the server saw ${s1.closes} connection(s) close (${s0.closes} of them before the window)${why ? `: ${JSON.stringify(why)}` : ''}`);
      }
      if (r.clientCloses > 0) problems.push(`the loadgen saw ${r.clientCloses} connection(s) closed`);
      if (s1.connections !== N) problems.push(`the server holds ${s1.connections} of ${N} connections`);
      if (l1.open !== N) problems.push(`the loadgen has ${l1.open} of ${N} connections open`);
      if (l1.errors.length > 0) problems.push(l1.errors[0]);
      r.ok = problems.length === 0;
      for (const p of problems) r.flags.push(`FAILED: ${p}`);
      if (r.pingsMissed > 0) r.flags.push(`${r.pingsMissed} ping(s) missed (unanswered in time, no close)`);
      for (const [name, w] of [['first', f], ['steady', st]]) {
        if (!w) continue;
        if (w.pongsReceived < w.pingsSent - N) r.flags.push(`${name} window: only ${w.pongsReceived} pongs for ${w.pingsSent} pings`);
        if (w.stealShare > ctx.STEAL_FLAG) r.flags.push(`${name} window: steal ${(100 * w.stealShare).toFixed(0)}% of a CPU`);
        if (w.machineOtherShare > ctx.OTHER_FLAG) r.flags.push(`${name} window: other load ${(100 * w.machineOtherShare).toFixed(0)}% of a CPU`);
      }
    });
    return entries.map((e) => e.r);
  } finally {
    // Servers first: their side of each connection goes to TIME_WAIT on the
    // server port, so the loadgen's ephemeral ports are free for the next run.
    for (const e of entries) if (e.server) await e.server.stop();
    for (const e of entries) if (e.loadgen) await e.loadgen.stop();
  }
}

/**
 * Scenario d, every rep. `ids` are the variants to run (net and ws first, the
 * others after). Returns { params, runs, summary }.
 */
export async function runIdleScenario(ctx, sc, ids, params) {
  const { log } = ctx;
  // The peers run whether or not scenarios.mjs lists them yet.
  sc = { ...sc, servers: { ...IDLE_PEERS, ...sc.servers } };
  const fd = fdPlan(params.connections);
  let groups = params.sequential ? ids.map((id) => [id]) : [ids];
  let addresses = addressPlan(params.connections, groups[0].length);
  if (addresses === null && !params.sequential) {
    log(`  (${params.connections} connections x ${ids.length} servers need more source addresses than 127.0.0.2-9 give: one window per server instead)`);
    groups = ids.map((id) => [id]);
    addresses = addressPlan(params.connections, 1);
  }
  if (addresses === null) throw new Error(`${params.connections} connections need more source addresses than 127.0.0.2-9 (${portsPerAddress()} ports each)`);
  params.fdLimit = { need: fd.need, hard: fd.hard, via: fd.via };
  params.windows = groups.length === 1 ? 'shared' : 'one per server';

  const runs = [];
  for (let rep = 1; rep <= params.reps; rep++) {
    const quiet = await ctx.waitQuiet();
    for (const group of groups) {
      const rs = await runGroup(ctx, sc, group, { ...params, rep }, addresses, fd);
      for (const r of rs) {
        r.quiet = quiet;
        runs.push(r);
        log(formatRunLine(r, rep));
      }
    }
  }
  const summary = summarizeIdle(sc, ids, runs);
  return { runs, summary, goals: idleGoals(summary) };
}

/**
 * The issue's goals for scenario d, from the summary: lifeline ('normal'
 * preset, plain peers) RSS per connection <= 1.15 x net's; lifeline idle CPU
 * <= uws's, over the steady window when the run had one. A goal whose
 * servers did not run is left out.
 */
export function idleGoals(summary) {
  const goals = [];
  const l = summary.lifeline;
  // Node's floor: net-ping on a bare node:net server when it ran (the least a
  // Node server pays per connection), else net-ping over node:http.
  const floorId = summary['net-ping-bare'] ? 'net-ping-bare' : summary['net-ping'] ? 'net-ping' : null;
  if (l && summary.net) {
    const value = l.rssPerConnKB / summary.net.rssPerConnKB;
    goals.push({
      id: 'd-rss-vs-net',
      op: '<=',
      text: `lifeline RSS/conn after GC <= ${IDLE_GOALS.rssVsNet} x net's (${fmtKB(l.rssPerConnKB)} vs ${fmtKB(summary.net.rssPerConnKB)} KB)`,
      value,
      target: IDLE_GOALS.rssVsNet,
      pass: Number.isFinite(value) && value <= IDLE_GOALS.rssVsNet,
      floor: floorId ? floorOf(floorId, summary[floorId].rssPerConnKB, summary.net.rssPerConnKB, '<=', IDLE_GOALS.rssVsNet) : null,
    });
  }
  // Against uWS at lifeline's cadence when it ran (uws-24s), else the default
  // uws; over the steady window when there was one, else the first.
  const uid = summary['uws-24s'] ? 'uws-24s' : 'uws';
  const u = summary[uid];
  if (l && u) {
    const useSteady = bothSteady(l, u);
    const pick = (x) =>
      useSteady
        ? { share: x.steadyCpuShare, pings: x.steadyPingsSent, us: x.steadyCpuUsPerPing }
        : { share: x.idleCpuShare, pings: x.pingsSent, us: x.cpuUsPerPing };
    const a = pick(l);
    const b = pick(u);
    // Node's floor, when it ran: how much of the gap any Node server has.
    const floor = floorId ? pick(summary[floorId]) : null;
    const floorPerPing = floor && Number.isFinite(floor.us) ? `; Node's floor ${floorId} ${fmtUs(floor.us)} us per ping` : '';
    // Shares of one CPU over the window. A heartbeat's CPU is its pings': with
    // none in the window (its cadence against the window's phase) there is
    // nothing to compare, and the goal says so instead of comparing with 0.
    const pings = `${fmtInt(a.pings)} vs ${fmtInt(b.pings)} pings, ${fmtUs(a.us)} vs ${fmtUs(b.us)} us per ping${floorPerPing}`;
    const comparable = b.pings > 0 && a.pings > 0 && Number.isFinite(a.share) && Number.isFinite(b.share);
    const which = useSteady ? 'steady window' : 'window';
    goals.push({
      id: 'd-idle-cpu-vs-uws',
      op: '<=',
      text: comparable
        ? `lifeline idle CPU <= ${uid}'s, ${which} (${fmtCpu(a.share)} vs ${fmtCpu(b.share)} of one CPU; ${pings})`
        : `lifeline idle CPU <= ${uid}'s, ${which}: not comparable, a server sent no ping in it (${fmtCpu(a.share)} vs ${fmtCpu(b.share)}; ${pings})`,
      value: comparable ? a.share / b.share : NaN,
      target: 1,
      pass: comparable ? a.share <= b.share : null,
      // The floor's share over uWS's, when it pinged in the same window.
      floor: floor && b.pings > 0 && floor.pings > 0 ? floorOf(floorId, floor.share, b.share, '<=', 1) : null,
    });
  }
  return goals;
}

/**
 * The options the child-process scenarios (e broadcast, f hold) share, from
 * their callers' opts; `bench` is the bench/ directory.
 */
export function commonScenarioOpts(opts, bench) {
  return {
    quick: Boolean(opts.quick),
    root: opts.root ?? path.resolve(bench, '..'),
    log: opts.log ?? ((l) => console.log(l)),
    noWait: Boolean(opts.noWait),
  };
}

/** Throws unless every server of `o.servers` is in `known` and every `keys` option is a positive integer. */
export function checkScenarioOpts(scenario, o, known, keys) {
  for (const id of o.servers) if (!known[id]) throw new Error(`${scenario}: unknown server ${JSON.stringify(id)} (known: ${Object.keys(known).join(', ')})`);
  for (const k of keys) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new Error(`${scenario}: ${k} must be a positive integer, got ${o[k]}`);
  }
}

/** Marks a run record failed by `err` (a run that threw). */
export function failRun(r, err) {
  r.ok = false;
  r.errors.push(err.message);
  r.flags.push(`FAILED: ${err.message}`);
}

/** Goal lines for the terminal. */
export function formatGoals(goals) {
  return goals.map((g) => `goal ${g.id}: ${g.text}: ${g.pass ? 'met' : 'MISSED'}${floorText(g)}`).join('\n');
}

function fmtKB(x) {
  return Number.isFinite(x) ? x.toFixed(2) : '-';
}

function fmtCpu(x) {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-';
}

/** Microseconds with one decimal, or '-'. */
function fmtUs(x) {
  return Number.isFinite(x) ? x.toFixed(1) : '-';
}

function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

function fmtRatio(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}

function formatRunLine(r, rep) {
  const p = r.perConn;
  return (
    `  rep ${rep} ${r.server.padEnd(17)} RSS/conn ${fmtKB(p?.rssKB).padStart(6)} KB  heap/conn ${fmtKB(p?.heapKB).padStart(6)} KB  ` +
    `idle CPU ${fmtCpu(r.idleCpuShare).padStart(6)}  pings ${fmtInt(r.pingsSent).padStart(6)} (pongs ${fmtInt(r.pongsReceived)})  ` +
    (r.steady ? `steady: idle CPU ${fmtCpu(r.steady.idleCpuShare).padStart(6)}  pings ${fmtInt(r.steady.pingsSent).padStart(6)}  ` : '') +
    `closes ${r.closes ?? '-'}` +
    (r.flags.length ? `  [${r.flags.join('; ')}]` : '')
  );
}

/**
 * Whether two servers' idle CPU is compared over the steady window: when both
 * had one (the goal and "CPU vs pair" alike), else over the first.
 */
function bothSteady(a, b) {
  return Number.isFinite(a.steadyCpuShare) && Number.isFinite(b.steadyCpuShare);
}

/** Server CPU of a window per ping sent in it, in microseconds (NaN without pings). */
function usPerPing(w) {
  return w.pingsSent > 0 ? (w.serverCpuSec * 1e6) / w.pingsSent : NaN;
}

function summarizeIdle(sc, ids, runs) {
  const by = {};
  for (const id of ids) {
    const rs = runs.filter((r) => r.server === id);
    const good = rs.filter((r) => r.ok);
    const med = (f) => median(good.map(f));
    by[id] = {
      what: sc.servers[id].what,
      client: sc.servers[id].client,
      pair: sc.servers[id].pair,
      runs: rs.length,
      failed: rs.length - good.length,
      rssPerConnKB: med((r) => r.perConn.rssKB),
      heapPerConnKB: med((r) => r.perConn.heapKB),
      externalPerConnKB: med((r) => r.perConn.externalKB),
      rssPerConnKBAfterConnect: med((r) => r.perConnAfterConnect.rssKB),
      heapPerConnKBAfterConnect: med((r) => r.perConnAfterConnect.heapKB),
      idleCpuShare: med((r) => r.idleCpuShare),
      serverCpuSec: med((r) => r.serverCpuSec),
      // Server CPU over the window per ping sent in it (idle housekeeping included).
      cpuUsPerPing: med((r) => usPerPing(r)),
      // The same over the steady window (NaN without one).
      steadyCpuShare: med((r) => r.steady?.idleCpuShare ?? NaN),
      steadyPingsSent: med((r) => r.steady?.pingsSent ?? NaN),
      steadyCpuUsPerPing: med((r) => (r.steady ? usPerPing(r.steady) : NaN)),
      connectMs: med((r) => r.connectMs),
      connectServerCpuUsPerConn: med((r) => (r.connectServerCpuMs * 1000) / r.connections),
      pingsSent: med((r) => r.pingsSent),
      pongsReceived: med((r) => r.pongsReceived),
      pingsMissed: rs.reduce((a, r) => a + (r.pingsMissed ?? 0), 0),
      // Connections closed, seen from whichever end saw more.
      closes: rs.reduce((a, r) => a + Math.max(r.closes ?? 0, r.clientCloses ?? 0), 0),
      flagged: rs.filter((r) => r.flags.length > 0).length,
    };
  }
  for (const id of ids) {
    const s = by[id];
    const pair = s.pair && by[s.pair] ? by[s.pair] : null;
    const ref = sc.reference && by[sc.reference] ? by[sc.reference] : null;
    s.rssVsPair = pair ? s.rssPerConnKB / pair.rssPerConnKB : NaN;
    s.heapVsPair = pair ? s.heapPerConnKB / pair.heapPerConnKB : NaN;
    // Over the steady window when both have one, as the idle-CPU goal.
    if (!pair) s.cpuVsPair = NaN;
    else s.cpuVsPair = bothSteady(s, pair) ? s.steadyCpuShare / pair.steadyCpuShare : s.idleCpuShare / pair.idleCpuShare;
    s.rssVsNet = ref ? s.rssPerConnKB / ref.rssPerConnKB : NaN;
    s.heapVsNet = ref ? s.heapPerConnKB / ref.heapPerConnKB : NaN;
  }
  return by;
}

export function formatIdleSummary(sc, ids, params, summary, table) {
  const steady = params.steadySec > 0;
  const header = [
    'server', 'RSS/conn KB', 'heap/conn KB', 'idle CPU', 'pings', 'pongs', 'CPU/ping us',
    ...(steady ? ['steady CPU', 'steady pings', 'steady CPU/ping us'] : []),
    'setup us/conn', 'closes', 'ws pair', 'RSS vs pair', 'heap vs pair', 'CPU vs pair', 'RSS vs net',
  ];
  const rows = ids.map((id) => {
    const s = summary[id];
    return [
      id,
      fmtKB(s.rssPerConnKB),
      fmtKB(s.heapPerConnKB),
      fmtCpu(s.idleCpuShare),
      fmtInt(s.pingsSent),
      fmtInt(s.pongsReceived),
      fmtUs(s.cpuUsPerPing),
      ...(steady ? [fmtCpu(s.steadyCpuShare), fmtInt(s.steadyPingsSent), fmtUs(s.steadyCpuUsPerPing)] : []),
      fmtUs(s.connectServerCpuUsPerConn),
      String(s.closes) + (s.failed ? ` (${s.failed} failed)` : ''),
      s.pair ?? '-',
      fmtRatio(s.rssVsPair),
      fmtRatio(s.heapVsPair),
      fmtRatio(s.cpuVsPair),
      fmtRatio(s.rssVsNet),
    ];
  });
  return (
    table(header, rows) +
    `\n${params.connections.toLocaleString('en-US')} idle connections per server, ${params.windowSec} s idle window (${params.windows})` +
    (steady ? ` right after connecting, then a steady window of ${params.steadySec} s from ${params.steadyGapSec} s after it (the idle-CPU goal's)` : '') +
    ', ' +
    `${params.reps === 1 ? '1 rep' : `medians of ${params.reps} reps`}. Per connection = (after the window - before any connection) / N, ` +
    'both after a full GC; RSS leaves out kernel socket buffers. Idle CPU: server CPU (the run time of its threads, from the scheduler) over the window, share of one CPU. ' +
    'Pings and pongs: during the first window (lifeline: server.stats(); ws: counted around ws.ping() and its pong listener); ' +
    'CPU/ping: server CPU over the window per ping sent in it. ' +
    'Setup: server CPU from starting the loadgen until the server held all N connections (accept, opening handshake, ' +
    'lifeline.v1 hello and welcome where used), per connection: what a reconnect storm costs the server. ' +
    "Closes: any connection closed during the whole run, either end (must be 0). 'ws pair' is the ws run with the same ping cadence; CPU vs pair is over the steady window when there is one." +
    (ids.some((id) => id.startsWith('uws')) ? ' uWS does not report its pings: its pings are those the loadgen received.' : '') +
    (ids.some((id) => summary[id].flagged) ? ' Some runs were flagged (see above): treat with care.' : '') +
    (idleGoals(summary).length ? `\n${formatGoals(idleGoals(summary))}` : '')
  );
}

// ------------------------------------------------------------ CLI
//
//   node bench/lib/idle.mjs [--quick] [--servers net,ws,lifeline,uws,socketio]
//        [--connections N] [--idle-sec S] [--steady-sec S (0: none)] [--no-wait]
//
// Scenario d on its own, with scenarios.mjs's settings (imported only here:
// scenarios.mjs imports this file for IDLE_PEERS). Nothing is written.

async function cli() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      servers: { type: 'string', default: 'net,ws,lifeline,uws,socketio' },
      connections: { type: 'string' },
      'idle-sec': { type: 'string' },
      'steady-sec': { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const { SCENARIOS } = await import('../scenarios.mjs');
  const base = SCENARIOS.d;
  const sc = { ...base, servers: { ...IDLE_PEERS, ...base.servers } };
  const ids = values.servers.split(',').map((x) => x.trim()).filter(Boolean);
  for (const id of ids) if (!sc.servers[id]) throw new Error(`unknown server ${id} (known: ${Object.keys(sc.servers).join(', ')})`);
  // Pairs and the net reference first, as run.mjs orders them: the ratios need them.
  const first = ['net', ...new Set(ids.map((id) => sc.servers[id].pair).filter(Boolean))];
  const ordered = [...first.filter((id) => ids.includes(id)), ...ids.filter((id) => !first.includes(id))];
  const mode = values.quick ? 'quick' : 'full';
  const params = {
    connections: values.connections ? Number(values.connections) : base[mode].connections,
    windowSec: values['idle-sec'] ? Number(values['idle-sec']) : base[mode].windowSec,
    steadySec: values['steady-sec'] !== undefined ? Number(values['steady-sec']) : base[mode].steadySec,
    steadyGapSec: base[mode].steadyGapSec,
    reps: 1,
    sequential: false,
  };
  const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const ctx = {
    ROOT: path.resolve(BENCH, '..'),
    BENCH,
    TICK: clockTicks(),
    waitQuiet: () => waitQuiet({ noWait: values['no-wait'] }),
    log: (l) => console.log(l),
    STEAL_FLAG: 0.02,
    OTHER_FLAG: 0.1,
  };
  console.log(`scenario d: ${params.connections} connections per server, ${params.windowSec} s window: ${ordered.join(', ')}`);
  const result = await runIdleScenario(ctx, sc, ordered, params);
  console.log(`\n${formatIdleSummary(sc, ordered, params, result.summary, table)}`);
  if (result.runs.some((r) => !r.ok)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().catch((err) => {
    console.error(`idle: ${err.stack ?? err}`);
    process.exit(1);
  });
}

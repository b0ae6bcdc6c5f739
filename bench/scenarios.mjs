// Bench scenarios. Each one is a load the loadgen can produce; run.mjs runs
// every server on it, alternating, and reports medians. The suite grows by
// adding entries here (and, for a new kind of load, options to loadgen.mjs).
//
// Full mode is the number to quote; quick mode (--quick) is a smoke test that
// takes seconds.
//
// Kinds: 'echo' (the default; loadgen.mjs, servers in SERVERS or the
// scenario's own `servers`, alternating runs), 'idle' (idle-loadgen.mjs, the
// scenario's own `servers`, run by lib/idle.mjs), and 'module' (a scenario
// that runs itself: `module` exports `run` and `format`, loaded only when the
// scenario runs, so that a missing file skips it instead of breaking the
// suite). `alias` is another name for --scenario.
//
// `goals` are the targets, computed by run.mjs from the medians:
// value = metric(of) / metric(vs), PASS when value `op` target. Metrics:
// perCpu (msgs per server-CPU-s), msgsPerSec, p50/p99/p999 (round-trip
// latency, microseconds; lower is better, so those goals use '<=').
// `floor` (goals against uWS): a server whose same ratio is reported beside
// the goal's (lib/floor.mjs): Node's floor, to tell whether any Node server
// could meet it in this run.

import { IDLE_PEERS } from './lib/idle.mjs';

/**
 * Scenario d's servers. `client` is the idle-loadgen mode (raw TCP, plain
 * WebSocket, lifeline.v1); `pair` is the ws run with the same ping cadence
 * that ratios are taken against.
 */
export const IDLE_SERVERS = {
  net: {
    script: 'servers/idle-net.mjs',
    args: [],
    client: 'raw',
    pair: null,
    what: 'node:net server holding the TCP sockets, nothing else (physical reference)',
  },
  // Node's floor for the heartbeat: the least any Node server pays per ping.
  'net-ping': {
    script: 'servers/idle-net-ping.mjs',
    args: ['--interval-ms', '25000'],
    client: 'ws',
    pair: 'ws',
    what: "node:http upgrade, then one socket.write() of a pre-encoded ping per connection every 25 s and a 'data' listener for the pong, nothing else (Node's floor for the heartbeat)",
  },
  // The same on a bare node:net server (no node:http): the floor d's goals are set beside.
  'net-ping-bare': {
    script: 'servers/idle-net-ping.mjs',
    args: ['--interval-ms', '25000', '--bare'],
    client: 'ws',
    pair: 'ws',
    what: "net-ping with the upgrade read off a bare node:net server instead of node:http (no HTTP parser or request object): Node's floor for a server that owns its listening socket",
  },
  ws: {
    script: 'servers/idle-ws.mjs',
    args: ['--interval', '30000'],
    client: 'ws',
    pair: 'ws',
    what: "ws, its README heartbeat (setInterval 30 s over wss.clients: terminate if no pong since the last tick, else ping)",
  },
  'ws-5s': {
    script: 'servers/idle-ws.mjs',
    args: ['--interval', '5000'],
    client: 'ws',
    pair: 'ws-5s',
    what: 'ws, the same README heartbeat every 5 s (the cadence of lifeline aggressive)',
  },
  lifeline: {
    script: 'servers/idle-lifeline.mjs',
    args: ['--heartbeat', 'normal'],
    client: 'ws',
    pair: 'ws',
    what: "LifelineServer heartbeat 'normal' (ping after 25 s quiet), plain WebSocket peers: protocol pings",
  },
  'lifeline-aggr': {
    script: 'servers/idle-lifeline.mjs',
    args: ['--heartbeat', 'aggressive'],
    client: 'ws',
    pair: 'ws-5s',
    what: "LifelineServer heartbeat 'aggressive' (ping after 5 s quiet), plain WebSocket peers: protocol pings",
  },
  'lifeline-v1': {
    script: 'servers/idle-lifeline.mjs',
    args: ['--heartbeat', 'normal'],
    client: 'lifeline',
    pair: 'ws',
    what: "LifelineServer heartbeat 'normal', lifeline.v1 peers (hello/welcome, app pings {\"t\":\"ping\"})",
  },
  'lifeline-v1-aggr': {
    script: 'servers/idle-lifeline.mjs',
    args: ['--heartbeat', 'aggressive'],
    client: 'lifeline',
    pair: 'ws-5s',
    what: "LifelineServer heartbeat 'aggressive', lifeline.v1 peers (app pings)",
  },
  'lifeline-off': {
    script: 'servers/idle-lifeline.mjs',
    args: ['--heartbeat', 'off'],
    client: 'ws',
    pair: 'ws',
    what: "LifelineServer heartbeat 'off', plain WebSocket peers (what the heartbeat itself costs)",
  },
  // uws and socketio with their own heartbeats (lib/idle.mjs keeps their definitions).
  ...IDLE_PEERS,
};

/**
 * Scenario g's servers: lifeline without and with its session layer, under
 * the same load. `loadgenArgs` go to loadgen.mjs (lifeline.v1 for `session`).
 */
export const SESSION_SERVERS = {
  plain: {
    script: 'servers/lifeline-echo.mjs',
    loadgenArgs: [],
    what: 'lifeline WebSocketServer (dist/), plain WebSocket: no session layer',
  },
  session: {
    script: 'servers/lifeline-session-echo.mjs',
    loadgenArgs: ['--protocol', 'lifeline'],
    what: "LifelineServer (dist/), heartbeat 'normal', lifeline.v1 peers: seq/ack on every message, replay buffer, standalone client ack every 32",
  },
};

/**
 * The echo peers of scenarios a, b and c, run in this order in every
 * repetition. `protocol` is the loadgen's --protocol; `args` go to the server.
 */
export const SERVERS = {
  lifeline: { script: 'servers/lifeline-echo.mjs', protocol: 'ws', what: 'lifeline WebSocketServer (dist/), deflate off' },
  ws: { script: 'servers/ws-echo.mjs', protocol: 'ws', what: 'ws + bufferutil + utf-8-validate, perMessageDeflate off' },
  uws: { script: 'servers/uws-echo.mjs', protocol: 'ws', what: 'uWebSockets.js native (@trufflesuite/uws-js-unofficial, binary loaded directly), compression off' },
  socketio: { script: 'servers/socketio-echo.mjs', protocol: 'socketio', what: "socket.io, websocket transport only, perMessageDeflate off, socket.on('m', d => socket.emit('m', d))" },
  'net-batched': { script: 'servers/net-echo.mjs', args: ['--mode', 'batched'], protocol: 'netlen', what: 'raw node:net, 4-byte length prefix, one write per read (physical reference)' },
  'net-perframe': { script: 'servers/net-echo.mjs', args: ['--mode', 'perframe'], protocol: 'netlen', what: 'raw node:net, 4-byte length prefix, one write per message' },
};

/**
 * Scenario b's floor, run only there: the raw `net` echo with what any
 * WebSocket echo on Node's sockets adds (servers/net-echo.mjs --mode wsfloor).
 */
export const WS_FLOOR_SERVERS = {
  'net-wsfloor': {
    script: 'servers/net-echo.mjs',
    args: ['--mode', 'wsfloor'],
    protocol: 'netlen',
    what: "raw node:net as net-batched, plus each payload unmasked in place (zero key, by lifeline's own choice of unmask: bufferutil's native one when installed, else its WebAssembly SIMD kernel, else JavaScript) and each echo written as its own header and payload buffers, corked: one writev per read (Node's floor for b)",
  },
};

/**
 * Scenario b's context row, run only there: lifeline as it runs without
 * bufferutil installed (the default install: its own WebAssembly SIMD
 * unmask). `env` is added to the server's environment. The goal stays
 * lifeline's with whatever the machine has (bufferutil here, for ws).
 */
export const NO_ADDON_SERVERS = {
  'lifeline-simd': {
    script: 'servers/lifeline-echo.mjs',
    env: { LIFELINE_NO_NATIVE: '1' },
    protocol: 'ws',
    what: 'lifeline WebSocketServer (dist/), deflate off, without bufferutil (LIFELINE_NO_NATIVE=1): long payloads unmasked by its WebAssembly SIMD kernel',
  },
};

export const SCENARIOS = {
  a: {
    // Server on CPU 0, loadgen on CPU 1 (run.mjs pinModeOf): the same placement for
    // every server; unpinned, the scheduler's choices moved results by +-20%.
    pin: 'split',
    title: 'echo round trip, 100 connections x 32 B text, window 16',
    loadgen: { connections: 100, size: 32, window: 16 },
    // Per run at ~100k-500k msgs/s (socket.io ~80k): about two minutes for all
    // six peers and three repetitions.
    full: { messages: 1_000_000, warmup: 50_000, reps: 3 },
    quick: { messages: 100_000, warmup: 10_000, reps: 1 },
    goals: [
      { id: 'a-uws', of: 'lifeline', vs: 'uws', metric: 'perCpu', op: '>=', target: 1.0, floor: 'net-batched', text: 'lifeline >= 1.0x uws, msgs per server-CPU-s' },
      { id: 'a-net', of: 'lifeline', vs: 'net-batched', metric: 'perCpu', op: '>=', target: 0.85, text: 'lifeline >= 0.85x net-batched (raw TCP), msgs per server-CPU-s' },
    ],
  },
  b: {
    // Server on CPU 0, loadgen on CPU 1 (run.mjs pinModeOf): the same placement for
    // every server; unpinned, the scheduler's choices moved results by +-20%.
    pin: 'split',
    title: 'echo round trip, 10 connections x 16 KiB binary, window 4',
    loadgen: { connections: 10, size: 16 * 1024, window: 4, binary: true },
    // ~25k-80k msgs/s (each 16 KiB both ways): about three minutes in all.
    // 120,000 per run, not 40,000: the server's CPU comes in 10 ms ticks, and
    // at 40,000 a measured part of about 0.55 s of CPU moved a run's figure
    // in steps of 2% (72,727 / 75,472 / 80,000), a third of b's margin.
    full: { messages: 120_000, warmup: 6_000, reps: 3 },
    quick: { messages: 4_000, warmup: 1_000, reps: 1 },
    // The usual peers, b's floor (net-wsfloor), which the goal is reported
    // beside, and lifeline without a native addon.
    servers: { ...SERVERS, ...NO_ADDON_SERVERS, ...WS_FLOOR_SERVERS },
    goals: [{ id: 'b-net', of: 'lifeline', vs: 'net-batched', metric: 'perCpu', op: '>=', target: 0.97, floor: 'net-wsfloor', text: 'lifeline >= 0.97x net-batched (raw TCP), msgs per server-CPU-s' }],
  },
  c: {
    title: 'latency: 1 connection x 32 B text, window 1 (one message in flight)',
    loadgen: { connections: 1, size: 32, window: 1, latency: true },
    // Server and loadgen on the same CPU (run.mjs pinModeOf: a cross-CPU
    // round trip on a VM is dominated by two wake-ups, ~60-80 us of noise
    // against ~20 us of work); --latency-pin split|none to compare.
    pin: 'same',
    // ~15k-40k round trips/s at window 1: about a minute in all. 50,000
    // samples leave 50 above p99.9.
    full: { messages: 50_000, warmup: 5_000, reps: 3 },
    quick: { messages: 5_000, warmup: 1_000, reps: 1 },
    goals: [
      { id: 'c-p50', of: 'lifeline', vs: 'net-batched', metric: 'p50', op: '<=', target: 1.1, text: 'lifeline p50 latency <= 1.10x net-batched p50' },
      { id: 'c-p99', of: 'lifeline', vs: 'uws', metric: 'p99', op: '<=', target: 1.0, floor: 'net-batched', text: 'lifeline p99 latency <= uws p99' },
    ],
  },
  g: {
    // Server on CPU 0, loadgen on CPU 1 (run.mjs pinModeOf): the same placement for
    // every server; unpinned, the scheduler's choices moved results by +-20%.
    pin: 'split',
    alias: 'session',
    title: 'session layer on vs off: echo round trip, 100 connections x 32 B text, window 16 (load of scenario a)',
    loadgen: { connections: 100, size: 32, window: 16 },
    // Its own servers, and ratios against `plain` (not ws): what seq/ack/replay costs.
    servers: SESSION_SERVERS,
    baseline: 'plain',
    references: [],
    // The same counts as a; both servers do about 250-500k msgs/s on a small
    // box, so the full scenario takes about a minute and a half. Five
    // repetitions, not three: the ratio of two servers that each swing by
    // 20-50% from one repetition to the next on a shared VM needed them (3-rep
    // medians of the same tree ranged 0.62-0.80, 5-rep ones 0.65-0.69).
    full: { messages: 1_000_000, warmup: 50_000, reps: 5 },
    quick: { messages: 100_000, warmup: 10_000, reps: 1 },
    goals: [{ id: 'g-session', of: 'session', vs: 'plain', metric: 'perCpu', op: '>=', target: 0.8, text: 'session/plain >= 0.8, msgs per server-CPU-s (the session layer costs at most 20%)' }],
  },
  d: {
    kind: 'idle',
    alias: 'idle',
    title: 'idle connections with heartbeats on: memory per connection after GC, idle CPU',
    servers: IDLE_SERVERS,
    baseline: 'ws',
    reference: 'net',
    // Two windows (lib/idle.mjs): the first right after the last server has
    // connected, then, after a gap, the steady one that the idle-CPU goal
    // reads. The first holds one-time costs: V8 optimizing the ping path on
    // its first round and V8's memory reducer collecting after the connection
    // burst (in 10,000-connection runs of lifeline it landed 21-38 s after
    // connecting and took about 0.25 s of CPU, some 40% of that window's); a
    // server that runs for hours pays them once. 60 s holds two or three ping
    // rounds at 24-25 s.
    full: { connections: 10_000, windowSec: 30, steadyGapSec: 15, steadySec: 60, reps: 1 },
    // Quick is a smoke test: fewer connections, so eight servers set up in seconds.
    quick: { connections: 2_000, windowSec: 6, steadyGapSec: 0, steadySec: 6, reps: 1 },
  },
  // e and f are run by their own modules (lib/broadcast.mjs, lib/hold.mjs);
  // they bring their own servers, loads, summaries and goals.
  e: {
    kind: 'module',
    alias: 'broadcast',
    title: 'broadcast (lib/broadcast.mjs)',
    module: './lib/broadcast.mjs',
    run: 'runBroadcastScenario',
    format: 'formatBroadcastSummary',
    // The module's map of servers: --servers is filtered down to its names.
    serversExport: 'BROADCAST_SERVERS',
  },
  f: {
    kind: 'module',
    alias: 'hold',
    title: 'hold (lib/hold.mjs)',
    module: './lib/hold.mjs',
    run: 'runHoldScenario',
    format: 'formatHoldSummary',
    serversExport: 'HOLD_SERVERS',
  },
};

/** The server the first ratio columns (and older JSON fields) are taken against. */
export const BASELINE = 'ws';

/** Every echo scenario on SERVERS also reports ratios to these (table and JSON). */
export const REFERENCES = ['ws', 'uws', 'net-batched'];

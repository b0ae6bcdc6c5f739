// Bench scenarios. Each one is a load the loadgen can produce; run.mjs runs
// every server on it, alternating, and reports medians. The suite grows by
// adding entries here (and, for a new kind of load, options to loadgen.mjs).
//
// Full mode is the number to quote; quick mode (--quick) is a smoke test that
// takes seconds.
//
// Two kinds: 'echo' (the default; loadgen.mjs, servers in SERVERS, alternating
// runs) and 'idle' (idle-loadgen.mjs, the scenario's own `servers`, run by
// lib/idle.mjs). `alias` is another name for --scenario.

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

export const SCENARIOS = {
  a: {
    title: 'echo round trip, 100 connections x 32 B text, window 16',
    loadgen: { connections: 100, size: 32, window: 16 },
    full: { messages: 1_000_000, warmup: 50_000, reps: 3 },
    quick: { messages: 100_000, warmup: 10_000, reps: 1 },
  },
  g: {
    alias: 'session',
    title: 'session layer on vs off: echo round trip, 100 connections x 32 B text, window 16 (load of scenario a)',
    loadgen: { connections: 100, size: 32, window: 16 },
    // Its own servers, and ratios against `plain` (not ws): what seq/ack/replay costs.
    servers: SESSION_SERVERS,
    baseline: 'plain',
    // The same counts as a; both servers do about 250-500k msgs/s on a small
    // box, so the full scenario adds well under a minute.
    full: { messages: 1_000_000, warmup: 50_000, reps: 3 },
    quick: { messages: 100_000, warmup: 10_000, reps: 1 },
  },
  d: {
    kind: 'idle',
    alias: 'idle',
    title: 'idle connections with heartbeats on: memory per connection after GC, idle CPU',
    servers: IDLE_SERVERS,
    baseline: 'ws',
    reference: 'net',
    full: { connections: 10_000, windowSec: 30, reps: 1 },
    // Quick is a smoke test: fewer connections, so eight servers set up in seconds.
    quick: { connections: 2_000, windowSec: 6, reps: 1 },
  },
};

/** The servers compared; `baseline` is the one ratios are taken against. */
export const SERVERS = {
  lifeline: { script: 'servers/lifeline-echo.mjs', what: 'lifeline (dist/)' },
  ws: { script: 'servers/ws-echo.mjs', what: 'ws + bufferutil + utf-8-validate, perMessageDeflate off' },
};

export const BASELINE = 'ws';

// Bench scenarios. Each one is a load the loadgen can produce; run.mjs runs
// every server on it, alternating, and reports medians. The suite grows by
// adding entries here (and, for a new kind of load, options to loadgen.mjs).
//
// Full mode is the number to quote; quick mode (--quick) is a smoke test that
// takes seconds.

export const SCENARIOS = {
  a: {
    title: 'echo round trip, 100 connections x 32 B text, window 16',
    loadgen: { connections: 100, size: 32, window: 16 },
    full: { messages: 1_000_000, warmup: 50_000, reps: 3 },
    quick: { messages: 100_000, warmup: 10_000, reps: 1 },
  },
};

/** The servers compared; `baseline` is the one ratios are taken against. */
export const SERVERS = {
  lifeline: { script: 'servers/lifeline-echo.mjs', what: 'lifeline (dist/)' },
  ws: { script: 'servers/ws-echo.mjs', what: 'ws + bufferutil + utf-8-validate, perMessageDeflate off' },
};

export const BASELINE = 'ws';

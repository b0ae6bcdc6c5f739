// Child process for leak.test.ts: a server whose memory the test measures.
//
//   node --expose-gc --import tsx test/hardening/load/leak-server.ts <ws|lifeline>
//
// Listens on 127.0.0.1:0 and prints one JSON line {"port": N}. Then answers
// line commands on stdin, one JSON line each on stdout:
//   'idle' -> waits (event-driven) until no connection (and, for the lifeline
//             variant, no session) is left, then {"idle": true, open, sessions}
//   'gc'   -> a full GC (last-resort from V8 12, below), then {"rss", "heapUsed", "external", "arrayBuffers", open, sessions, accepted}
//   'quit' -> closes the server and exits.
// The transport server answers every message with nothing (the test only opens
// and closes); the lifeline variant uses a short sessionTtl and few tombstones
// so that a connection the test resets (no close frame) leaves no state that
// legitimately outlives the round.

import { createInterface } from 'node:readline';

import { LifelineServer } from '../../../src/server/lifeline-server.js';
import { WebSocketServer } from '../../../src/transport/node/server.js';

const variant = process.argv[2] ?? 'ws';
const gc = (globalThis as { gc?: (options?: { type: string; execution: string; flavor: string }) => void }).gc;
// Measured after V8's last-resort collection where there is one to ask for,
// not a plain gc(): from Node 22 (V8 12+) V8 keeps the pages a collection
// frees in a pool of its own, which only a memory-reducing collection empties
// (its memory reducer, memory pressure, or this), and on Node 24 the pool held
// what 10,000 connections had used for as long as the test ran: RSS +45-58 %
// over ten rounds with the heap flat. A last-resort collection repeats until
// nothing more is freed, so finalizers' garbage is in too. V8 11 (Node 20)
// has no such pool, and gc() with options collects less there: two plain
// collections, the second for what finalizers of the first freed.
const V8_MAJOR = Number(process.versions.v8.split('.')[0]);
const LAST_RESORT = { type: 'major', execution: 'sync', flavor: 'last-resort' };
if (!gc) {
  console.error('leak-server: run with --expose-gc');
  process.exit(2);
}

const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

let accepted = 0;
let open = 0;
let idleWaiters: Array<() => void> = [];
let openCount: () => number;
let sessionCount: () => number = () => 0;
let closeServer: () => Promise<void>;

const checkIdle = (): void => {
  if (openCount() === 0 && sessionCount() === 0 && idleWaiters.length > 0) {
    const ws = idleWaiters;
    idleWaiters = [];
    for (const w of ws) w();
  }
};

if (variant === 'ws') {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('error', (e) => console.error('leak-server: server error', e));
  wss.on('connection', (ws) => {
    accepted++;
    open++;
    ws.on('error', () => {});
    ws.once('close', () => {
      open--;
      // wss.clients drops the socket on its own 'close' listener: check afterwards.
      queueMicrotask(checkIdle);
    });
  });
  openCount = () => Math.max(wss.clients.size, open);
  closeServer = () => wss.close({ timeout: 1000 });
  wss.once('listening', () => out({ port: (wss.address() as { port: number }).port }));
} else if (variant === 'lifeline') {
  const server = new LifelineServer({ port: 0, host: '127.0.0.1', heartbeat: 'off', sessionTtl: 300, tombstones: 16 });
  server.on('connection', (s) => {
    accepted++;
    s.on('error', () => {});
    s.once('close', () => queueMicrotask(checkIdle));
  });
  server.transport.on('connection', (ws) => {
    open++;
    ws.once('close', () => {
      open--;
      queueMicrotask(checkIdle);
    });
  });
  openCount = () => Math.max(server.transport.clients.size, open);
  sessionCount = () => server.sessions.size;
  closeServer = () => server.close({ timeout: 1000 });
  server.once('listening', () => out({ port: (server.address() as { port: number }).port }));
} else {
  console.error(`leak-server: unknown variant ${variant}`);
  process.exit(2);
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'gc') {
    if (V8_MAJOR >= 12) {
      gc(LAST_RESORT);
    } else {
      gc();
      gc();
    }
    const m = process.memoryUsage();
    out({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, open: openCount(), sessions: sessionCount(), accepted });
  } else if (cmd === 'idle') {
    idleWaiters.push(() => out({ idle: true, open: openCount(), sessions: sessionCount() }));
    checkIdle();
  } else if (cmd === 'quit') {
    void closeServer().finally(() => process.exit(0));
  } else {
    out({ error: `unknown command ${cmd}` });
  }
});
rl.on('close', () => process.exit(0));

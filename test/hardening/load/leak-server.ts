// Child process for leak.test.ts: a server whose memory the test measures.
//
//   node --expose-gc --import tsx test/hardening/load/leak-server.ts <ws|lifeline>
//
// Listens on 127.0.0.1:0 and prints one JSON line {"port": N}. Then answers
// line commands on stdin, one JSON line each on stdout:
//   'idle' -> waits (event-driven) until no connection (and, for the lifeline
//             variant, no session) is left, then {"idle": true, open, sessions}
//   'gc'   -> a full GC (fullGc(): a last-resort one from V8 12, two plain ones on V8 11), then {"rss", "heapUsed", "external", "arrayBuffers", open, sessions, accepted}
//   'quit' -> closes the server and exits.
// The transport server answers every message with nothing (the test only opens
// and closes); the lifeline variant uses a short sessionTtl and few tombstones
// so that a connection the test resets (no close frame) leaves no state that
// legitimately outlives the round.

import { createInterface } from 'node:readline';

import { LifelineServer } from '../../../src/server/lifeline-server.js';
import { WebSocketServer } from '../../../src/transport/node/server.js';
// @ts-expect-error: a plain .mjs module without type declarations
import { fullGc } from '../../../bench/lib/full-gc.mjs';

const variant = process.argv[2] ?? 'ws';
const gc = (globalThis as { gc?: () => void }).gc;
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
    fullGc();
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

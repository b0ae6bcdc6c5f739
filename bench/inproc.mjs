// In-process cost of one echoed message on the server, without the kernel:
// plain WebSocket vs the lifeline.v1 session layer (scenario g's two servers),
// so that a change to the JS path shows where the socket benchmarks move by
// 10-30% from run to run on a shared 2-core machine.
//
// How: a real server (dist/) and real handshakes over loopback; then each
// server-side socket's write() is replaced by a byte counter and pre-built
// masked frames (16 messages per read on each of 100 connections, as in
// scenario g) are fed through the sockets' 'data' events: a read on every
// connection per turn, each turn followed by the tick that flushes the
// echoes. Session mode adds what the loadgen sends: data headers with seq and
// a standalone ack every 32 echoes. CPU time (process.cpuUsage) per message,
// alternating plain and session in each round; minimum and median reported.
//
//   node bench/inproc.mjs [--messages 200000] [--rounds 5] [--size 32]
//                         [--window 16] [--conns 100] [--only plain|session]
//                         [--binary] (plain mode: binary frames, as in scenario b)
//                         [--ack-every 32] (session mode: the peers' standalone ack
//                         every N messages; two values apart the per-ack cost and the
//                         per-acknowledged-message cost)
//                         [--prof] [--alloc] [--real-writes] [--build-only]
//
// --prof writes a CPU profile of the measured rounds only (not of building
// the frames), sampled every 50 us, per mode to
// bench/results/profiles/inproc-<mode>.cpuprofile; summarize it with
// `node bench/profile.mjs <file>`. Its timings include the profiler's cost.
//
// --alloc samples the measured rounds' allocations instead (V8's sampling
// heap profiler, one sample per 256 B allocated on average, objects the
// collectors freed included) and prints, per mode, bytes allocated per
// message and the allocation sites (innermost three frames) that took the
// most: what the young generation has to collect, and where it comes from.
//
// Not a substitute for the socket benchmarks (no syscalls, no Readable/stream
// costs that both paths share); a microscope for the part the two differ in.
// --build-only prepares the reads and skips every round: what the setup alone
// costs, which bench/inproc-instructions.mjs subtracts.
// --real-writes keeps the real socket writes (the kernel's loopback send, and
// the clients' reads, in this same process, after each turn): one process on
// one CPU, so still steadier than the socket scenarios, kernel costs included.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer, LifelineServer } from '../dist/server/index.js';
import { maskedFrame } from './lib/frames.mjs';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
    size: { type: 'string', default: '32' },
    binary: { type: 'boolean', default: false },
    window: { type: 'string', default: '16' },
    conns: { type: 'string', default: '100' },
    'ack-every': { type: 'string', default: '32' },
    only: { type: 'string' },
    prof: { type: 'boolean', default: false },
    alloc: { type: 'boolean', default: false },
    'real-writes': { type: 'boolean', default: false },
    'build-only': { type: 'boolean', default: false },
  },
});
const N = Number(values.messages);
const ROUNDS = Number(values.rounds);
const S = Number(values.size);
const W = Number(values.window);
const C = Number(values.conns);
const REAL = values['real-writes'];
/** Bytes the clients received (--real-writes) or the stubbed writes took. */
const received = { bytes: 0 };
const ACK_EVERY = Number(values['ack-every']);
for (const [k, v] of Object.entries({ messages: N, rounds: ROUNDS, size: S, window: W, conns: C, 'ack-every': ACK_EVERY })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
}

const PAYLOAD = Buffer.alloc(S, 0x61);

/** The reads the server gets: W messages each (plus acks in session mode), from seq `first`. */
function buildReads(session, first, n) {
  const reads = [];
  for (let i = 0; i < n; i += W) {
    const parts = [];
    for (let k = i; k < Math.min(n, i + W); k++) {
      const seq = first + k;
      parts.push(session ? maskedFrame(Buffer.concat([Buffer.from(`d${seq}:`), PAYLOAD])) : maskedFrame(PAYLOAD, values.binary ? 0x2 : 0x1));
      if (session && seq % ACK_EVERY === 0) parts.push(maskedFrame(Buffer.from(`{"t":"ack","seq":${seq}}`)));
    }
    reads.push(Buffer.concat(parts));
  }
  return reads;
}

/** Raw client: handshake (+ hello for session), resolves once the server has the connection. */
async function connect(port, session) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((res, rej) => sock.once('connect', res).once('error', rej));
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (session ? 'Sec-WebSocket-Protocol: lifeline.v1\r\n' : '') +
      '\r\n',
  );
  if (session) sock.write(maskedFrame(Buffer.from('{"t":"hello","v":1}')));
  sock.on('data', (d) => {
    received.bytes += d.length; // welcome, echoes: counted, not looked at
  });
  return sock;
}

function nextTick() {
  return new Promise((r) => process.nextTick(r));
}

async function setup(session) {
  const peers = [];
  let allIn;
  const got = new Promise((r) => (allIn = r));
  const opts = { port: 0, host: '127.0.0.1', deflate: false };
  const server = session ? new LifelineServer({ ...opts, heartbeat: 'normal' }) : new WebSocketServer(opts);
  server.on('connection', (peer) => {
    // The bench servers' echo, as in bench/servers/lifeline{,-session}-echo.mjs.
    if (session) {
      peer.on('message', (data, isBinary) => {
        const st = peer.state;
        if (st === 'open' || st === 'detached') peer.send(data, { binary: isBinary });
      });
    } else {
      peer.on('message', (data, isBinary) => {
        if (peer.readyState === 1) peer.send(data, { binary: isBinary });
      });
    }
    peer.on('error', (e) => console.error(`server-side error: ${e.message}`));
    peers.push(peer);
    if (peers.length === C) allIn();
  });
  await new Promise((r) => server.on('listening', r));
  const clients = [];
  for (let i = 0; i < C; i++) clients.push(await connect(server.address().port, session));
  await got;
  if (session) await new Promise((r) => setTimeout(r, 100)); // the welcomes go out
  const count = function (b) {
    received.bytes += b.length;
    return true;
  };
  const socks = peers.map((peer) => {
    const sock = (session ? peer.socket : peer).socket;
    if (!REAL) sock.write = count;
    return sock;
  });
  return { server, clients, peers, socks, nextSeq: 1 };
}

/**
 * The reads of one round, built before any round is measured (the parser
 * unmasks them in place: each is used once): N / C messages per connection,
 * in turns of one read per connection.
 */
function prepare(ctx, session) {
  const perConn = Math.floor(N / C);
  const reads = buildReads(session, ctx.nextSeq, perConn);
  ctx.nextSeq += perConn;
  // Every connection gets the same seqs (each session counts its own): copies, since they are unmasked in place.
  return ctx.socks.map((_, c) => (c === 0 ? reads : reads.map((b) => Buffer.from(b))));
}

async function round(ctx, reads) {
  if (values['build-only']) return { nsPerMsg: 0, out: Infinity, msgs: 0 };
  const before = received.bytes;
  const turns = reads[0].length;
  const t0 = process.cpuUsage();
  for (let i = 0; i < turns; i++) {
    // One event-loop turn: a read on every connection, then the tick that flushes the echoes.
    for (let c = 0; c < C; c++) ctx.socks[c].emit('data', reads[c][i]);
    await nextTick();
    // Real writes: a whole loop turn, so the clients read what was written (kernel buffers stay small).
    if (REAL) await new Promise((r) => setImmediate(r));
  }
  // Real writes: the last echoes reach the clients (idle time, no CPU).
  if (REAL) await new Promise((r) => setTimeout(r, 50));
  const t = process.cpuUsage(t0);
  const msgs = Math.floor(N / C) * C;
  return { nsPerMsg: ((t.user + t.system) * 1000) / msgs, out: received.bytes - before, msgs };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** --alloc: bytes sampled per message, and the allocation sites that took the most (innermost frame last). */
function printAllocations(mode, profile, msgs) {
  const stacks = new Map();
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = [...stack, `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`];
    stacks.set(node.id, here);
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, []);
  const bySite = new Map();
  let total = 0;
  for (const s of profile.samples) {
    const site = stacks.get(s.nodeId).slice(-3).join(' > ');
    bySite.set(site, (bySite.get(site) ?? 0) + s.size);
    total += s.size;
  }
  console.log(`  ${mode}: ${(total / msgs).toFixed(1)} B allocated per message (sampled), by site:`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`    ${(bytes / msgs).toFixed(1).padStart(6)} B  ${site}`);
}

const modes = values.only ? [values.only] : ['plain', 'session'];
if (!modes.every((m) => m === 'plain' || m === 'session')) throw new Error(`--only must be plain or session, got ${values.only}`);
const ctxs = {};
const planned = {};
for (const m of modes) {
  ctxs[m] = await setup(m === 'session');
  planned[m] = Array.from({ length: ROUNDS + 1 }, () => prepare(ctxs[m], m === 'session'));
}
// Warm-up: JIT both paths before measuring.
for (const m of modes) await round(ctxs[m], planned[m].shift());
if (values.prof && values.alloc) throw new Error('--prof and --alloc: one profiler at a time');
const inspector = values.prof || values.alloc ? new Session() : null;
if (values.prof) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  // A round takes a fraction of a second: sample every 50 us, not every 1 ms.
  await inspector.post('Profiler.setSamplingInterval', { interval: 50 });
} else if (values.alloc) {
  inspector.connect();
  await inspector.post('HeapProfiler.enable');
}
const results = Object.fromEntries(modes.map((m) => [m, []]));
/** Runs `rounds` measured rounds of mode m (throws when an echo is missing); returns the messages echoed. */
async function measure(m, rounds) {
  let msgs = 0;
  for (let r = 0; r < rounds; r++) {
    const res = await round(ctxs[m], planned[m].shift());
    if (res.out < res.msgs * S) throw new Error(`${m}: only ${res.out} bytes echoed for ${res.msgs} messages of ${S} B`);
    results[m].push(res.nsPerMsg);
    msgs += res.msgs;
  }
  return msgs;
}
if (values.alloc) {
  for (const m of modes) {
    await inspector.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const msgs = await measure(m, ROUNDS);
    const { profile } = await inspector.post('HeapProfiler.stopSampling');
    printAllocations(m, profile, msgs);
  }
} else if (inspector) {
  // One profile per mode over all its rounds (run one mode after the other:
  // the timings are the profiler's, for orientation only).
  fs.mkdirSync('bench/results/profiles', { recursive: true });
  for (const m of modes) {
    await inspector.post('Profiler.start');
    await measure(m, ROUNDS);
    const { profile } = await inspector.post('Profiler.stop');
    const file = `bench/results/profiles/inproc-${m}.cpuprofile`;
    fs.writeFileSync(file, JSON.stringify(profile));
    console.log(`  profile of ${m}: ${file}`);
  }
} else {
  // Modes alternate within each round, so a slow spell of the machine hits both.
  for (let r = 0; r < ROUNDS; r++) for (const m of modes) await measure(m, 1);
}
// The minimum is the round least disturbed by the machine (on a shared VM
// rounds vary by 2x); the median is shown beside it.
const min = (a) => Math.min(...a);
console.log(`in-process echo, ${N} messages x ${S} B over ${C} connections, ${W} per read, ${ROUNDS} rounds (CPU ns per message):`);
for (const m of modes) console.log(`  ${m.padEnd(8)} min ${min(results[m]).toFixed(0).padStart(5)}  median ${median(results[m]).toFixed(0).padStart(5)}   [${results[m].map((x) => x.toFixed(0)).join(' ')}]`);
if (modes.length === 2) {
  const d = (f) => (f(results.session) - f(results.plain)).toFixed(0);
  const r = (f) => (f(results.plain) / f(results.session)).toFixed(2);
  console.log(`  session - plain: ${d(min)} ns (min), ${d(median)} ns (median); plain/session ${r(min)} (min), ${r(median)} (median)`);
}
for (const m of modes) {
  for (const c of ctxs[m].clients) c.destroy();
  ctxs[m].server.close();
}
process.exit(0);

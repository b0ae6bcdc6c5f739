#!/usr/bin/env node
// The idle-connection load (scenarios d and f), and the receivers of the
// broadcast scenario (e): opens N connections to a server and keeps them open,
// answering only the server's heartbeats (and, with --broadcasts, checking
// every broadcast message that arrives).
//
// - raw TCP sockets, the opening handshake written and checked by hand;
// - --mode raw: TCP only (for the plain `net` reference server);
//   --mode ws: a plain WebSocket peer (no subprotocol offered): every
//   protocol ping is answered at once with a masked pong carrying the same
//   payload (RFC 6455 5.5.3);
//   --mode lifeline: offers `Sec-WebSocket-Protocol: lifeline.v1`, checks the
//   server chose it, sends {"t":"hello","v":1}, waits for the welcome, and
//   answers every app ping {"t":"ping","ts":N} with {"t":"pong","ts":N}
//   (masked text frames); protocol pings get pongs as in --mode ws;
//   --mode eio: a socket.io client over Engine.IO v4, WebSocket transport
//   only: GET /socket.io/?EIO=4&transport=websocket, waits for the open
//   packet `0{...}`, joins the main namespace with `40`, waits for
//   `40{"sid":..}`, and answers every Engine.IO ping `2` with a pong `3`
//   (counted as app pings/pongs);
// - at most --concurrency handshakes in flight (the listen backlog is 511);
// - source addresses: by default the kernel picks (127.0.0.1); with
//   --local-addresses a,b,... connections are spread round-robin over them
//   (one address has about 28k ephemeral ports per server port; 127.0.0.2-9
//   are all loopback on Linux).
//
// Anything else from the server (a close frame, data, a dropped connection)
// counts as an error: idle connections with working heartbeats must stay open.
//
// --broadcasts B (scenario e, modes ws and eio): data frames are expected,
// namely broadcasts 1..B in order, each exactly once per connection, each
// with the content of broadcastMessage(seq) (servers/broadcast-common.mjs;
// eio: the socket.io event packet `42["m","<message>"]`), as text (binary
// with --binary). When every connection of this process has broadcast k, it
// prints `done k`; at the first wrong, missing or duplicated message it prints
// `error <json>` (once) so the orchestrator can stop at once.
//
//   node bench/idle-loadgen.mjs --port P [--host 127.0.0.1] [--connections 10000]
//        [--mode ws|lifeline|eio|raw] [--local-addresses 127.0.0.2,127.0.0.3]
//        [--concurrency 256] [--connect-timeout-ms 20000] [--ignore-pings]
//        [--broadcasts B [--binary]]
//
// --ignore-pings answers nothing (a self-check: the server should then declare
// the connections dead, and this process report the closes as errors).
//
// Prints `ready <json>` once every connection is open (lifeline: welcomed;
// eio: namespace joined), or `result <json>` with ok:false if that failed.
// Then answers `stats ID` on stdin with `stats ID <json>` (counters). Exits on
// SIGTERM or when stdin ends.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { broadcastMessage, EIO_EVENT } from './servers/broadcast-common.mjs';
import { acceptFor, maskedFrame } from './lib/frames.mjs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const src = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const head = src.slice(src.indexOf('\n') + 1).split('\n\n')[0];
  console.log(head.replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    path: { type: 'string' },
    connections: { type: 'string', default: '10000' },
    mode: { type: 'string', default: 'ws' },
    'local-addresses': { type: 'string', default: '' },
    concurrency: { type: 'string', default: '256' },
    'connect-timeout-ms': { type: 'string', default: '20000' },
    'ignore-pings': { type: 'boolean', default: false },
    broadcasts: { type: 'string', default: '0' },
    binary: { type: 'boolean', default: false },
  },
  strict: true,
});

function die(msg) {
  process.stderr.write(`idle-loadgen: ${msg}\n`);
  process.exit(2);
}

function intArg(name, min) {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < min) die(`--${name} must be an integer >= ${min}, got ${JSON.stringify(values[name])}`);
  return n;
}

if (values.port === undefined) die('--port is required');
const HOST = values.host;
const PORT = intArg('port', 1);
const N = intArg('connections', 1);
const CONCURRENCY = intArg('concurrency', 1);
const CONNECT_TIMEOUT_MS = intArg('connect-timeout-ms', 100);
const MODE = values.mode;
const ANSWER = !values['ignore-pings'];
if (!['raw', 'ws', 'lifeline', 'eio'].includes(MODE)) die(`--mode must be raw, ws, lifeline or eio, got ${JSON.stringify(MODE)}`);
// Engine.IO v4 over the WebSocket transport only (no long-polling first).
const PATH = values.path ?? (MODE === 'eio' ? '/socket.io/?EIO=4&transport=websocket' : '/');
const BROADCASTS = intArg('broadcasts', 0);
const BINARY = values.binary;
if (BROADCASTS > 0 && MODE !== 'ws' && MODE !== 'eio') die('--broadcasts needs --mode ws or eio');
if (BINARY && MODE === 'eio') die('--binary: the eio broadcast is a text event packet');
const LOCAL = values['local-addresses'].split(',').map((s) => s.trim()).filter(Boolean);
for (const a of LOCAL) if (net.isIP(a) === 0) die(`--local-addresses: ${JSON.stringify(a)} is not an IP address`);

// ------------------------------------------------------------ frames



const HELLO = Buffer.from(JSON.stringify({ t: 'hello', v: 1 }));
// Engine.IO v4 / Socket.IO v5 packets: message(4) + CONNECT(0) to join "/", and a pong(3).
const EIO_CONNECT = Buffer.from('40');
const EIO_PONG = Buffer.from('3');

// ------------------------------------------------------------ counters

const errors = [];
function error(msg) {
  if (errors.length < 20) errors.push(msg);
}

const counters = {
  pingsReceived: 0, // protocol pings (opcode 0x9)
  pongsSent: 0,
  appPingsReceived: 0, // lifeline.v1 {"t":"ping"}, Engine.IO ping `2`
  appPongsSent: 0,
  eioOpens: 0, // Engine.IO open packets `0{...}`
  broadcastsReceived: 0, // --broadcasts: checked broadcast messages, all connections
  broadcastsDone: 0, // broadcasts every connection of this process has
  welcomes: 0,
  closeFrames: 0, // close frames from the server (none expected)
  unexpectedFrames: 0,
  closed: 0, // sockets closed while the run was on (none expected)
  bytesIn: 0,
};
let shuttingDown = false;

// --broadcasts: per broadcast, how many connections have it; the expected
// payloads, built once per broadcast and kept (B x 32 bytes).
const received = new Uint32Array(BROADCASTS + 1);
const expectedPayloads = new Array(BROADCASTS + 1);
function expected(seq) {
  let b = expectedPayloads[seq];
  if (b === undefined) {
    const m = broadcastMessage(seq);
    b = MODE === 'eio' ? Buffer.from(EIO_EVENT(m.toString('latin1'))) : m;
    expectedPayloads[seq] = b;
  }
  return b;
}
let broadcastErrorSent = false;
/** Tells the orchestrator at once (it waits for `done k`, which now can never come). */
function broadcastError() {
  if (broadcastErrorSent) return;
  broadcastErrorSent = true;
  process.stdout.write(`error ${JSON.stringify({ errors: [...errors] })}\n`);
}

// ------------------------------------------------------------ connections

class Conn {
  constructor(id, localAddress) {
    this.id = id;
    this.localAddress = localAddress;
    this.sock = null;
    this.spill = null;
    this.open = false;
    this.failed = false;
    this.onOpen = null;
    this.rejectOpen = null;
    this.eioOpened = false;
    // --broadcasts: the sequence number of the next broadcast this connection expects.
    this.next = 1;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port: PORT, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
      this.sock = sock;
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connection ${this.id}: not open within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      const onEarlyError = (err) => {
        clearTimeout(timer);
        this.rejectOpen = null;
        reject(new Error(`connection ${this.id}${this.localAddress ? ` from ${this.localAddress}` : ''}: ${err.message}`));
      };
      // A failure before the connection counts as open (say, a close frame instead of the welcome).
      this.rejectOpen = (msg) => onEarlyError(new Error(msg));
      sock.on('error', onEarlyError);
      const opened = () => {
        clearTimeout(timer);
        this.rejectOpen = null;
        sock.off('error', onEarlyError);
        sock.on('error', (err) => this.fail(`socket error: ${err.message}`));
        this.open = true;
        resolve();
      };
      sock.on('close', () => this.onClose());
      if (MODE === 'raw') {
        sock.once('connect', opened);
        // Anything the reference server sends is unexpected, but count it.
        sock.on('data', (c) => {
          counters.bytesIn += c.length;
        });
        return;
      }
      const key = crypto.randomBytes(16).toString('base64');
      const expectAccept = acceptFor(key);
      let head = Buffer.alloc(0);
      const onHead = (chunk) => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > 16384) onEarlyError(new Error('response head too large'));
          return;
        }
        sock.off('data', onHead);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const header = (name) => {
          const l = lines.find((x) => x.toLowerCase().startsWith(`${name}:`));
          return l === undefined ? undefined : l.slice(l.indexOf(':') + 1).trim();
        };
        let problem = null;
        if (!/^HTTP\/1\.1 101\b/.test(lines[0])) problem = `expected 101, got ${JSON.stringify(lines[0])}`;
        else if (header('sec-websocket-accept') !== expectAccept) problem = `bad Sec-WebSocket-Accept (${header('sec-websocket-accept')})`;
        else if (MODE === 'lifeline' && header('sec-websocket-protocol') !== 'lifeline.v1') problem = `server chose subprotocol ${JSON.stringify(header('sec-websocket-protocol'))}, not lifeline.v1`;
        else if (MODE !== 'lifeline' && header('sec-websocket-protocol') !== undefined) problem = `server chose subprotocol ${header('sec-websocket-protocol')} though none was offered`;
        if (problem) {
          sock.destroy();
          onEarlyError(new Error(problem));
          return;
        }
        sock.on('data', (c) => this.onData(c));
        if (MODE === 'lifeline') {
          this.onOpen = opened;
          sock.write(maskedFrame(HELLO));
        } else if (MODE === 'eio') {
          // Open once the namespace is joined (`40{"sid":..}`): that is when socket.io emits 'connection'.
          this.onOpen = opened;
        }
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
        if (MODE === 'ws') opened();
      };
      sock.on('data', onHead);
      sock.write(
        `GET ${PATH} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (MODE === 'lifeline' ? 'Sec-WebSocket-Protocol: lifeline.v1\r\n' : '') +
          '\r\n',
      );
    });
  }

  onData(chunk) {
    counters.bytesIn += chunk.length;
    if (this.failed) return;
    let buf = chunk;
    if (this.spill !== null) {
      buf = Buffer.concat([this.spill, chunk]);
      this.spill = null;
    }
    const end = buf.length;
    let off = 0;
    while (end - off >= 2) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (end - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (end - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        hdr = 10;
      }
      if (b1 & 0x80) return this.fail('server sent a masked frame (RFC 6455 5.1 forbids it)');
      if (end - off < hdr + len) break;
      const payload = buf.subarray(off + hdr, off + hdr + len);
      off += hdr + len;
      if ((b0 & 0x80) === 0) return this.fail(`fragmented frame (first byte 0x${b0.toString(16)}); not expected on an idle connection`);
      const opcode = b0 & 0x0f;
      if (opcode === 0x9) {
        counters.pingsReceived++;
        if (ANSWER) {
          this.sock.write(maskedFrame(payload, 0xa));
          counters.pongsSent++;
        }
      } else if (opcode === 0x1 && MODE === 'lifeline') {
        this.onControl(payload);
        if (this.failed) return;
      } else if (opcode === 0x1 && MODE === 'eio') {
        this.onEio(payload);
        if (this.failed) return;
      } else if ((opcode === 0x1 || opcode === 0x2) && BROADCASTS > 0 && MODE === 'ws') {
        this.onBroadcast(opcode, payload);
        if (this.failed) return;
      } else if (opcode === 0x8) {
        counters.closeFrames++;
        const code = len >= 2 ? payload.readUInt16BE(0) : 1005;
        return this.fail(`server closed the connection with ${code} ${payload.subarray(2).toString()}`);
      } else {
        counters.unexpectedFrames++;
        return this.fail(`unexpected frame, opcode 0x${opcode.toString(16)}, ${len} bytes`);
      }
    }
    if (off < end) this.spill = Buffer.from(buf.subarray(off)); // a copy: don't pin the whole chunk
  }

  /** A lifeline.v1 message from the server: welcome, app ping; anything else is unexpected. */
  onControl(payload) {
    let msg;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch {
      counters.unexpectedFrames++;
      return this.fail(`text frame that is not a lifeline.v1 control message: ${JSON.stringify(payload.toString('utf8').slice(0, 80))}`);
    }
    if (msg.t === 'ping' && typeof msg.ts === 'number') {
      counters.appPingsReceived++;
      if (ANSWER) {
        this.sock.write(maskedFrame(Buffer.from(JSON.stringify({ t: 'pong', ts: msg.ts }))));
        counters.appPongsSent++;
      }
    } else if (msg.t === 'welcome') {
      counters.welcomes++;
      const cb = this.onOpen;
      this.onOpen = null;
      if (cb) cb();
    } else {
      counters.unexpectedFrames++;
      this.fail(`unexpected lifeline.v1 message ${JSON.stringify(msg).slice(0, 120)}`);
    }
  }

  /** An Engine.IO packet (text frame): open, namespace joined, ping, or (with --broadcasts) an event. */
  onEio(payload) {
    const type = payload[0];
    if (type === 0x32 && payload.length === 1) {
      // `2`: ping; the server closes the connection after pingInterval + pingTimeout without a pong.
      counters.appPingsReceived++;
      if (ANSWER) {
        this.sock.write(maskedFrame(EIO_PONG));
        counters.appPongsSent++;
      }
    } else if (type === 0x30 && this.onOpen !== null && !this.eioOpened) {
      // `0{"sid":..,"pingInterval":..}`: the Engine.IO session is open; join the main namespace.
      this.eioOpened = true;
      counters.eioOpens++;
      this.sock.write(maskedFrame(EIO_CONNECT));
    } else if (type === 0x34 && payload[1] === 0x30 && this.onOpen !== null && this.eioOpened) {
      // `40{"sid":..}`: joined.
      counters.welcomes++;
      const cb = this.onOpen;
      this.onOpen = null;
      cb();
    } else if (type === 0x34 && payload[1] === 0x32 && BROADCASTS > 0) {
      this.onBroadcast(0x1, payload);
    } else {
      counters.unexpectedFrames++;
      this.fail(`unexpected Engine.IO packet ${JSON.stringify(payload.toString('utf8').slice(0, 80))}`);
    }
  }

  /**
   * A broadcast message: must be the next one (1, 2, 3.. per connection, each
   * exactly once) with exactly the expected bytes and opcode.
   */
  onBroadcast(opcode, payload) {
    const seq = this.next;
    const want = seq <= BROADCASTS ? expected(seq) : null;
    const wantOp = BINARY ? 0x2 : 0x1;
    if (want === null || opcode !== wantOp || !payload.equals(want)) {
      counters.unexpectedFrames++;
      const got = payload.toString('latin1').slice(0, 80);
      const what = want === null ? `more than ${BROADCASTS} broadcasts` : opcode !== wantOp ? `opcode 0x${opcode.toString(16)} instead of 0x${wantOp.toString(16)}` : `wrong content`;
      this.fail(`broadcast ${seq}: ${what}: got ${JSON.stringify(got)} (${payload.length} bytes), expected ${want ? JSON.stringify(want.toString('latin1')) : 'nothing'}`);
      return;
    }
    this.next = seq + 1;
    counters.broadcastsReceived++;
    if (++received[seq] === N) {
      counters.broadcastsDone = seq;
      process.stdout.write(`done ${seq}\n`);
    }
  }

  fail(msg) {
    if (this.failed) return;
    this.failed = true;
    error(`connection ${this.id}: ${msg}`);
    this.sock.destroy();
    if (this.rejectOpen) this.rejectOpen(msg);
    if (BROADCASTS > 0 && this.open) broadcastError();
  }

  onClose() {
    if (shuttingDown) return;
    if (this.open) {
      counters.closed++;
      if (!this.failed) error(`connection ${this.id}: closed by the server (no close frame)`);
      if (BROADCASTS > 0) broadcastError();
    }
    this.open = false;
  }
}

function stats() {
  let open = 0;
  let minBroadcasts = Infinity;
  let maxBroadcasts = 0;
  for (const c of conns) {
    if (c.open && !c.failed) open++;
    minBroadcasts = Math.min(minBroadcasts, c.next - 1);
    maxBroadcasts = Math.max(maxBroadcasts, c.next - 1);
  }
  // Broadcasts per connection, fewest and most (--broadcasts: both must end at B).
  const bc = BROADCASTS > 0 ? { minBroadcasts, maxBroadcasts } : {};
  return { connections: N, open, ...counters, ...bc, mem: process.memoryUsage().rss, errors: [...errors] };
}

// ------------------------------------------------------------ main

const conns = Array.from({ length: N }, (_, i) => new Conn(i, LOCAL.length ? LOCAL[i % LOCAL.length] : null));

async function openAll() {
  let next = 0;
  let firstError = null;
  const worker = async () => {
    while (next < N && firstError === null) {
      const c = conns[next++];
      try {
        await c.connect();
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, N) }, worker));
  if (firstError) throw firstError;
}

async function main() {
  const t0 = process.hrtime.bigint();
  try {
    await openAll();
  } catch (err) {
    process.stdout.write(`result ${JSON.stringify({ ok: false, ...stats(), errors: [String(err.message), ...errors] })}\n`);
    process.exit(1);
  }
  const connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`ready ${JSON.stringify({ connectMs, localAddresses: LOCAL, ...stats() })}\n`);

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, id] = line.trim().split(/\s+/);
    if (cmd === 'stats') process.stdout.write(`stats ${id ?? '-'} ${JSON.stringify(stats())}\n`);
  });
  rl.on('close', () => {
    shuttingDown = true;
    process.exit(0);
  });
}

const stop = () => {
  shuttingDown = true;
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((err) => {
  process.stderr.write(`idle-loadgen: ${err.stack ?? err}\n`);
  process.exit(2);
});

#!/usr/bin/env node
// The bench load generator: a process of its own, so it never competes with
// the server's event loop, and as cheap per message as we can make it:
//
// - raw TCP sockets; the opening handshake is written and checked by hand;
// - every message it sends is built before the run (masked frames, as RFC
//   6455 5.3 requires of clients), so sending is one write of a slice of one
//   buffer;
// - a window of W messages in flight per connection: each echo that comes
//   back lets one more message go, and all sends a chunk of echoes allows go
//   out in one write;
// - echoes are parsed incrementally; every echo's framing and length is
//   checked, and its content against what was sent (every --verify-every'th
//   message, default all of them).
//
// F = max(W, 8) distinct payloads are used in turn, so a reordered, repeated
// or lost echo shows up as a content mismatch, not only as a count.
//
// Protocols (--protocol):
//   ws        plain WebSocket (default); text frames, or binary with --binary
//   lifeline  lifeline.v1 (docs/PROTOCOL.md): it offers the subprotocol, sends
//             {"t":"hello","v":1} and waits for the welcome, then sends every
//             payload as `d<SEQ>:<payload>` (seq from 1 per connection). Frame seq
//             is the same on every connection, so the frames are built once,
//             back to back, as far as the busiest connection has got (see
//             llSlice): a window is one slice, as in plain mode. Echoes must come back as
//             `d<SEQ>[,<ACK>]:<payload>` with the server's seq in order and the
//             payload of the matching message; every 32 echoes it sends a
//             standalone {"t":"ack","seq":N} (in the same write as the next
//             messages) so the server's replay buffer drains, and it answers
//             app pings with pongs.
//   socketio  Socket.IO v5 over Engine.IO v4, WebSocket transport only
//             (GET /socket.io/?EIO=4&transport=websocket): waits for the open
//             packet `0{...}`, sends `40`, waits for `40{"sid":...}`; each
//             message is the event `42["m","<payload>"]` (text frame) and must
//             come back byte for byte; with --binary it is socket.io's binary
//             event: a text frame `451-["m",{"_placeholder":true,"num":0}]`
//             followed by a binary frame with the payload, and the echo must
//             be the same pair. Engine.IO pings (`2`) are answered with `3`.
//   netlen    no WebSocket: raw TCP, each message a 4-byte big-endian length
//             and the payload (servers/net-echo.mjs)
//
// With --latency it records every round trip of the measured run (time from
// the write that sent a message to the read that brought its echo back,
// performance.now()) and reports percentiles in microseconds; meant for
// window 1, where that is the plain request/response latency.
//
//   node bench/loadgen.mjs --port P [--host 127.0.0.1] [--connections 100]
//        [--size 32] [--window 16] [--messages 1000000] [--warmup 50000]
//        [--verify-every 1] [--stall-ms 10000] [--control]
//        [--protocol ws|lifeline|socketio|netlen] [--binary] [--latency]
//
// With --control it prints `ready` once every connection is open and the
// warm-up is done, and starts the measured run when a line `go` arrives on
// stdin (the orchestrator reads the server's CPU counters in between).
// The last stdout line is `result <json>`; exit status 0 only when every
// message came back intact.

import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { acceptFor, maskedFrame } from './lib/frames.mjs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  // The header comment is the manual.
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
    connections: { type: 'string', default: '100' },
    size: { type: 'string', default: '32' },
    window: { type: 'string', default: '16' },
    messages: { type: 'string', default: '1000000' },
    warmup: { type: 'string', default: '50000' },
    'verify-every': { type: 'string', default: '1' },
    'stall-ms': { type: 'string', default: '10000' },
    'connect-timeout-ms': { type: 'string', default: '10000' },
    control: { type: 'boolean', default: false },
    protocol: { type: 'string', default: 'ws' },
    binary: { type: 'boolean', default: false },
    latency: { type: 'boolean', default: false },
  },
  strict: true,
});

function intArg(name, min) {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < min) die(`--${name} must be an integer >= ${min}, got ${JSON.stringify(values[name])}`);
  return n;
}

function die(msg) {
  process.stderr.write(`loadgen: ${msg}\n`);
  process.exit(2);
}

if (values.port === undefined) die('--port is required');
const HOST = values.host;
const PORT = intArg('port', 1);
const N = intArg('connections', 1);
const S = intArg('size', 0);
const W = intArg('window', 1);
const M = intArg('messages', 1);
const WARMUP = intArg('warmup', 0);
const VERIFY_EVERY = intArg('verify-every', 0); // 0 = lengths and counts only
const STALL_MS = intArg('stall-ms', 100);
const CONNECT_TIMEOUT_MS = intArg('connect-timeout-ms', 100);
if (!['ws', 'lifeline', 'socketio', 'netlen'].includes(values.protocol)) die(`--protocol must be ws, lifeline, socketio or netlen, got ${JSON.stringify(values.protocol)}`);
/** lifeline.v1 mode (session layer: seq, acks, app pings). */
const LL = values.protocol === 'lifeline';
/** Socket.IO v5 over Engine.IO v4. */
const SIO = values.protocol === 'socketio';
/** Raw TCP, 4-byte length prefix: no WebSocket at all. */
const NETLEN = values.protocol === 'netlen';
/** Binary messages (opcode 2; socket.io binary events); netlen does not care. */
const BINARY = values.binary;
if (BINARY && LL) die('--binary is not supported with --protocol lifeline');
const LATENCY = values.latency;
const PATH = values.path ?? (SIO ? '/socket.io/?EIO=4&transport=websocket' : '/');
/** Connections that only count as open after an application-level handshake. */
const NEEDS_WELCOME = LL || SIO;
const SUBPROTOCOL = 'lifeline.v1';
/** Send a standalone ack after this many unacknowledged echoes (the protocol's ackEvery). */
const ACK_EVERY = 32;

// ------------------------------------------------------------ frames

const F = Math.max(W, 8);

/** Payload i: ASCII text of S bytes, different for each i < F. */
function payload(i) {
  const p = Buffer.alloc(S);
  const tag = `#${i}:`;
  for (let j = 0; j < S; j++) p[j] = j < tag.length ? tag.charCodeAt(j) : 0x61 + ((i * 7 + j) % 26);
  return p;
}

const PAYLOADS = Array.from({ length: F }, (_, i) => payload(i));

// socket.io: the event for payload i, as text (`42["m","<payload>"]`; the
// payloads are plain ASCII letters, digits, '#' and ':', so JSON needs no
// escapes and every event has the same length), and the header of a binary
// event with one attachment. The server's echo is byte for byte the same.
const SIO_TEXT = PAYLOADS.map((p) => Buffer.from(`42${JSON.stringify(['m', p.toString('latin1')])}`, 'latin1'));
const SIO_BIN_HEADER = Buffer.from('451-["m",{"_placeholder":true,"num":0}]');
const SIO_PONG = maskedFrame(Buffer.from('3'));
const SIO_CONNECT = maskedFrame(Buffer.from('40'));

/** What the loadgen writes for message i, whole: one or two frames, or a length-prefixed record. */
function unit(i) {
  if (NETLEN) {
    const u = Buffer.alloc(4 + S);
    u.writeUInt32BE(S, 0);
    PAYLOADS[i].copy(u, 4);
    return u;
  }
  if (SIO) return BINARY ? Buffer.concat([maskedFrame(SIO_BIN_HEADER), maskedFrame(PAYLOADS[i], 0x2)]) : maskedFrame(SIO_TEXT[i]);
  return maskedFrame(PAYLOADS[i], BINARY ? 0x2 : 0x1);
}

const FRAMES = PAYLOADS.map((_, i) => unit(i));
const FRAME_LEN = FRAMES[0].length;
// Frames 0..F-1 twice over: any run of up to F consecutive messages starting
// at any index is one contiguous slice.
const BURST = Buffer.concat([...FRAMES, ...FRAMES]);
/** First byte of every data frame the server must send back: FIN + text or binary. */
const DATA_B0 = BINARY ? 0x82 : 0x81;

// lifeline.v1: one mask key for the data frames of this process (RFC 6455
// wants it unpredictable to intermediaries, not different per frame; the
// server unmasks the same either way). The payload follows a header of
// variable length, so each payload is pre-masked for all four mask phases.
const LL_KEY = crypto.randomBytes(4);
const LL_MASKED = PAYLOADS.map((p) =>
  [0, 1, 2, 3].map((ph) => {
    const m = Buffer.allocUnsafe(p.length);
    for (let j = 0; j < p.length; j++) m[j] = p[j] ^ LL_KEY[(ph + j) & 3];
    return m;
  }),
);
const DIGITS = (n) => (n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : String(n).length);

/**
 * Writes the decimal digits of `n` into a masked payload that starts at
 * `pay`: its bytes first..last, the last digit at last, each masked with
 * LL_KEY at its payload position.
 */
function putMaskedDigits(buf, pay, first, last, n) {
  for (let k = last; k >= first; k--) {
    buf[pay + k] = (0x30 + (n % 10)) ^ LL_KEY[k & 3];
    n = Math.floor(n / 10);
  }
}

/** Size of the frame carrying `d<seq>:` + an S-byte payload. */
function llFrameLen(seq) {
  const len = 2 + DIGITS(seq) + S;
  return 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4 + len;
}

/** Writes the masked frame `d<seq>:` + payload i % F at `at` of `buf`; returns the offset after it. */
function writeLlFrame(buf, at, seq, i) {
  const h = 2 + DIGITS(seq);
  const len = h + S;
  buf[at++] = 0x81;
  if (len < 126) buf[at++] = 0x80 | len;
  else if (len < 65536) {
    buf[at++] = 0x80 | 126;
    buf.writeUInt16BE(len, at);
    at += 2;
  } else {
    buf[at++] = 0x80 | 127;
    buf.writeBigUInt64BE(BigInt(len), at);
    at += 8;
  }
  buf[at] = LL_KEY[0];
  buf[at + 1] = LL_KEY[1];
  buf[at + 2] = LL_KEY[2];
  buf[at + 3] = LL_KEY[3];
  at += 4;
  buf[at] = 0x64 ^ LL_KEY[0]; // 'd'
  putMaskedDigits(buf, at, 1, h - 2, seq);
  buf[at + h - 1] = 0x3a ^ LL_KEY[(h - 1) & 3]; // ':'
  LL_MASKED[i % F][h & 3].copy(buf, at + h);
  return at + len;
}

// The frames for seq 1, 2, 3... are the same on every connection (one key,
// payload (seq - 1) % F), so they are built once, back to back in one
// buffer, as far as the connections have got: a window of messages is then
// one slice of it, as in plain mode. Building them per write cost the
// loadgen about 30% more CPU than plain mode (6.6 against 5.0 s for
// 3.3 million round trips), and a busier loadgen on the other CPU made the
// server's every message dearer as well (scenario g compares the two).
// Memory: about S + 15 bytes per seq of the busiest connection (47 MB for
// --connections 1 --messages 1000000 at 32 B).
let llFrames = Buffer.alloc(0);
/** llStart[seq] is where frame seq starts in llFrames; llStart[llBuilt + 1] where the last built one ends. */
const llStart = [0, 0];
let llBuilt = 0;

/** The frames of seq first..last (last >= first), as one slice. */
function llSlice(first, last) {
  if (last > llBuilt) {
    const upTo = Math.max(last, llBuilt * 2, 1024);
    let size = llStart[llBuilt + 1];
    for (let q = llBuilt + 1; q <= upTo; q++) size += llFrameLen(q);
    const next = Buffer.allocUnsafeSlow(size);
    llFrames.copy(next, 0);
    let at = llStart[llBuilt + 1];
    for (let q = llBuilt + 1; q <= upTo; q++) {
      at = writeLlFrame(next, at, q, q - 1);
      llStart[q + 1] = at;
    }
    llFrames = next;
    llBuilt = upTo;
  }
  return llFrames.subarray(llStart[first], llStart[last + 1]);
}

const ACK_HEAD = Buffer.from('{"t":"ack","seq":');

/**
 * The standalone ack {"t":"ack","seq":N}, masked with LL_KEY, written by
 * hand: the same bytes controlFrame() would send but for the key, at a
 * fraction of its cost (no JSON, one buffer), for one frame per 32 echoes.
 */
function ackFrame(seq) {
  const d = DIGITS(seq);
  const len = ACK_HEAD.length + d + 1;
  const f = Buffer.allocUnsafe(6 + len);
  f[0] = 0x81;
  f[1] = 0x80 | len;
  f[2] = LL_KEY[0];
  f[3] = LL_KEY[1];
  f[4] = LL_KEY[2];
  f[5] = LL_KEY[3];
  for (let j = 0; j < ACK_HEAD.length; j++) f[6 + j] = ACK_HEAD[j] ^ LL_KEY[j & 3];
  putMaskedDigits(f, 6, ACK_HEAD.length, ACK_HEAD.length + d - 1, seq);
  f[6 + len - 1] = 0x7d ^ LL_KEY[(len - 1) & 3]; // '}'
  return f;
}

function controlFrame(obj) {
  return maskedFrame(Buffer.from(JSON.stringify(obj)));
}

function closeFrame(code) {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(code, 0);
  return maskedFrame(p, 0x8);
}

// ------------------------------------------------------------ connections

const errors = [];
function error(msg) {
  if (errors.length < 20) errors.push(msg);
}

let totalRecv = 0;
let finishedConns = 0;
let onAllFinished = null;

class Conn {
  constructor(id) {
    this.id = id;
    this.sock = null;
    this.sent = 0; // messages written, cumulative over warm-up and run
    this.recv = 0; // echoes received and checked
    this.target = 0; // messages to send (and receive) by the end of the current phase
    this.spill = null; // an incomplete frame carried over to the next chunk
    this.failed = false;
    this.closed = false;
    // lifeline.v1
    this.welcomed = null; // resolves open() on the welcome
    this.acked = 0; // highest server seq acknowledged to the server
    this.pendingOut = null; // control frames (acks, pongs) to go out with the next write
    this.controlIn = 0; // control messages received after the welcome (acks, pings)
    // socket.io
    this.sioOpen = false; // the Engine.IO open packet has arrived
    this.sioAttach = false; // a binary event header has arrived, its attachment is next
    // --latency: when each message in the window was written (slot = index % W)
    this.sendAt = LATENCY ? new Float64Array(W) : null;
  }

  open() {
    if (NETLEN) return this.openNet();
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const expectAccept = acceptFor(key);
      const sock = net.connect({ host: HOST, port: PORT });
      this.sock = sock;
      sock.setNoDelay(true);
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connection ${this.id}: handshake timed out`));
      }, CONNECT_TIMEOUT_MS);
      const onError = (err) => {
        clearTimeout(timer);
        reject(new Error(`connection ${this.id}: ${err.message}`));
      };
      const opened = () => {
        clearTimeout(timer);
        resolve();
      };
      const onHead = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > 16384) onError(new Error('response head too large'));
          return;
        }
        if (!NEEDS_WELCOME) clearTimeout(timer);
        sock.off('data', onHead);
        sock.off('error', onError);
        const text = head.subarray(0, end).toString('latin1');
        const lines = text.split('\r\n');
        if (!/^HTTP\/1\.1 101\b/.test(lines[0])) {
          reject(new Error(`connection ${this.id}: expected 101, got ${JSON.stringify(lines[0])}`));
          sock.destroy();
          return;
        }
        const accept = lines.find((l) => l.toLowerCase().startsWith('sec-websocket-accept:'));
        if (!accept || accept.slice(accept.indexOf(':') + 1).trim() !== expectAccept) {
          clearTimeout(timer);
          reject(new Error(`connection ${this.id}: bad Sec-WebSocket-Accept (${accept})`));
          sock.destroy();
          return;
        }
        if (LL) {
          const proto = lines.find((l) => l.toLowerCase().startsWith('sec-websocket-protocol:'));
          if (!proto || proto.slice(proto.indexOf(':') + 1).trim() !== SUBPROTOCOL) {
            clearTimeout(timer);
            reject(new Error(`connection ${this.id}: server did not select ${SUBPROTOCOL} (${proto})`));
            sock.destroy();
            return;
          }
          // open() resolves on the welcome (the timer still runs until then).
          this.welcomed = opened;
          sock.write(controlFrame({ t: 'hello', v: 1 }));
        }
        // socket.io: open() resolves on the CONNECT answer `40{...}`, after
        // the Engine.IO open packet (onSioControl).
        if (SIO) this.welcomed = opened;
        sock.on('data', (c) => this.onData(c));
        sock.on('error', (err) => {
          if (this.welcomed) {
            clearTimeout(timer);
            reject(new Error(`connection ${this.id}: ${err.message} before the welcome`));
          }
          this.fail(`socket error: ${err.message}`);
        });
        sock.on('close', () => this.onClose());
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
        if (!NEEDS_WELCOME) resolve();
      };
      sock.on('error', onError);
      sock.on('data', onHead);
      sock.write(
        `GET ${PATH} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (LL ? `Sec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n` : '') +
          '\r\n',
      );
    });
  }

  /** netlen: a plain TCP connection, ready once connected. */
  openNet() {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port: PORT });
      this.sock = sock;
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connection ${this.id}: connect timed out`));
      }, CONNECT_TIMEOUT_MS);
      const onError = (err) => {
        clearTimeout(timer);
        reject(new Error(`connection ${this.id}: ${err.message}`));
      };
      sock.on('error', onError);
      sock.on('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        sock.on('data', (c) => this.onData(c));
        sock.on('error', (err) => this.fail(`socket error: ${err.message}`));
        sock.on('close', () => this.onClose());
        resolve();
      });
    });
  }

  /** Starts a phase: `count` more round trips on this connection. */
  start(count) {
    this.target = this.sent + count;
    if (count === 0) {
      finishedConns++;
      return;
    }
    this.pump();
  }

  /** Fills the window: sends what the window and the target allow, in one write. */
  pump() {
    const n = Math.min(W - (this.sent - this.recv), this.target - this.sent);
    if (this.failed) return;
    if (LATENCY && n > 0) {
      const t = performance.now();
      for (let k = this.sent; k < this.sent + n; k++) this.sendAt[k % W] = t;
    }
    if (LL) return this.pumpLl(n);
    if (n <= 0) return;
    const from = this.sent % F;
    this.sock.write(BURST.subarray(from * FRAME_LEN, (from + n) * FRAME_LEN));
    this.sent += n;
  }

  /** lifeline.v1: pending control frames, then n data frames `d<seq>:`, in one write. */
  pumpLl(n) {
    const ctl = this.pendingOut;
    if (n <= 0) {
      if (ctl === null) return;
      this.pendingOut = null;
      this.sock.write(ctl);
      return;
    }
    const data = llSlice(this.sent + 1, this.sent + n);
    if (ctl === null) this.sock.write(data);
    else {
      this.pendingOut = null;
      this.sock.write(Buffer.concat([ctl, data]));
    }
    this.sent += n;
  }

  queueControl(frame) {
    this.pendingOut = this.pendingOut === null ? frame : Buffer.concat([this.pendingOut, frame]);
  }

  /**
   * lifeline.v1: a control message from the server (the frame's payload is
   * buf[at, at + len)). Returns an error text, or null.
   */
  onControl(buf, at, len) {
    let msg;
    try {
      msg = JSON.parse(buf.toString('utf8', at, at + len));
    } catch {
      return `malformed control message ${JSON.stringify(buf.toString('utf8', at, at + Math.min(len, 80)))}`;
    }
    if (this.welcomed !== null) {
      if (msg.t !== 'welcome' || msg.v !== 1) return `expected a welcome, got ${JSON.stringify(msg).slice(0, 200)}`;
      const w = this.welcomed;
      this.welcomed = null;
      w();
      return null;
    }
    this.controlIn++;
    switch (msg.t) {
      case 'ack':
        if (!(msg.seq <= this.sent)) return `server acknowledged seq ${msg.seq}, only ${this.sent} sent`;
        return null;
      case 'ping':
        this.queueControl(controlFrame({ t: 'pong', ts: msg.ts }));
        return null;
      default:
        return `unexpected control message ${JSON.stringify(msg).slice(0, 200)}`;
    }
  }

  onData(chunk) {
    if (this.failed || closing) return;
    // Every echo in this chunk arrived at the same moment: one clock read.
    const now = LATENCY ? performance.now() : 0;
    let buf = chunk;
    if (this.spill !== null) {
      buf = Buffer.concat([this.spill, chunk]);
      this.spill = null;
    }
    const recv0 = this.recv;
    const off = NETLEN ? this.parseNet(buf) : this.parseWs(buf);
    if (off < 0) return; // failed (and said why)
    if (off < buf.length) this.spill = buf.subarray(off);
    const got = this.recv - recv0;
    if (LATENCY && measuring) {
      // sendAt[] of these messages is still intact: pump() below reuses the slots.
      for (let i = recv0; i < this.recv && latN < LAT.length; i++) LAT[latN++] = now - this.sendAt[i % W];
    }
    if (LL) {
      // Acknowledge the server's messages every ACK_EVERY (its seq = our recv count).
      if (this.recv - this.acked >= ACK_EVERY) {
        this.acked = this.recv;
        this.queueControl(ackFrame(this.recv));
      }
      if (got === 0 || this.recv === this.target) this.pumpLl(0); // control frames only (if any)
    }
    if (got === 0) return;
    totalRecv += got;
    if (this.recv === this.target) {
      finishedConns++;
      if (finishedConns === N && onAllFinished) onAllFinished();
    } else {
      this.pump();
    }
  }

  /**
   * WebSocket frames from the server (unmasked, RFC 6455 5.1), whole ones
   * only; returns the offset after the last whole frame, or -1 on failure.
   */
  parseWs(buf) {
    const end = buf.length;
    let off = 0;
    // Bounded: every pass consumes one whole frame of >= 2 bytes.
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
      const pay = off + hdr; // where the frame's payload starts
      off += hdr + len;
      const opcode = b0 & 0x0f;
      if (opcode === 0x8) {
        const code = len >= 2 ? buf.readUInt16BE(pay) : 1005;
        return this.fail(`server closed the connection with ${code} ${buf.subarray(pay + 2, pay + len).toString()}`);
      }
      // Every bench message is small enough for one frame; servers send them unfragmented.
      if ((b0 & 0x80) === 0) return this.fail(`unexpected fragmented frame (first byte 0x${b0.toString(16)})`);
      let e;
      if (SIO) e = this.onSioFrame(buf, opcode, pay, len);
      else if (LL) e = this.onLlFrame(buf, b0, pay, len);
      else e = b0 === DATA_B0 ? this.echo(buf, pay, len, PAYLOADS) : `expected a FIN ${BINARY ? 'binary' : 'text'} frame (0x${DATA_B0.toString(16)}), got first byte 0x${b0.toString(16)}`;
      if (e !== null) return this.fail(e);
    }
    return off;
  }

  /** netlen: 4-byte big-endian length + payload; returns the offset after the last whole message, or -1. */
  parseNet(buf) {
    const end = buf.length;
    let off = 0;
    // Bounded: every pass consumes one whole message of >= 4 bytes.
    while (end - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len !== S) return this.fail(`echo ${this.recv} has length ${len}, sent ${S} (framing lost)`);
      if (end - off < 4 + len) break;
      const e = this.echo(buf, off + 4, len, PAYLOADS);
      if (e !== null) return this.fail(e);
      off += 4 + len;
    }
    return off;
  }

  /**
   * The next echo, buf[pay, pay + len): it must be the message this
   * connection sent next (expect[i % F], all of one length). Returns an
   * error text, or null.
   */
  echo(buf, pay, len, expect) {
    const i = this.recv;
    const want = expect[i % F];
    if (len !== want.length) return `echo ${i} has ${len} bytes, sent ${want.length}`;
    if (i >= this.sent) return `echo ${i} arrived but only ${this.sent} messages were sent (duplicate?)`;
    if (VERIFY_EVERY !== 0 && i % VERIFY_EVERY === 0) {
      if (want.compare(buf, pay, pay + len) !== 0) return `echo ${i} content differs from message ${i} (lost, reordered or corrupted)`;
      verified++;
    }
    this.recv = i + 1;
    return null;
  }

  /** lifeline.v1: a control message, or d<SEQ>[,<ACK>]:<payload>. Returns an error text, or null. */
  onLlFrame(buf, b0, pay, len) {
    if (b0 !== 0x81) return `expected a FIN text frame (0x81), got first byte 0x${b0.toString(16)}`;
    if (len > 0 && buf[pay] === 0x7b) return this.onControl(buf, pay, len);
    if (this.welcomed !== null) return 'application message before the welcome';
    if (len === 0 || buf[pay] !== 0x64) return `invalid lifeline.v1 message (first byte 0x${(buf[pay] ?? 0).toString(16)})`;
    const stop = pay + len;
    let p = pay + 1;
    let seq = 0;
    // Bounded by the frame's end.
    while (p < stop && buf[p] >= 0x30 && buf[p] <= 0x39) seq = seq * 10 + (buf[p++] - 0x30);
    let ack = -1;
    if (p < stop && buf[p] === 0x2c) {
      p++;
      ack = 0;
      while (p < stop && buf[p] >= 0x30 && buf[p] <= 0x39) ack = ack * 10 + (buf[p++] - 0x30);
    }
    if (p >= stop || buf[p] !== 0x3a) return `malformed data header ${JSON.stringify(buf.toString('latin1', pay, Math.min(stop, pay + 30)))}`;
    p++;
    if (seq !== this.recv + 1) return `server seq ${seq}, expected ${this.recv + 1} (lost, repeated or reordered)`;
    if (ack > this.sent) return `server acknowledged seq ${ack}, only ${this.sent} sent`;
    return this.echo(buf, p, stop - p, PAYLOADS);
  }

  /**
   * socket.io: one WebSocket frame of Engine.IO v4 (one packet per frame).
   * Handshake first (open packet `0{...}`, our `40`, its `40{...}`), then
   * echoes: `42[...]` text events, or with --binary the header
   * `451-[...]` and its binary attachment. Returns an error text, or null.
   */
  onSioFrame(buf, opcode, pay, len) {
    if (opcode === 0x2) {
      if (!this.sioAttach) return 'unexpected binary frame (no binary event header before it)';
      this.sioAttach = false;
      return this.echo(buf, pay, len, PAYLOADS);
    }
    if (opcode !== 0x1) return `unexpected frame opcode ${opcode}`;
    if (this.sioAttach) return 'expected the binary attachment, got a text frame';
    if (this.welcomed === null) {
      if (len === 1 && buf[pay] === 0x32) {
        // Engine.IO ping: answer at once (a pong between two whole messages is fine).
        this.controlIn++;
        this.sock.write(SIO_PONG);
        return null;
      }
      if (!BINARY) return this.echo(buf, pay, len, SIO_TEXT);
      if (len !== SIO_BIN_HEADER.length || SIO_BIN_HEADER.compare(buf, pay, pay + len) !== 0) {
        return `expected a binary event header, got ${JSON.stringify(buf.toString('latin1', pay, pay + Math.min(len, 80)))}`;
      }
      this.sioAttach = true;
      return null;
    }
    const text = buf.toString('utf8', pay, pay + len);
    if (!this.sioOpen) {
      if (text[0] !== '0') return `expected the Engine.IO open packet, got ${JSON.stringify(text.slice(0, 80))}`;
      let open;
      try {
        open = JSON.parse(text.slice(1));
      } catch {
        return `malformed Engine.IO open packet ${JSON.stringify(text.slice(0, 80))}`;
      }
      if (typeof open.sid !== 'string') return `Engine.IO open packet without sid ${JSON.stringify(text.slice(0, 80))}`;
      this.sioOpen = true;
      this.sock.write(SIO_CONNECT);
      return null;
    }
    if (!text.startsWith('40')) return `expected the socket.io CONNECT answer 40{...}, got ${JSON.stringify(text.slice(0, 80))}`;
    const w = this.welcomed;
    this.welcomed = null;
    w();
    return null;
  }

  /** Marks the connection failed and drops it; returns -1 (the parsers pass it on). */
  fail(msg) {
    if (this.failed) return -1;
    this.failed = true;
    error(`connection ${this.id}: ${msg}`);
    this.sock.destroy();
    return -1;
  }

  onClose() {
    this.closed = true;
    if (!this.failed && !closing && this.recv < this.target) {
      this.failed = true;
      error(`connection ${this.id}: closed by the server after ${this.recv} of ${this.target} echoes`);
    }
    closedConns++;
    if (onAllClosed && closedConns === N) onAllClosed();
  }
}

let verified = 0;
/** --latency: round trips of the measured run, ms (sized for all of them). */
const LAT = LATENCY ? new Float64Array(M) : null;
let latN = 0;
let measuring = false;
let closing = false; // the run is over: the server's close frames and FINs are expected
let closedConns = 0;
let onAllClosed = null;

/** Runs `total` round trips spread over the connections; resolves when done or stalled. */
function phase(conns, total) {
  return new Promise((resolve) => {
    finishedConns = 0;
    let lastRecv = totalRecv;
    let lastProgress = Date.now();
    const watchdog = setInterval(() => {
      const failedNow = conns.filter((c) => c.failed && c.recv < c.target).length;
      if (totalRecv !== lastRecv) {
        lastRecv = totalRecv;
        lastProgress = Date.now();
      }
      if (finishedConns + failedNow >= N && failedNow > 0) done('failed');
      else if (Date.now() - lastProgress > STALL_MS) done('stalled');
    }, 100);
    const done = (why) => {
      clearInterval(watchdog);
      onAllFinished = null;
      resolve(why);
    };
    onAllFinished = () => done('ok');
    const base = Math.floor(total / N);
    const extra = total % N;
    for (let k = 0; k < N; k++) conns[k].start(base + (k < extra ? 1 : 0));
    if (finishedConns === N) done('ok');
  });
}

/**
 * Percentiles of the recorded round trips in microseconds (nearest rank:
 * the smallest sample with at least q of all samples at or below it).
 */
function latencySummary() {
  const v = LAT.subarray(0, latN).sort();
  const n = v.length;
  if (n === 0) return { samples: 0 };
  const at = (q) => 1000 * v[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  let sum = 0;
  for (let k = 0; k < n; k++) sum += v[k];
  const r = (x) => Math.round(x * 10) / 10;
  return { samples: n, mean: r((1000 * sum) / n), p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), p999: r(at(0.999)), max: r(1000 * v[n - 1]) };
}

function stdinLine(expected) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() === expected) {
        resolve();
        rl.close();
      }
    });
    rl.on('close', () => reject(new Error(`stdin closed before "${expected}"`)));
  });
}

async function main() {
  const conns = Array.from({ length: N }, (_, i) => new Conn(i));
  try {
    await Promise.all(conns.map((c) => c.open()));
  } catch (err) {
    process.stdout.write(`result ${JSON.stringify({ ok: false, errors: [String(err.message)] })}\n`);
    process.exit(1);
  }

  let why = 'ok';
  if (WARMUP > 0) why = await phase(conns, WARMUP);
  const warmSent = conns.reduce((a, c) => a + c.sent, 0);
  const warmRecv = totalRecv;

  if (why === 'ok' && values.control) {
    process.stdout.write('ready\n');
    await stdinLine('go');
  }

  let elapsedNs = 0n;
  let cpu = { user: 0, system: 0 };
  if (why === 'ok') {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    measuring = true;
    why = await phase(conns, M);
    measuring = false;
    elapsedNs = process.hrtime.bigint() - t0;
    cpu = process.cpuUsage(cpu0);
  } else {
    error(`warm-up ${why}`);
  }

  const sent = conns.reduce((a, c) => a + c.sent, 0) - warmSent;
  const received = totalRecv - warmRecv;
  const elapsedMs = Number(elapsedNs) / 1e6;
  const lost = sent - received;
  const result = {
    ok: why === 'ok' && lost === 0 && errors.length === 0 && received === M,
    outcome: why,
    connections: N,
    size: S,
    window: W,
    messages: M,
    warmup: WARMUP,
    sent,
    received,
    lost,
    verified,
    elapsedMs,
    msgsPerSec: elapsedMs > 0 ? received / (elapsedMs / 1000) : 0,
    loadgenCpuMs: (cpu.user + cpu.system) / 1000,
    protocol: values.protocol,
    binary: BINARY,
    ...(LATENCY ? { latencyUs: latencySummary() } : {}),
    ...(LL || SIO ? { controlIn: conns.reduce((a, c) => a + c.controlIn, 0) } : {}),
    errors: [...errors],
  };

  // The result goes out first: the orchestrator stops its CPU counters on it.
  process.stdout.write(`result ${JSON.stringify(result)}\n`);

  // Close politely (RFC 6455 close frame, then FIN), but don't wait long.
  closing = true;
  const bye = closeFrame(1000);
  await new Promise((resolve) => {
    onAllClosed = resolve;
    const t = setTimeout(resolve, 2000);
    t.unref();
    for (const c of conns) if (!c.closed) c.sock.end(NETLEN ? undefined : bye);
    if (closedConns === N) resolve();
  });
  process.exit(result.ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`loadgen: ${err.stack ?? err}\n`);
  process.exit(2);
});

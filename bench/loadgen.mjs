#!/usr/bin/env node
// The bench load generator: a process of its own, so it never competes with
// the server's event loop, and as cheap per message as we can make it:
//
// - raw TCP sockets; the opening handshake is written and checked by hand;
// - every frame it sends is built before the run (masked, as RFC 6455 5.3
//   requires of clients), so sending is one write of a slice of one buffer;
// - a window of W messages in flight per connection: each echo that comes
//   back lets one more message go, and all sends a chunk of echoes allows go
//   out in one write;
// - echoes are parsed incrementally from the server's unmasked frames; every
//   echo's opcode and length is checked, and its content against what was sent
//   (every --verify-every'th message, default all of them).
//
// F = max(W, 8) distinct payloads are used in turn, so a reordered, repeated
// or lost echo shows up as a content mismatch, not only as a count.
//
//   node bench/loadgen.mjs --port P [--host 127.0.0.1] [--connections 100]
//        [--size 32] [--window 16] [--messages 1000000] [--warmup 50000]
//        [--verify-every 1] [--stall-ms 10000] [--control]
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
    path: { type: 'string', default: '/' },
    connections: { type: 'string', default: '100' },
    size: { type: 'string', default: '32' },
    window: { type: 'string', default: '16' },
    messages: { type: 'string', default: '1000000' },
    warmup: { type: 'string', default: '50000' },
    'verify-every': { type: 'string', default: '1' },
    'stall-ms': { type: 'string', default: '10000' },
    'connect-timeout-ms': { type: 'string', default: '10000' },
    control: { type: 'boolean', default: false },
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

// ------------------------------------------------------------ frames

const F = Math.max(W, 8);

/** Payload i: ASCII text of S bytes, different for each i < F. */
function payload(i) {
  const p = Buffer.alloc(S);
  const tag = `#${i}:`;
  for (let j = 0; j < S; j++) p[j] = j < tag.length ? tag.charCodeAt(j) : 0x61 + ((i * 7 + j) % 26);
  return p;
}

/** A masked text frame (RFC 6455 5.2: FIN, opcode 1, MASK, length, key, masked payload). */
function maskedTextFrame(p) {
  const len = p.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const f = Buffer.alloc(2 + ext + 4 + len);
  f[0] = 0x81;
  if (ext === 0) f[1] = 0x80 | len;
  else if (ext === 2) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(len, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeBigUInt64BE(BigInt(len), 2);
  }
  const key = crypto.randomBytes(4);
  key.copy(f, 2 + ext);
  const at = 2 + ext + 4;
  for (let j = 0; j < len; j++) f[at + j] = p[j] ^ key[j & 3];
  return f;
}

const PAYLOADS = Array.from({ length: F }, (_, i) => payload(i));
const FRAMES = PAYLOADS.map(maskedTextFrame);
const FRAME_LEN = FRAMES[0].length;
// Frames 0..F-1 twice over: any run of up to F consecutive messages starting
// at any index is one contiguous slice.
const BURST = Buffer.concat([...FRAMES, ...FRAMES]);

function closeFrame(code) {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(code, 0);
  const f = maskedTextFrame(p);
  f[0] = 0x88;
  return f;
}

// ------------------------------------------------------------ connections

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
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
  }

  open() {
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const expectAccept = crypto.createHash('sha1').update(key + GUID).digest('base64');
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
      const onHead = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > 16384) onError(new Error('response head too large'));
          return;
        }
        clearTimeout(timer);
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
          reject(new Error(`connection ${this.id}: bad Sec-WebSocket-Accept (${accept})`));
          sock.destroy();
          return;
        }
        sock.on('data', (c) => this.onData(c));
        sock.on('error', (err) => this.fail(`socket error: ${err.message}`));
        sock.on('close', () => this.onClose());
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
        resolve();
      };
      sock.on('error', onError);
      sock.on('data', onHead);
      sock.write(
        `GET ${values.path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
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
    if (n <= 0 || this.failed) return;
    const from = this.sent % F;
    this.sock.write(BURST.subarray(from * FRAME_LEN, (from + n) * FRAME_LEN));
    this.sent += n;
  }

  onData(chunk) {
    if (this.failed || closing) return;
    let buf = chunk;
    if (this.spill !== null) {
      buf = Buffer.concat([this.spill, chunk]);
      this.spill = null;
    }
    const end = buf.length;
    let off = 0;
    let got = 0;
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
      const opcode = b0 & 0x0f;
      if (b0 !== 0x81) {
        if (opcode === 0x8) {
          const code = len >= 2 ? buf.readUInt16BE(off + hdr) : 1005;
          return this.fail(`server closed the connection with ${code} ${buf.subarray(off + hdr + 2, off + hdr + len).toString()}`);
        }
        return this.fail(`expected a FIN text frame (0x81), got first byte 0x${b0.toString(16)}`);
      }
      if (len !== S) return this.fail(`echo ${this.recv} has ${len} bytes, sent ${S}`);
      const i = this.recv;
      if (i >= this.sent) return this.fail(`echo ${i} arrived but only ${this.sent} messages were sent (duplicate?)`);
      if (VERIFY_EVERY !== 0 && i % VERIFY_EVERY === 0) {
        if (PAYLOADS[i % F].compare(buf, off + hdr, off + hdr + len) !== 0) {
          return this.fail(`echo ${i} content differs from message ${i} (lost, reordered or corrupted)`);
        }
        verified++;
      }
      this.recv = i + 1;
      got++;
      off += hdr + len;
    }
    if (off < end) this.spill = buf.subarray(off);
    if (got === 0) return;
    totalRecv += got;
    if (this.recv === this.target) {
      finishedConns++;
      if (finishedConns === N && onAllFinished) onAllFinished();
    } else {
      this.pump();
    }
  }

  fail(msg) {
    if (this.failed) return;
    this.failed = true;
    error(`connection ${this.id}: ${msg}`);
    this.sock.destroy();
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
    why = await phase(conns, M);
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
    for (const c of conns) if (!c.closed) c.sock.end(bye);
    if (closedConns === N) resolve();
  });
  process.exit(result.ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`loadgen: ${err.stack ?? err}\n`);
  process.exit(2);
});

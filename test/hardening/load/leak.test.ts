// Acceptance ("Load"): 10,000 connections opened and closed 10 times over
// (100,000 cycles) leave heap and RSS within 10% of the starting point after
// GC (leak test), printed.
//
// The server runs in a child process (leak-server.ts, `node --expose-gc`), so
// its memory is the server's alone; this process is the client side: raw TCP
// connections with a hand-made handshake and almost no per-connection state
// (just the net.Socket), handshakes 500 at a time. Per round: 10,000 open at
// once, then all closed: even ones with a masked close frame (1000), waiting
// for the server's close frame, then a TCP reset (so neither side keeps the
// port in TIME_WAIT: 100,000 connections on loopback would otherwise run out
// of ephemeral ports); odd ones with a bare reset (abnormal closure, 1006 on
// the server). After each round the test waits until the server reports no
// connection (and no session) left, asks it to GC twice and to report
// process.memoryUsage(). Round 1 (after the warm-up that round is) is the
// starting point; round 10 must not be more than 10% above it in heapUsed or
// RSS (shrinking is no leak: printed, not failed).
//
// Two servers: the transport WebSocketServer, and a LifelineServer (each
// connection says hello with subprotocol lifeline.v1 and gets its welcome;
// sessionTtl 300 ms and tombstones 16, so the reset connections' detached
// sessions expire before the round is measured and leave a bounded grave list).
//
// File descriptors: 10,000 sockets on each side. The hard limit here may be
// 20,000; the test raises its own limit with prlimit (we run as root) and
// starts the child under `ulimit -n 65536`; if that fails, it says so loudly
// and reduces N to what fits.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface, type Interface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';

import { maskedClientFrame } from '../../helpers/frames.js';
import { ms, withTimeout } from '../../helpers/peers.js';

const ROUNDS = 10;
const WANT = 10_000;
const BATCH = 500;
const SERVER_SCRIPT = fileURLToPath(new URL('./leak-server.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));

const report: string[] = [];
after(() => {
  console.log('\n=== leak test: measured ===');
  for (const r of report) console.log(r);
});

/** This process's soft fd limit, after trying to raise it to 65536 (root). */
function fdLimit(): number {
  spawnSync('prlimit', ['--pid', String(process.pid), '--nofile=65536:65536'], { stdio: 'ignore' });
  const r = spawnSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=SOFT', '--noheadings'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

const LIMIT = fdLimit();
const N = LIMIT >= WANT + 2000 ? WANT : Math.max(1000, Math.floor((LIMIT - 2000) / 1000) * 1000);
if (N < WANT) {
  console.error(`\n!!! leak test: fd limit ${LIMIT} is too low for ${WANT} connections; running with N = ${N} (could not raise it) !!!\n`);
  report.push(`!!! fd limit ${LIMIT}: reduced to ${N} connections per round !!!`);
}

// ------------------------------------------------------------------ the server child

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  open: number;
  sessions: number;
  accepted: number;
}

class ServerChild {
  private readonly lines: Interface;
  private readonly queue: Array<(line: string) => void> = [];
  private readonly early: string[] = [];
  exited: Promise<number | null>;
  stderr = '';

  private constructor(readonly proc: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: proc.stdout });
    this.lines.on('line', (line) => {
      const r = this.queue.shift();
      if (r) r(line);
      else this.early.push(line);
    });
    proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 20_000) this.stderr = this.stderr.slice(-10_000);
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  static start(variant: 'ws' | 'lifeline'): ServerChild {
    const cmd = `ulimit -n 65536 2>/dev/null || echo "leak-server: could not raise ulimit -n" >&2; exec "${process.execPath}" --expose-gc --import "${TSX}" "${SERVER_SCRIPT}" ${variant}`;
    return new ServerChild(spawn('sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** The next line from the child (JSON). */
  next<T>(what: string, timeoutMs: number): Promise<T> {
    const early = this.early.shift();
    if (early !== undefined) return Promise.resolve(JSON.parse(early) as T);
    const p = new Promise<T>((resolve) => this.queue.push((line) => resolve(JSON.parse(line) as T)));
    const died = this.exited.then((code) => {
      throw new Error(`leak-server exited (${code}) while waiting for ${what}; stderr:\n${this.stderr}`);
    });
    return withTimeout(Promise.race([p, died]), timeoutMs, `leak-server: ${what}`);
  }

  ask<T>(cmd: string, timeoutMs: number): Promise<T> {
    this.proc.stdin.write(`${cmd}\n`);
    return this.next<T>(cmd, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.write('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

// ------------------------------------------------------------------ raw clients

const KEY = randomBytes(16).toString('base64');

function request(port: number, lifeline: boolean): Buffer {
  return Buffer.from(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (lifeline ? 'Sec-WebSocket-Protocol: lifeline.v1\r\n' : '') +
      '\r\n',
  );
}

const CLOSE_1000 = (): Buffer => maskedClientFrame(0x8, Buffer.from([0x03, 0xe8]));
const HELLO = Buffer.from('{"t":"hello","v":1}');

/**
 * Opens one connection: handshake (and, for lifeline, hello -> welcome).
 * Resolves with the socket once it is usable; rejects on any failure.
 */
function openOne(port: number, lifeline: boolean, req: Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf: Buffer = Buffer.alloc(0);
    let upgraded = false;
    const fail = (why: string): void => {
      s.destroy();
      reject(new Error(why));
    };
    s.setNoDelay(true);
    s.on('error', (e) => fail(`socket error: ${e.message}`));
    s.once('close', () => fail('closed during the handshake'));
    s.once('connect', () => s.write(req));
    const onData = (d: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > 4096) fail('handshake response too long');
          return;
        }
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) return fail(`handshake refused: ${head.split('\r\n')[0]}`);
        upgraded = true;
        buf = buf.subarray(end + 4);
        if (!lifeline) return done();
        s.write(maskedClientFrame(0x1, HELLO));
      }
      // lifeline: wait for the whole welcome frame (a text frame starting '{"t":"welcome"').
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      }
      if (buf.length < off + len) return;
      const text = buf.subarray(off, off + len).toString('utf8');
      if ((buf[0]! & 0x0f) !== 0x1 || !text.startsWith('{"t":"welcome"')) return fail(`expected a welcome, got ${JSON.stringify(text.slice(0, 80))}`);
      done();
    };
    const done = (): void => {
      s.removeAllListeners('data');
      s.removeAllListeners('close');
      s.removeAllListeners('error');
      s.on('error', () => {});
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** Closes one connection: a close frame, the server's close frame back, then a reset; or a bare reset. */
function closeOne(s: net.Socket, graceful: boolean): Promise<void> {
  if (!graceful || s.destroyed) {
    s.resetAndDestroy();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const finish = (): void => {
      if (!s.destroyed) s.resetAndDestroy();
      resolve();
    };
    // Anything after our close frame is the server's close frame (lifeline: nothing else is sent).
    s.on('data', (d: Buffer) => {
      if ((d[0]! & 0x0f) === 0x8) finish();
    });
    s.once('end', finish);
    s.once('close', finish);
    s.write(CLOSE_1000());
  });
}

/** Runs `fn` over 0..n-1 with at most `limit` in flight. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
const pctOf = (x: number, base: number): string => `${x >= base ? '+' : ''}${(((x - base) / base) * 100).toFixed(1)} %`;

async function runLeak(variant: 'ws' | 'lifeline'): Promise<void> {
  const child = ServerChild.start(variant);
  const sockets: net.Socket[] = new Array<net.Socket>(N);
  try {
    const { port } = await child.next<{ port: number }>('port', ms(20_000));
    const req = request(port, variant === 'lifeline');
    const before = await child.ask<Mem>('gc', ms(10_000));
    report.push(`[${variant}] ${N} connections x ${ROUNDS} rounds, ${BATCH} handshakes in flight; server before any connection: heap ${mb(before.heapUsed)}, rss ${mb(before.rss)}`);
    const mems: Mem[] = [];
    const t0 = performance.now();
    for (let round = 1; round <= ROUNDS; round++) {
      const r0 = performance.now();
      await pool(N, BATCH, async (i) => {
        sockets[i] = await openOne(port, variant === 'lifeline', req);
      });
      const r1 = performance.now();
      const peak = await child.ask<Mem>('gc', ms(20_000));
      assert.equal(peak.open, N, `round ${round}: the server holds all ${N} connections`);
      await pool(N, BATCH, (i) => closeOne(sockets[i]!, i % 2 === 0));
      const r2 = performance.now();
      await child.ask<{ idle: boolean }>('idle', ms(30_000));
      const m = await child.ask<Mem>('gc', ms(20_000));
      const r3 = performance.now();
      mems.push(m);
      const base = mems[0]!;
      report.push(
        `[${variant}] round ${String(round).padStart(2)}: open ${((r1 - r0) / 1000).toFixed(1)} s, close ${((r2 - r1) / 1000).toFixed(1)} s, idle+gc ${((r3 - r2) / 1000).toFixed(1)} s; ` +
          `with ${N} open: heap ${mb(peak.heapUsed)}, rss ${mb(peak.rss)}; after close+GC: heap ${mb(m.heapUsed)} (${pctOf(m.heapUsed, base.heapUsed)}), ` +
          `rss ${mb(m.rss)} (${pctOf(m.rss, base.rss)}), external ${mb(m.external)}, arrayBuffers ${mb(m.arrayBuffers)}; accepted so far ${m.accepted}`,
      );
      assert.equal(m.accepted, round * N, `round ${round}: every connection was accepted`);
    }
    const base = mems[0]!;
    const last = mems[mems.length - 1]!;
    report.push(
      `[${variant}] ${ROUNDS * N} cycles in ${((performance.now() - t0) / 1000).toFixed(1)} s; round 1 -> round ${ROUNDS}: heap ${mb(base.heapUsed)} -> ${mb(last.heapUsed)} (${pctOf(last.heapUsed, base.heapUsed)}), rss ${mb(base.rss)} -> ${mb(last.rss)} (${pctOf(last.rss, base.rss)})`,
    );
    assert.ok(last.heapUsed <= base.heapUsed * 1.1, `[${variant}] heap grew beyond 10%: ${mb(base.heapUsed)} -> ${mb(last.heapUsed)}`);
    assert.ok(last.rss <= base.rss * 1.1, `[${variant}] RSS grew beyond 10%: ${mb(base.rss)} -> ${mb(last.rss)}`);
  } finally {
    for (const s of sockets) if (s && !s.destroyed) s.resetAndDestroy();
    await child.stop();
  }
}

describe('load: 10,000 connections opened and closed 10 times leave no leak', () => {
  test('transport WebSocketServer', { timeout: 240_000 }, async () => {
    await runLeak('ws');
  });
  test('LifelineServer (hello/welcome sessions)', { timeout: 240_000 }, async () => {
    await runLeak('lifeline');
  });
});

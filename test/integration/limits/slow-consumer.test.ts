// Slow consumers (docs/LIMITS.md: highWaterMark, maxBufferedBytes, slowConsumer).
//
// A raw TCP peer completes the opening handshake and then stops reading
// (socket.pause()): the kernel buffers fill, then Node's, then ours. The
// server keeps offering numbered 64 KiB binary messages (256 MiB by default,
// LIFELINE_SLOW_CONSUMER_MIB raises it; the figure is 1 GiB). For
// every policy:
// - bufferedAmount, sampled after each send(), stays <= maxBufferedBytes +
//   highWaterMark + one message;
// - the process's RSS grows far less than the bytes offered (measured, printed);
// - 'disconnect' / 'wait' end with closeCause 'slow-consumer' and a 1008 close
//   frame that the peer reads (well framed) once it resumes;
// - 'drop-newest' / 'drop-oldest' keep the connection, and counters.dropped is
//   exactly offered - delivered once the peer has read everything; with
//   'drop-oldest' what arrives last is the newest messages.
// And a healthy client's echo latency is not hurt by a slow consumer next to it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type net from 'node:net';

import { WebSocketServer, type ServerOptions } from '../../../src/transport/node/server.js';
import { connect } from '../../../src/transport/node/client.js';
import type { WebSocket, SlowConsumerPolicy } from '../../../src/transport/node/websocket.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { FrameReader, clientCloseFrame, percentile, rawUpgrade, echoCheck, echo } from './helpers.js';

const MiB = 1024 * 1024;
const MSG = 64 * 1024;
/**
 * Message sizes: 64 KiB (the figure: one write slice each) and
 * 100,000 bytes (more than one 64 KiB write slice: a message can be partly on
 * the wire when congestion starts).
 */
const SIZES = [MSG, 100_000] as const;
/** Frame bytes of a binary message of `size` (> 65535: 10-byte header). */
const frameOf = (size: number) => size + (size > 65535 ? 10 : size > 125 ? 4 : 2);
const CAP = 4 * MiB;
const HWM = 1 * MiB;
const boundOf = (size: number) => CAP + HWM + frameOf(size);
const OFFER_MIB = Number(process.env.LIFELINE_SLOW_CONSUMER_MIB ?? '256');
if (!Number.isFinite(OFFER_MIB) || OFFER_MIB < 16) throw new Error('LIFELINE_SLOW_CONSUMER_MIB must be a number >= 16');
const OFFER_BYTES = OFFER_MIB * MiB;
const offerCount = (size: number) => Math.floor(OFFER_BYTES / size);
const kib = (n: number) => (n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`);
const RSS_LIMIT = 64 * MiB;

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

interface Started {
  wss: WebSocketServer;
  port: number;
}

async function startServer(options: Partial<ServerOptions>): Promise<Started> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark: HWM, maxBufferedBytes: CAP, ...options });
  await once(wss, 'listening', ms(5000));
  echo(wss);
  return { wss, port: (wss.address() as { port: number }).port };
}

/** A raw peer that completes the handshake and then reads nothing; plus the server side of it. */
async function slowPeer(s: Started, path = '/slow'): Promise<{ peer: net.Socket; ws: WebSocket; reader: FrameReader }> {
  const serverSide = once<WebSocket>(s.wss, 'connection', ms(5000));
  const { socket, head } = await rawUpgrade(s.port, { path });
  assert.equal(head.status, 101, 'the slow peer is upgraded');
  // readHead() left the socket paused with no 'data' listener: this peer reads nothing more.
  socket.pause();
  const ws = await serverSide;
  const reader = new FrameReader();
  if (head.rest.length > 0) reader.push(head.rest);
  return { peer: socket, ws, reader };
}

interface OfferStats {
  size: number;
  offered: number;
  maxBuffered: number;
  /** Sends after which bufferedAmount was above the bound. */
  overBound: number;
  rssBase: number;
  rssMax: number;
}

function newStats(size: number): OfferStats {
  const rss = process.memoryUsage.rss();
  return { size, offered: 0, maxBuffered: 0, overBound: 0, rssBase: rss, rssMax: rss };
}

/**
 * Offers numbered binary messages (first 4 bytes: the number, from
 * `st.offered` on), yielding to the event loop after each (so Node and the
 * kernel take what they can), until `count` more were offered, the socket is
 * no longer open, or `stopOnFalse` and send() returned false. Samples
 * bufferedAmount after every send and RSS every 16. With `shared`, that one
 * (unnumbered) buffer is sent every time: no allocation per message.
 */
async function offer(ws: WebSocket, st: OfferStats, count: number, stopOnFalse = false, shared: Buffer | null = null): Promise<'done' | 'closed' | 'false'> {
  const end = st.offered + count;
  const bound = boundOf(st.size);
  while (st.offered < end) {
    if (ws.readyState !== 1) return 'closed';
    let payload = shared;
    if (payload === null) {
      payload = Buffer.allocUnsafe(st.size);
      payload.writeUInt32BE(st.offered, 0);
    }
    const ok = ws.send(payload);
    st.offered++;
    const b = ws.bufferedAmount;
    if (b > st.maxBuffered) st.maxBuffered = b;
    if (b > bound) st.overBound++;
    if ((st.offered & 15) === 0) {
      const rss = process.memoryUsage.rss();
      if (rss > st.rssMax) st.rssMax = rss;
    }
    if (!ok && stopOnFalse) return 'false';
    await tick();
  }
  return ws.readyState === 1 ? 'done' : 'closed';
}

function report(label: string, st: OfferStats, extra: string): void {
  console.log(
    `[slow-consumer ${label}] offered ${st.offered} x ${kib(st.size)} = ${mib(st.offered * st.size)}; ` +
      `max bufferedAmount ${mib(st.maxBuffered)} (bound ${mib(boundOf(st.size))}); ` +
      `RSS ${mib(st.rssBase)} -> max ${mib(st.rssMax)} (+${mib(st.rssMax - st.rssBase)}); ${extra}`,
  );
}

function assertBounded(st: OfferStats): void {
  assert.equal(st.overBound, 0, `bufferedAmount exceeded cap + highWaterMark + one message (${boundOf(st.size)}) after ${st.overBound} sends; max ${st.maxBuffered}`);
  assert.ok(st.rssMax - st.rssBase < RSS_LIMIT, `RSS grew by ${mib(st.rssMax - st.rssBase)} (limit ${mib(RSS_LIMIT)})`);
}

/**
 * The peer resumes reading: it reads to the server's close frame, answers it
 * (a well-behaved peer) and waits for TCP to close. A corrupt stream (or none
 * close frame before TCP ends) is left for the caller to assert on.
 */
async function resumeAndFinish(peer: net.Socket, reader: FrameReader): Promise<void> {
  const ended = reader.drain(peer, ms(20000));
  await Promise.race([ended, reader.until(() => reader.closeCode !== null || reader.corrupt !== null, ms(15000), 'the close frame (peer reading)')]).catch((err: Error) => {
    throw new Error(`${err.message}; read ${reader.bytesRead} bytes, ${reader.seqs.length} messages, partial ${reader.partial}, corrupt=${reader.corrupt}`);
  });
  if (reader.closeCode !== null && !peer.destroyed) peer.write(clientCloseFrame(1000));
  else peer.destroy();
  await ended;
}

/** Numbers arrive strictly increasing (no duplicates, no reordering). */
function assertIncreasing(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i]! <= seqs[i - 1]!) assert.fail(`message ${seqs[i]} arrived after ${seqs[i - 1]} (index ${i})`);
  }
}

function describeStream(reader: FrameReader): string {
  return `peer read ${reader.seqs.length} messages (${mib(reader.dataBytes)}), close ${reader.closeCode} '${reader.closeReason}', ${reader.partial} bytes of an unfinished frame, corrupt=${reader.corrupt}`;
}

describe('slow consumer: a peer that never reads', { timeout: ms(60000) }, () => {
  const servers: WebSocketServer[] = [];
  const peers: net.Socket[] = [];
  after(async () => {
    for (const p of peers) p.destroy();
    for (const s of servers) await s.close({ timeout: ms(1000) }).catch(() => {});
  });

  async function setup(policy: SlowConsumerPolicy, options: Partial<ServerOptions> = {}) {
    // closeTimeout bounds how long a peer that cannot finish the closing handshake is waited for.
    const s = await startServer({ slowConsumer: policy, closeTimeout: ms(3000), ...options });
    servers.push(s.wss);
    const p = await slowPeer(s);
    peers.push(p.peer);
    return { ...s, ...p };
  }

  for (const size of SIZES) {
    test(`'disconnect' (${kib(size)} messages): the cap closes with 1008 'slow consumer' (cause slow-consumer), memory stays bounded`, async () => {
      const { ws, peer, reader, port } = await setup('disconnect');
      const st = newStats(size);
      const outcome = await offer(ws, st, offerCount(size));
      report(`disconnect ${kib(size)}`, st, `disconnected; dropped ${ws.counters.dropped}`);
      assert.equal(outcome, 'closed', 'the slow consumer was disconnected before all was offered');
      assert.equal(ws.readyState, 2, 'closing: the 1008 close frame is queued for the peer');
      assert.ok(st.offered * frameOf(size) > CAP, `the cap (${mib(CAP)}) was reached before disconnecting (offered ${mib(st.offered * frameOf(size))})`);
      assert.ok(st.offered * size < 64 * MiB, `disconnected promptly (offered ${mib(st.offered * size)} before the cut)`);
      assertBounded(st);

      const closed = once<number>(ws, 'close', ms(15000));
      await resumeAndFinish(peer, reader);
      await closed;
      console.log(`[slow-consumer disconnect ${kib(size)}] ${describeStream(reader)}; server closeCause ${ws.closeCause}`);
      assert.equal(ws.closeCause, 'slow-consumer');
      assert.equal(reader.corrupt, null, 'the stream the peer reads is well framed up to the close frame');
      assert.equal(reader.closeCode, 1008, `the peer reads a 1008 close frame (${describeStream(reader)})`);
      assert.equal(reader.closeReason, 'slow consumer');
      assert.equal(reader.afterClose, 0, 'nothing after the close frame');
      assertIncreasing(reader.seqs);
      assert.equal(reader.seqs.length + ws.counters.dropped, st.offered, 'every offered message was either delivered or counted as dropped');
      await echoCheck(port);
    });
  }

  test("'disconnect': a peer that never reads again is cut after closeTimeout (cause slow-consumer)", async () => {
    const closeTimeout = ms(500);
    const { ws, port } = await setup('disconnect', { closeTimeout });
    const st = newStats(MSG);
    assert.equal(await offer(ws, st, offerCount(MSG)), 'closed');
    const t0 = performance.now();
    const code = await once<number>(ws, 'close', closeTimeout + ms(3000));
    const took = performance.now() - t0;
    console.log(`[slow-consumer disconnect] never-reading peer: socket destroyed ${took.toFixed(0)} ms after the 1008 (closeTimeout ${closeTimeout})`);
    assert.equal(code, 1006, 'no close frame came back');
    assert.equal(ws.closeCause, 'slow-consumer');
    assert.ok(took >= closeTimeout - 50, `not before closeTimeout (${took.toFixed(0)} ms)`);
    assertBounded(st);
    await echoCheck(port);
  });

  for (const size of SIZES) {
    test(`'wait' (${kib(size)} messages): send() false and no 'drain' while the peer is stuck; ignoring that, the cap still disconnects`, async () => {
      const { ws, peer, reader, port } = await setup('wait');
      const st = newStats(size);
      const frame = frameOf(size);
      // Phase 1: an application that honours backpressure.
      let drains = 0;
      let stuck = false;
      for (let round = 0; round < 10_000 && !stuck; round++) {
        const r = await offer(ws, st, offerCount(size), true);
        assert.equal(r, 'false', 'send() reports backpressure before the cap');
        try {
          await once(ws, 'drain', ms(300));
          drains++;
        } catch {
          stuck = true;
        }
      }
      assert.ok(stuck, 'the peer stopped reading: no drain');
      const phase1 = st.offered;
      const buffered1 = ws.bufferedAmount;
      assert.equal(ws.readyState, 1, 'honouring backpressure keeps the connection');
      assert.equal(ws.counters.dropped, 0, "'wait' drops nothing");
      assert.ok(buffered1 <= HWM + 2 * frame, `an honouring sender holds at most highWaterMark + a message (${buffered1})`);
      // Phase 2: the application ignores send()'s false.
      const outcome = await offer(ws, st, offerCount(size));
      const phase2 = st.offered - phase1;
      report(`wait ${kib(size)}`, st, `honoured phase: ${phase1} messages, ${drains} drains, then buffered ${mib(buffered1)}; ignoring: ${phase2} more until the cap`);
      assert.equal(outcome, 'closed');
      const atCap = Math.floor(CAP / frame) + 1;
      assert.ok(phase2 >= atCap && phase2 <= atCap + Math.ceil(HWM / frame) + 2, `disconnected at the cap: ${phase2} messages past the stall (expected ~${atCap})`);
      assertBounded(st);

      const closed = once<number>(ws, 'close', ms(15000));
      await resumeAndFinish(peer, reader);
      await closed;
      console.log(`[slow-consumer wait ${kib(size)}] ${describeStream(reader)}; server closeCause ${ws.closeCause}`);
      assert.equal(ws.closeCause, 'slow-consumer');
      assert.equal(reader.corrupt, null, 'the stream the peer reads is well framed up to the close frame');
      assert.equal(reader.closeCode, 1008, `the peer reads a 1008 close frame (${describeStream(reader)})`);
      assert.equal(reader.closeReason, 'slow consumer');
      assertIncreasing(reader.seqs);
      assert.equal(reader.seqs.length + ws.counters.dropped, st.offered, 'every offered message was either delivered or counted as dropped');
      await echoCheck(port);
    });
  }

  for (const policy of ['drop-newest', 'drop-oldest'] as const) {
    for (const size of SIZES) {
      test(`'${policy}' (${kib(size)} messages): the connection stays open; counters.dropped = offered - delivered`, async () => {
        const { ws, peer, reader, port } = await setup(policy);
        const st = newStats(size);
        const outcome = await offer(ws, st, offerCount(size));
        const dropped = ws.counters.dropped;
        report(`${policy} ${kib(size)}`, st, `dropped ${dropped}`);
        assert.equal(outcome, 'done', 'still open after everything was offered');
        assert.equal(st.offered, offerCount(size));
        assert.ok(dropped > 0, 'messages were dropped');
        assertBounded(st);

        // Everything offered is either on its way or dropped; now the peer reads it all.
        const closed = once<number>(ws, 'close', ms(15000));
        ws.close(1000, 'done');
        await resumeAndFinish(peer, reader);
        await closed;
        const seqs = reader.seqs;
        console.log(
          `[slow-consumer ${policy} ${kib(size)}] ${describeStream(reader)}: first ${seqs.slice(0, 3).join(',')}... last ${seqs.slice(-3).join(',')}; dropped ${ws.counters.dropped}`,
        );
        assert.equal(reader.corrupt, null, 'well framed');
        assert.equal(reader.closeCode, 1000);
        assertIncreasing(seqs);
        assert.equal(ws.counters.dropped, dropped, 'nothing dropped by the close');
        assert.equal(dropped, st.offered - seqs.length, `dropped (${dropped}) = offered (${st.offered}) - delivered (${seqs.length})`);
        assert.equal(seqs[0], 0, 'the first message went out before any congestion');
        const heldMessages = Math.floor(CAP / frameOf(size));
        if (policy === 'drop-oldest') {
          // The newest survive: the last one offered arrives, preceded by an unbroken run of at least what the cap holds.
          assert.equal(seqs[seqs.length - 1], st.offered - 1, 'the newest message was delivered');
          let run = 1;
          while (run < seqs.length && seqs[seqs.length - 1 - run] === st.offered - 1 - run) run++;
          assert.ok(run >= heldMessages, `the newest ${run} messages arrived unbroken (expected >= ${heldMessages})`);
        } else {
          // drop-newest: what went out first survives; the newest were dropped.
          assert.ok(seqs[seqs.length - 1]! < st.offered - 1, 'the newest message was dropped');
          assert.equal(seqs[seqs.length - 1], seqs.length - 1, 'what arrived is an unbroken prefix 0..k');
        }
        await echoCheck(port);
      });
    }
  }
});

describe('slow consumer next to a healthy client', { timeout: ms(60000) }, () => {
  let s: Started;
  let peer: net.Socket | null = null;
  before(async () => {
    s = await startServer({ slowConsumer: 'drop-oldest' });
  });
  after(async () => {
    peer?.destroy();
    await s.wss.close({ timeout: ms(1000) }).catch(() => {});
  });

  test('echo latency p50/p99 stays within 2x (+2 ms) of the unloaded figure', async () => {
    // Alternating blocks (unloaded, loaded, ...) so drift in machine load hits both alike.
    const BLOCKS = 4;
    const PER_BLOCK = 250;
    const client = await withTimeout(connect(`ws://127.0.0.1:${s.port}/`), ms(5000), 'healthy client');
    client.on('error', () => {});
    const rtts = async (n: number, out: number[]): Promise<void> => {
      const payload = Buffer.alloc(32, 7);
      for (let i = 0; i < n; i++) {
        const got = once<Buffer>(client, 'message', ms(5000));
        const t0 = performance.now();
        client.send(payload);
        await got;
        out.push(performance.now() - t0);
      }
    };
    try {
      await rtts(100, []); // warm-up

      const slow = await slowPeer(s);
      peer = slow.peer;
      let stop = false;
      let paused = true;
      let resumePump: (() => void) | null = null;
      const st = newStats(MSG);
      const shared = Buffer.alloc(MSG, 0x5a);
      const pump = (async () => {
        // Bounded: at most 4x the offer, or until the measurement ends.
        for (let i = 0; i < 100_000 && !stop && st.offered < offerCount(MSG) * 4; i++) {
          if (paused) await new Promise<void>((r) => (resumePump = r));
          if (stop) break;
          // One shared payload: the load is the library's work, not the test's allocations.
          if ((await offer(slow.ws, st, 16, false, shared)) === 'closed') break;
        }
      })();
      const setPaused = (p: boolean) => {
        paused = p;
        if (!p && resumePump) {
          const r = resumePump;
          resumePump = null;
          r();
        }
      };
      // The slow consumer reaches its cap first (pump runs; bounded, guarded).
      setPaused(false);
      await withTimeout(
        (async () => {
          for (let i = 0; i < 100_000 && slow.ws.counters.dropped === 0; i++) await tick();
        })(),
        ms(10000),
        'the slow consumer to reach its cap',
      );
      setPaused(true);

      const idle: number[] = [];
      const loaded: number[] = [];
      for (let b = 0; b < BLOCKS; b++) {
        setPaused(true);
        await rtts(PER_BLOCK, idle);
        setPaused(false);
        await rtts(PER_BLOCK, loaded);
      }
      stop = true;
      setPaused(false);
      await withTimeout(pump, ms(5000), 'the pump to stop');

      const p = (v: number[], q: number) => percentile(v, q);
      const fmt = (v: number) => `${(v * 1000).toFixed(0)} us`;
      const top = (v: number[]) => [...v].sort((a, b) => b - a).slice(0, 5).map((x) => x.toFixed(1)).join('/');
      console.log(
        `[slow-consumer latency] ${idle.length} round trips each: unloaded p50 ${fmt(p(idle, 50))} p99 ${fmt(p(idle, 99))}; ` +
          `with a slow consumer p50 ${fmt(p(loaded, 50))} p99 ${fmt(p(loaded, 99))}; ` +
          `slowest unloaded ${top(idle)} ms, loaded ${top(loaded)} ms; ` +
          `meanwhile offered ${st.offered} x 64 KiB to it, dropped ${slow.ws.counters.dropped}, max bufferedAmount ${mib(st.maxBuffered)}, RSS +${mib(st.rssMax - st.rssBase)}`,
      );
      assert.equal(slow.ws.readyState, 1, 'the slow consumer is still connected (drop-oldest)');
      assert.ok(slow.ws.counters.dropped > 0, 'the slow consumer was under load (messages dropped)');
      assertBounded(st);
      assert.ok(p(loaded, 50) <= 2 * p(idle, 50) + 2, `p50 ${p(loaded, 50).toFixed(3)} ms vs unloaded ${p(idle, 50).toFixed(3)} ms`);
      assert.ok(p(loaded, 99) <= 2 * p(idle, 99) + 2, `p99 ${p(loaded, 99).toFixed(3)} ms vs unloaded ${p(idle, 99).toFixed(3)} ms`);
    } finally {
      const closed = once(client, 'close', ms(3000)).catch(() => client.terminate());
      client.close(1000);
      await closed;
    }
  });
});

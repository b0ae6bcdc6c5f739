// Acceptance: no false positives. A slow or busy line is not a dead one.
//
// 1. Latency, scaled: heartbeat normal/25 (interval 1000, timeout 200..600)
//    over a FaultProxy adding 12 ms ± 6 ms each way (the issue's 300 ± 150 ms
//    scaled by the same 25, so latency / timeout stays realistic), for
//    "5 minutes scaled" (300 s / 25 = 12 s): idle connections and connections
//    with sporadic traffic (random gaps up to 2 intervals, random direction),
//    for a LifelineClient and a plain `ws` client. Nobody is declared dead, no
//    ping is missed, pings are sent and answered.
// 2. Latency, real: 300 ms ± 150 ms each way (RTT 300..900 ms) with a custom
//    config sized for it (interval 2000, timeout 1000..3000), same checks,
//    same 12 s.
// 3. A large message through a slow link, heartbeat running on both ends,
//    once server -> client and once client -> server: the receiver hears a
//    frame still arriving (any byte read counts as life, so it never pings);
//    the sender's ping waits behind the message, so it must count its
//    draining backlog as life. Nobody is declared dead, the message arrives
//    intact (sha256), and stats and wire tap show pings sent and answered.
//    Sizes keep the issue's ratios (see ISSUE_RATIO): 48 MiB at 4 MiB/s with
//    normal/10. KERNEL_TAIL (todo) shows a limitation beyond the issue.
//    FaultProxy throttles with throttleClock (see helpers.ts).
//
// Soak lengths are the thing under test (runFor), every wait has a guard.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { LifelineServer, ServerSession } from '../../../src/server/lifeline-server.js';
import { HEARTBEAT_PRESETS, type HeartbeatConfig } from '../../../src/session/heartbeat.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { Cleanup, DeathWatch, nextSession, noDelay, now, portOf, runFor, scaled, sha256, show, startServer, throttleClock, until, WireTap } from './helpers.js';
import { seededRandom as prng } from '../../../src/session/backoff.js';

const results: string[] = [];
after(() => {
  console.log('\n=== no false positives ===');
  for (const r of results) console.log(r);
});
function report(line: string): void {
  results.push(line);
  console.log(line);
}


// ------------------------------------------------------------------ 1 + 2: latency soak

interface Peer {
  name: string;
  session: ServerSession;
  /** Sends one message from the client side. */
  clientSend(m: string): void;
  clientStats(): { pingsSent: number; pongsReceived: number; pingsMissed: number } | null;
  clientOpen(): boolean;
}

async function connectPeers(server: LifelineServer, proxy: FaultProxy, cleanup: Cleanup, watch: DeathWatch, guard: number): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (const [kind, traffic] of [
    ['lifeline', 'idle'],
    ['lifeline', 'sporadic'],
    ['ws', 'idle'],
    ['ws', 'sporadic'],
  ] as const) {
    const name = `${kind}/${traffic}`;
    const sessionP = nextSession(server, guard);
    const connP = proxy.onConnection(guard).then(noDelay);
    if (kind === 'lifeline') {
      const c = new LifelineClient(proxy.url('/'));
      c.on('error', () => {});
      cleanup.add(() => c.close());
      watch.client(name, c);
      await Promise.all([once(c, 'open', guard), connP]);
      const session = await sessionP;
      peers.push({ name, session, clientSend: (m) => c.send(m), clientStats: () => c.stats().heartbeat, clientOpen: () => c.state === 'open' });
    } else {
      const w = new WsClient(proxy.url('/'));
      w.on('error', () => {});
      cleanup.add(() => w.terminate());
      watch.ws(name, w);
      await Promise.all([once(w, 'open', guard), connP]);
      const session = await sessionP;
      peers.push({ name, session, clientSend: (m) => w.send(m), clientStats: () => null, clientOpen: () => w.readyState === WsClient.OPEN });
    }
    watch.session(name, peers.at(-1)!.session);
  }
  return peers;
}

async function latencySoak(label: string, hb: HeartbeatConfig, delayMs: number, jitterMs: number, runMs: number, seed: number): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const server = await startServer({ heartbeat: hb });
    cleanup.add(() => server.close({ timeout: ms(1000) }));
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: portOf(server) });
    cleanup.add(() => proxy.close());
    proxy.delay(delayMs, jitterMs, 'both');
    const watch = new DeathWatch();
    const peers = await connectPeers(server, proxy, cleanup, watch, ms(5000 + 4 * (delayMs + jitterMs)));

    // Sporadic traffic: gaps uniform in [0, 2 * interval], random direction.
    const rand = prng(seed);
    let messages = 0;
    let timer: NodeJS.Timeout | null = null;
    const schedule = () => {
      timer = setTimeout(() => {
        for (const p of peers) {
          if (!p.name.endsWith('sporadic') || !p.clientOpen() || p.session.state !== 'open') continue;
          if (rand() < 0.5) p.clientSend(`c${messages}`);
          else p.session.send(`s${messages}`);
          messages++;
        }
        schedule();
      }, rand() * 2 * hb.interval);
    };
    schedule();
    cleanup.add(() => timer && clearTimeout(timer));
    const t0 = now();
    await runFor(runMs);
    if (timer) clearTimeout(timer);
    timer = null;
    const elapsed = now() - t0;

    report(`${label}: ${show(hb)}; delay ${delayMs} ± ${jitterMs} ms each way; ran ${(elapsed / 1000).toFixed(1)} s; ${messages} sporadic messages`);
    for (const p of peers) {
      const s = p.session.stats().heartbeat!;
      const c = p.clientStats();
      report(
        `  ${p.name.padEnd(18)} server: ${s.pingsSent} pings, ${s.pongsReceived} answered, ${s.pingsMissed} missed, rtt ${s.rtt.smoothed} (min ${s.rtt.min}, max ${s.rtt.max}), timeout ${s.timeout}` +
          (c ? ` | client: ${c.pingsSent} pings, ${c.pongsReceived} answered, ${c.pingsMissed} missed` : ''),
      );
    }
    assert.deepEqual(watch.events, [], 'nobody was declared dead, no session or client closed');
    for (const p of peers) {
      assert.equal(p.session.state, 'open', `${p.name}: session open`);
      assert.ok(p.clientOpen(), `${p.name}: client open`);
      const s = p.session.stats().heartbeat!;
      const c = p.clientStats();
      assert.equal(s.pingsMissed + (c?.pingsMissed ?? 0), 0, `${p.name}: no ping missed`);
      assert.notEqual(s.state, 'dead');
      // Pings happened and were answered (on a lifeline connection either end may do the pinging).
      const sent = s.pingsSent + (c?.pingsSent ?? 0);
      const answered = s.pongsReceived + (c?.pongsReceived ?? 0);
      if (p.name.endsWith('idle')) {
        const expected = Math.floor(elapsed / (hb.interval + hb.timeoutCeiling)) - 1;
        assert.ok(sent >= expected, `${p.name}: ${sent} pings on an idle line in ${elapsed.toFixed(0)} ms (expected >= ${expected})`);
      }
      assert.ok(sent >= 1, `${p.name}: pings were sent`);
      assert.ok(answered >= sent - 2, `${p.name}: ${answered} of ${sent} pings answered (the last ones may be in flight)`);
    }
  } finally {
    await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
  }
}

// ------------------------------------------------------------------ 3: one large message through a throttled link

interface BigCase {
  label: string;
  hb: HeartbeatConfig;
  hbName: string;
  size: number;
  rate: number;
}

const MiB = 1024 * 1024;

/**
 * The issue's case scaled with its ratios kept. Real: 32 MiB at 1 MiB/s (32 s)
 * against normal (dead after 30-40 s of silence); the part of the message that
 * leaves user space early sits in kernel socket buffers (~4.5 MiB on this
 * loopback: the sender's tcp_wmem grows to 4 MiB), drains in ~4.5 s and is
 * invisible to the sender: ~0.13 of the window. Scaled: normal/10 (window
 * 3-4 s), 48 MiB at 4 MiB/s (12 s, 3-4 windows), kernel tail ~1.1 s (~0.3 of
 * the window). Scaling only the heartbeat and the rate, as in "4 MiB at
 * 512 KiB/s against a 1 s window", would put the whole message in kernel
 * buffers within 150 ms (8 s of invisible tail for a 0.9 s window): a test of
 * something the issue does not ask (see KERNEL_TAIL below).
 */
const ISSUE_RATIO: BigCase = { label: 'issue ratio', hb: scaled('normal', 10), hbName: 'normal/10', size: 48 * MiB, rate: 4 * MiB };

/**
 * Beyond the issue, unscaled: the aggressive preset (dead after 6-9 s) and a
 * 4 MiB message over a 2 Mbit/s link (256 KiB/s, 16 s), e.g. a photo upload
 * from a phone. The kernel takes the whole message at once, so the sender has
 * no backlog to watch and its ping waits behind 4 MiB. It stays alive only
 * because the receiver, having sent nothing for an interval, pings as a
 * keepalive (this failed before that rule: the sender gave up at ~9 s).
 */
const KERNEL_TAIL: BigCase = { label: 'kernel tail', hb: { ...HEARTBEAT_PRESETS.aggressive }, hbName: 'aggressive (unscaled)', size: 4 * MiB, rate: 256 * 1024 };

async function bigMessage(c: BigCase, direction: 'server->client' | 'client->server'): Promise<void> {
  const cleanup = new Cleanup();
  try {
    // Buffers large enough for the message (defaults: 8 MiB replay / outbox).
    const server = await startServer({ heartbeat: c.hb, replayMaxBytes: 2 * c.size + MiB });
    cleanup.add(() => server.close({ timeout: ms(1000) }));
    // 64 KiB of queue in the proxy (a router's worth), 10 ms clock steps (see throttleClock).
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: portOf(server) }, { now: throttleClock, highWaterMark: 64 * 1024 });
    cleanup.add(() => proxy.close());
    proxy.throttle(c.rate, 'both');
    const connP = proxy.onConnection().then(noDelay);
    const sessionP = nextSession(server);
    const client = new LifelineClient(proxy.url('/'), { outboxMaxBytes: 2 * c.size + MiB });
    client.on('error', () => {});
    cleanup.add(() => client.close());
    const tap = new WireTap(await connP);
    await once(client, 'open', ms(5000));
    const session = await sessionP;
    let t0 = now();
    const timeline: string[] = [];
    const watch = new DeathWatch();
    watch.client('client', client);
    watch.session('server', session);
    const events = watch.events;
    const liveness: string[] = [];
    client.on('liveness', (s) => liveness.push(`client ${s} +${(now() - t0).toFixed(0)}`));
    session.on('liveness', (s) => liveness.push(`server ${s} +${(now() - t0).toFixed(0)}`));

    const payload = randomBytes(c.size);
    const digest = sha256(payload);
    const expectedMs = (c.size / c.rate) * 1000;
    const arrived = new Promise<Uint8Array>((resolve) => {
      if (direction === 'server->client') client.on('message', (d) => typeof d !== 'string' && d.length === c.size && resolve(d));
      else session.on('message', (d, isBinary) => isBinary && d.length === c.size && resolve(d));
    });
    const arrivedOrDead = Promise.race([
      arrived,
      new Promise<never>((_, reject) => {
        const fail = () =>
          setImmediate(() =>
            reject(new Error(`declared dead before the message arrived: ${events.join('; ')}; liveness ${liveness.join(', ')}; timeline [${timeline.join(', ')}]`)),
          );
        client.on('liveness', (st) => st === 'dead' && fail());
        session.on('liveness', (st) => st === 'dead' && fail());
      }),
    ]);
    // Timeline: what the proxy has read from the sender / forwarded to the
    // receiver, and what still waits in the sender's user-space buffer.
    const dir = direction === 'server->client' ? 'down' : 'up';
    const senderBuffered = () =>
      direction === 'server->client' ? session.socket.bufferedAmount : ((client as unknown as { socket: { bufferedAmount: number } | null }).socket?.bufferedAmount ?? NaN);
    const sample = () => {
      const k = (n: number) => `${(n / MiB).toFixed(1)}M`;
      const pc = proxy.counters[dir];
      timeline.push(`${((now() - t0) / 1000).toFixed(1)}s read ${k(pc.received)} fwd ${k(pc.forwarded)} sender-buffered ${k(senderBuffered())}`);
    };
    const sampler = setInterval(sample, Math.max(1000, expectedMs / 8));
    cleanup.add(() => clearInterval(sampler));
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    cleanup.add(() => lag.disable());

    t0 = now();
    if (direction === 'server->client') session.send(payload);
    else client.send(payload);
    let got: Uint8Array;
    try {
      got = await withTimeout(arrivedOrDead, ms(expectedMs * 2 + 5000), `the ${c.size} byte message`);
    } finally {
      clearInterval(sampler);
      lag.disable();
    }
    const took = now() - t0;
    const lagNote = `event-loop delay max ${(lag.max / 1e6).toFixed(0)} ms`;
    const receiverPings = direction === 'server->client' ? client.stats().heartbeat!.pingsSent : session.stats().heartbeat!.pingsSent;

    // Idle after the transfer: the heartbeat pings and gets answers again.
    proxy.pass();
    const answered = () => session.stats().heartbeat!.pongsReceived + client.stats().heartbeat!.pongsReceived;
    const before = answered();
    await until(() => answered() > before, ms(c.hb.interval * 3 + c.hb.timeoutCeiling + 2000), 'a ping answered after the transfer');
    const s = session.stats().heartbeat!;
    const cs = client.stats().heartbeat!;
    const w = tap.counts;
    const window = c.hb.interval + c.hb.timeoutInitial;
    report(
      `big message, ${c.label}, ${direction}: ${c.size / MiB} MiB at ${c.rate / 1024} KiB/s, ${c.hbName} (${show(c.hb)}): ` +
        `arrived in ${(took / 1000).toFixed(1)} s (${(took / window).toFixed(1)} x the ${window} ms window), sha256 ${sha256(got) === digest ? 'ok' : 'MISMATCH'}; ` +
        `receiver pinged ${receiverPings} times during the transfer; ` +
        `server ${s.pingsSent} pings/${s.pongsReceived} answered/${s.pingsMissed} missed; client ${cs.pingsSent}/${cs.pongsReceived}/${cs.pingsMissed}; ` +
        `wire pings up ${w.up.appPings} down ${w.down.appPings}, pongs up ${w.up.appPongs} down ${w.down.appPongs}; ${lagNote}; ` +
        `timeline [${timeline.join(', ')}]; liveness ${liveness.join(', ')}; events ${events.join('; ') || 'none'}`,
    );
    assert.equal(got.length, c.size);
    assert.equal(sha256(got), digest, 'message intact');
    assert.deepEqual(events, [], 'nobody was declared dead');
    assert.equal(client.state, 'open');
    assert.equal(session.state, 'open');
    // A frame still arriving is life for the receiver (it never declared the
    // sender dead, above). It sends nothing else, so it pings as a keepalive
    // about once per interval: that is how the sender, whose own pings wait
    // behind its message, keeps hearing from it.
    const expected = Math.floor(took / c.hb.interval);
    assert.ok(receiverPings >= 1 && receiverPings <= expected + 1, `receiver keepalive pings: ${receiverPings} (about one per interval: <= ${expected + 1})`);
    assert.equal(s.pingsMissed + cs.pingsMissed, 0, 'no ping missed');
    assert.ok(s.pingsSent + cs.pingsSent >= 1 && w.up.appPings + w.down.appPings >= 1, 'pings were sent (stats and wire)');
    assert.ok(answered() >= 1 && w.up.appPongs + w.down.appPongs >= 1, 'pings were answered (stats and wire)');
  } finally {
    await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
  }
}

describe('no false positives', { concurrency: true }, () => {
  const NORMAL = scaled('normal', 25);
  test('latency 12 ± 6 ms each way (300 ± 150 / 25), normal/25, 12 s (5 min / 25), idle and sporadic traffic: nobody dies', async () => {
    await latencySoak('latency /25', NORMAL, 12, 6, 300_000 / 25, 1);
  });
  const SIZED: HeartbeatConfig = { interval: 2000, timeoutFloor: 1000, timeoutCeiling: 3000, timeoutInitial: 3000, k: 4, lateSlack: 1000 };
  test('latency 300 ± 150 ms each way (unscaled), config sized for it, 12 s, idle and sporadic traffic: nobody dies', async () => {
    await latencySoak('latency unscaled', SIZED, 300, 150, 12_000, 2);
  });
  for (const direction of ['server->client', 'client->server'] as const) {
    const c = ISSUE_RATIO;
    test(`one ${c.size / MiB} MiB message ${direction} at ${c.rate / MiB} MiB/s, ${c.hbName} on both ends: nobody dies, message intact`, async () => {
      await bigMessage(c, direction);
    });
  }
  for (const direction of ['server->client', 'client->server'] as const) {
    const c = KERNEL_TAIL;
    test(
      `one ${c.size / MiB} MiB message ${direction} at ${c.rate / 1024} KiB/s, ${c.hbName}: nobody dies (the receiver's keepalive pings reach the sender)`,
      async () => {
        await bigMessage(c, direction);
      },
    );
  }
});

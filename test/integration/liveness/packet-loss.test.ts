// Acceptance under real packet loss (root only: network namespace + nftables).
//
// A LifelineServer and its clients (one LifelineClient with reconnect off, one
// plain `ws` client) run as child processes (netns-peer.ts) INSIDE a private
// network namespace (LossyLink), talking over its own loopback; nftables
// drops packets on the server's port on the way in, as a lossy network would
// (no RST, no FIN, no EPERM). Heartbeat: aggressive/5 (interval 1000, timeout
// 200..800).
//
// 1. dropAll(port) right after the server received a message on each
//    session (so the silence starts at a known time, measured on the
//    server's own clock): the server reports heartbeat-timeout for both
//    sessions within interval + timeout + slack (helpers.ts detectionBound),
//    not before interval; the LifelineClient reports heartbeat-timeout too.
//    TCP alone would retransmit for ~15 minutes before giving up.
// 2. dropShare(port, P) for 10 s with pings and sporadic messages: TCP
//    retransmits hide the loss from the application, but each lost segment
//    costs at least the 200 ms minimum RTO (Linux TCP_RTO_MIN), doubling per
//    retry, which does not scale with our presets: a segment lost n times in
//    a row arrives 200 * (2^n - 1) ms late. What holds is asserted and
//    everything is printed (see the comments at each case).
//
// Timing-sensitive (deadlines of 200-800 ms): scripts/run-tests.mjs runs this
// file on its own, after the rest.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { HEARTBEAT_PRESETS, type HeartbeatConfig } from '../../../src/session/heartbeat.js';
import { LossyLink, netnsAvailable } from '../../helpers/netns.js';
import { ms, skipUnless, withTimeout } from '../../helpers/peers.js';
import { detectionBound, runFor, scaled, show } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'netns-peer.ts');
const available = await netnsAvailable();

const FACTOR = 5;
const HB = scaled('aggressive', FACTOR);

interface Ev {
  ev: string;
  at: number;
  name?: string;
  [k: string]: unknown;
}

/** A netns-peer.ts child: JSON events from stdout, commands to stdin. */
class Peer {
  readonly events: Ev[] = [];
  private stderr = '';
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(readonly label: string, readonly child: ChildProcess) {
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      partial += d;
      let i;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        try {
          this.events.push(JSON.parse(line) as Ev);
        } catch {
          this.stderr += `(stdout) ${line}\n`;
        }
      }
      for (const w of [...this.waiters]) w();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The first event (already seen or to come) matching `pred`. */
  wait(pred: (e: Ev) => boolean, what: string, timeoutMs = ms(15_000)): Promise<Ev> {
    let listener!: () => void;
    return withTimeout(
      new Promise<Ev>((resolve) => {
        listener = () => {
          const e = this.events.find(pred);
          if (e) resolve(e);
        };
        this.waiters.add(listener);
        listener();
      }),
      timeoutMs,
      `${this.label}: ${what} (events ${JSON.stringify(this.events.slice(-8))}, stderr ${this.stderr.slice(-500)})`,
    ).finally(() => this.waiters.delete(listener));
  }

  /** Calls `listener` after each batch of events; returns the unsubscribe. */
  watch(listener: () => void): () => void {
    this.waiters.add(listener);
    return () => this.waiters.delete(listener);
  }

  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Asks for stats and returns the answer. */
  async stats(): Promise<Ev> {
    const n = this.events.filter((e) => e.ev === 'stats').length;
    this.command('stats');
    await this.wait(() => this.events.filter((e) => e.ev === 'stats').length > n, 'stats', ms(5000));
    return this.events.filter((e) => e.ev === 'stats').at(-1)!;
  }

  ends(): Ev[] {
    return this.events.filter((e) => e.ev === 'end');
  }
}

function spawnPeer(link: LossyLink, label: string, args: string[]): Peer {
  return new Peer(label, link.exec(process.execPath, ['--import', 'tsx', PEER, ...args], { cwd: ROOT }));
}

/** A server and a client process in the namespace, both sessions open. */
async function pair(link: LossyLink, label: string, hb: HeartbeatConfig): Promise<{ server: Peer; client: Peer; port: number }> {
  const server = spawnPeer(link, `${label} server`, ['server', JSON.stringify(hb)]);
  const listening = await server.wait((e) => e.ev === 'listening', 'listening', ms(30_000));
  const port = listening.port as number;
  const client = spawnPeer(link, `${label} client`, ['client', `ws://127.0.0.1:${port}/`]);
  await Promise.all([
    server.wait((e) => e.ev === 'connection' && e.name === 'lifeline', 'lifeline session', ms(30_000)),
    server.wait((e) => e.ev === 'connection' && e.name === 'ws', 'ws session', ms(30_000)),
    client.wait((e) => e.ev === 'open' && e.name === 'lifeline', 'lifeline open', ms(30_000)),
    client.wait((e) => e.ev === 'open' && e.name === 'ws', 'ws open', ms(30_000)),
  ]);
  return { server, client, port };
}

/** Resolves once `done()` holds, checked after each event of any of `peers`. */
function until(peers: Peer[], done: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const unwatch: Array<() => void> = [];
  return withTimeout(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (done()) resolve();
      };
      for (const p of peers) unwatch.push(p.watch(check));
      check();
    }),
    timeoutMs,
    what,
  ).finally(() => {
    for (const u of unwatch) u();
  });
}

const results: string[] = [];
function report(line: string): void {
  results.push(line);
  console.log(line);
}

describe(`packet loss in a network namespace (${show(HB)})`, skipUnless(available, 'netns + nftables (root)'), () => {
  let link: LossyLink;
  before(async () => {
    link = await LossyLink.create();
  });
  after(async () => {
    await link?.destroy();
    console.log('\n=== packet loss ===');
    for (const r of results) console.log(r);
  });

  test('dropAll(port): the server reports heartbeat-timeout for both sessions within interval + timeout + slack', async () => {
    const { server, client, port } = await pair(link, 'dropAll', HB);
    // A fresh inbound message on each session marks the start of the silence.
    client.command('send');
    const [llMsg, wsMsg] = await Promise.all([
      server.wait((e) => e.ev === 'message' && e.name === 'lifeline', 'lifeline message', ms(5000)),
      server.wait((e) => e.ev === 'message' && e.name === 'ws', 'ws message', ms(5000)),
    ]);
    const dropStart = Date.now();
    await link.dropAll(port);
    const dropApplied = Date.now();
    const bound = detectionBound(HB, FACTOR, 'server');
    const guard = ms(bound.max + 10_000);
    const [llEnd, wsEnd, clEnd] = await Promise.all([
      server.wait((e) => e.ev === 'end' && e.name === 'lifeline', 'lifeline session end', guard),
      server.wait((e) => e.ev === 'end' && e.name === 'ws', 'ws session end', guard),
      client.wait((e) => e.ev === 'end' && e.name === 'lifeline', 'LifelineClient end', guard),
    ]);
    const dropped = await link.dropped();
    const llDet = llEnd.at - llMsg.at;
    const wsDet = wsEnd.at - wsMsg.at;
    report(
      `dropAll: nft applied in ${dropApplied - dropStart} ms; server detected lifeline session in ${llDet} ms (${llEnd.via} ${llEnd.cause}), ` +
        `ws session in ${wsDet} ms (${wsEnd.via} ${wsEnd.cause}) after its last message; LifelineClient ${clEnd.cause} ${clEnd.at - dropApplied} ms after the drop; ` +
        `bound ${bound.min}..${bound.max.toFixed(0)} (${bound.describe}); nft dropped ${dropped.packets} packets / ${dropped.bytes} bytes`,
    );
    for (const [name, end, det] of [['lifeline', llEnd, llDet], ['ws', wsEnd, wsDet]] as const) {
      assert.equal(end.cause, 'heartbeat-timeout', `${name} session: ${JSON.stringify(end)}`);
      assert.ok(det >= bound.min, `${name}: detected ${det} ms after the last message: before the interval`);
      assert.ok(det <= bound.max, `${name}: detected ${det} ms after the last message: later than ${bound.describe}`);
    }
    assert.equal(wsEnd.via, 'close', 'a plain session ends');
    assert.equal(clEnd.cause, 'heartbeat-timeout', `LifelineClient: ${JSON.stringify(clEnd)}`);
    assert.ok(dropped.packets > 0, 'nftables dropped packets');
    await link.clear();
  });

  interface ShareCase {
    percent: number;
    hb: HeartbeatConfig;
    hbName: string;
    /** Assert that nobody dies (else: report only). */
    strict: boolean;
  }
  // The presets' own timeouts, with a ping every second (their intervals of 5
  // and 25 s would give a handful of pings in 10 s).
  const AGGRESSIVE_1S: HeartbeatConfig = { ...HEARTBEAT_PRESETS.aggressive, interval: 1000 };
  const NORMAL_1S: HeartbeatConfig = { ...HEARTBEAT_PRESETS.normal, interval: 1000 };
  // A ping dies when its exchange (the ping, or the answer, or a segment
  // either waits behind) is held up by retransmissions past the timeout. At
  // loss rate q a segment is lost n times in a row with probability q^n, so a
  // strict "nobody dies" needs a timeout that n losses cannot reach with q^n
  // negligible over the run's ~20-30 pings. 30 % with aggressive's own
  // timeouts saw a death in 8 of 25 runs; q^3 scales that to about 1 run in
  // 100 at 10 % (measured: 0 of 24), too often for CI, so that case is
  // reported only.
  const SHARE_CASES: ShareCase[] = [
    // Scaled aggressive (floor 200 ms) against 30 % loss: one lost segment
    // already costs TCP's minimum RTO (200 ms), which does not scale: expect deaths.
    { percent: 30, hb: HB, hbName: `aggressive/${FACTOR}`, strict: false },
    // aggressive's floor of 1 s outlasts a segment lost twice (200 + 400 ms),
    // not three times (1.4 s).
    { percent: 30, hb: AGGRESSIVE_1S, hbName: 'interval 1000 + aggressive timeouts', strict: false },
    { percent: 10, hb: AGGRESSIVE_1S, hbName: 'interval 1000 + aggressive timeouts', strict: false },
    // Three losses in a row at 3 %: 2.7e-5 a segment, about 3e-4 a run.
    { percent: 3, hb: AGGRESSIVE_1S, hbName: 'interval 1000 + aggressive timeouts', strict: true },
    // normal's floor of 5 s outlasts four losses in a row (3 s); five at 10 %: 1e-5 a segment.
    { percent: 10, hb: NORMAL_1S, hbName: 'interval 1000 + normal timeouts', strict: true },
  ];
  const SHARE_MS = 10_000;
  // A fixed count, the last one 2.5 s before the loss ends; the count is
  // taken once every connection has its messages or has ended (a message
  // still being retransmitted when the loss stops arrives within the RTO).
  const SENDS = 3;
  const SEND_EVERY_MS = 2500;

  test(`dropShare for ${SHARE_MS / 1000} s, idle but for ${SENDS} messages ${SEND_EVERY_MS / 1000} s apart: ${SHARE_CASES.map((c) => `${c.percent} % with ${c.hbName}${c.strict ? ' (nobody dies)' : ' (reported)'}`).join('; ')}`, async () => {
    const pairs = await Promise.all(SHARE_CASES.map((c) => pair(link, `dropShare ${c.percent} ${c.hbName}`, c.hb)));
    for (const [i, c] of SHARE_CASES.entries()) await link.dropShare(pairs[i]!.port, c.percent);
    const t0 = Date.now();
    for (let i = 0; i < SENDS; i++) {
      await runFor(SEND_EVERY_MS);
      for (const p of pairs) p.client.command('send');
    }
    await runFor(Math.max(0, t0 + SHARE_MS - Date.now()));
    const dropped = await link.dropped();
    await link.clear();
    report(`dropShare: nft dropped ${dropped.packets} packets in ${SHARE_MS} ms over ${SHARE_CASES.length} ports`);
    const got = (p: Peer, name: string): number => p.events.filter((e) => e.ev === 'message' && e.name === name).length;
    const ended = (p: { server: Peer; client: Peer }, name: string): boolean =>
      p.server.ends().some((e) => e.name === name) || p.client.ends().some((e) => e.name === name);
    // Up to 3 s after the loss stops: a segment lost three times in a row is
    // sent again within 1.6 s of its last loss (200 ms doubled three times).
    await until(
      pairs.flatMap((p) => [p.server, p.client]),
      () => pairs.every((p) => ['lifeline', 'ws'].every((name) => got(p.server, name) >= SENDS || ended(p, name))),
      'every message, or an end, on every connection',
      ms(3000),
    ).catch(() => undefined); // what is missing then is reported as a failure below
    const failures: string[] = [];
    for (const [i, c] of SHARE_CASES.entries()) {
      const { server, client } = pairs[i]!;
      const srvStats = await server.stats();
      const cliStats = await client.stats();
      const ends = [...server.ends(), ...client.ends()];
      const deaths = ends.map((e) => `${e.name} ${e.via ?? ''} ${e.cause} at +${e.at - t0} ms`);
      const msgs = server.events.filter((e) => e.ev === 'message');
      type Hb = { pingsSent: number; pongsReceived: number; pingsMissed: number; timeout: number; rtt: { smoothed: number | null; max: number | null } };
      const sessions = (srvStats.sessions as Array<{ name: string; state: string; heartbeat: Hb }>).map(
        (s) => `${s.name} ${s.state}: ${s.heartbeat.pingsSent} pings/${s.heartbeat.pongsReceived} answered/${s.heartbeat.pingsMissed} missed, rtt ${s.heartbeat.rtt.smoothed} (max ${s.heartbeat.rtt.max}), timeout ${s.heartbeat.timeout}`,
      );
      const cl = cliStats.client as Hb | null;
      report(
        `dropShare ${c.percent} % for ${SHARE_MS / 1000} s, ${c.hbName} (${show(c.hb)}): ${msgs.length} of ${2 * SENDS} messages arrived; ` +
          `server [${sessions.join('; ')}]; LifelineClient ${cl ? `${cl.pingsSent} pings/${cl.pongsReceived} answered/${cl.pingsMissed} missed, rtt ${cl.rtt.smoothed} (max ${cl.rtt.max}), timeout ${cl.timeout}` : cliStats.state}; ` +
          `deaths: ${deaths.join(', ') || 'none'}`,
      );
      // Whatever died, died of the heartbeat: TCP itself never gave up in 10 s.
      // The first end of each connection (server or client side, whichever
      // gave up first; the other then sees the socket drop) is a heartbeat-timeout.
      for (const name of ['lifeline', 'ws']) {
        const mine = ends.filter((e) => e.name === name);
        if (mine.length === 0) continue;
        const first = Math.min(...mine.map((e) => e.at));
        // Both ends are stamped by different processes (Date.now(), ms): the
        // side that saw the socket drop can read a millisecond or two earlier.
        const SKEW_MS = 20;
        if (!mine.some((e) => e.at - first <= SKEW_MS && e.cause === 'heartbeat-timeout')) failures.push(`${c.percent} % ${c.hbName}: ${name} did not end by heartbeat first: ${JSON.stringify(mine)}`);
      }
      // TCP hides loss: every message of a connection that stayed up arrived.
      for (const name of ['lifeline', 'ws']) {
        if (!ends.some((e) => e.name === name)) {
          const n = msgs.filter((e) => e.name === name).length;
          if (n !== SENDS) failures.push(`${c.percent} % ${c.hbName}: ${name} got ${n} of ${SENDS} messages`);
        }
      }
      if (c.strict && deaths.length > 0) failures.push(`${c.percent} % with ${c.hbName}: false deaths ${deaths.join(', ')}`);
    }
    assert.ok(dropped.packets > 0, 'packets were dropped');
    assert.deepEqual(failures, []);
  });
});

// Acceptance: the answer timeout adapts to the measured RTT
// (clamp(srtt + k * rttvar, floor, ceiling), RFC 6298 estimator).
//
// Config: interval 300, timeout floor 100, ceiling 5000 (initial 5000), k 4.
// - On loopback (direct connection) after a few answered pings the timeout
//   sits at its floor: RTT is ~1 ms, 3 * RTT < floor.
// - Through a FaultProxy adding 200 ms each way (so RTT ~400 ms: 200 down for
//   the ping + 200 up for the pong), the RTT estimate settles near 400 ms and
//   the timeout rises above the floor (to srtt + 4 * rttvar, well below the
//   ceiling).
// Checked on the server for a plain `ws` peer (protocol pings) and a
// LifelineClient (app-level pings), and on the LifelineClient itself. Each
// side is made to ping with probe() so it has its own samples (with equal
// intervals the two ends of a lifeline connection take turns: whichever pings
// first keeps the other quiet).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import type { HeartbeatConfig, HeartbeatStats } from '../../../src/session/heartbeat.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { Cleanup, nextSession, noDelay, portOf, show, startServer, until } from './helpers.js';

const HB: HeartbeatConfig = { interval: 300, timeoutFloor: 100, timeoutCeiling: 5000, timeoutInitial: 5000, k: 4, lateSlack: 300 };
/** Added by the proxy in each direction. */
const DELAY_EACH_WAY = 200;
const RTT = 2 * DELAY_EACH_WAY;
const SAMPLES = 6;

const results: string[] = [];
after(() => {
  console.log('\n=== adaptive timeout ===');
  for (const r of results) console.log(r);
});

interface Pinger {
  name: string;
  probe(): void;
  stats(): HeartbeatStats;
}

/** Makes `p` collect `n` RTT samples of its own (probe, wait for the pong, repeat). */
async function collect(p: Pinger, n: number, rttGuess: number): Promise<HeartbeatStats> {
  while (p.stats().rtt.samples < n) {
    const have = p.stats().rtt.samples;
    if (p.stats().state === 'alive') p.probe();
    await until(() => p.stats().rtt.samples > have, ms(rttGuess + 3000), `${p.name}: RTT sample ${have + 1}`, 5);
  }
  return p.stats();
}

function fmt(name: string, s: HeartbeatStats): string {
  return `${name.padEnd(28)} samples ${s.rtt.samples}, rtt last ${s.rtt.last} / smoothed ${s.rtt.smoothed} / var ${s.rtt.variation} / min ${s.rtt.min} / max ${s.rtt.max} -> timeout ${s.timeout} ms`;
}

async function setup(cleanup: Cleanup, delayEachWay: number | null): Promise<Pinger[]> {
  const server = await startServer({ heartbeat: HB });
  cleanup.add(() => server.close({ timeout: ms(1000) }));
  let url = `ws://127.0.0.1:${portOf(server)}/`;
  let proxy: FaultProxy | null = null;
  if (delayEachWay !== null) {
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: portOf(server) });
    cleanup.add(() => proxy!.close());
    proxy.delay(delayEachWay, 0, 'both');
    url = proxy.url('/');
  }
  const guard = ms(5000 + 4 * (delayEachWay ?? 0));

  let sessionP = nextSession(server, guard);
  let connP = proxy?.onConnection(guard).then(noDelay);
  const client = new LifelineClient(url);
  client.on('error', () => {});
  cleanup.add(() => client.close());
  await Promise.all([once(client, 'open', guard), connP]);
  const llSession = await sessionP;

  sessionP = nextSession(server, guard);
  connP = proxy?.onConnection(guard).then(noDelay);
  const ws = new WsClient(url);
  ws.on('error', () => {});
  cleanup.add(() => ws.terminate());
  await Promise.all([once(ws, 'open', guard), connP]);
  const wsSession = await sessionP;

  const closes: string[] = [];
  for (const s of [llSession, wsSession]) {
    s.on('close', (i) => closes.push(`session ${s.mode} close ${i.cause}`));
    s.on('detached', (c) => closes.push(`session ${s.mode} detached ${c}`));
  }
  client.on('close', (i) => closes.push(`client close ${i.cause}`));
  cleanup.add(() => assert.deepEqual(closes, [], 'no connection was declared dead'));

  const session = (name: string, s: ServerSession): Pinger => ({ name, probe: () => s.probe(), stats: () => s.stats().heartbeat! });
  return [
    session('server -> ws (protocol)', wsSession),
    session('server -> LifelineClient', llSession),
    { name: 'LifelineClient -> server', probe: () => client.probe(), stats: () => client.stats().heartbeat! },
  ];
}

describe(`adaptive timeout (${show(HB)})`, () => {
  test('loopback: after a few pings the timeout is at its floor', async () => {
    const cleanup = new Cleanup();
    try {
      const pingers = await setup(cleanup, null);
      const stats = await Promise.all(pingers.map((p) => collect(p, 3, 10)));
      pingers.forEach((p, i) => {
        const line = `loopback   ${fmt(p.name, stats[i]!)}`;
        results.push(line);
        console.log(line);
        assert.equal(stats[i]!.timeout, HB.timeoutFloor, `${p.name}: timeout at the floor`);
        assert.ok(stats[i]!.rtt.smoothed! < HB.timeoutFloor / 4, `${p.name}: loopback RTT ${stats[i]!.rtt.smoothed} ms`);
      });
    } finally {
      await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
    }
  });

  test(`proxy adding ${DELAY_EACH_WAY} ms each way (RTT ~${RTT} ms): RTT estimate ~${RTT} ms, timeout above the floor`, async () => {
    const cleanup = new Cleanup();
    try {
      const pingers = await setup(cleanup, DELAY_EACH_WAY);
      const stats = await Promise.all(pingers.map((p) => collect(p, SAMPLES, RTT)));
      pingers.forEach((p, i) => {
        const s = stats[i]!;
        const line = `delay ${DELAY_EACH_WAY}x2 ${fmt(p.name, s)}`;
        results.push(line);
        console.log(line);
        assert.ok(s.rtt.min! >= RTT - 5, `${p.name}: min RTT ${s.rtt.min} >= ${RTT - 5}`);
        assert.ok(s.rtt.smoothed! >= RTT - 5 && s.rtt.smoothed! <= RTT + 100, `${p.name}: smoothed RTT ${s.rtt.smoothed} within ${RTT - 5}..${RTT + 100}`);
        assert.ok(s.timeout > HB.timeoutFloor, `${p.name}: timeout ${s.timeout} above the floor ${HB.timeoutFloor}`);
        // srtt + 4 * rttvar: at least the RTT, far below the ceiling once rttvar decays.
        assert.ok(s.timeout >= s.rtt.smoothed!, `${p.name}: timeout ${s.timeout} >= srtt ${s.rtt.smoothed}`);
        assert.ok(s.timeout <= 3 * RTT, `${p.name}: timeout ${s.timeout} <= ${3 * RTT}`);
        // The monitor rounds the clamped value up to a whole ms (0 to 1 ms more),
        // and stats() gives srtt and rttvar rounded to 0.01 ms (srtt + 4 * rttvar
        // off by up to 0.025 ms either way): 594.99 from the rounded figures
        // can be 595.01 inside, whose ceiling is 596.
        const expected = Math.min(HB.timeoutCeiling, Math.max(HB.timeoutFloor, s.rtt.smoothed! + HB.k * s.rtt.variation!));
        const off = s.timeout - expected;
        assert.ok(off > -0.03 && off < 1.03, `${p.name}: timeout ${s.timeout} = ceil(clamp(srtt + k*rttvar)) = ceil(${expected.toFixed(2)})`);
        assert.equal(s.pingsMissed, 0, `${p.name}: no ping missed`);
      });
    } finally {
      await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
    }
  });
});

// Acceptance: a blackholed server is detected by the client ("Clients detect
// too", docs/PROTOCOL.md Liveness).
//
// Our Node LifelineClient connects to a LifelineServer through a FaultProxy.
// Once open, the proxy blackholes both directions with policy 'drop' (no
// bytes, no FIN, no RST: TCP alone would wait for minutes). The client runs
// the heartbeat the server announced in its welcome and must give up on the
// connection with cause 'heartbeat-timeout' within interval + timeout + 1 s,
// scaled (see helpers.ts; the client runs one exact timer per connection, so
// no wheel ticks are added), and not before interval:
// - with reconnect: false, 'close' {cause: 'heartbeat-timeout'}, state 'closed';
// - with reconnect on (the default), 'reconnecting' {reason: 'heartbeat-timeout'},
//   state 'reconnecting' (it then retries through the blackhole).
// Detection time = that event - blackhole (performance.now()); printed.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { HeartbeatConfig } from '../../../src/session/heartbeat.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { Cleanup, detectionBound, noDelay, now, portOf, scaled, show, startServer, until } from './helpers.js';

interface Case {
  name: string;
  cfg: HeartbeatConfig;
  factor: number;
}

const CASES: Case[] = [
  { name: 'normal/25', cfg: scaled('normal', 25), factor: 25 },
  { name: 'aggressive/5', cfg: scaled('aggressive', 5), factor: 5 },
  { name: 'custom', cfg: { interval: 600, timeoutFloor: 150, timeoutCeiling: 450, timeoutInitial: 300, k: 4, lateSlack: 150 }, factor: 10 },
];

const results: string[] = [];
after(() => {
  console.log('\n=== blackholed server: client detection times ===');
  for (const r of results) console.log(r);
});

async function blackholeServer(c: Case, warm: boolean, reconnect: boolean): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const server = await startServer({ heartbeat: c.cfg });
    cleanup.add(() => server.close({ timeout: ms(1000) }));
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: portOf(server) });
    cleanup.add(() => proxy.close());
    const connP = proxy.onConnection().then(noDelay);
    const client = new LifelineClient(proxy.url('/'), { reconnect, backoff: { base: 60_000, cap: 60_000 } });
    client.on('error', () => {});
    cleanup.add(() => client.close());
    await Promise.all([once(client, 'open', ms(5000)), connP]);

    // The client adopted the server's heartbeat from the welcome.
    const hc = client.heartbeatConfig!;
    assert.ok(hc, 'client heartbeat config from the welcome');
    for (const k of ['interval', 'timeoutFloor', 'timeoutCeiling', 'timeoutInitial', 'k'] as const) assert.equal(hc[k], c.cfg[k], `client ${k}`);

    let warmNote = '';
    if (warm) {
      // Three answered client pings: its adaptive timeout falls to the floor on loopback.
      for (let i = 1; i <= 3; i++) {
        client.probe();
        await until(() => client.stats().heartbeat!.pongsReceived >= i, ms(2000), `client pong ${i}`);
      }
      const s = client.stats().heartbeat!;
      warmNote = ` [warm-up: ${s.pongsReceived} client pongs, rtt ${s.rtt.smoothed} ms, timeout ${s.timeout}]`;
      assert.equal(s.timeout, c.cfg.timeoutFloor, 'client timeout on loopback after 3 samples is the floor');
    }
    const timeoutInForce = client.stats().heartbeat!.timeout;
    const bound = detectionBound(c.cfg, c.factor, 'client', timeoutInForce);

    let probingAt = NaN;
    client.on('liveness', (s) => {
      if (s === 'probing' && Number.isNaN(probingAt)) probingAt = now();
    });
    const states: string[] = [];
    client.on('state', (s, cause) => states.push(`${s}:${cause}`));
    const gaveUp = new Promise<{ event: string; cause: string }>((resolve) => {
      client.once('close', (i) => resolve({ event: 'close', cause: i.cause }));
      client.once('reconnecting', (i) => resolve({ event: 'reconnecting', cause: i.reason }));
    });

    proxy.blackhole('both', 'drop');
    const t0 = now();
    const info = await withTimeout(gaveUp, ms(bound.max + 5000), 'the client to give up on the connection');
    const detection = now() - t0;
    const hb = client.stats().heartbeat!;

    const line =
      `${c.name.padEnd(13)} ${warm ? 'warm' : 'cold'} ${reconnect ? 'reconnect on ' : 'reconnect off'}: client detected in ${detection.toFixed(0)} ms ` +
      `(issue bound without sched slack ${(bound.max - bound.schedSlack).toFixed(0)} ms: ${detection <= bound.max - bound.schedSlack ? 'met' : 'EXCEEDED'}; first ping +${(probingAt - t0).toFixed(0)} ms; bound ${bound.min}..${bound.max.toFixed(0)}: ${bound.describe}); ` +
      `${info.event} (${info.cause}), states ${states.join(' ')}; pings ${hb.pingsSent} sent, ${hb.pongsReceived} answered, ${hb.pingsMissed} missed${warmNote}`;
    results.push(line);
    console.log(line);

    assert.equal(info.cause, 'heartbeat-timeout', `cause (${JSON.stringify(info)})`);
    if (reconnect) {
      assert.equal(info.event, 'reconnecting');
      assert.equal(states[0], 'reconnecting:heartbeat-timeout');
    } else {
      assert.equal(info.event, 'close');
      assert.equal(client.state, 'closed');
      assert.deepEqual(states, ['closed:heartbeat-timeout']);
    }
    assert.equal(client.stats().closes['heartbeat-timeout'], 1);
    assert.ok(detection >= bound.min, `detected after ${detection.toFixed(0)} ms: earlier than interval ${bound.min} (false positive)`);
    assert.ok(detection <= bound.max, `detected after ${detection.toFixed(0)} ms: later than ${bound.describe}`);
  } finally {
    await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
  }
}

describe('blackholed server: the Node LifelineClient detects it', () => {
  for (const c of CASES) {
    test(`${c.name} (${show(c.cfg)}), reconnect off: close cause heartbeat-timeout, state closed, within interval + timeout + slack`, async () => {
      await blackholeServer(c, false, false);
    });
    test(`${c.name}, reconnect on: reconnecting (heartbeat-timeout) within interval + timeout + slack`, async () => {
      await blackholeServer(c, false, true);
    });
  }
  test(`custom after warm-up, reconnect off: detected within interval + floor + slack`, async () => {
    await blackholeServer(CASES[2]!, true, false);
  });
});

// Acceptance: traffic is liveness. While messages flow at least once per
// interval in each direction, no heartbeat ping is sent at all (any inbound
// frame proves the peer alive; pings only fill quiet lines).
//
// Heartbeat normal/25 (interval 1000 ms). A LifelineClient and a plain `ws`
// client connect through a FaultProxy (pass-through) whose connections carry a
// WireTap: every frame is counted on the wire, client frames unmasked, so
// lifeline.v1 pings ({"t":"ping"...}) and RFC 6455 ping frames are counted
// independently of what the stats say. Each side sends a message every
// interval/2 for N intervals: pingsSent stays 0 on the server sessions and on
// the client, and the wire carries no ping either way. Control: once the
// traffic stops, a ping does appear, in the stats and on the wire (so the
// zeros above are not the tap being blind).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { Cleanup, nextSession, noDelay, portOf, runFor, scaled, show, startServer, until, WireTap } from './helpers.js';

const FACTOR = 25;
const HB = scaled('normal', FACTOR);
const INTERVALS = 6;

test(`a message every interval/2 both ways for ${INTERVALS} intervals: zero pings (normal/${FACTOR}: ${show(HB)})`, async () => {
  const cleanup = new Cleanup();
  try {
    const server = await startServer({ heartbeat: HB });
    cleanup.add(() => server.close({ timeout: ms(1000) }));
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: portOf(server) });
    cleanup.add(() => proxy.close());

    // Lifeline client.
    let connP = proxy.onConnection();
    let sessionP = nextSession(server);
    const client = new LifelineClient(proxy.url('/'));
    client.on('error', () => {});
    cleanup.add(() => client.close());
    const llTap = new WireTap(noDelay(await connP));
    await once(client, 'open', ms(5000));
    const llSession = await sessionP;

    // Plain ws client (protocol pings).
    connP = proxy.onConnection();
    sessionP = nextSession(server);
    const ws = new WsClient(proxy.url('/'));
    ws.on('error', () => {});
    cleanup.add(() => ws.terminate());
    const wsTap = new WireTap(noDelay(await connP));
    await once(ws, 'open', ms(5000));
    const wsSession = await sessionP;

    const received = { llServer: 0, llClient: 0, wsServer: 0, wsClient: 0 };
    llSession.on('message', () => received.llServer++);
    client.on('message', () => received.llClient++);
    wsSession.on('message', () => received.wsServer++);
    ws.on('message', () => received.wsClient++);
    const closes: string[] = [];
    for (const [name, s] of [['lifeline', llSession], ['ws', wsSession]] as Array<[string, ServerSession]>) {
      s.on('close', (i) => closes.push(`${name} session close ${i.cause}`));
      s.on('detached', (c) => closes.push(`${name} session detached ${c}`));
    }
    client.on('close', (i) => closes.push(`client close ${i.cause}`));

    // Traffic: every interval/2, both ways, on both connections.
    let sent = 0;
    const tick = () => {
      sent++;
      client.send(`c${sent}`);
      llSession.send(`s${sent}`);
      ws.send(`w${sent}`);
      wsSession.send(`p${sent}`);
    };
    tick();
    const timer = setInterval(tick, HB.interval / 2);
    cleanup.add(() => clearInterval(timer));
    await runFor(INTERVALS * HB.interval);
    clearInterval(timer);

    const llS = llSession.stats().heartbeat!;
    const wsS = wsSession.stats().heartbeat!;
    const clS = client.stats().heartbeat!;
    const ll = llTap.counts;
    const wsc = wsTap.counts;
    console.log(
      `traffic for ${INTERVALS} intervals (${INTERVALS * HB.interval} ms), ${sent} messages each way per connection; ` +
        `received: ${JSON.stringify(received)}\n` +
        `  pingsSent: lifeline session ${llS.pingsSent}, lifeline client ${clS.pingsSent}, ws session ${wsS.pingsSent}\n` +
        `  wire lifeline: up ${JSON.stringify(ll.up)} down ${JSON.stringify(ll.down)}\n` +
        `  wire ws:       up ${JSON.stringify(wsc.up)} down ${JSON.stringify(wsc.down)}`,
    );

    assert.deepEqual(closes, [], 'nobody closed');
    // Traffic really flowed (every message but perhaps the last in flight).
    for (const [k, v] of Object.entries(received)) assert.ok(v >= sent - 1, `${k} received ${v} of ${sent}`);
    assert.equal(llS.pingsSent, 0, 'lifeline session sent no ping');
    assert.equal(clS.pingsSent, 0, 'lifeline client sent no ping');
    assert.equal(wsS.pingsSent, 0, 'ws session sent no protocol ping');
    for (const [name, c] of [['lifeline', ll], ['ws', wsc]] as const) {
      for (const dir of ['up', 'down'] as const) {
        assert.equal(c[dir].appPings, 0, `${name} ${dir}: no {"t":"ping"} on the wire`);
        assert.equal(c[dir].protocolPings, 0, `${name} ${dir}: no ping frame on the wire`);
        assert.ok(c[dir].other >= sent - 1, `${name} ${dir}: the tap saw the data frames (${c[dir].other})`);
      }
    }

    // Control: quiet now, so pings come, and the tap sees them.
    await until(() => llTap.counts.down.appPings + llTap.counts.up.appPings >= 1, ms(HB.interval * 2 + 1000), 'a lifeline ping on the wire once quiet');
    await until(() => wsTap.counts.down.protocolPings >= 1, ms(HB.interval * 2 + 1000), 'a protocol ping on the wire once quiet');
    await until(() => llSession.stats().heartbeat!.pingsSent + client.stats().heartbeat!.pingsSent >= 1 && wsSession.stats().heartbeat!.pingsSent >= 1, ms(1000), 'pings in the stats');
    const after = { ll: llTap.counts, ws: wsTap.counts };
    console.log(
      `  control after the traffic stopped: lifeline pings on the wire up ${after.ll.up.appPings} / down ${after.ll.down.appPings} ` +
        `(stats: session ${llSession.stats().heartbeat!.pingsSent}, client ${client.stats().heartbeat!.pingsSent}); ` +
        `ws protocol pings down ${after.ws.down.protocolPings}, pongs up ${after.ws.up.protocolPongs} (stats ${wsSession.stats().heartbeat!.pingsSent})`,
    );
    assert.equal(
      after.ll.up.appPings + after.ll.down.appPings,
      llSession.stats().heartbeat!.pingsSent + client.stats().heartbeat!.pingsSent,
      'wire pings = pings in the stats (lifeline)',
    );
    assert.deepEqual(closes, [], 'still nobody closed');
  } finally {
    await withTimeout(cleanup.run(), ms(10_000), 'cleanup');
  }
});

// The server's heartbeat keeps its times (last inbound, last outbound, next
// check, ping sent) as whole milliseconds since the server started, so V8
// stores them in the monitor unboxed (bench d: about 130 B less heap per
// pinged connection, and no new boxed double per store under frequent
// pings). What the application sees stays absolute: connectedSince is the
// wall clock's epoch milliseconds, and pings are still answered and timed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, nextSession, portOf, scaled, startServer } from './helpers.js';

interface MonitorTimes {
  lastInbound: number;
  lastOutbound: number;
  nextCheck: number;
  pingSentAt: number;
}

test('heartbeat times are whole ms since the server started; connectedSince stays epoch ms', async () => {
  const cleanup = new Cleanup();
  try {
    const before = Date.now();
    const server = await startServer({ heartbeat: scaled('normal', 250) }); // ping after 100 ms of quiet
    cleanup.add(() => server.close());
    const client = new WsClient(`ws://127.0.0.1:${portOf(server)}/`);
    cleanup.add(() => client.terminate());
    const [session] = await Promise.all([nextSession(server), once(client, 'open', ms(5000))]);
    const s = session as ServerSession;
    // A quiet line: the server pings, the ws client answers, the RTT is sampled.
    await once(client, 'ping', ms(5000));
    const deadline = Date.now() + ms(5000);
    while ((s.stats().heartbeat?.pongsReceived ?? 0) < 1) {
      assert.ok(Date.now() < deadline, 'no pong counted');
      await new Promise((r) => setTimeout(r, 10));
    }
    const m = (s as unknown as { monitor: MonitorTimes }).monitor;
    const sinceStart = Date.now() - before + 1;
    for (const k of ['lastInbound', 'lastOutbound', 'nextCheck', 'pingSentAt'] as const) {
      const t = m[k];
      assert.ok(Number.isInteger(t), `${k} = ${t} is not whole`);
      assert.ok(t > 0 && t < 2 ** 31, `${k} = ${t} is not a small count of ms`);
    }
    assert.ok(m.pingSentAt <= sinceStart && m.lastInbound <= sinceStart, `times run from the server's start (ping at ${m.pingSentAt}, inbound at ${m.lastInbound}; ${sinceStart} ms since)`);
    assert.ok(m.nextCheck > m.pingSentAt);
    const stats = s.stats();
    assert.ok(stats.connectedSince >= before && stats.connectedSince <= Date.now(), `connectedSince ${stats.connectedSince} is epoch ms`);
    assert.ok(s.socket.connectedSince >= before && s.socket.connectedSince <= Date.now(), `socket connectedSince ${s.socket.connectedSince}`);
    assert.ok(Number.isInteger(stats.heartbeat!.timeout));
  } finally {
    await cleanup.run();
  }
});

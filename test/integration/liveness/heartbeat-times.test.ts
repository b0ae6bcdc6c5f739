// The server's heartbeat keeps its times (last inbound, last outbound, next
// check, ping sent) as whole milliseconds since the server started, so V8
// stores them in the monitor unboxed (bench d: about 130 B less heap per
// pinged connection, and no new boxed double per store under frequent
// pings). What the application sees stays absolute: connectedSince is the
// wall clock's epoch milliseconds, and pings are still answered and timed.
// And pinging leaves nothing behind on an idle plain socket: its objects have
// the same own properties after rounds of pings as before the first (a
// property added later lands in a property array of its own, 40 B here).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, nextSession, portOf, scaled, startServer, until } from './helpers.js';

interface MonitorTimes {
  lastInbound: number;
  lastOutbound: number;
  nextCheck: number;
  pingSentAt: number;
}

/** A server that pings after 100 ms of quiet, and one plain `ws` peer of it: the peer's session. */
async function pingedPeer(cleanup: Cleanup): Promise<{ s: ServerSession; client: WsClient }> {
  const server = await startServer({ heartbeat: scaled('normal', 250) });
  cleanup.add(() => server.close());
  const client = new WsClient(`ws://127.0.0.1:${portOf(server)}/`);
  cleanup.add(() => client.terminate());
  const [session] = await Promise.all([nextSession(server), once(client, 'open', ms(5000))]);
  return { s: session as ServerSession, client };
}

test('heartbeat times are whole ms since the server started; connectedSince stays epoch ms', async () => {
  const cleanup = new Cleanup();
  try {
    const before = Date.now();
    const { s, client } = await pingedPeer(cleanup);
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

test("plain peers' protocol pings carry the time each was sent: one frame per tick shared, a fresh one each round", async () => {
  const cleanup = new Cleanup();
  try {
    const server = await startServer({ heartbeat: scaled('normal', 250) }); // ping after 100 ms of quiet
    cleanup.add(() => server.close());
    const ROUNDS = 3;
    const peers: Array<{ payloads: string[]; sentAt: number[] }> = [];
    const sessions: ServerSession[] = [];
    for (let i = 0; i < 3; i++) {
      const client = new WsClient(`ws://127.0.0.1:${portOf(server)}/`);
      cleanup.add(() => client.terminate());
      const [session] = await Promise.all([nextSession(server), once(client, 'open', ms(5000))]);
      const monitor = (session as unknown as { monitor: MonitorTimes }).monitor;
      const peer = { payloads: [] as string[], sentAt: [] as number[] };
      // Server and client share this process: when the ping is read here, the
      // server cannot have sent another since, so pingSentAt is this ping's.
      client.on('ping', (d: Buffer) => {
        peer.payloads.push(d.toString('latin1'));
        peer.sentAt.push(monitor.pingSentAt);
      });
      peers.push(peer);
      sessions.push(session);
    }
    await until(() => peers.every((p) => p.payloads.length >= ROUNDS) && sessions.every((s) => (s.stats().heartbeat?.pongsReceived ?? 0) >= ROUNDS), ms(10_000), `${ROUNDS} pings answered on every socket`);
    for (const [k, p] of peers.entries()) {
      assert.deepEqual(p.payloads, p.sentAt.map(String), `peer ${k}: each ping carries the time it was sent`);
      for (let i = 1; i < p.sentAt.length; i++) assert.ok(p.sentAt[i]! > p.sentAt[i - 1]!, `peer ${k}: round ${i} is a new frame, not the last round's`);
    }
    // The pongs carried those times back and were read as such: a timestamp
    // outside the outstanding window is not sampled (HeartbeatMonitor.onPong).
    for (const s of sessions) {
      const rtt = s.stats().heartbeat!.rtt;
      assert.ok(rtt.samples >= ROUNDS && rtt.min !== null && rtt.min >= 0 && rtt.max !== null && rtt.max < 1000, `RTT ${JSON.stringify(rtt)}: every pong sampled, as a loopback round trip`);
    }
  } finally {
    await cleanup.run();
  }
});

test('rounds of pings add no property to an idle plain socket, its heartbeat or its RTT estimate', async () => {
  const cleanup = new Cleanup();
  try {
    const { s } = await pingedPeer(cleanup);
    const ws = s.socket;
    const monitor = (s as unknown as { monitor: { rtt: object } }).monitor;
    const own = (o: object) => Object.getOwnPropertyNames(o).sort().join(' ');
    const wsBefore = own(ws);
    const monitorBefore = own(monitor);
    const pongs = () => s.stats().heartbeat?.pongsReceived ?? 0;
    // The first answer gives the monitor its RTT estimate; its shape is taken then.
    await until(() => pongs() >= 1, ms(10_000), 'the first ping answered');
    const rttAfterFirst = own(monitor.rtt);
    await until(() => pongs() >= 4, ms(10_000), 'three more pings answered');
    assert.equal(own(ws), wsBefore, "the server's WebSocket");
    assert.equal(own(monitor), monitorBefore, 'its heartbeat');
    assert.equal(own(monitor.rtt), rttAfterFirst, 'its RTT estimate');
  } finally {
    await cleanup.run();
  }
});

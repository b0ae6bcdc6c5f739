// Acceptance ("Reconnect and resume"): a cut longer than the TTL, and a replay
// buffer overflow, each produce `session-lost` with counts that match what the
// test knows was undelivered. Plus the third way a resume fails: the server
// restarted and never heard of the session (unknown-session, inexact counts).
//
// Real sockets: LifelineServer on 127.0.0.1, the Node LifelineClient, a
// FaultProxy in between for the cuts. Every message is numbered ("c:<n>" from
// the client, "s:<n>" from the server) and each application's Tally records
// what it received, so the expected losses are computed from what was really
// delivered, not from what the library says:
//   lostToServer = client messages sent  - client messages the server app received
//   lostToClient = server messages sent  - server messages the client app received

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { LifelineClient, type NodeLifelineClientOptions } from '../../../src/client/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import type { SessionLostInfo } from '../../../src/session/lifeline-client.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Tally, Waiters, now } from './helpers.js';

const report: string[] = [];
after(() => {
  console.log('\n=== session-lost: measured ===');
  for (const r of report) console.log(r);
});

const CLIENT: NodeLifelineClientOptions = { backoff: { base: 50, cap: 200 } };

/** A client whose received messages and acks the test follows. */
class Observed {
  readonly client: LifelineClient;
  /** Tally of the current session's server messages (replaced on session-lost: a new session numbers from 1). */
  got = new Tally('s');
  readonly tallies: Tally[] = [this.got];
  ackedUpTo = 0;
  sent = 0;
  readonly ids: number[] = [];
  readonly lost: SessionLostInfo[] = [];
  reconnecting = 0;
  private readonly w = new Waiters();

  constructor(url: string, opts: NodeLifelineClientOptions = CLIENT) {
    this.client = new LifelineClient(url, opts);
    this.client.on('error', () => {});
    this.client.on('message', (d) => this.got.add(d));
    this.client.on('acked', (id) => {
      this.ackedUpTo = id;
      this.w.poke();
    });
    this.client.on('reconnecting', () => this.reconnecting++);
    this.client.on('session-lost', (info) => {
      this.lost.push(info);
      this.got = new Tally('s');
      this.tallies.push(this.got);
      this.sent = 0;
    });
  }

  /** Sends the next numbered messages; returns their ids. */
  send(n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.client.send(`c:${++this.sent}`);
      this.ids.push(id);
      out.push(id);
    }
    return out;
  }

  waitAcked(id: number, timeoutMs = ms(5000)): Promise<void> {
    return this.w.wait(() => this.ackedUpTo >= id, timeoutMs, () => `client acked up to ${id} (have ${this.ackedUpTo})`);
  }
}

/** Server side: every session's received messages, by session. */
function watchServer(served: Served): { sessions: ServerSession[]; got: Map<ServerSession, Tally>; sent: Map<ServerSession, number>; next: () => Promise<ServerSession> } {
  const sessions: ServerSession[] = [];
  const got = new Map<ServerSession, Tally>();
  const sent = new Map<ServerSession, number>();
  const w = new Waiters();
  let handed = 0;
  served.server.on('connection', (s) => {
    const t = new Tally('c');
    got.set(s, t);
    sent.set(s, 0);
    s.on('message', (d) => t.add(d));
    s.on('error', () => {});
    sessions.push(s);
    w.poke();
  });
  return {
    sessions,
    got,
    sent,
    next: async () => {
      const i = handed++;
      await w.wait(() => sessions.length > i, ms(5000), `server session #${i + 1}`);
      return sessions[i]!;
    },
  };
}

function serverSend(srv: ReturnType<typeof watchServer>, s: ServerSession, n: number): void {
  for (let i = 0; i < n; i++) {
    const k = srv.sent.get(s)! + 1;
    srv.sent.set(s, k);
    s.send(`s:${k}`);
  }
}

describe('session-lost: exact counts of what was undelivered', () => {
  test('a cut longer than sessionTtl: session-expired, exact, failed ids are exactly the undelivered ones', async () => {
    const cleanup = new Cleanup();
    try {
      const TTL = 500;
      // No standalone server acks (ackDelay 60 s, ackEvery 1000): client messages the
      // server received just before the cut stay unacknowledged. The server still
      // knows it has them, and says so in welcome.lost.ack: they must not be 'failed'.
      const served = await Served.start({ sessionTtl: TTL, heartbeat: 'off', ackDelay: 60_000, ackEvery: 1000 });
      cleanup.add(() => served.close());
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: served.port });
      cleanup.add(() => proxy.close());
      const srv = watchServer(served);
      const serverLost: Array<{ reason: string; toClient: number | null }> = [];
      served.server.on('session-lost', (i) => serverLost.push({ reason: i.reason, toClient: i.toClient }));

      const connP = proxy.onConnection();
      const c = new Observed(proxy.url('/'));
      cleanup.add(() => c.client.close());
      await once(c.client, 'open', ms(5000));
      const conn = await connP;
      const s1 = await srv.next();
      const s1got = srv.got.get(s1)!;

      // Phase 1: 20 each way, everything acknowledged.
      c.send(20);
      await s1got.waitCount(20);
      serverSend(srv, s1, 20); // s:1 carries the ack of c:20
      await c.got.waitCount(20);
      await c.waitAcked(20);

      // Phase 2: 5 more the server receives but does not acknowledge.
      const unackedIds = c.send(5);
      await s1got.waitCount(25);
      for (const id of unackedIds) assert.equal(c.client.messageState(id), 'sent', `c:${id} received by the server but not yet acknowledged`);

      // The cut: RST, and the "server" refuses every reconnect attempt.
      const detached = once(s1, 'detached', ms(5000));
      const reconnecting = once(c.client, 'reconnecting', ms(5000));
      const expired = once<{ cause: string }>(s1, 'close', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      const tCut = now();
      await Promise.all([detached, reconnecting]);
      const tDetached = now();
      assert.equal(s1.state, 'detached');

      // The outage: both sides keep sending.
      const queuedIds = c.send(5);
      for (const id of queuedIds) assert.equal(c.client.messageState(id), 'queued');
      serverSend(srv, s1, 10); // buffered for replay in the detached session
      assert.equal(s1.stats().replayBuffered, 10, 'the detached session holds what the client has not acknowledged');

      const closeInfo = await expired;
      const tExpired = now();
      assert.equal(closeInfo.cause, 'session-expired');
      const refusedDuringTtl = proxy.counters.accepted - 1;
      assert.ok(tExpired - tDetached >= TTL - 5, `expired ${(tExpired - tDetached).toFixed(0)} ms after detaching (TTL ${TTL})`);

      // The line comes back, after the TTL.
      const lostP = once<SessionLostInfo>(c.client, 'session-lost', ms(5000));
      const s2P = srv.next();
      proxy.refuse(false);
      const [info, s2] = await Promise.all([lostP, s2P]);
      const tLost = now();

      // What the test knows was undelivered.
      const clientSent = 30;
      const serverGotOld = s1got.count;
      const serverSentOld = srv.sent.get(s1)!;
      const clientGotOld = c.tallies[0]!.count;
      const expectLostToServer = clientSent - serverGotOld;
      const expectLostToClient = serverSentOld - clientGotOld;
      report.push(
        `TTL ${TTL} ms: cut -> detached ${(tDetached - tCut).toFixed(0)} ms, detached -> expired ${(tExpired - tDetached).toFixed(0)} ms, ` +
          `${refusedDuringTtl} reconnect attempts refused, expired -> session-lost ${(tLost - tExpired).toFixed(0)} ms`,
      );
      report.push(
        `  client sent ${clientSent}, server app got ${serverGotOld} -> lostToServer expected ${expectLostToServer}, reported ${info.lostToServer}; ` +
          `server sent ${serverSentOld}, client app got ${clientGotOld} -> lostToClient expected ${expectLostToClient}, reported ${info.lostToClient}; ` +
          `exact ${info.exact}, failed ${JSON.stringify(info.failed)}`,
      );

      assert.equal(info.reason, 'session-expired');
      assert.equal(info.exact, true);
      assert.equal(expectLostToServer, 5);
      assert.equal(expectLostToClient, 10);
      assert.equal(info.lostToServer, expectLostToServer, 'lostToServer');
      assert.equal(info.lostToClient, expectLostToClient, 'lostToClient');
      assert.deepEqual(serverLost, [{ reason: 'session-expired', toClient: expectLostToClient }]);
      assert.notEqual(s2, s1);
      assert.notEqual(s2.id, s1.id);
      assert.equal(s1.state, 'closed');
      assert.equal(served.server.stats().lost['session-expired'], 1);
      assert.equal(served.server.stats().closed['session-expired'], 1);

      // Delivered exactly once before the loss, both ways.
      assert.ok(s1got.isExactly(25), s1got.describe());
      assert.ok(c.tallies[0]!.isExactly(20), c.tallies[0]!.describe());

      // The fate of each message is what really happened to it.
      const undelivered = c.ids.filter((_, i) => !s1got.has(i + 1));
      const delivered = c.ids.filter((_, i) => s1got.has(i + 1));
      assert.deepEqual(undelivered, queuedIds);
      const wrong = delivered.filter((id) => c.client.messageState(id) === 'failed');
      const failedCount = info.failed ? info.failed.to - info.failed.from + 1 : 0;
      report.push(
        `  messageState: undelivered [${undelivered.join(',')}] -> ${undelivered.map((id) => c.client.messageState(id)).join(',')}; ` +
          `delivered but reported failed: [${wrong.join(',')}]`,
      );
      for (const id of undelivered) assert.equal(c.client.messageState(id), 'failed', `id ${id} never reached the server`);
      assert.deepEqual(info.failed, { from: queuedIds[0], to: queuedIds[queuedIds.length - 1] }, 'failed = exactly the ids the server never received');
      assert.equal(failedCount, info.lostToServer, 'the failed range and lostToServer agree');
      assert.deepEqual(wrong, [], 'messages the server application received are not reported failed');
    } finally {
      await cleanup.run();
    }
  });

  test('after session-lost the new session works, with fresh ids', async () => {
    // Same scenario, shorter: the point is what comes after.
    const cleanup = new Cleanup();
    try {
      const served = await Served.start({ sessionTtl: 200, heartbeat: 'off' });
      cleanup.add(() => served.close());
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: served.port });
      cleanup.add(() => proxy.close());
      const srv = watchServer(served);
      const connP = proxy.onConnection();
      const c = new Observed(proxy.url('/'));
      cleanup.add(() => c.client.close());
      await once(c.client, 'open', ms(5000));
      const conn = await connP;
      const s1 = await srv.next();
      c.send(3);
      await srv.got.get(s1)!.waitCount(3);
      const expired = once(s1, 'close', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      await expired;
      const lostP = once<SessionLostInfo>(c.client, 'session-lost', ms(5000));
      proxy.refuse(false);
      await lostP;
      const s2 = await srv.next();
      const newIds = c.send(3);
      serverSend(srv, s2, 3);
      await srv.got.get(s2)!.waitCount(3);
      await c.got.waitCount(3);
      await c.waitAcked(newIds[2]!);
      assert.ok(newIds[0]! > 3, `ids stay unique across sessions (new ${newIds.join(',')})`);
      for (const id of newIds) assert.equal(c.client.messageState(id), 'acked');
      assert.ok(srv.got.get(s2)!.isExactly(3));
      assert.ok(c.got.isExactly(3));
      assert.equal(c.client.state, 'open');
      assert.equal(c.client.stats().sessionsLost, 1);
    } finally {
      await cleanup.run();
    }
  });

  test('replay buffer overflow while detached: replay-overflow, lostToClient = everything sent while away', async () => {
    const cleanup = new Cleanup();
    try {
      const MAX = 50;
      const served = await Served.start({ replayMaxMessages: MAX, heartbeat: 'off' });
      cleanup.add(() => served.close());
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: served.port });
      cleanup.add(() => proxy.close());
      const srv = watchServer(served);
      const serverLost: Array<{ reason: string; toClient: number | null }> = [];
      served.server.on('session-lost', (i) => serverLost.push({ reason: i.reason, toClient: i.toClient }));

      const connP = proxy.onConnection();
      const c = new Observed(proxy.url('/'));
      cleanup.add(() => c.client.close());
      await once(c.client, 'open', ms(5000));
      const conn = await connP;
      const s1 = await srv.next();
      const s1got = srv.got.get(s1)!;

      // Everything acknowledged before the cut (the test above covers received-but-unacknowledged).
      const firstIds = c.send(10);
      serverSend(srv, s1, 10);
      await s1got.waitCount(10);
      await c.got.waitCount(10);
      await c.waitAcked(firstIds[9]!);

      const detached = once(s1, 'detached', ms(5000));
      const reconnecting = once(c.client, 'reconnecting', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      await Promise.all([detached, reconnecting]);

      const queuedIds = c.send(3);
      serverSend(srv, s1, 200);
      const buffered = s1.stats().replayBuffered;
      assert.equal(buffered, MAX, 'the replay buffer stays bounded');

      const closed = once<{ cause: string }>(s1, 'close', ms(5000));
      const lostP = once<SessionLostInfo>(c.client, 'session-lost', ms(5000));
      const s2P = srv.next();
      const t0 = now();
      proxy.refuse(false);
      const [info, closeInfo] = await Promise.all([lostP, closed, s2P]);
      const t1 = now();

      const expectLostToClient = srv.sent.get(s1)! - c.tallies[0]!.count; // 210 - 10
      const expectLostToServer = 13 - s1got.count; // 13 - 10
      report.push(
        `replay overflow (replayMaxMessages ${MAX}): server sent ${srv.sent.get(s1)} (200 while detached, ${buffered} kept), client app got ${c.tallies[0]!.count} -> ` +
          `lostToClient expected ${expectLostToClient}, reported ${info.lostToClient}; lostToServer expected ${expectLostToServer}, reported ${info.lostToServer}; ` +
          `exact ${info.exact}; line back -> session-lost ${(t1 - t0).toFixed(0)} ms`,
      );
      assert.equal(info.reason, 'replay-overflow');
      assert.equal(info.exact, true);
      assert.equal(info.lostToClient, expectLostToClient);
      assert.equal(info.lostToClient, 200);
      assert.equal(info.lostToServer, expectLostToServer);
      assert.deepEqual(info.failed, { from: queuedIds[0], to: queuedIds[2] });
      for (const id of queuedIds) assert.equal(c.client.messageState(id), 'failed');
      assert.equal(closeInfo.cause, 'replay-overflow');
      assert.deepEqual(serverLost, [{ reason: 'replay-overflow', toClient: expectLostToClient }]);
      assert.equal(served.server.stats().lost['replay-overflow'], 1);
      assert.ok(s1got.isExactly(10), s1got.describe());
      assert.ok(c.tallies[0]!.isExactly(10), c.tallies[0]!.describe());
    } finally {
      await cleanup.run();
    }
  });

  test('server restart: unknown-session, inexact (lostToClient null)', async () => {
    const cleanup = new Cleanup();
    try {
      const a = await Served.start({ heartbeat: 'off' });
      const port = a.port;
      cleanup.add(() => a.close());
      const srvA = watchServer(a);
      const c = new Observed(a.url('/'));
      cleanup.add(() => c.client.close());
      await once(c.client, 'open', ms(5000));
      const sa = await srvA.next();
      const ids = c.send(10);
      serverSend(srvA, sa, 10);
      await srvA.got.get(sa)!.waitCount(10);
      await c.got.waitCount(10);
      await c.waitAcked(ids[9]!);

      // Restart: A goes away (graceful), B comes up on the same port, knowing nothing.
      const reconnecting = once(c.client, 'reconnecting', ms(5000));
      await a.close();
      await reconnecting;
      const queuedIds = c.send(4);
      for (const id of queuedIds) assert.equal(c.client.messageState(id), 'queued');
      const lostP = once<SessionLostInfo>(c.client, 'session-lost', ms(5000));
      const b = await Served.start({ heartbeat: 'off' }, port);
      cleanup.add(() => b.close());
      const serverLost: Array<{ reason: string; toClient: number | null }> = [];
      b.server.on('session-lost', (i) => serverLost.push({ reason: i.reason, toClient: i.toClient }));
      const srvB = watchServer(b);
      const info = await lostP;
      const sb = await srvB.next();

      report.push(`restart: session-lost ${JSON.stringify(info)}`);
      assert.equal(info.reason, 'unknown-session');
      assert.equal(info.exact, false);
      assert.equal(info.lostToClient, null);
      // Inexact: what the client sent and never saw acknowledged. Here everything before the restart was acknowledged.
      assert.equal(info.lostToServer, 4);
      assert.deepEqual(info.failed, { from: queuedIds[0], to: queuedIds[3] });
      for (const id of queuedIds) assert.equal(c.client.messageState(id), 'failed');
      for (const id of ids) assert.equal(c.client.messageState(id), 'acked');
      assert.deepEqual(serverLost, [{ reason: 'unknown-session', toClient: null }]);
      // The new session carries traffic.
      c.send(2);
      serverSend(srvB, sb, 2);
      await srvB.got.get(sb)!.waitCount(2);
      await c.got.waitCount(2);
      assert.ok(srvB.got.get(sb)!.isExactly(2));
      assert.ok(c.got.isExactly(2));
    } finally {
      await cleanup.run();
    }
  });
});

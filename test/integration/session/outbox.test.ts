// Acceptance ("Reconnect and resume"), the outbox: while the server is
// unreachable, send() queues (messageState 'queued'), and after the
// reconnect everything is delivered in order, exactly once; at the outbox
// bound send() throws OutboxFullError and nothing is dropped silently
// (what was accepted arrives, what was refused never does).
//
// Real sockets: LifelineServer on 127.0.0.1 and the Node LifelineClient; a
// FaultProxy cuts an established session and refuses the reconnects.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { OutboxFullError } from '../../../src/session/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { freePort, ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Tally, Waiters, now, servedBehindProxy } from './helpers.js';

const report: string[] = [];
after(() => {
  console.log('\n=== outbox: measured ===');
  for (const r of report) console.log(r);
});

function ackWatch(client: LifelineClient): { upTo: () => number; wait: (id: number) => Promise<void> } {
  let upTo = 0;
  const w = new Waiters();
  client.on('acked', (id) => {
    upTo = id;
    w.poke();
  });
  return { upTo: () => upTo, wait: (id) => w.wait(() => upTo >= id, ms(5000), () => `acked up to ${id} (have ${upTo})`) };
}

/** The server's first session, its received messages tallied. */
function firstSession(served: Served): Promise<{ s: ServerSession; got: Tally }> {
  return once<ServerSession>(served.server, 'connection', ms(10000)).then((s) => {
    const got = new Tally('c');
    s.on('message', (d) => got.add(d));
    s.on('error', () => {});
    return { s, got };
  });
}

describe('outbox: queued while unreachable, bounded, never silent', () => {
  test('server not up yet: sends queue, then arrive in order after the first connect', async () => {
    const cleanup = new Cleanup();
    try {
      const port = await freePort();
      const client = new LifelineClient(`ws://127.0.0.1:${port}/`, { backoff: { base: 50, cap: 200 } });
      client.on('error', () => {});
      cleanup.add(() => client.close());
      const acks = ackWatch(client);
      // Two refused attempts (ECONNREFUSED): the client is retrying.
      let failures = 0;
      const w = new Waiters();
      client.on('reconnecting', () => {
        failures++;
        w.poke();
      });
      await w.wait(() => failures >= 2, ms(5000), 'two failed attempts');
      assert.equal(client.state, 'reconnecting');
      const ids: number[] = [];
      for (let i = 1; i <= 50; i++) ids.push(client.send(`c:${i}`));
      for (const id of ids) assert.equal(client.messageState(id), 'queued');
      assert.equal(client.stats().outbox, 50);

      const served = await Served.start({ heartbeat: 'off' }, port);
      cleanup.add(() => served.close());
      const t0 = now();
      const { got } = await firstSession(served);
      await got.waitCount(50);
      await acks.wait(ids[49]!);
      report.push(`server down at first: ${failures}+ failed attempts, 50 queued, all delivered ${(now() - t0).toFixed(0)} ms after the server came up`);
      assert.ok(got.isExactly(50), got.describe());
      for (const id of ids) assert.equal(client.messageState(id), 'acked');
      assert.equal(client.stats().outbox, 0);
    } finally {
      await cleanup.run();
    }
  });

  test('established session cut and refused: sends queue, then resume delivers them in order, exactly once', async () => {
    const cleanup = new Cleanup();
    try {
      const { served, proxy } = await servedBehindProxy(cleanup);
      const sessP = firstSession(served);
      const connP = proxy.onConnection();
      const client = new LifelineClient(proxy.url('/'), { backoff: { base: 50, cap: 200 } });
      client.on('error', () => {});
      cleanup.add(() => client.close());
      const acks = ackWatch(client);
      await once(client, 'open', ms(5000));
      const [{ s, got }, conn] = await Promise.all([sessP, connP]);
      let connections = 0;
      served.server.on('connection', () => connections++);

      const before: number[] = [];
      for (let i = 1; i <= 5; i++) before.push(client.send(`c:${i}`));
      await got.waitCount(5);
      await acks.wait(before[4]!);

      const reconnecting = once(client, 'reconnecting', ms(5000));
      const detached = once(s, 'detached', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      await Promise.all([reconnecting, detached]);
      const queued: number[] = [];
      for (let i = 6; i <= 105; i++) queued.push(client.send(`c:${i}`));
      for (const id of queued) assert.equal(client.messageState(id), 'queued', `id ${id}`);
      assert.equal(client.stats().outbox, 100);
      assert.equal(got.count, 5, 'nothing leaks to the server while it is unreachable');

      const resumed = once<{ replayed: number }>(client, 'resumed', ms(5000));
      const t0 = now();
      proxy.refuse(false);
      const r = await resumed;
      await got.waitCount(105);
      await acks.wait(queued[99]!);
      report.push(
        `cut + refused: 100 queued, resumed after ${(now() - t0).toFixed(0)} ms (replayed ${r.replayed}), ` +
          `server got ${got.count}, duplicates dropped ${s.stats().duplicatesDropped}, resumes ${s.stats().resumes}`,
      );
      assert.equal(r.replayed, 100);
      assert.ok(got.isExactly(105), got.describe());
      for (const id of [...before, ...queued]) assert.equal(client.messageState(id), 'acked');
      assert.equal(connections, 0, 'a resume, not a new session');
      assert.equal(client.stats().sessionsLost, 0);
      assert.equal(s.stats().resumes, 1);
    } finally {
      await cleanup.run();
    }
  });

  test('outbox bound: OutboxFullError at the bound, nothing dropped silently', async () => {
    const cleanup = new Cleanup();
    try {
      const MAX = 20;
      const MAX_BYTES = 2000;
      const { served, proxy } = await servedBehindProxy(cleanup);
      const sessP = firstSession(served);
      const connP = proxy.onConnection();
      const client = new LifelineClient(proxy.url('/'), { backoff: { base: 50, cap: 200 }, outboxMaxMessages: MAX, outboxMaxBytes: MAX_BYTES });
      client.on('error', () => {});
      cleanup.add(() => client.close());
      const acks = ackWatch(client);
      await once(client, 'open', ms(5000));
      const [{ got }, conn] = await Promise.all([sessP, connP]);

      const reconnecting = once(client, 'reconnecting', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      await reconnecting;

      // By count: MAX fit, the next ones throw, and the outbox does not change.
      const accepted: number[] = [];
      let n = 0;
      for (let i = 0; i < MAX; i++) accepted.push(client.send(`c:${++n}`));
      let thrown = 0;
      for (let i = 0; i < 5; i++) {
        assert.throws(
          () => client.send('x:refused'),
          (err: unknown) => err instanceof OutboxFullError && err.code === 'LL_ERR_OUTBOX_FULL',
        );
        thrown++;
      }
      assert.equal(client.stats().outbox, MAX);
      for (const id of accepted) assert.equal(client.messageState(id), 'queued');

      // Back online: exactly the accepted ones arrive; the refused never do (the Tally rejects an unexpected prefix).
      const resumed = once(client, 'resumed', ms(5000));
      proxy.refuse(false);
      await resumed;
      await got.waitCount(MAX);
      await acks.wait(accepted[MAX - 1]!);
      assert.ok(got.isExactly(MAX), got.describe());
      assert.equal(client.stats().outbox, 0);
      // Room again once acknowledged.
      const more = client.send(`c:${++n}`);
      await got.waitCount(MAX + 1);
      await acks.wait(more);

      // By bytes: 150-byte payloads against a 2000-byte bound, while cut again.
      const conn2 = proxy.connections[0]!;
      const reconnecting2 = once(client, 'reconnecting', ms(5000));
      proxy.refuse(true);
      conn2.cutRst();
      await reconnecting2;
      const pad = (k: number) => `c:${k}`.padEnd(150, ' ');
      // Tally wants "c:<n>": the server trims the padding before tallying (below).
      const fitting: number[] = [];
      let refusedBytes = 0;
      for (let i = 0; i < 30; i++) {
        try {
          fitting.push(client.send(pad(n + 1)));
          n++;
        } catch (err) {
          assert.ok(err instanceof OutboxFullError);
          refusedBytes++;
        }
      }
      report.push(
        `outbox bound ${MAX} messages: ${MAX} queued, ${thrown} sends threw OutboxFullError; ` +
          `bound ${MAX_BYTES} bytes: ${fitting.length} x 150-byte messages fit, ${refusedBytes} threw`,
      );
      assert.ok(fitting.length > 0 && fitting.length < 30, `some fit, some refused (fit ${fitting.length})`);
      assert.ok(fitting.length * 150 <= MAX_BYTES, 'the byte bound holds');
      assert.equal(fitting.length + refusedBytes, 30);
      const resumed2 = once(client, 'resumed', ms(5000));
      proxy.refuse(false);
      await resumed2;
      await acks.wait(fitting[fitting.length - 1]!);
      assert.equal(got.count, MAX + 1 + fitting.length, 'every accepted message arrived, no refused one did');
      assert.ok(got.isExactly(n), got.describe());
    } finally {
      await cleanup.run();
    }
  });
});

// A slow consumer on a lifeline.v1 session, with a drop policy configured.
//
// The transport's drop policies ('drop-newest', 'drop-oldest', 'keep-latest')
// drop whole messages at maxBufferedBytes. On a sequenced stream that is a
// hole: the reader sees seq n+2 after n, which the session layer must treat
// as a broken stream. So on lifeline.v1 sockets (both ends) the cap ends the
// connection instead ('disconnect', close 1008), the session detaches, and
// the resume replays everything the reader has not acknowledged: exactly
// once, in order, no 'session-lost', no protocol error. The Node client's
// adapter goes further: it stops writing at the socket's highWaterMark and
// keeps the rest (all in the outbox) until 'drain', so its cap is never met.
//
// The resume's replay is written while the socket is under its
// highWaterMark, the rest at each 'drain': a replay that
// outgrows the replay buffer meanwhile ends in session-lost with exact
// counts, never in a gap. ServerSession 'drain' follows a send() that
// answered false, for lifeline.v1 and plain peers, and after a resume once
// the replay is written.
//
// Real sockets on 127.0.0.1. The slow reader is real too: the server's
// direction is held in a relay that stops reading (so the server's socket
// backs up through the kernel), the client's direction by pausing the
// server's own TCP socket.

import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, afterEach, describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { WebSocket as WsWebSocket } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { NodeSocket } from '../../../src/client/node-socket.js';
import type { ServerSession, SessionCloseInfo } from '../../../src/server/lifeline-server.js';
import type { SessionLostInfo } from '../../../src/session/lifeline-client.js';
import type { SlowConsumerPolicy, WebSocket } from '../../../src/transport/node/websocket.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Tally, Waiters } from './helpers.js';

/** Small marks so the cap is reached after the kernel's buffers fill. */
const LIMITS = { highWaterMark: 64 * 1024, maxBufferedBytes: 256 * 1024, closeTimeout: ms(1000) };
/** Enough replay room for every message a test sends. */
const ROOM = { replayMaxBytes: 256 * 1024 * 1024, replayMaxMessages: 100_000 };
const PAD = ' '.repeat(16 * 1024);
/**
 * A resume's replay is written in steps only past what the kernel takes at
 * once (loopback's send and receive buffers: several MB between them, and the
 * reader cannot read while the server handles the resume): 64 of these are
 * 16 MiB.
 */
const BIG_PAD = ' '.repeat(256 * 1024);
/** Bound on the server's messages per test: 4,096 x 16 KiB = 64 MiB, far beyond loopback's socket buffers. */
const MAX_MESSAGES = 4096;
/** The client's messages: 32 MiB to a server that does not read. */
const CLIENT_MESSAGES = 2048;

const report: string[] = [];
after(() => {
  console.log('\n=== slow consumer on lifeline.v1 sessions: measured ===');
  for (const r of report) console.log(r);
});

/** A TCP relay whose server-to-client direction can stop reading, so the server's writes back up. */
class HoldingRelay {
  private readonly pairs: Array<{ client: Socket; upstream: Socket }> = [];
  private constructor(private readonly listener: net.Server) {}

  static async start(port: number): Promise<HoldingRelay> {
    const listener = net.createServer();
    const relay = new HoldingRelay(listener);
    listener.on('connection', (client) => {
      const upstream = net.connect(port, '127.0.0.1');
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end);
      upstream.on('error', end);
      client.pipe(upstream);
      upstream.pipe(client);
      relay.pairs.push({ client, upstream });
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  url(): string {
    return `ws://127.0.0.1:${(this.listener.address() as AddressInfo).port}/`;
  }

  /** Stops reading what the server sends on the connections open now. */
  hold(): void {
    for (const { client, upstream } of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  /** Forwards again whatever was held, and everything after. */
  release(): void {
    for (const { client, upstream } of this.pairs) if (!upstream.destroyed) upstream.pipe(client);
  }

  close(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.listener.close();
  }
}

/**
 * Sends `next()` 8 per turn of the event loop until session.send() answers
 * false (bounded by MAX_MESSAGES), then `unblock()`s the reader and waits for
 * the session's 'drain'. Returns how many were sent; after it the socket is
 * under its mark.
 */
async function refuseThenDrain(session: ServerSession, next: () => string, unblock: () => void): Promise<number> {
  let drains = 0;
  const w = new Waiters();
  const onDrain = () => {
    drains++;
    w.poke();
  };
  session.on('drain', onDrain);
  try {
    let sent = 0;
    let answer = true;
    while (answer && sent < MAX_MESSAGES) {
      for (let i = 0; i < 8 && answer; i++, sent++) answer = session.send(next());
      if (answer) await tick();
    }
    assert.equal(answer, false, `send() never answered false in ${sent} messages`);
    const drainsAtRefusal = drains;
    unblock();
    await w.wait(() => drains > drainsAtRefusal, ms(10000), "'drain' after send() answered false");
    assert.ok(session.socket.bufferedAmount <= LIMITS.highWaterMark, `under the mark at 'drain' (${session.socket.bufferedAmount})`);
    return sent;
  } finally {
    session.off('drain', onDrain);
  }
}

/** Reconnect reasons counted: {"peer-closed":1}. */
function summary(reasons: string[]): string {
  const counts: Record<string, number> = {};
  for (const r of reasons) counts[r] = (counts[r] ?? 0) + 1;
  return JSON.stringify(counts);
}

/** 'disconnect' (the default) and the policies that would drop messages on a socket without a session. */
const POLICIES: SlowConsumerPolicy[] = ['disconnect', 'drop-newest', 'drop-oldest', 'keep-latest'];

describe('slow consumer on a lifeline.v1 session: the cap resumes the session, never leaves a gap', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const policy of POLICIES) {
    test(`server with slowConsumer '${policy}': the slow client gets every message once, in order, through a resume`, async () => {
      const served = await Served.start({ heartbeat: 'off', slowConsumer: policy, ...LIMITS, ...ROOM });
      cleanup.add(() => served.close());
      const relay = await HoldingRelay.start(served.port);
      cleanup.add(() => relay.close());

      const got = new Tally('s');
      const reasons: string[] = [];
      const lost: unknown[] = [];
      const client = new LifelineClient(relay.url(), { backoff: { base: 20, cap: 100 } });
      cleanup.add(() => client.close());
      client.on('error', () => {});
      client.on('message', (d) => got.add(typeof d === 'string' ? d.trimEnd() : d));
      client.on('reconnecting', (info) => reasons.push(info.reason));
      client.on('session-lost', (info) => lost.push(info));
      const session = await once<ServerSession>(served.server, 'connection');
      await once(client, 'open');
      const first: WebSocket = session.socket;
      const firstClosed = once<number>(first, 'close', ms(30000));

      relay.hold();
      let sent = 0;
      while (sent < MAX_MESSAGES && first.readyState === 1) {
        for (let i = 0; i < 8; i++) session.send(`s:${++sent}${PAD}`);
        await tick();
      }
      const droppedBeforeClose = first.counters.dropped;
      const stillOpen = first.readyState === 1;
      relay.release();
      const code = await firstClosed.catch(() => 0);
      const complete = await got.waitCount(sent, ms(30000)).then(() => true, () => false);
      report.push(
        `server '${policy}': ${sent} x 16 KiB sent; first socket ${stillOpen ? 'still open at the bound' : `closed ${code} (${first.closeCause})`}, ` +
          `transport dropped ${droppedBeforeClose}; client reconnects ${summary(reasons)}, sessions lost ${lost.length}, got ${got.count}`,
      );
      assert.ok(complete, `the client got ${got.count} of ${sent}`);
      assert.equal(stillOpen, false, `the cap must end the connection (sent ${sent}, dropped ${droppedBeforeClose})`);
      assert.equal(code, 1008);
      assert.equal(first.closeCause, 'slow-consumer');
      assert.ok(got.isExactly(sent), `1..${sent} exactly once in order (duplicates ${got.duplicates}, disorder ${got.disorder})`);
      assert.deepEqual(lost, []);
      assert.ok(!reasons.includes('protocol-error'), `no sequence gap: reconnect reasons ${summary(reasons)}`);
      assert.ok(reasons.length >= 1);
      assert.equal(session.state, 'open');
    });

    test(`client with slowConsumer '${policy}': the socket holds at most its highWaterMark and one message; the slow server gets every message once, in order`, async () => {
      const served = await Served.start({ heartbeat: 'off', ...ROOM });
      cleanup.add(() => served.close());
      const got = new Tally('c');
      const sessions: ServerSession[] = [];
      served.server.on('connection', (s) => {
        sessions.push(s);
        s.on('message', (d) => got.add(d.toString('utf8').trimEnd()));
      });
      const reasons: string[] = [];
      const lost: unknown[] = [];
      const sockets: NodeSocket[] = [];
      const transport = { slowConsumer: policy, ...LIMITS };
      const client = new LifelineClient(served.url(), {
        backoff: { base: 20, cap: 100 },
        outboxMaxBytes: ROOM.replayMaxBytes,
        outboxMaxMessages: ROOM.replayMaxMessages,
        transport,
        socketFactory: (url, protocols) => {
          const s = new NodeSocket(url, protocols, transport);
          sockets.push(s);
          return s;
        },
      });
      cleanup.add(() => client.close());
      client.on('error', () => {});
      client.on('session-lost', (info) => lost.push(info));
      client.on('reconnecting', (info) => reasons.push(info.reason));
      await once(client, 'open');

      // The server stops reading: the client's writes back up.
      const paused = [...served.sockets];
      for (const s of paused) s.pause();
      const ws = sockets[0]!.ws;
      let sent = 0;
      let peakHeld = 0;
      let peakQueued = 0;
      while (sent < CLIENT_MESSAGES) {
        for (let i = 0; i < 8; i++) client.send(`c:${++sent}${PAD}`);
        peakHeld = Math.max(peakHeld, ws.bufferedAmount);
        peakQueued = Math.max(peakQueued, sockets[0]!.bufferedAmount);
        await tick();
      }
      for (const s of paused) s.resume();
      const complete = await got.waitCount(sent, ms(30000)).then(() => true, () => false);
      report.push(
        `client '${policy}': ${sent} x 16 KiB sent to a paused server; transport bufferedAmount peak ${peakHeld} B, ` +
          `adapter's (with its queue) ${peakQueued} B, dropped ${ws.counters.dropped}; reconnects ${summary(reasons)}, server got ${got.count}`,
      );
      assert.ok(complete, `the server got ${got.count} of ${sent}`);
      // The backlog really formed: most of it waited in the adapter, past what loopback buffers.
      assert.ok(peakQueued > 8 * 1024 * 1024, `the adapter's backlog peaked at ${peakQueued} B`);
      // At most one message over the mark (the send that crossed it, with its framing).
      assert.ok(peakHeld <= LIMITS.highWaterMark + PAD.length + 64, `the transport held ${peakHeld} B`);
      assert.equal(ws.counters.dropped, 0);
      assert.ok(got.isExactly(sent), `1..${sent} exactly once in order (duplicates ${got.duplicates}, disorder ${got.disorder})`);
      assert.deepEqual(reasons, []);
      assert.deepEqual(lost, []);
      assert.equal(sessions.length, 1);
    });
  }

  test("session 'drain': after send() answered false, once the socket is under its mark, and after a resume once the replay is written", async () => {
    const served = await Served.start({ heartbeat: 'off', highWaterMark: LIMITS.highWaterMark, ...ROOM });
    cleanup.add(() => served.close());
    const relay = await HoldingRelay.start(served.port);
    cleanup.add(() => relay.close());
    const got = new Tally('s');
    const client = new LifelineClient(relay.url(), { backoff: { base: 20, cap: 100 } });
    cleanup.add(() => client.close());
    client.on('error', () => {});
    client.on('message', (d) => got.add(typeof d === 'string' ? d.trimEnd() : d));
    const session = await once<ServerSession>(served.server, 'connection');
    await once(client, 'open');

    // 1. A slow reader: send until send() answers false; 'drain' follows.
    relay.hold();
    let sent = 0;
    const refusedAt = await refuseThenDrain(session, () => `s:${++sent}${PAD}`, () => relay.release());
    assert.equal(session.send(`s:${++sent}`), true);

    // 2. A resume with 16 MiB to replay, more than the kernel takes while the
    // resume is handled: sends during the replay answer false; 'drain' once
    // all of it is written.
    let duringReplay: boolean | null = null;
    let replayedAtDrain = -1;
    session.once('detached', () => {
      for (let i = 0; i < 64; i++) session.send(`s:${++sent}${BIG_PAD}`);
    });
    session.once('resumed', () => {
      duringReplay = session.send(`s:${++sent}${PAD}`);
    });
    const lastBeforeDrain = () => sent;
    const resumedDrain = new Promise<void>((resolve) => {
      session.once('resumed', () =>
        session.once('drain', () => {
          replayedAtDrain = session.socket.counters.messagesOut;
          resolve();
        }),
      );
    });
    session.terminate();
    await resumedDrain;
    await got.waitCount(lastBeforeDrain(), ms(10000));
    report.push(
      `drain: send() first answered false at message ${refusedAt}; after the resume a send during the replay answered ${duringReplay}, ` +
        `'drain' came with ${replayedAtDrain} frames written on the new socket; client got ${got.count} of ${sent}`,
    );
    assert.equal(duringReplay, false);
    // The welcome and the 65 replayed messages were all written when 'drain' came.
    assert.ok(replayedAtDrain >= 66, `frames written at 'drain': ${replayedAtDrain}`);
    assert.ok(got.isExactly(sent), `1..${sent} exactly once in order (duplicates ${got.duplicates}, disorder ${got.disorder})`);
  });

  test("session 'drain' for a plain WebSocket peer (no lifeline.v1): after send() answered false, once the peer reads", async () => {
    const served = await Served.start({ heartbeat: 'off', highWaterMark: LIMITS.highWaterMark });
    cleanup.add(() => served.close());
    const peer = new WsWebSocket(served.url());
    cleanup.add(() => peer.terminate());
    const session = await once<ServerSession>(served.server, 'connection');
    await once(peer, 'open');
    assert.equal(session.mode, 'plain');
    peer.pause();
    await refuseThenDrain(session, () => PAD, () => peer.resume());
    assert.equal(session.send('after'), true);
  });

  test('a resume whose replay outgrows the replay buffer while it is written ends in session-lost with exact counts', async () => {
    // 64 messages wait while the client is away: 16 MiB, more than
    // loopback's socket buffers take while the resume is handled, so the
    // replay is written in steps. Right after the
    // resume, 64 more push the replay buffer (100 messages) past its bound:
    // it evicts messages not yet written. The client must not get a gap, so
    // the socket is dropped and the next resume reports exactly what was lost.
    const served = await Served.start({ heartbeat: 'off', ...LIMITS, replayMaxBytes: 64 * 1024 * 1024, replayMaxMessages: 100 });
    cleanup.add(() => served.close());
    const got = new Tally('s');
    const lost: SessionLostInfo[] = [];
    const client = new LifelineClient(served.url(), { backoff: { base: 20, cap: 100 } });
    cleanup.add(() => client.close());
    client.on('error', () => {});
    client.on('message', (d) => got.add(typeof d === 'string' ? d.trimEnd() : d));
    client.on('session-lost', (info) => lost.push(info));
    const session = await once<ServerSession>(served.server, 'connection');
    await once(client, 'open');

    let sent = 0;
    let writtenAtResume = -1;
    session.once('detached', () => {
      for (let i = 0; i < 64; i++) session.send(`s:${++sent}${BIG_PAD}`);
    });
    session.once('resumed', () => {
      writtenAtResume = session.socket.counters.messagesOut;
      for (let i = 0; i < 64; i++) session.send(`s:${++sent}${BIG_PAD}`);
    });
    const closed = once<SessionCloseInfo>(session, 'close', ms(10000));
    session.terminate();
    const [info] = await Promise.all([once<SessionLostInfo>(client, 'session-lost', ms(10000)), closed]);
    const cause = (await closed).cause;
    report.push(
      `replay overflow mid-replay: ${sent} sent, ${writtenAtResume} frames written when 'resumed' fired; ` +
        `client got ${got.count}, then session-lost ${JSON.stringify({ reason: info.reason, lostToClient: info.lostToClient })}; server session closed (${cause})`,
    );
    assert.ok(got.isExactly(got.count), `what arrived is 1..${got.count} in order (duplicates ${got.duplicates}, disorder ${got.disorder})`);
    assert.ok(got.count < 64, `the replay was cut short (got ${got.count})`);
    assert.equal(info.reason, 'replay-overflow');
    assert.equal(info.lostToClient, sent - got.count);
    assert.equal(cause, 'replay-overflow');
  });
});

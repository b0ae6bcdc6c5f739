// Acceptance for "Reconnect and resume": a LifelineClient and a LifelineServer
// exchange numbered messages both ways at a steady rate while a fault
// injector cuts their connection at least 200 times at random moments (RST,
// a blackhole only the heartbeat can notice, a reset in the middle of a
// frame, the server dropping the socket, a reset inside the reconnect's own
// handshake, a reader that stops reading while the other side sends a burst).
// Every message must arrive exactly once and in order on each side, the
// session must always resume (never 'session lost'), and the server drops a
// socket as a slow consumer only while its reader has stopped.
//
// The run itself lives in chaos-runner.ts (shared with `npm run chaos`).
//
//   LIFELINE_CHAOS_CUTS=N   cuts to make (default 200)
//   LIFELINE_CHAOS_SEED=S   replay the random choices of an earlier run (its
//                           seed is printed; default: a fresh seed each run)
//   LIFELINE_TEST_UNIT=k    scales every guard on a slow machine

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import { LifelineClient } from '../../src/client/lifeline-client.js';
import { computeAcceptKey } from '../../src/protocol/handshake.js';
import { ms, once, withTimeout } from '../helpers/peers.js';
import { frame } from '../helpers/recording.js';
import { CUT_KINDS, problems, runChaos, summaryLine } from './chaos-runner.js';

const CUTS = intFromEnv('LIFELINE_CHAOS_CUTS', 200);
const SEED = intFromEnv('LIFELINE_CHAOS_SEED', Math.floor(Math.random() * 2 ** 32));
/** The run's own deadline: it reports (aborted) before node:test would kill it. */
const RUN_DEADLINE = ms(60_000 + CUTS * 400);

function intFromEnv(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

test(`exactly-once, in order, both ways, through ${CUTS} cuts (seed ${SEED})`, { timeout: RUN_DEADLINE + ms(30_000) }, async () => {
  const r = await runChaos({
    cuts: CUTS,
    seed: SEED,
    timeoutMs: RUN_DEADLINE,
    stepTimeoutMs: ms(10_000),
    drainTimeoutMs: ms(15_000),
    progressEvery: 50,
    log: (line) => console.log(line),
  });

  console.log(
    JSON.stringify({
      seed: r.seed,
      cutsByKind: r.cutsByKind,
      detectedBy: r.detectedBy,
      meanRecoveryMs: r.meanRecoveryMs,
      sentEachWay: r.sentEachWay,
      lost: r.lost,
      duplicated: r.duplicated,
      outOfOrder: r.outOfOrder,
      corrupted: r.corrupted,
      sessionLost: r.sessionLost,
      resumes: r.resumes,
      replayed: r.replayed,
      sentWhileDetached: r.sentWhileDetached,
      slowConsumerOutsideStalls: r.slowConsumerOutsideStalls,
      sentWhileReconnecting: r.sentWhileReconnecting,
      unprovokedReconnects: r.unprovokedReconnects,
      durationMs: r.durationMs,
    }),
  );
  console.log(summaryLine(r));

  // The run completed: no step stalled, nothing hung on the way out.
  assert.equal(r.aborted, null, `the run stopped early (seed ${r.seed}): ${r.aborted}`);
  assert.deepEqual(r.teardown, [], 'teardown did not finish');
  assert.equal(r.cuts, CUTS, 'every cut was made');
  if (process.env.LIFELINE_CHAOS_CUTS === undefined) assert.ok(r.cuts >= 200, 'at least 200 cuts');
  if (CUTS >= CUT_KINDS.length) {
    for (const kind of CUT_KINDS) assert.ok(r.cutsByKind[kind] > 0, `no '${kind}' cut was made`);
  }
  // A blackhole sends no FIN and no RST: only the heartbeat can have noticed it.
  assert.equal(r.detectedBy.blackhole['heartbeat-timeout'] ?? 0, r.cutsByKind.blackhole, `blackholes noticed by: ${JSON.stringify(r.detectedBy.blackhole)}`);

  // Exactly once, in order, both ways; never a lost session.
  assert.deepEqual(problems(r), [], `seed ${r.seed}`);
  assert.deepEqual(r.lost, { c2s: 0, s2c: 0 }, 'lost');
  assert.deepEqual(r.duplicated, { c2s: 0, s2c: 0 }, 'duplicated');
  assert.deepEqual(r.outOfOrder, { c2s: 0, s2c: 0 }, 'out of order');
  assert.deepEqual(r.corrupted, { c2s: 0, s2c: 0 }, 'corrupted');
  assert.deepEqual(r.sessionLost, { client: 0, server: 0 }, 'session lost');
  assert.deepEqual(r.receivedEachWay, r.sentEachWay, 'everything sent was received');
  assert.ok(r.allAcked, 'every message was acknowledged in the end');

  // It was a real exchange, and the risky paths were taken.
  assert.ok(r.sentEachWay.c2s > 0 && r.sentEachWay.s2c > 0, 'messages flowed both ways');
  assert.ok(r.resumes.client >= r.cuts && r.resumes.server >= r.cuts, `every cut ended in a resume: ${JSON.stringify(r.resumes)}`);
  if (CUTS > 0) {
    assert.ok(r.sentWhileDetached > 0, 'the server sent while its session was detached (replayed on resume)');
    assert.ok(r.sentWhileReconnecting > 0, 'the client sent while reconnecting (queued, then sent)');
    assert.ok(r.replayed.client > 0 && r.replayed.server > 0, `both sides replayed: ${JSON.stringify(r.replayed)}`);
  }
});

test('exactly-once through 50 cuts with permessage-deflate (fresh compression contexts on every reconnect)', { timeout: ms(90_000) }, async () => {
  // Compression costs: a lower rate, or zlib (not the cuts) becomes the bottleneck on a 2-core machine.
  const r = await runChaos({ cuts: 50, seed: SEED, deflate: true, rateMs: 5, perTick: 2, timeoutMs: ms(60_000), stepTimeoutMs: ms(10_000), drainTimeoutMs: ms(15_000) });
  console.log(`${summaryLine(r)} (permessage-deflate, seed ${r.seed}, ${r.durationMs} ms)`);
  assert.deepEqual(problems(r), [], `seed ${r.seed}`);
  assert.equal(r.cuts, 50);
  assert.deepEqual(r.receivedEachWay, r.sentEachWay, 'everything sent was received');
  assert.ok(r.allAcked, 'every message was acknowledged in the end');
  assert.ok(r.resumes.client >= r.cuts, `every cut ended in a resume: ${JSON.stringify(r.resumes)}`);
});

// Found while looking for windows the chaos run does not reach: the server
// starts a closing handshake (any close frame: going away, shutdown, policy)
// and the client's transport sits in CLOSING until TCP closes. The client is
// still 'open' then (it learns of the loss only when the socket closes), yet
// its Node transport throws on send (WS_ERR_SEND_AFTER_CLOSE) where a
// browser WebSocket silently discards. So client.send() throws to the
// application although the message was queued in the outbox (an application
// that retries would duplicate it if the session resumed), and the
// delayed-ack timer throws an uncaught exception (a crash without a
// process-wide handler). A raw lifeline.v1 server that never closes TCP
// holds the window open deterministically.

/** A lifeline.v1 server that welcomes, sends one message (an ack is owed), sends close 1001, and keeps TCP open. */
async function closingServer(): Promise<{ url: string; closeReply: Promise<void>; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let closeReplySeen!: () => void;
  const closeReply = new Promise<void>((resolve) => (closeReplySeen = resolve));
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    let head = '';
    let stage: 'upgrade' | 'hello' | 'closing' = 'upgrade';
    sock.on('data', (d: Buffer) => {
      if (stage === 'upgrade') {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const key = /sec-websocket-key: *([^\r]*)\r\n/i.exec(head)?.[1]?.trim() ?? '';
        sock.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\nSec-WebSocket-Protocol: lifeline.v1\r\n\r\n`,
        );
        stage = 'hello';
      } else if (stage === 'hello') {
        stage = 'closing';
        sock.write(frame(1, '{"t":"welcome","v":1,"hb":null,"session":"s1","token":"t1","ack":0,"resumed":false}', { mask: null }));
        sock.write(frame(1, 'd1:hello', { mask: null }));
        sock.write(frame(8, Buffer.from([0x03, 0xe9]), { mask: null }));
      } else if (d.includes(0x88)) {
        closeReplySeen(); // the client answered the close frame: its transport is CLOSING (for closeTimeout, 5 s)
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`,
    closeReply,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test("Node client: the delayed-ack timer does not throw while the server closes the socket (src/session/lifeline-client.ts sendAckNow)", async () => {
  const srv = await closingServer();
  const uncaught: string[] = [];
  const onUncaught = (err: Error) => uncaught.push(`${(err as { code?: string }).code ?? ''} ${err.message}`);
  process.on('uncaughtException', onUncaught);
  const ACK_DELAY = 20;
  const client = new LifelineClient(srv.url, { ackDelay: ACK_DELAY, reconnect: false });
  client.on('error', () => {});
  try {
    await once(client, 'message', ms(5000));
    await withTimeout(srv.closeReply, ms(5000), "the client's close reply");
    assert.equal(client.state, 'open', 'the client has not seen its socket close yet');
    // The delayed ack falls due while the transport is CLOSING: the time under test, not synchronisation.
    await new Promise((resolve) => setTimeout(resolve, ACK_DELAY * 5));
    assert.deepEqual(uncaught, [], 'the ack timer threw out of the client');
  } finally {
    process.off('uncaughtException', onUncaught);
    client.close();
    await srv.stop();
  }
});

test('Node client: send() in state open queues and does not throw while the server closes the socket (src/client/node-socket.ts send)', async () => {
  const srv = await closingServer();
  // No ack timer in this test's window: only send() is under test.
  const client = new LifelineClient(srv.url, { ackDelay: 60_000, reconnect: false });
  client.on('error', () => {});
  try {
    await once(client, 'message', ms(5000));
    await withTimeout(srv.closeReply, ms(5000), "the client's close reply");
    assert.equal(client.state, 'open', 'the client has not seen its socket close yet');
    let id = -1;
    assert.doesNotThrow(() => {
      id = client.send('sent while the transport closes');
    }, 'send() works in every state but closed: the message waits in the outbox');
    assert.equal(client.stats().outbox, 1, 'the message is in the outbox');
    assert.notEqual(client.messageState(id), 'failed');
  } finally {
    client.close();
    await srv.stop();
  }
});

// A lifeline.v1 session's sends count as outbound traffic for the server's
// keepalive: while the server sends at least once per interval, it sends no
// keepalive ping even though its peer never sends data (so no ack, which
// would also count, ever goes out). The server stamps its outbound time once
// per tick, on the first frame it queues, so each round below queues two
// messages in one tick.
//
// The peer is the `ws` package speaking lifeline.v1 by hand: a hello, then a
// protocol ping every interval/3, which keeps the server's inbound side
// fresh (every read is life) and is answered by an automatic pong, which is
// not a send of the session's. Heartbeat normal/25 (interval 1000 ms).
// Control: once the server stops sending, its keepalive pings come.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import { ms, once } from '../../helpers/peers.js';
import { Cleanup, nextSession, portOf, runFor, scaled, show, startServer, until } from './helpers.js';

const FACTOR = 25;
const HB = scaled('normal', FACTOR);
const INTERVALS = 6;

test(`two sends per round every interval/3 for ${INTERVALS} intervals: no keepalive ping (normal/${FACTOR}: ${show(HB)})`, async () => {
  const cleanup = new Cleanup();
  try {
    const server = await startServer({ heartbeat: HB });
    cleanup.add(() => server.close({ timeout: ms(1000) }));
    const sessionP = nextSession(server);
    const ws = new WsClient(`ws://127.0.0.1:${portOf(server)}/`, 'lifeline.v1');
    ws.on('error', () => {});
    cleanup.add(() => ws.terminate());
    await once(ws, 'open', ms(5000));
    ws.send('{"t":"hello","v":1}');
    const session = await sessionP;
    assert.equal(session.mode, 'lifeline');
    let received = 0;
    ws.on('message', () => received++);

    let rounds = 0;
    const round = () => {
      rounds++;
      ws.ping();
      session.send(`a${rounds}`);
      session.send(`b${rounds}`);
    };
    round();
    const timer = setInterval(round, HB.interval / 3);
    cleanup.add(() => clearInterval(timer));
    await runFor(INTERVALS * HB.interval);
    clearInterval(timer);

    const hb = session.stats().heartbeat!;
    console.log(`${rounds} rounds of two sends and a client ping; received ${received}; server pingsSent ${hb.pingsSent}`);
    // Every message but perhaps the last round's arrived (the welcome is one more).
    assert.ok(received >= 2 * rounds - 1, `client received ${received} for ${rounds} rounds`);
    assert.equal(hb.pingsSent, 0, 'the session sent no keepalive ping while it was sending');

    // Control: the server stops sending, the client keeps pinging; a keepalive ping comes within two intervals.
    const pinger = setInterval(() => ws.ping(), HB.interval / 3);
    cleanup.add(() => clearInterval(pinger));
    await until(() => session.stats().heartbeat!.pingsSent >= 1, ms(HB.interval * 2 + 1000), 'a keepalive ping once the server is quiet');
    assert.equal(session.state, 'open');
  } finally {
    await cleanup.run();
  }
});

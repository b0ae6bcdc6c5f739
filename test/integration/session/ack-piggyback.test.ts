// The server piggybacks its cumulative ack on the first frame it queues in a
// tick: a burst of replies to one read carries one ack, not one each; what
// the burst leaves unacknowledged rides on the next tick's first frame or
// goes out as a standalone ack with the sweep (ackDelay): only for what no
// reply acknowledged for a whole sweep period (ackDelay / 2), so a session
// that replies steadily sends no standalone acks at all.
//
// LifelineServer on 127.0.0.1 and a raw lifeline.v1 client over net (the
// exact frames are the point). Each burst is handed to the server socket as
// one 'data' event, so "one read" is exact, not up to the kernel.

import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { FakeClock } from '../../../src/session/clock.js';
import { Cleanup, clientText, rawSession } from './helpers.js';

/** The TCP socket under a session's WebSocket (internal: the test hands it reads directly). */
function serverSocket(s: ServerSession): net.Socket {
  return (s.socket as unknown as { socket: net.Socket }).socket;
}

/**
 * A LifelineServer (heartbeat off, ackDelay 50 ms, `ackEvery`) whose session
 * echoes every message, and a raw lifeline.v1 client past its welcome.
 * `read(...texts)` hands the server socket those data frames as one read.
 */
async function echoSession(cleanup: Cleanup, ackEvery: number, clock?: FakeClock) {
  const { client, s } = await rawSession(cleanup, { heartbeat: 'off', ackDelay: clock ? 100 : 50, ackEvery, ...(clock ? { clock } : {}) });
  s.on('message', (data: Buffer) => s.send(data.toString()));
  const read = (...texts: string[]) => serverSocket(s).emit('data', Buffer.concat(texts.map(clientText)));
  return { client, read, s };
}

describe('server ack piggybacking', () => {
  test('one ack per burst of replies, the rest with the next tick or the sweep', async () => {
    const cleanup = new Cleanup();
    try {
      const { client, read, s } = await echoSession(cleanup, 32);

      read('d1:a', 'd2:b', 'd3:c', 'd4:d', 'd5:e');
      // The first reply acknowledges what had arrived by then; the sweep acknowledges the rest.
      assert.deepEqual(await client.frames(1, 7), ['d1,1:a', 'd2:b', 'd3:c', 'd4:d', 'd5:e', '{"t":"ack","seq":5}']);

      read('d6:f', 'd7:g');
      assert.deepEqual(await client.frames(7, 10), ['d6,6:f', 'd7:g', '{"t":"ack","seq":7}']);

      // Request/response (the next request after the reply): every reply carries the ack, nothing is left for the sweep.
      read('d8:h');
      assert.deepEqual(await client.frames(10, 11), ['d8,8:h']);
      read('d9:i');
      assert.deepEqual(await client.frames(11, 12), ['d9,9:i']);
      assert.deepEqual(s.seq, { sent: 9, received: 9, acked: 0 });
    } finally {
      await cleanup.run();
    }
  });

  test('a burst longer than ackEvery: the standalone ack at ackEvery, then the sweep', async () => {
    const cleanup = new Cleanup();
    try {
      const { client, read } = await echoSession(cleanup, 4);
      read(...Array.from({ length: 10 }, (_, i) => `d${i + 1}:${String.fromCharCode(97 + i)}`));
      // 1 rides on the first reply; 2..5 reach ackEvery (4) as 5 arrives, before its reply; 6..9 likewise; 10 goes with the sweep.
      assert.deepEqual(await client.frames(1, 14), [
        'd1,1:a', 'd2:b', 'd3:c', 'd4:d', '{"t":"ack","seq":5}', 'd5:e',
        'd6:f', 'd7:g', 'd8:h', '{"t":"ack","seq":9}', 'd9:i', 'd10:j',
        '{"t":"ack","seq":10}',
      ]);
    } finally {
      await cleanup.run();
    }
  });

  test('steady replies leave the sweep nothing to send; what no reply acknowledged for a sweep period gets a standalone ack within ackDelay', async () => {
    const cleanup = new Cleanup();
    try {
      const clock = new FakeClock();
      const { client, read } = await echoSession(cleanup, 32, clock);

      // Steady traffic: a burst every sweep period (50 ms), each reply burst
      // acknowledging everything received by then.
      read('d1:a', 'd2:b', 'd3:c');
      assert.deepEqual(await client.frames(1, 4), ['d1,1:a', 'd2:b', 'd3:c']);
      clock.advance(50); // the sweep notes 3 as pending
      read('d4:d', 'd5:e');
      assert.deepEqual(await client.frames(4, 6), ['d4,4:d', 'd5:e']); // acknowledges 2 and 3
      clock.advance(50); // 3 was acknowledged since: nothing to send; notes 5
      read('d6:f');
      clock.advance(50); // 5 acknowledged by d6's reply; the session leaves the sweep (nothing pending)
      // TCP keeps order: a standalone ack from any sweep above would come before this reply.
      read('d7:g');
      assert.deepEqual(await client.frames(6, 8), ['d6,6:f', 'd7,7:g']);
      assert.equal(clock.pending, 1, "d7's reply left nothing pending, but d7 queued the session again");
      clock.advance(50); // nothing pending: the session leaves the sweep, and the sweep stops
      assert.equal(clock.pending, 0);

      // Quiet after a burst: 9 stays pending. The first sweep notes it, the
      // next acknowledges it: ackDelay (100 ms) after it came, not before.
      read('d8:h', 'd9:i');
      assert.deepEqual(await client.frames(8, 10), ['d8,8:h', 'd9:i']);
      clock.advance(99);
      read('{"t":"ping","ts":1}'); // the pong comes back at once: an earlier ack would come before it
      assert.deepEqual(await client.frames(10, 11), ['{"t":"pong","ts":1}']);
      clock.advance(1);
      assert.deepEqual(await client.frames(11, 12), ['{"t":"ack","seq":9}']);
      assert.equal(clock.pending, 0, 'everything acknowledged: the sweep stops');
    } finally {
      await cleanup.run();
    }
  });
});

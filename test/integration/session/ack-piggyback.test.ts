// The server piggybacks its cumulative ack on the first frame it queues in a
// tick: a burst of replies to one read carries one ack, not one each; what
// the burst leaves unacknowledged rides on the next tick's first frame or
// goes out as a standalone ack with the sweep (ackDelay).
//
// LifelineServer on 127.0.0.1 and a raw lifeline.v1 client over net (the
// exact frames are the point). Each burst is handed to the server socket as
// one 'data' event, so "one read" is exact, not up to the kernel.

import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
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
async function echoSession(cleanup: Cleanup, ackEvery: number) {
  const { client, s } = await rawSession(cleanup, { heartbeat: 'off', ackDelay: 50, ackEvery });
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
});

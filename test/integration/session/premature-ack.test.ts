// A session fills a chunk of its frame arena again only when the peer has
// acknowledged every frame in it AND its socket has drained since (nothing
// queued left: src/server/frame-arena.ts). The second condition is what keeps
// a peer that acknowledges frames it has not read yet from changing bytes
// that are still queued for it: it must receive exactly what was sent.
//
// LifelineServer on 127.0.0.1 and a raw lifeline.v1 client over net that
// stops reading, so the server's socket keeps megabytes queued. The ack is
// handed to the server socket as a read of its own (exact, not up to the
// kernel), as in ack-piggyback.test.ts.

import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ARENA_MAX_CHUNK } from '../../../src/server/frame-arena.js';
import { Cleanup, clientText, rawSession } from './helpers.js';

/** The TCP socket under a session's WebSocket (internal: the test hands it a read directly). */
function serverSocket(s: ServerSession): net.Socket {
  return (s.socket as unknown as { socket: net.Socket }).socket;
}

/** Message i: 1,000 bytes that say which message they are. */
function body(i: number): string {
  const head = `m${i}:`;
  return head + String.fromCharCode(97 + (i % 26)).repeat(1000 - head.length);
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('frame arena recycling and premature acks', () => {
  test('a peer that acknowledges frames before reading them still receives every frame as sent', async () => {
    const cleanup = new Cleanup();
    try {
      const { client, s } = await rawSession(cleanup, { heartbeat: 'off', replayMaxMessages: 1_000_000, replayMaxBytes: 1 << 30 });
      client.sock.pause();
      // Send, a tick's batch at a time, until Node holds bytes the kernel did
      // not take (the client reads nothing): the frames of the last chunks
      // are then still to be written. Bounded: at most 64 MB.
      let n = 0;
      while (serverSocket(s).writableLength === 0) {
        assert.ok(n < 64_000, 'the server socket never backed up');
        for (let k = 0; k < 200; k++) s.send(body(++n));
        await tick();
      }
      // A few more chunks' worth, so a full chunk before the current one is surely still queued.
      for (let k = 0; k < (3 * ARENA_MAX_CHUNK) / 1000; k++) s.send(body(++n));
      await tick();
      assert.ok(s.socket.bufferedAmount > 0, 'bytes still queued');

      // The peer claims all of it, unread.
      serverSocket(s).emit('data', clientText(`{"t":"ack","seq":${n}}`));
      assert.equal(s.seq.acked, n, 'the ack was taken');
      // More messages: enough to fill the current chunk and start another.
      const total = n + (2 * ARENA_MAX_CHUNK) / 1000;
      while (n < total) s.send(body(++n));

      client.sock.resume();
      const frames = await client.frames(1, 1 + n);
      for (let i = 1; i <= n; i++) {
        const f = frames[i - 1]!;
        if (f !== `d${i}:${body(i)}`) assert.fail(`message ${i} of ${n} arrived as ${JSON.stringify(f.slice(0, 40))}...`);
      }
    } finally {
      await cleanup.run();
    }
  });
});

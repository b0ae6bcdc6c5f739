// The server's replay buffer on real sockets: what a session sent (or queued
// while detached) comes back byte for byte on resume, whatever the size
// (frames in one arena chunk, across chunks, in a buffer of their own, with
// 7-, 16- and 64-bit lengths), text and binary, in order, exactly once.
//
// LifelineServer on 127.0.0.1 and the Node LifelineClient; a FaultProxy cuts
// the established session and refuses reconnects while the server sends.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ARENA_MAX_CHUNK, ARENA_OWN_BUFFER_ABOVE } from '../../../src/server/frame-arena.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Waiters, servedBehindProxy } from './helpers.js';

/** Message i: its size cycles through the interesting cases; content says its number. */
function message(i: number): string | Buffer {
  const sizes = [1, 40, 125, 126, 700, ARENA_OWN_BUFFER_ABOVE - 20, ARENA_OWN_BUFFER_ABOVE + 1, 70_000];
  const size = sizes[i % sizes.length]!;
  const head = `m:${i}:`;
  const body = head + String.fromCharCode(97 + (i % 26)).repeat(Math.max(0, size - head.length));
  return i % 3 === 0 ? Buffer.from(body) : body;
}

describe('server replay buffer: resume resends the stored frames as they were', () => {
  test('messages queued while detached (many chunks, own buffers, all length encodings) arrive byte-identical, in order, once', async () => {
    const cleanup = new Cleanup();
    try {
      const { served, proxy } = await servedBehindProxy(cleanup);
      const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
      const connP = proxy.onConnection();
      const client = new LifelineClient(proxy.url('/'), { backoff: { base: 50, cap: 200 } });
      client.on('error', () => {});
      cleanup.add(() => client.close());
      const got: Array<string | Uint8Array> = [];
      const w = new Waiters();
      client.on('message', (d: string | Uint8Array) => {
        got.push(d);
        w.poke();
      });
      await once(client, 'open', ms(5000));
      const [s, conn] = await Promise.all([sessP, connP]);
      s.on('error', () => {});

      // Attached: a few go out at once (and are acknowledged).
      const sent: Array<string | Buffer> = [];
      for (let i = 0; i < 8; i++) {
        sent.push(message(i));
        s.send(sent[i]!);
      }
      await w.wait(() => got.length >= 8, ms(5000), () => `8 messages before the cut (have ${got.length})`);

      const detached = once(s, 'detached', ms(5000));
      proxy.refuse(true);
      conn.cutRst();
      await detached;
      // Detached: enough small ones to fill several chunks, plus large ones.
      let queuedBytes = 0;
      for (let i = 8; queuedBytes < 3 * ARENA_MAX_CHUNK || i < 8 + 40; i++) {
        const m = message(i);
        sent.push(m);
        queuedBytes += typeof m === 'string' ? Buffer.byteLength(m) : m.length;
        assert.equal(s.send(m), false, 'a detached session queues');
      }
      const resumed = once<{ replayed: number }>(s, 'resumed', ms(5000));
      proxy.refuse(false);
      const r = await resumed;
      await w.wait(() => got.length >= sent.length, ms(10000), () => `${sent.length} messages (have ${got.length})`);

      assert.equal(r.replayed, sent.length - 8, 'the server replayed exactly the messages sent while detached');
      assert.equal(got.length, sent.length, 'no duplicates');
      for (let i = 0; i < sent.length; i++) {
        const want = sent[i]!;
        const have = got[i]!;
        if (typeof want === 'string') assert.equal(have, want, `message ${i} (text, ${Buffer.byteLength(want)} B)`);
        else assert.ok(have instanceof Uint8Array && Buffer.from(have).equals(want), `message ${i} (binary, ${want.length} B)`);
      }
      assert.equal(s.stats().replayed, sent.length - 8);
    } finally {
      await cleanup.run();
    }
  });
});

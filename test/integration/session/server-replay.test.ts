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
  test('messages queued while detached (many chunks, own buffers, all length encodings) arrive byte-identical, in order, once; stats() counts each once', async () => {
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

      // Up first, before the client has anything to acknowledge: its data
      // headers carry no ack, so the server's byte count is exact.
      const up = ['up:1', 'up:22', 'up:333'];
      const upGot: unknown[] = [];
      s.on('message', (d: unknown) => {
        upGot.push(d);
        w.poke();
      });
      for (const u of up) client.send(u);
      await w.wait(() => upGot.length === up.length, ms(5000), () => `${up.length} messages up (have ${upGot.length})`);

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
      // The counters: a data message's bytes are its header 'd' SEQ [',' ACK]
      // ':' and payload, no framing; a replayed message is counted when first
      // sent, not again. The client's headers carry no ack (it had nothing to
      // acknowledge when it sent); of the server's, at most the first carries
      // one, ',3' for the three messages up (unless the ack sweep sent it alone).
      const st = s.stats();
      assert.equal(st.replayed, sent.length - 8);
      assert.equal(st.resumes, 1);
      const dataBytes = (payloads: Array<string | Buffer>): number =>
        payloads.reduce((n, m, i) => n + 2 + String(i + 1).length + (typeof m === 'string' ? Buffer.byteLength(m) : m.length), 0);
      assert.equal(st.bytesIn, dataBytes(up), 'bytesIn: the data messages received');
      const extra = st.bytesOut - dataBytes(sent);
      assert.ok(extra === 0 || extra === 2, `bytesOut: the data messages sent, each once (${st.bytesOut} B, ${extra} B beyond their headers and payloads)`);
    } finally {
      await cleanup.run();
    }
  });
});

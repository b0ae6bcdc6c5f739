/**
 * The 'keep-latest' slow-consumer policy: while a peer does not keep up,
 * a message sent with a key replaces the one with the same key still waiting,
 * so a slow reader gets the latest state per key instead of a backlog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from '../../../src/transport/node/server.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { FrameReader, rawUpgrade } from './helpers.js';

const KEYS = ['price:A', 'price:B', 'price:C'];

test('keep-latest: a congested peer gets the latest message per key, drops are counted, order kept', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark: 64 * 1024, maxBufferedBytes: 8 * 1024 * 1024, slowConsumer: 'keep-latest' });
  await once(wss, 'listening', ms(5000));
  const port = (wss.address() as { port: number }).port;
  try {
    const serverSide = once<WebSocket>(wss, 'connection', ms(5000));
    const { socket, head } = await rawUpgrade(port, { path: '/' });
    assert.equal(head.status, 101);
    socket.pause();
    const ws = await serverSide;
    const reader = new FrameReader();
    if (head.rest.length > 0) reader.push(head.rest);

    // 2,000 rounds of three keyed 16 KiB updates (~94 MiB offered) to a peer that reads nothing.
    const ROUNDS = 2000;
    const lastSent = new Map<string, number>();
    let offered = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < KEYS.length; k++) {
        const seq = r * KEYS.length + k;
        const payload = Buffer.alloc(16 * 1024);
        payload.writeUInt32BE(seq, 0);
        ws.send(payload, { key: KEYS[k] });
        lastSent.set(KEYS[k]!, seq);
        offered++;
      }
      if (r % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const dropped = ws.counters.dropped;
    assert.ok(ws.bufferedAmount < 12 * 1024 * 1024, `memory bounded: bufferedAmount ${ws.bufferedAmount}`);
    assert.ok(dropped > offered / 2, `most stale updates were replaced: dropped ${dropped} of ${offered}`);

    // Now the peer reads everything that is left.
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.resume();
    const lastSeq = Math.max(...lastSent.values());
    await withTimeout(
      (async () => {
        while (!reader.seqs.includes(lastSeq)) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      ms(15_000),
      'the last update',
    );
    assert.equal(reader.corrupt, null, 'the stream stayed well-formed');
    const seqs = reader.seqs;
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'order kept');
    // The last message read for each key is the last one sent for it.
    for (const [key, seq] of lastSent) {
      const k = KEYS.indexOf(key);
      const lastForKey = seqs.filter((s) => s % KEYS.length === k).pop();
      assert.equal(lastForKey, seq, `latest ${key} delivered`);
    }
    assert.equal(seqs.length + dropped, offered, 'every offered message was delivered or counted as dropped');
    console.log(`[keep-latest] offered ${offered} x 16 KiB, delivered ${seqs.length}, replaced ${dropped}; max bufferedAmount kept under the cap`);
  } finally {
    await wss.close({ timeout: ms(1000) });
  }
});

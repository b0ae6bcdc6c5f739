// The server piggybacks its cumulative ack on the first frame it queues in a
// tick: a burst of replies to one read carries one ack, not one each; what
// the burst leaves unacknowledged rides on the next tick's first frame or
// goes out as a standalone ack with the sweep (ackDelay).
//
// LifelineServer on 127.0.0.1 and a raw lifeline.v1 client over net (the
// exact frames are the point). Each burst is handed to the server socket as
// one 'data' event, so "one read" is exact, not up to the kernel.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, test } from 'node:test';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Waiters } from './helpers.js';

/** A masked text frame from the client (RFC 6455 5.3). */
function clientText(text: string): Buffer {
  const p = Buffer.from(text);
  assert.ok(p.length < 126);
  const key = randomBytes(4);
  const f = Buffer.alloc(6 + p.length);
  f[0] = 0x81;
  f[1] = 0x80 | p.length;
  key.copy(f, 2);
  for (let i = 0; i < p.length; i++) f[6 + i] = p[i]! ^ key[i & 3]!;
  return f;
}

/** The TCP socket under a session's WebSocket (internal: the test hands it reads directly). */
function serverSocket(s: ServerSession): net.Socket {
  return (s.socket as unknown as { socket: net.Socket }).socket;
}

/** Raw client: the upgrade, then every text frame the server sends, in order. */
class RawClient {
  readonly texts: string[] = [];
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private readonly w = new Waiters();

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
      this.w.poke();
    });
    sock.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect', ms(5000));
    const c = new RawClient(sock);
    sock.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: lifeline.v1\r\n\r\n`,
    );
    return c;
  }

  private parse(): void {
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(this.buf.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
      this.upgraded = true;
      this.buf = this.buf.subarray(end + 4);
    }
    while (this.buf.length >= 2) {
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      assert.ok(len < 127, 'no frame above 64 KiB in this test');
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      }
      if (this.buf.length < at + len) return;
      assert.equal(this.buf[0], 0x81, 'a text frame, unfragmented');
      this.texts.push(this.buf.subarray(at, at + len).toString());
      this.buf = this.buf.subarray(at + len);
    }
  }

  /** Waits until `n` text frames have arrived in all; returns the ones from index `from`. */
  async frames(from: number, n: number): Promise<string[]> {
    await this.w.wait(() => this.texts.length >= n, ms(5000), () => `${n} frames (have ${JSON.stringify(this.texts)})`);
    return this.texts.slice(from, n);
  }
}

/**
 * A LifelineServer (heartbeat off, ackDelay 50 ms, `ackEvery`) whose session
 * echoes every message, and a raw lifeline.v1 client past its welcome.
 * `read(...texts)` hands the server socket those data frames as one read.
 */
async function echoSession(cleanup: Cleanup, ackEvery: number) {
  const served = await Served.start({ heartbeat: 'off', ackDelay: 50, ackEvery });
  cleanup.add(() => served.close());
  const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
  const client = await RawClient.connect(served.port);
  cleanup.add(() => client.sock.destroy());
  client.sock.write(clientText('{"t":"hello","v":1}'));
  const s = await sessP;
  s.on('message', (data: Buffer) => s.send(data.toString()));
  const [welcome] = await client.frames(0, 1);
  assert.match(welcome!, /^\{"t":"welcome"/);
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

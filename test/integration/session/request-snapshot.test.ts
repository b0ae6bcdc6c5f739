// What a session keeps of the request that opened it (session.request), and
// the listener tables of WebSocket and ServerSession (pre-shaped, see
// transport/node/event-slots.ts) behaving as any EventEmitter's.
//
// Real sockets: LifelineServer on 127.0.0.1, a `ws` client (plain peer).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import WsWebSocket from 'ws';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served } from './helpers.js';

/** A LifelineServer and one plain `ws` client on `path` with `headers`: its session. `cleanup` closes both. */
async function plainSession(cleanup: Cleanup, path: string, headers: Record<string, string>): Promise<{ s: ServerSession; client: WsWebSocket }> {
  const served = await Served.start({ heartbeat: 'off' });
  cleanup.add(() => served.close());
  const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
  const client = new WsWebSocket(`ws://127.0.0.1:${served.port}${path}`, { headers });
  client.on('error', () => {});
  cleanup.add(() => client.terminate());
  return { s: await sessP, client };
}

describe('session.request and the pre-shaped listener tables', () => {
  test('request: method, url and headers (without Sec-WebSocket-Key); the peer address, even after the socket closed', async () => {
    const cleanup = new Cleanup();
    try {
      const { s, client } = await plainSession(cleanup, '/room/7?x=1', { 'X-Custom': 'v1', 'User-Agent': 'test-agent' });
      s.on('error', () => {});
      const r = s.request;
      assert.equal(r.method, 'GET');
      assert.equal(r.url, '/room/7?x=1');
      assert.equal(r.headers['x-custom'], 'v1');
      assert.equal(r.headers['user-agent'], 'test-agent');
      assert.equal(r.headers.upgrade?.toLowerCase(), 'websocket');
      assert.equal(r.headers['sec-websocket-key'], undefined, 'the one-time key is not kept');
      assert.ok(!('sec-websocket-key' in r.headers));

      const closed = once(s, 'close', ms(5000));
      client.close();
      await closed;
      // Read only now: captured when the socket closed (a closed socket no longer knows it).
      assert.equal(r.socket.remoteAddress, '127.0.0.1');
      assert.equal(typeof r.socket.remotePort, 'number');
      assert.ok(r.socket.remotePort! > 0);
    } finally {
      await cleanup.run();
    }
  });

  test("the peer address: the snapshot's read leaves no cache on Node's socket; a cache the application made stays", async () => {
    const cleanup = new Cleanup();
    try {
      const served = await Served.start({ heartbeat: 'off' });
      cleanup.add(() => served.close());
      const raw: Socket[] = [];
      let readFirst = false;
      served.http.on('connection', (sock: Socket) => {
        raw.push(sock);
        // The second connection: the application reads the address before Lifeline does.
        if (readFirst) assert.equal(sock.remoteAddress, '127.0.0.1');
      });
      const sessions: ServerSession[] = [];
      for (const first of [false, true]) {
        readFirst = first;
        const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
        const client = new WsWebSocket(`ws://127.0.0.1:${served.port}/`);
        client.on('error', () => {});
        cleanup.add(() => client.terminate());
        const s = await sessP;
        s.on('error', () => {});
        sessions.push(s);
        const closed = once(s, 'close', ms(5000));
        client.close();
        await closed;
      }
      assert.equal(raw.length, 2);
      for (const s of sessions) assert.equal(s.request.socket.remoteAddress, '127.0.0.1', 'the snapshot keeps it');
      // Closed sockets answer from Node's cache only: none for the one only Lifeline read
      // (56 B a connection, for the socket's life), the application's for the other.
      assert.equal(raw[0]!.remoteAddress, undefined);
      assert.equal(raw[1]!.remoteAddress, '127.0.0.1');
    } finally {
      await cleanup.run();
    }
  });

  test('listeners on a session and its socket: on/off/once, listenerCount, eventNames, error without a listener throws', async () => {
    const cleanup = new Cleanup();
    try {
      const { s } = await plainSession(cleanup, '/', {});
      for (const ee of [s, s.socket] as Array<import('node:events').EventEmitter>) {
        assert.equal(ee.listenerCount('message'), 0);
        const got: unknown[] = [];
        const a = (x: unknown) => got.push(['a', x]);
        const b = (x: unknown) => got.push(['b', x]);
        ee.on('message', a);
        ee.on('message', b);
        ee.once('custom-event', (x: unknown) => got.push(['once', x]));
        assert.equal(ee.listenerCount('message'), 2);
        assert.deepEqual(ee.eventNames().filter((n) => ee.listenerCount(n) > 0).sort(), ['custom-event', 'message']);
        ee.emit('message', 1);
        ee.emit('custom-event', 2);
        ee.emit('custom-event', 3);
        ee.off('message', a);
        ee.emit('message', 4);
        ee.off('message', b);
        assert.equal(ee.listenerCount('message'), 0);
        assert.equal(ee.emit('message', 5), false, 'no listener left');
        assert.deepEqual(got, [['a', 1], ['b', 1], ['once', 2], ['b', 4]]);
        assert.throws(() => ee.emit('error', new Error('unhandled')), /unhandled/);
        let handled = 0;
        ee.on('error', () => handled++);
        assert.equal(ee.emit('error', new Error('x')), true);
        assert.equal(handled, 1);
        ee.removeAllListeners('error');
      }
    } finally {
      await cleanup.run();
    }
  });
});

// ServerSession.send(data, options): text or binary as `options.binary`
// says, by the data's type when it says nothing (strings text, bytes
// binary), in both session modes (lifeline.v1 and plain); once the session
// is closing, a send throws WS_ERR_SEND_AFTER_CLOSE.
//
// Real sockets: LifelineServer on 127.0.0.1, the Node LifelineClient for
// lifeline mode and the `ws` package (no subprotocol) for plain mode.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { UsageError } from '../../../src/protocol/errors.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Waiters } from './helpers.js';

type Got = Array<[kind: 'text' | 'binary', body: string]>;

/** Sends the five combinations of data type and option, in order. */
function sendAll(s: ServerSession): void {
  s.send(Buffer.from('bytes'));
  s.send(Buffer.from('bytes as text'), { binary: false });
  s.send('string as binary', { binary: true });
  s.send('string');
  s.send(new Uint8Array([0x75, 0x38]), {});
}

const WANT: Got = [
  ['binary', 'bytes'],
  ['text', 'bytes as text'],
  ['binary', 'string as binary'],
  ['text', 'string'],
  ['binary', 'u8'],
];

function assertClosedSend(s: ServerSession): void {
  assert.throws(
    () => s.send('late'),
    (e: unknown) => e instanceof UsageError && e.code === 'WS_ERR_SEND_AFTER_CLOSE' && /closing|closed/.test(e.message),
  );
  assert.throws(() => s.send(Buffer.from('late'), { binary: true }), UsageError);
}

describe('ServerSession.send: text or binary, and after close', () => {
  test('lifeline.v1 session', async () => {
    const cleanup = new Cleanup();
    try {
      const served = await Served.start({ heartbeat: 'off' });
      cleanup.add(() => served.close());
      const sP = once<ServerSession>(served.server, 'connection', ms(5000));
      const client = new LifelineClient(`ws://127.0.0.1:${served.port}/`);
      client.on('error', () => {});
      cleanup.add(() => client.close());
      const got: Got = [];
      const w = new Waiters();
      client.on('message', (d: string | Uint8Array) => {
        got.push(typeof d === 'string' ? ['text', d] : ['binary', Buffer.from(d).toString()]);
        w.poke();
      });
      const s = await sP;
      assert.equal(s.mode, 'lifeline');
      sendAll(s);
      await w.wait(() => got.length >= WANT.length, ms(5000), () => `${WANT.length} messages (have ${JSON.stringify(got)})`);
      assert.deepEqual(got, WANT);
      s.close();
      assertClosedSend(s);
    } finally {
      await cleanup.run();
    }
  });

  test('plain session (a peer without lifeline.v1)', async () => {
    const cleanup = new Cleanup();
    try {
      const served = await Served.start({ heartbeat: 'off' });
      cleanup.add(() => served.close());
      const sP = once<ServerSession>(served.server, 'connection', ms(5000));
      const peer = new WebSocket(`ws://127.0.0.1:${served.port}/`);
      peer.on('error', () => {});
      cleanup.add(() => peer.terminate());
      const got: Got = [];
      const w = new Waiters();
      peer.on('message', (d: Buffer, isBinary: boolean) => {
        got.push([isBinary ? 'binary' : 'text', d.toString()]);
        w.poke();
      });
      const s = await sP;
      assert.equal(s.mode, 'plain');
      sendAll(s);
      await w.wait(() => got.length >= WANT.length, ms(5000), () => `${WANT.length} messages (have ${JSON.stringify(got)})`);
      assert.deepEqual(got, WANT);
      s.close();
      assertClosedSend(s);
    } finally {
      await cleanup.run();
    }
  });
});

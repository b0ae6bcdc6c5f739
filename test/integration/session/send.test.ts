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

/**
 * A LifelineServer session with a peer of `mode`'s kind (the Node
 * LifelineClient, or `ws` without the subprotocol): sendAll() arrives as
 * WANT, and after close() send() throws.
 */
async function checkSend(mode: 'lifeline' | 'plain'): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const served = await Served.start({ heartbeat: 'off' });
    cleanup.add(() => served.close());
    const sP = once<ServerSession>(served.server, 'connection', ms(5000));
    const url = `ws://127.0.0.1:${served.port}/`;
    const got: Got = [];
    const w = new Waiters();
    const add = (kind: 'text' | 'binary', body: string) => {
      got.push([kind, body]);
      w.poke();
    };
    if (mode === 'lifeline') {
      const client = new LifelineClient(url);
      client.on('error', () => {});
      cleanup.add(() => client.close());
      client.on('message', (d: string | Uint8Array) => (typeof d === 'string' ? add('text', d) : add('binary', Buffer.from(d).toString())));
    } else {
      const peer = new WebSocket(url);
      peer.on('error', () => {});
      cleanup.add(() => peer.terminate());
      peer.on('message', (d: Buffer, isBinary: boolean) => add(isBinary ? 'binary' : 'text', d.toString()));
    }
    const s = await sP;
    assert.equal(s.mode, mode);
    sendAll(s);
    await w.wait(() => got.length >= WANT.length, ms(5000), () => `${WANT.length} messages (have ${JSON.stringify(got)})`);
    assert.deepEqual(got, WANT);
    s.close();
    assertClosedSend(s);
  } finally {
    await cleanup.run();
  }
}

describe('ServerSession.send: text or binary, and after close', () => {
  test('lifeline.v1 session', () => checkSend('lifeline'));
  test('plain session (a peer without lifeline.v1)', () => checkSend('plain'));
});

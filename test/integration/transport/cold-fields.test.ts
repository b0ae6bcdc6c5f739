// Memory per idle connection (docs/ARCHITECTURE.md, "Memory per connection"):
// a server-side WebSocket keeps its cold fields on the prototype until one is
// written. An idle socket must own none of them; a congested one gets the six
// congestion fields together and in one order (one hidden class more for the
// send path, not one per order in which they happened to be written).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';

import { WebSocketServer } from '../../../src/transport/node/server.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';
import { ms, once } from '../../helpers/peers.js';
import { rawUpgrade } from '../limits/helpers.js';

const CONGESTION = ['needDrain', 'holding', 'held', 'heldBytes', 'queuedBytes', 'flushWatched'];
const COLD = ['protocol', 'extensions', 'closeCode', 'closeReason', ...CONGESTION, 'closeTimer', 'cause'];
const own = (ws: WebSocket): string[] => Reflect.ownKeys(ws).filter((k): k is string => typeof k === 'string');
// Node's own write buffer mark for a socket: 16 KiB up to Node 20, 64 KiB from
// Node 22. Ours is set above it so that a write can pass Node's and not ours.
const NODE_MARK = getDefaultHighWaterMark(false);
const OUR_MARK = 4 * NODE_MARK;

describe('server-side WebSocket: cold fields stay on the prototype until written', () => {
  let wss: WebSocketServer;
  let port: number;
  const peers: net.Socket[] = [];

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', highWaterMark: OUR_MARK });
    await once(wss, 'listening', ms(5000));
    port = (wss.address() as net.AddressInfo).port;
  });

  after(async () => {
    for (const p of peers) p.destroy();
    await wss.close({ timeout: ms(1000) }).catch(() => {});
  });

  async function accepted(): Promise<WebSocket> {
    const conn = once<WebSocket>(wss, 'connection', ms(5000));
    const { socket } = await rawUpgrade(port);
    peers.push(socket);
    return conn;
  }

  test('an idle socket owns none of them, and reads their defaults', async () => {
    const ws = await accepted();
    assert.deepEqual(own(ws).filter((k) => COLD.includes(k)), []);
    assert.equal(ws.protocol, '');
    assert.equal(ws.extensions, '');
    assert.equal(ws.bufferedAmount, 0);
  });

  test("Node's socket draining (a write past its own mark, under ours) leaves them on the prototype", async () => {
    const ws = await accepted();
    const peer = peers.at(-1)!;
    peer.on('data', () => {});
    peer.resume();
    assert.equal(ws.rawSocket!.writableHighWaterMark, NODE_MARK);
    const drained = once(ws.rawSocket!, 'drain', ms(5000));
    assert.equal(ws.send(Buffer.alloc(3 * NODE_MARK, 2)), true, 'under our high-water mark');
    await drained;
    assert.deepEqual(own(ws).filter((k) => COLD.includes(k)), []);
  });

  test('a congested socket owns the six congestion fields, in one order', async () => {
    const ws = await accepted();
    const peer = peers.at(-1)!;
    peer.pause(); // stops reading: kernel buffers, then Node's, then ours fill
    const chunk = Buffer.alloc(256 * 1024, 1);
    for (let i = 0; i < 64 && ws.send(chunk); i++);
    assert.ok(ws.bufferedAmount > OUR_MARK, `congested (bufferedAmount ${ws.bufferedAmount})`);
    const keys = own(ws).filter((k) => CONGESTION.includes(k));
    assert.deepEqual(keys, CONGESTION);
  });
});

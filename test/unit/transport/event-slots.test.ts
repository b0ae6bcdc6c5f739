// emitMessage(): the direct call of a single 'message' listener must behave
// as emit('message', ...) does, for every way a listener can be registered.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';

import { emitMessage, emitterWithoutInit, sessionEventSlots, socketEventSlots } from '../../../src/transport/node/event-slots.js';
import { WebSocket } from '../../../src/transport/node/websocket.js';

/** Made as WebSocket and ServerSession are: no EventEmitter constructor, a pre-shaped table. */
class SocketLike {
  constructor() {
    socketEventSlots(this as unknown as EventEmitter);
  }
}
emitterWithoutInit(SocketLike);
class SessionLike {
  constructor() {
    sessionEventSlots(this as unknown as EventEmitter);
  }
}
emitterWithoutInit(SessionLike);

/** Emitters as the library makes them (pre-shaped tables), and a default one. */
function emitters(): Array<[string, EventEmitter]> {
  return [
    ['socket slots', new SocketLike() as unknown as EventEmitter],
    ['session slots', new SessionLike() as unknown as EventEmitter],
    ['plain EventEmitter', new EventEmitter()],
  ];
}

describe('emitterWithoutInit', () => {
  it('an EventEmitter with two own fields (the listener table and its count), where EventEmitter.init gives five', () => {
    const ee = new SocketLike() as unknown as EventEmitter;
    assert.ok(ee instanceof EventEmitter);
    assert.deepEqual(Reflect.ownKeys(ee).sort(), ['_events', '_eventsCount']);
    assert.equal(Reflect.ownKeys(new EventEmitter()).length, 5, "Node's own init, for comparison");
    assert.deepEqual(Reflect.ownKeys(new WebSocket()).filter((k) => typeof k === 'symbol' || k === '_maxListeners'), [], 'WebSocket holds none of the shared three');
  });

  it('removing the last listener keeps the pre-shaped table (shape mode, from the prototype)', () => {
    const ee = new SocketLike() as unknown as EventEmitter & { _events: Record<string, unknown> };
    const table = ee._events;
    const f = (): void => {};
    ee.on('message', f);
    ee.on('close', f);
    ee.off('message', f);
    ee.off('close', f);
    assert.equal(ee._events, table, 'the same object, not a new dictionary');
    assert.ok('message' in table && table.message === undefined);
    assert.equal(ee.listenerCount('message'), 0);
    ee.on('ping', f);
    ee.emit('ping');
    assert.equal(ee.listenerCount('ping'), 1);
  });

  it('setMaxListeners and the class statics work as on any emitter', () => {
    const ee = new SessionLike() as unknown as EventEmitter;
    assert.equal(ee.getMaxListeners(), EventEmitter.defaultMaxListeners);
    ee.setMaxListeners(3);
    assert.equal(ee.getMaxListeners(), 3);
    assert.equal(new SessionLike().constructor.name, 'SessionLike');
    assert.equal((SessionLike as unknown as typeof EventEmitter).defaultMaxListeners, EventEmitter.defaultMaxListeners);
  });

  it("Node's global captureRejections applies to such emitters (read from EventEmitter.prototype)", async () => {
    const ee = new SocketLike() as unknown as EventEmitter;
    const errors: unknown[] = [];
    ee.on('error', (e) => errors.push((e as Error).message));
    ee.on('message', async () => {
      throw new Error('rejected');
    });
    EventEmitter.captureRejections = true;
    try {
      emitMessage(ee, 'x', false);
    } finally {
      EventEmitter.captureRejections = false;
    }
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, ['rejected']);
  });
});

describe('emitMessage', () => {
  for (const [name, ee] of emitters()) {
    describe(name, () => {
      it('no listener: nothing happens', () => {
        emitMessage(ee, 'x', false);
      });

      it('one listener: called with (data, isBinary), `this` the emitter', () => {
        const calls: unknown[] = [];
        function listener(this: unknown, data: unknown, isBinary: boolean): void {
          calls.push([this === ee, data, isBinary]);
        }
        ee.on('message', listener);
        emitMessage(ee, 'a', true);
        ee.off('message', listener);
        emitMessage(ee, 'b', false);
        assert.deepEqual(calls, [[true, 'a', true]]);
        assert.equal(ee.listenerCount('message'), 0);
      });

      it('once: called for one message, then gone', () => {
        const calls: unknown[] = [];
        ee.once('message', (d: unknown) => calls.push(d));
        emitMessage(ee, 1, false);
        emitMessage(ee, 2, false);
        assert.deepEqual(calls, [1]);
        assert.equal(ee.listenerCount('message'), 0);
      });

      it('several listeners: each, in the order added (prepend first)', () => {
        const calls: unknown[] = [];
        const a = (d: unknown) => calls.push(['a', d]);
        const b = (d: unknown) => calls.push(['b', d]);
        const c = (d: unknown) => calls.push(['c', d]);
        ee.on('message', a);
        ee.on('message', b);
        ee.prependListener('message', c);
        emitMessage(ee, 7, false);
        ee.removeAllListeners('message');
        assert.deepEqual(calls, [['c', 7], ['a', 7], ['b', 7]]);
      });

      it('a throwing listener throws to the caller, as emit() does', () => {
        ee.on('message', () => {
          throw new Error('boom');
        });
        assert.throws(() => emitMessage(ee, 0, false), /boom/);
        ee.removeAllListeners('message');
      });
    });
  }

  it('captureRejections: a rejected async listener becomes an error event, as with emit()', async () => {
    const ee = new EventEmitter({ captureRejections: true });
    socketEventSlots(ee);
    const errors: unknown[] = [];
    ee.on('error', (e) => errors.push((e as Error).message));
    ee.on('message', async () => {
      throw new Error('rejected');
    });
    emitMessage(ee, 'x', false);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, ['rejected']);
  });
});

describe("WebSocket 'ping' and 'pong' (checked by name before emit)", () => {
  it('reach listeners however they were added: on, once, removed and added again, after removeAllListeners; a pong range as its bytes', () => {
    const ws = new WebSocket();
    const got: string[] = [];
    ws.onPing(Buffer.from('a'));
    ws.onPong(Buffer.from('a'));
    const onPing = (d: Buffer): void => void got.push('ping ' + d.toString());
    const onPong = (d: Buffer): void => void got.push('pong ' + d.toString());
    ws.on('ping', onPing);
    ws.once('pong', onPong);
    ws.onPing(Buffer.from('b'));
    ws.onPong(Buffer.from('b'));
    ws.onPong(Buffer.from('c'));
    ws.off('ping', onPing);
    ws.onPing(Buffer.from('d'));
    ws.on('ping', onPing);
    ws.on('pong', onPong);
    ws.on('pong', onPong);
    ws.onPing(Buffer.from('e'));
    ws.onPong(Buffer.from('e'));
    ws.removeAllListeners();
    ws.onPing(Buffer.from('f'));
    ws.onPong(Buffer.from('f'));
    ws.onPongRange(Buffer.from('-f-'), 1, 2);
    ws.prependListener('pong', onPong);
    ws.onPong(Buffer.from('g'));
    ws.onPongRange(Buffer.from('--h--'), 2, 3);
    assert.deepEqual(got, ['ping b', 'pong b', 'ping e', 'pong e', 'pong e', 'pong g', 'pong h']);
  });
});

// emitMessage(): the direct call of a single 'message' listener must behave
// as emit('message', ...) does, for every way a listener can be registered.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';

import { emitMessage, sessionEventSlots, socketEventSlots } from '../../../src/transport/node/event-slots.js';

/** Emitters as the library makes them (pre-shaped tables), and a default one. */
function emitters(): Array<[string, EventEmitter]> {
  const socketLike = new EventEmitter();
  socketEventSlots(socketLike);
  const sessionLike = new EventEmitter();
  sessionEventSlots(sessionLike);
  return [
    ['socket slots', socketLike],
    ['session slots', sessionLike],
    ['plain EventEmitter', new EventEmitter()],
  ];
}

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

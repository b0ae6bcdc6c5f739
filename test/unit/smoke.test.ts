// The test harness itself: skipUnless semantics, time units, and the helpers
// that keep real-socket tests from hanging. Imports nothing from src/.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';

import { freePort, ms, once, peerAvailability, skipUnless, UNIT, withTimeout } from '../helpers/peers.js';

describe('skipUnless', () => {
  let savedCI: string | undefined;
  beforeEach(() => {
    savedCI = process.env.CI;
  });
  afterEach(() => {
    if (savedCI === undefined) delete process.env.CI;
    else process.env.CI = savedCI;
    mock.restoreAll();
  });

  test('runs the test when the peer is available, in CI or not', () => {
    process.env.CI = 'true';
    assert.deepEqual(skipUnless(true, 'thing'), { skip: false });
    delete process.env.CI;
    assert.deepEqual(skipUnless(true, 'thing'), { skip: false });
  });

  test('skips loudly when the peer is missing outside CI', () => {
    delete process.env.CI;
    const warn = mock.method(console, 'warn', () => {});
    const opts = skipUnless(false, 'thing');
    assert.equal(opts.skip, 'thing not available');
    assert.equal(warn.mock.callCount(), 1);
    assert.match(String(warn.mock.calls[0]?.arguments[0]), /\*\*\* SKIPPED: thing not available/);
  });

  test('throws when the peer is missing under CI=true', () => {
    process.env.CI = 'true';
    assert.throws(() => skipUnless(false, 'thing'), /thing not available.*CI=true/);
  });
});

describe('time unit', () => {
  test('ms() scales by LIFELINE_TEST_UNIT', () => {
    assert.ok(UNIT > 0);
    assert.equal(ms(100), 100 * UNIT);
  });
});

describe('once', () => {
  test('resolves with the first argument of the event', async () => {
    const ee = new EventEmitter();
    setImmediate(() => ee.emit('close', 1000, 'bye'));
    assert.equal(await once<number>(ee, 'close', ms(1000)), 1000);
    assert.equal(ee.listenerCount('close'), 0);
    assert.equal(ee.listenerCount('error'), 0);
  });

  test('times out with an error naming the event', async () => {
    const ee = new EventEmitter();
    await assert.rejects(once(ee, 'open', 20), /timed out after 20 ms waiting for 'open'/);
    assert.equal(ee.listenerCount('open'), 0);
  });

  test("rejects on 'error' while waiting", async () => {
    const ee = new EventEmitter();
    setImmediate(() => ee.emit('error', new Error('boom')));
    await assert.rejects(once(ee, 'open', ms(1000)), /'error' while waiting for 'open': boom/);
  });

  test('works with EventTarget', async () => {
    const et = new EventTarget();
    setImmediate(() => et.dispatchEvent(new Event('open')));
    const ev = await once<Event>(et, 'open', ms(1000));
    assert.equal(ev.type, 'open');
  });
});

describe('withTimeout', () => {
  test('passes the value through', async () => {
    assert.equal(await withTimeout(Promise.resolve(7), ms(1000), 'seven'), 7);
  });
  test('rejects naming what it waited for', async () => {
    await assert.rejects(withTimeout(new Promise(() => {}), 20, 'the handshake'), /waiting for the handshake/);
  });
});

describe('freePort', () => {
  test('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('peerAvailability', () => {
  test('reports a boolean and two paths-or-null, and is cached', () => {
    const peers = peerAvailability();
    assert.equal(typeof peers.python3Websockets, 'boolean');
    assert.ok(peers.lwsTestServer === null || peers.lwsTestServer.startsWith('/'));
    assert.ok(peers.chromium === null || peers.chromium.startsWith('/'));
    assert.equal(peerAvailability(), peers);
  });
});

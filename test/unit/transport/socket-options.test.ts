// The socket limits (docs/LIMITS.md) are checked where they are given: the
// server's constructor, the client's connect(), the Node LifelineClient's
// constructor (its `transport` options). Before, a bad size was found by the
// protocol core as a peer's first connection was made, which on a server
// threw out of the upgrade handler (an uncaught exception: the process went
// down at the first client), and a NaN mark or a misspelt policy was taken
// and never applied.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { LifelineServer } from '../../../src/server/lifeline-server.js';
import { UsageError } from '../../../src/protocol/errors.js';
import { connect } from '../../../src/transport/node/client.js';
import { WebSocketServer } from '../../../src/transport/node/server.js';
import { validateSocketOptions, type SocketOptions } from '../../../src/transport/node/websocket.js';

const BAD: Array<[SocketOptions, RegExp]> = [
  [{ maxMessageSize: -5 }, /^maxMessageSize must be a non-negative integer, got -5$/],
  [{ maxFrameSize: 1.5 }, /^maxFrameSize must be a non-negative integer, got 1\.5$/],
  [{ fragmentSize: -1 }, /^fragmentSize must be a non-negative integer, got -1$/],
  [{ highWaterMark: -1 }, /^highWaterMark must be a non-negative integer, got -1$/],
  [{ highWaterMark: NaN }, /^highWaterMark must be a non-negative integer, got NaN$/],
  [{ maxBufferedBytes: Infinity }, /^maxBufferedBytes must be a non-negative integer, got Infinity$/],
  [{ maxBufferedBytes: '1048576' as unknown as number }, /^maxBufferedBytes must be a non-negative integer, got 1048576$/],
  [{ maxMessagesPerSecond: 0.5 }, /^maxMessagesPerSecond must be a non-negative integer, got 0\.5$/],
  [{ closeTimeout: -1 }, /^closeTimeout must be a number of ms in 0\.\.2147483647, got -1$/],
  [{ closeTimeout: 2 ** 31 }, /^closeTimeout must be a number of ms in 0\.\.2147483647, got 2147483648$/],
  [{ slowConsumer: 'drop_oldest' as SocketOptions['slowConsumer'] }, /^slowConsumer must be one of disconnect, drop-newest, drop-oldest, keep-latest, wait, got "drop_oldest"$/],
];

function invalidOption(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof UsageError && err.code === 'WS_ERR_INVALID_OPTION' && pattern.test(err.message);
}

describe('socket options are validated where they are given', () => {
  it('validateSocketOptions: each bad value is a UsageError naming the option and the value', () => {
    for (const [options, message] of BAD) assert.throws(() => validateSocketOptions(options), invalidOption(message), JSON.stringify(options));
  });

  it('validateSocketOptions: the defaults, zeros and every policy pass', () => {
    validateSocketOptions({});
    validateSocketOptions({ maxMessageSize: 0, maxFrameSize: 0, fragmentSize: 0, highWaterMark: 0, maxBufferedBytes: 0, maxMessagesPerSecond: 0, closeTimeout: 0 });
    // A scaled test timeout is often fractional: closeTimeout takes any number of ms in range.
    validateSocketOptions({ closeTimeout: 1100.0000000000002 });
    for (const slowConsumer of ['disconnect', 'drop-newest', 'drop-oldest', 'keep-latest', 'wait'] as const) validateSocketOptions({ slowConsumer });
  });

  it('WebSocketServer and LifelineServer throw at construction (no port is bound)', () => {
    for (const [options, message] of BAD) {
      assert.throws(() => new WebSocketServer({ noServer: true, ...options }), invalidOption(message), `WebSocketServer ${JSON.stringify(options)}`);
      assert.throws(() => new LifelineServer({ noServer: true, ...options }), invalidOption(message), `LifelineServer ${JSON.stringify(options)}`);
    }
  });

  it('connect() rejects before opening a socket; the Node LifelineClient throws at construction', async () => {
    for (const [options, message] of BAD) {
      // Port 9 on loopback: nothing listens, and nothing is dialled (the options fail first).
      await assert.rejects(connect('ws://127.0.0.1:9/', options), invalidOption(message), `connect ${JSON.stringify(options)}`);
      assert.throws(() => new LifelineClient('ws://127.0.0.1:9/', { transport: options }), invalidOption(message), `LifelineClient ${JSON.stringify(options)}`);
    }
  });
});

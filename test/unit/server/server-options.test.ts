// LifelineServer's own options (docs/LIMITS.md, "Sessions") are checked at
// construction, as its socket options are (test/unit/transport/socket-options.test.ts).
// helloTimeout and authRefreshLead were not: a NaN helloTimeout, a timer that
// fires at once, closed every lifeline.v1 client before its hello.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LifelineServer, type LifelineServerOptions } from '../../../src/server/lifeline-server.js';
import { UsageError } from '../../../src/protocol/errors.js';

const BAD: Array<[Partial<LifelineServerOptions>, string]> = [
  [{ sessionTtl: 0 }, 'sessionTtl must be a positive integer, got 0'],
  [{ replayMaxMessages: NaN }, 'replayMaxMessages must be a positive integer, got NaN'],
  [{ replayMaxBytes: -1 }, 'replayMaxBytes must be a positive integer, got -1'],
  [{ ackEvery: 1.5 }, 'ackEvery must be a positive integer, got 1.5'],
  [{ ackDelay: Infinity }, 'ackDelay must be a positive integer, got Infinity'],
  [{ tombstones: 0 }, 'tombstones must be a positive integer, got 0'],
  [{ helloTimeout: NaN }, 'helloTimeout must be a number of ms in 1..2147483647, got NaN'],
  [{ helloTimeout: 0 }, 'helloTimeout must be a number of ms in 1..2147483647, got 0'],
  [{ helloTimeout: 2 ** 31 }, 'helloTimeout must be a number of ms in 1..2147483647, got 2147483648'],
  [{ authRefreshLead: -1 }, 'authRefreshLead must be a number >= 0, got -1'],
  [{ authRefreshLead: NaN }, 'authRefreshLead must be a number >= 0, got NaN'],
];

describe('LifelineServer options are validated at construction', () => {
  it('each bad value is a UsageError (WS_ERR_INVALID_OPTION) naming the option and the value', () => {
    for (const [options, message] of BAD) {
      assert.throws(
        () => new LifelineServer({ noServer: true, heartbeat: 'off', ...options }),
        (err: unknown) => err instanceof UsageError && err.code === 'WS_ERR_INVALID_OPTION' && err.message === message,
        JSON.stringify(options),
      );
    }
  });

  it('the valid edges are taken (a fractional timeout too: scaled test timeouts often are)', async () => {
    const server = new LifelineServer({ noServer: true, heartbeat: 'off', helloTimeout: 1100.0000000000002, authRefreshLead: 0, sessionTtl: 1, ackDelay: 1 });
    await server.close();
  });
});

// Found while proving the auth acceptance: a ServerSession's own timers send
// on its socket after LifelineServer.close() has started that socket's
// closing handshake. The session stays 'open' until the socket's 'close'
// event, the timers check only the session state, and WebSocket.send() on a
// closing socket throws (WS_ERR_SEND_AFTER_CLOSE) from inside a timer: an
// uncaught exception, i.e. a crashed server process, on an ordinary shutdown.
//
// Made deterministic with a FaultProxy holding the client's bytes (its close
// reply is late), so the closing handshake outlasts the timer:
//   - auth-refresh (src/server/lifeline-server.ts setAuth: the timer sends
//     {"t":"auth-refresh"} with only `this._state !== 'open'` as guard);
//   - the delayed standalone ack (sendAckNow: same guard).
// Expected: server.close() completes and nothing throws. Today each test
// fails with the uncaught 'Cannot send: the WebSocket is closing'.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, now } from './helpers.js';

async function setup(cleanup: Cleanup, authenticate?: () => { expiresAt?: number }): Promise<{ served: Served; proxy: FaultProxy; client: LifelineClient; s: ServerSession }> {
  const served = await Served.start({ heartbeat: 'off', ...(authenticate ? { authenticate } : {}) });
  cleanup.add(() => served.close({ timeout: 200 }));
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: served.port });
  cleanup.add(() => proxy.close());
  const sP = once<ServerSession>(served.server, 'connection', ms(5000));
  const client = new LifelineClient(proxy.url('/'), { reconnect: false, token: () => 'token' });
  client.on('error', () => {});
  cleanup.add(() => client.close());
  await once(client, 'open', ms(5000));
  return { served, proxy, client, s: await sP };
}

describe('LifelineServer.close() with a slow peer: session timers must not throw', () => {
  test('auth-refresh due during the closing handshake', async () => {
    const cleanup = new Cleanup();
    try {
      const { served, proxy, s } = await setup(cleanup, () => ({ expiresAt: Date.now() + 600 })); // refresh asked at ~300 ms
      proxy.blackhole('up', 'hold'); // the client's close reply waits
      const closed = once<{ cause: string }>(s, 'close', ms(5000));
      const t0 = now();
      await served.server.close({ timeout: 1000 }); // the handshake outlasts the refresh timer
      const info = await closed;
      console.log(`server.close() with a held peer took ${(now() - t0).toFixed(0)} ms; session close ${info.cause}`);
      assert.equal(info.cause, 'local-closed');
    } finally {
      await cleanup.run();
    }
  });

  test('delayed ack due during the closing handshake', async () => {
    const cleanup = new Cleanup();
    try {
      const { served, proxy, client, s } = await setup(cleanup);
      const got = once(s, 'message', ms(5000));
      client.send('c:1');
      await got; // the ack timer (ackDelay 100 ms) is armed now
      proxy.blackhole('up', 'hold');
      const closed = once<{ cause: string }>(s, 'close', ms(5000));
      const t0 = now();
      await served.server.close({ timeout: 1000 });
      const info = await closed;
      console.log(`server.close() with a held peer took ${(now() - t0).toFixed(0)} ms; session close ${info.cause}`);
      assert.equal(info.cause, 'local-closed');
    } finally {
      await cleanup.run();
    }
  });
});

// Acceptance ("Reconnect and resume"), auth: a 2-second token on a 20-second
// connection is refreshed in-band with no disconnect and no lost message; a
// revoked token ends the session with a fatal reason and no reconnect loop.
//
// The server's authenticate() validates tokens the test mints,
// "tok-<n>-<expiresAt>" (expiresAt in Date.now() ms, the server's clock), and
// returns { expiresAt }: the server asks for a fresh token before then
// (auth-refresh, by default at half the remaining lifetime) and ends the
// session with 'auth-expired' if none comes. The client's token provider
// mints a fresh token on each call.
//
// "No reconnect loop" is checked where it is decided: the client's socket
// factory (attempts it made) and the server's TCP accept count, both
// unchanged over several backoff periods after the fatal close.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { LifelineClient, type NodeLifelineClientOptions } from '../../../src/client/lifeline-client.js';
import { NodeSocket } from '../../../src/client/node-socket.js';
import type { ServerSession } from '../../../src/server/lifeline-server.js';
import type { ClientCloseInfo } from '../../../src/session/lifeline-client.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { Cleanup, Served, Tally, nextEvent, observe, now } from './helpers.js';

const report: string[] = [];
after(() => {
  console.log('\n=== auth: measured ===');
  for (const r of report) console.log(r);
});

/** The test's token authority. */
class Authority {
  revoked = false;
  /** Tokens presented to authenticate(), with Date.now() when presented. */
  readonly presented: Array<{ n: number; expiresAt: number; at: number; ok: boolean }> = [];
  private readonly listeners: Array<() => void> = [];

  /** Resolves at the next token presented to authenticate(). */
  nextPresentation(timeoutMs: number): Promise<void> {
    return withTimeout(new Promise<void>((resolve) => this.listeners.push(resolve)), timeoutMs, 'the next token presentation');
  }

  authenticate = (token: string | undefined): false | { user: string; expiresAt: number } => {
    const m = /^tok-(\d+)-(\d+)$/.exec(token ?? '');
    const at = Date.now();
    if (!m) {
      this.presented.push({ n: -1, expiresAt: 0, at, ok: false });
      return false;
    }
    const n = Number(m[1]);
    const expiresAt = Number(m[2]);
    const ok = !this.revoked && expiresAt > at;
    this.presented.push({ n, expiresAt, at, ok });
    for (const fn of this.listeners.splice(0)) fn();
    return ok ? { user: `user-${n}`, expiresAt } : false;
  };
}

/** A token provider minting `lifetimeMs` tokens; `calls` counts them. */
function minter(lifetimeMs: number): { provider: () => string; calls: () => number } {
  let n = 0;
  return { provider: () => `tok-${++n}-${Date.now() + lifetimeMs}`, calls: () => n };
}

/** A client whose socket factory counts connection attempts. */
function countingClient(url: string, opts: NodeLifelineClientOptions): { client: LifelineClient; attempts: () => number } {
  let attempts = 0;
  const client = new LifelineClient(url, {
    ...opts,
    socketFactory: (u, protocols) => {
      attempts++;
      return new NodeSocket(u, protocols);
    },
  });
  client.on('error', () => {});
  return { client, attempts: () => attempts };
}

const BACKOFF = { base: 100, cap: 400 };
/** Several backoff periods: 100 + 200 + 400 + 400 + 400 ms of ceilings, and then some. */
const QUIET_WINDOW = 2000;

describe('auth: in-band refresh, fatal revocation', () => {
  test('a 2 s token on a 20 s connection: refreshed in-band, no disconnect, no lost message', async () => {
    const cleanup = new Cleanup();
    try {
      const TOKEN_MS = 2000;
      const RUN_MS = 20_000;
      const auth = new Authority();
      const served = await Served.start({ heartbeat: 'off', authenticate: auth.authenticate });
      cleanup.add(() => served.close());
      const mint = minter(TOKEN_MS);
      const { client, attempts } = countingClient(served.url('/'), { backoff: BACKOFF, token: mint.provider });
      cleanup.add(() => client.close());
      const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
      await once(client, 'open', ms(5000));
      const s = await sessP;

      const events: string[] = [];
      client.on('reconnecting', (i) => events.push(`client reconnecting (${i.reason})`));
      client.on('close', (i) => events.push(`client close ${i.cause}`));
      client.on('session-lost', (i) => events.push(`client session-lost ${i.reason}`));
      s.on('detached', (c) => events.push(`session detached ${c}`));
      s.on('close', (i) => events.push(`session close ${i.cause}`));
      served.server.on('connection', () => events.push('server: another session'));
      const users = new Set<unknown>();
      const serverGot = new Tally('c');
      const clientGot = new Tally('s');
      s.on('message', (d) => {
        serverGot.add(d);
        users.add(s.user);
      });
      client.on('message', (d) => clientGot.add(d));

      // Steady traffic both ways, one message each way every 25 ms, for 20 s.
      let cSent = 0;
      let sSent = 0;
      const t0 = now();
      const traffic = setInterval(() => {
        client.send(`c:${++cSent}`);
        s.send(`s:${++sSent}`);
      }, 25);
      cleanup.add(() => clearInterval(traffic));
      await observe(RUN_MS);
      clearInterval(traffic);
      await serverGot.waitCount(cSent);
      await clientGot.waitCount(sSent);
      const elapsed = now() - t0;
      const stillOpen = [...events];
      const statesAtEnd = [client.state, s.state];
      // An orderly end, right after a refresh so that no refresh timer is due while the
      // socket closes (that case is a bug of its own: server-close-timers.test.ts).
      await auth.nextPresentation(ms(3000));
      const sClosed = once<{ cause: string }>(s, 'close', ms(5000));
      client.close();
      assert.equal((await sClosed).cause, 'peer-closed');

      const refreshes = auth.presented.slice(1);
      const gaps = auth.presented.slice(1).map((p, i) => p.at - auth.presented[i]!.at);
      // Each token was replaced before it expired: margin = expiry of token i - arrival of token i+1.
      const margins = auth.presented.slice(1).map((p, i) => auth.presented[i]!.expiresAt - p.at);
      report.push(
        `2 s tokens over ${(elapsed / 1000).toFixed(1)} s: provider called ${mint.calls()} times, ${refreshes.length} in-band refreshes, ` +
          `refresh every ${Math.min(...gaps)}..${Math.max(...gaps)} ms, replaced ${Math.min(...margins)}..${Math.max(...margins)} ms before expiry; ` +
          `traffic ${cSent} up / ${sSent} down; reconnects ${client.stats().reconnects}; socket attempts ${attempts()}; TCP accepts ${served.tcpAccepted}`,
      );
      assert.deepEqual(stillOpen, [], 'no disconnect of any kind during the run');
      assert.deepEqual(statesAtEnd, ['open', 'open']);
      assert.equal(client.stats().reconnects, 0);
      assert.equal(attempts(), 1);
      assert.equal(served.tcpAccepted, 1);
      // Refreshed at half-life: about RUN_MS / (TOKEN_MS / 2) times.
      const expected = RUN_MS / (TOKEN_MS / 2);
      assert.ok(refreshes.length >= expected * 0.75 && refreshes.length <= expected * 1.25, `${refreshes.length} refreshes, expected about ${expected}`);
      assert.equal(mint.calls(), auth.presented.length, 'every minted token reached the server');
      assert.ok(auth.presented.every((p) => p.ok), 'every token accepted');
      assert.ok(Math.min(...margins) > 0, 'every token replaced before it expired');
      assert.ok(users.size >= expected * 0.5, `the session's user follows the refreshed tokens (${users.size} distinct)`);
      // Exactly once, in order, both ways.
      assert.ok(serverGot.isExactly(cSent), serverGot.describe());
      assert.ok(clientGot.isExactly(sSent), clientGot.describe());
      assert.ok(cSent > 600 && sSent > 600, `steady traffic (${cSent}/${sSent})`);
    } finally {
      await cleanup.run();
    }
  });

  test('token revoked (authenticate refuses the refresh): fatal auth-failed, no reconnect loop', async () => {
    const cleanup = new Cleanup();
    try {
      const auth = new Authority();
      const served = await Served.start({ heartbeat: 'off', authenticate: auth.authenticate });
      cleanup.add(() => served.close());
      const mint = minter(1000);
      const { client, attempts } = countingClient(served.url('/'), { backoff: BACKOFF, token: mint.provider });
      cleanup.add(() => client.close());
      const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
      await once(client, 'open', ms(5000));
      const s = await sessP;
      const sClosed = once<{ code: number; cause: string }>(s, 'close', ms(5000));
      const closed = nextEvent<ClientCloseInfo>(client, 'close', ms(5000));
      let reconnecting = 0;
      client.on('reconnecting', () => reconnecting++);
      const t0 = now();
      auth.revoked = true; // the next refresh (at ~500 ms) is refused
      const info = await closed;
      const sInfo = await sClosed;
      const tClose = now() - t0;
      await observe(QUIET_WINDOW);
      report.push(
        `revoked (refresh refused): client close ${JSON.stringify(info)} after ${tClose.toFixed(0)} ms; session close ${sInfo.cause}/${sInfo.code}; ` +
          `over the next ${QUIET_WINDOW} ms: socket attempts ${attempts()} (total), TCP accepts ${served.tcpAccepted}, reconnecting events ${reconnecting}`,
      );
      assert.equal(info.cause, 'auth-failed');
      assert.equal(info.code, 4401);
      assert.equal(sInfo.cause, 'auth-failed');
      assert.equal(client.state, 'closed');
      assert.equal(reconnecting, 0);
      assert.equal(attempts(), 1, 'no further connection attempt');
      assert.equal(served.tcpAccepted, 1, 'the server saw no further connection');
      assert.equal(mint.calls(), 2, 'the first token and the refused refresh');
    } finally {
      await cleanup.run();
    }
  });

  test('session.revoke(): fatal forbidden (4403), no reconnect loop', async () => {
    const cleanup = new Cleanup();
    try {
      const auth = new Authority();
      const served = await Served.start({ heartbeat: 'off', authenticate: auth.authenticate });
      cleanup.add(() => served.close());
      const mint = minter(60_000);
      const { client, attempts } = countingClient(served.url('/'), { backoff: BACKOFF, token: mint.provider });
      cleanup.add(() => client.close());
      const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
      await once(client, 'open', ms(5000));
      const s = await sessP;
      const closed = nextEvent<ClientCloseInfo>(client, 'close', ms(5000));
      const sClosed = once<{ code: number; cause: string }>(s, 'close', ms(5000));
      let reconnecting = 0;
      client.on('reconnecting', () => reconnecting++);
      s.revoke('banned');
      const [info, sInfo] = await Promise.all([closed, sClosed]);
      await observe(QUIET_WINDOW);
      report.push(
        `session.revoke(): client close ${JSON.stringify(info)}; session close ${sInfo.cause}/${sInfo.code}; ` +
          `socket attempts ${attempts()}, TCP accepts ${served.tcpAccepted}, reconnecting events ${reconnecting}`,
      );
      assert.equal(info.cause, 'forbidden');
      assert.equal(client.state, 'closed');
      assert.equal(sInfo.code, 4403);
      assert.equal(reconnecting, 0);
      assert.equal(attempts(), 1);
      assert.equal(served.tcpAccepted, 1);
      // The client reports the close code the server sent.
      assert.equal(info.code, 4403, 'client close info carries the 4403 the server sent');
    } finally {
      await cleanup.run();
    }
  });

  test('bad token on the first connect: fatal auth-failed, no retry', async () => {
    const cleanup = new Cleanup();
    try {
      const auth = new Authority();
      const served = await Served.start({ heartbeat: 'off', authenticate: auth.authenticate });
      cleanup.add(() => served.close());
      let calls = 0;
      const { client, attempts } = countingClient(served.url('/'), {
        backoff: BACKOFF,
        token: () => {
          calls++;
          return 'not-a-token';
        },
      });
      cleanup.add(() => client.close());
      let opened = 0;
      let reconnecting = 0;
      client.on('open', () => opened++);
      client.on('reconnecting', () => reconnecting++);
      const info = await nextEvent<ClientCloseInfo>(client, 'close', ms(5000));
      await observe(QUIET_WINDOW);
      report.push(`bad token: client close ${JSON.stringify(info)}; provider calls ${calls}, socket attempts ${attempts()}, TCP accepts ${served.tcpAccepted}`);
      assert.equal(info.cause, 'auth-failed');
      assert.equal(info.code, 4401);
      assert.equal(client.state, 'closed');
      assert.equal(opened, 0);
      assert.equal(reconnecting, 0);
      assert.equal(calls, 1);
      assert.equal(attempts(), 1);
      assert.equal(served.tcpAccepted, 1);
      assert.equal(served.server.sessions.size, 0);
    } finally {
      await cleanup.run();
    }
  });

  test('token expires without refresh (provider hangs): fatal auth-expired at expiry, no retry', async () => {
    const cleanup = new Cleanup();
    try {
      const LIFETIME = 1000;
      const auth = new Authority();
      const served = await Served.start({ heartbeat: 'off', authenticate: auth.authenticate });
      cleanup.add(() => served.close());
      let calls = 0;
      const { client, attempts } = countingClient(served.url('/'), {
        backoff: BACKOFF,
        token: () => {
          calls++;
          // The first token is fine; the refresh never comes.
          return calls === 1 ? `tok-1-${Date.now() + LIFETIME}` : new Promise<string>(() => {});
        },
      });
      cleanup.add(() => client.close());
      const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
      await once(client, 'open', ms(5000));
      const s = await sessP;
      const expiresAt = auth.presented[0]!.expiresAt;
      const sClosed = once<{ code: number; cause: string }>(s, 'close', ms(5000));
      const info = await nextEvent<ClientCloseInfo>(client, 'close', ms(5000));
      const tClose = Date.now();
      const sInfo = await sClosed;
      let reconnecting = 0;
      client.on('reconnecting', () => reconnecting++);
      await observe(QUIET_WINDOW);
      report.push(
        `provider hangs: client close ${JSON.stringify(info)} ${tClose - expiresAt} ms after the token's expiry; session close ${sInfo.cause}/${sInfo.code}; ` +
          `provider calls ${calls}, socket attempts ${attempts()}, TCP accepts ${served.tcpAccepted}`,
      );
      assert.equal(info.cause, 'auth-expired');
      assert.equal(sInfo.cause, 'auth-expired');
      assert.equal(client.state, 'closed');
      assert.equal(calls, 2, 'the first token, then the refresh that hangs');
      assert.ok(tClose >= expiresAt - 5, `not before expiry (${tClose - expiresAt} ms)`);
      assert.ok(tClose - expiresAt < ms(500), `soon after expiry (${tClose - expiresAt} ms)`);
      assert.equal(reconnecting, 0);
      assert.equal(attempts(), 1);
      assert.equal(served.tcpAccepted, 1);
    } finally {
      await cleanup.run();
    }
  });
});

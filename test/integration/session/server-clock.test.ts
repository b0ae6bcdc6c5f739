// LifelineServerOptions.clock drives every timer of the session layer: the
// hello timeout, a detached session's TTL, and the auth refresh and expiry
// (as it drives the heartbeat, and the ack sweep: ack-piggyback.test.ts).
// A FakeClock moves them exactly: each timer must not fire one ms early and
// must fire on the ms it is due, with no real time waited for.
//
// LifelineServer on 127.0.0.1, a `ws` client speaking lifeline.v1 by hand.
// "Not yet" is shown by an app ping answered after the clock moved: the
// server handles a socket's frames in order, so anything the timer would
// have sent (or a close) comes before the pong.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import WebSocket from 'ws';

import type { LifelineServerOptions, ServerSession, SessionCloseInfo } from '../../../src/server/lifeline-server.js';
import { FakeClock } from '../../../src/session/clock.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, Served, Waiters } from './helpers.js';

/** A lifeline.v1 peer over `ws`: every text message it gets, in order. */
class Peer {
  readonly texts: string[] = [];
  private readonly w = new Waiters();
  private pings = 0;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.texts.push(String(d));
      this.w.poke();
    });
  }

  /** Waits for the `n`th message (1-based) and returns it. */
  async nth(n: number): Promise<string> {
    await this.w.wait(() => this.texts.length >= n, ms(5000), () => `message ${n} (have ${JSON.stringify(this.texts)})`);
    return this.texts[n - 1]!;
  }

  /** Sends an app ping; returns what came before its pong since message `from`, the pong excluded. */
  async roundTrip(from: number): Promise<string[]> {
    const ts = ++this.pings;
    this.ws.send(`{"t":"ping","ts":${ts}}`);
    const pong = `{"t":"pong","ts":${ts}}`;
    await this.w.wait(() => this.texts.includes(pong), ms(5000), () => `the pong to ping ${ts} (have ${JSON.stringify(this.texts)})`);
    return this.texts.slice(from, this.texts.indexOf(pong));
  }
}

async function start(cleanup: Cleanup, options: Omit<LifelineServerOptions, 'port' | 'server' | 'noServer'>): Promise<Served> {
  const served = await Served.start({ heartbeat: 'off', ...options });
  cleanup.add(() => served.close());
  return served;
}

async function connect(cleanup: Cleanup, served: Served): Promise<Peer> {
  const ws = new WebSocket(served.url(), 'lifeline.v1');
  cleanup.add(() => ws.terminate());
  const peer = new Peer(ws);
  await once(ws, 'open');
  return peer;
}

/** A peer past its hello and welcome, and its server-side session. */
async function session(cleanup: Cleanup, served: Served): Promise<{ peer: Peer; s: ServerSession }> {
  const got = once<ServerSession>(served.server, 'connection');
  const peer = await connect(cleanup, served);
  peer.ws.send('{"t":"hello","v":1,"token":"t"}');
  const s = await got;
  assert.match(await peer.nth(1), /^\{"t":"welcome"/);
  return { peer, s };
}

describe("the server's clock drives the session layer's timers", () => {
  test('hello timeout: open until helloTimeout has passed on the clock, then closed with 1008', async () => {
    const cleanup = new Cleanup();
    try {
      const clock = new FakeClock();
      // A minute: far beyond the test's own waits, so only the clock can fire it.
      const served = await start(cleanup, { clock, helloTimeout: 60_000 });
      const peer = await connect(cleanup, served);
      clock.advance(59_999);
      assert.deepEqual(await peer.roundTrip(0), [], 'pings are answered before the hello');
      const closed = once<number>(peer.ws, 'close');
      clock.advance(1);
      assert.equal(await closed, 1008);
    } finally {
      await cleanup.run();
    }
  });

  test('session TTL: a detached session waits sessionTtl on the clock, then ends as session-expired', async () => {
    const cleanup = new Cleanup();
    try {
      const clock = new FakeClock();
      const served = await start(cleanup, { clock, sessionTtl: 60_000 });
      const { peer, s } = await session(cleanup, served);
      const detached = once(s, 'detached');
      peer.ws.terminate();
      await detached;
      clock.advance(59_999);
      assert.equal(s.state, 'detached');
      const closed = once<SessionCloseInfo>(s, 'close');
      clock.advance(1);
      assert.equal((await closed).cause, 'session-expired');
      assert.equal(s.state, 'closed');
    } finally {
      await cleanup.run();
    }
  });

  test('auth: the refresh request authRefreshLead before expiresAt, and the end at expiresAt, both on the clock', async () => {
    const cleanup = new Cleanup();
    try {
      const clock = new FakeClock();
      const expiresAt = clock.now() + 10_000;
      const served = await start(cleanup, { clock, authRefreshLead: 2_000, authenticate: () => ({ user: 'u', expiresAt }) });
      const { peer, s } = await session(cleanup, served);

      clock.advance(7_999);
      assert.deepEqual(await peer.roundTrip(1), [], 'no refresh request before expiresAt - authRefreshLead');
      clock.advance(1);
      assert.deepEqual(JSON.parse(await peer.nth(3)), { t: 'auth-refresh' });

      clock.advance(1_999);
      assert.deepEqual(await peer.roundTrip(4), [], 'still open before expiresAt');
      assert.equal(s.state, 'open');
      const closed = once<SessionCloseInfo>(s, 'close');
      clock.advance(1);
      assert.equal((await closed).cause, 'auth-expired');
    } finally {
      await cleanup.run();
    }
  });
});

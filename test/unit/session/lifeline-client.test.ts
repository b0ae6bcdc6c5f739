// LifelineClient (src/session/lifeline-client.ts) over hand-driven FakeSockets
// and a FakeClock: the lifeline.v1 handshake with sessions, sequenced data
// ('d' SEQ [',' ACK] ':' payload), acks, app-level ping/pong, client-side death
// detection, reconnect with backoff, resume (replay + duplicate drop),
// session loss, the outbox, auth, and every way the client stops.
// The socket factory hands out a new FakeSocket per connection attempt.
// browser-bundle.test.ts runs this same suite against the browser bundle.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { BackoffPolicy, seededRandom } from '../../../src/session/backoff.js';
import { FakeClock } from '../../../src/session/clock.js';
import {
  LifelineClient as SourceLifelineClient,
  OutboxFullError as SourceOutboxFullError,
  type ClientCloseInfo,
  type LifelineClientOptions,
  type SessionLostInfo,
} from '../../../src/session/lifeline-client.js';
import { FakeEnvironment, FakeSocket } from './fakes.js';

/**
 * The implementation under test: the TypeScript source, unless a runner set
 * globalThis.lifelineClientUnderTest before importing this file.
 * browser-bundle.test.ts does, to run this whole suite once more against the
 * minified browser bundle.
 */
export interface ClientUnderTest {
  LifelineClient: typeof SourceLifelineClient;
  OutboxFullError: typeof SourceOutboxFullError;
}
const underTest = (globalThis as { lifelineClientUnderTest?: ClientUnderTest }).lifelineClientUnderTest;
const LifelineClient = underTest?.LifelineClient ?? SourceLifelineClient;
type LifelineClient = SourceLifelineClient;
const OutboxFullError = underTest?.OutboxFullError ?? SourceOutboxFullError;

/** The heartbeat the fake server announces: ping after 1 s quiet, 500 ms to answer before any RTT sample. */
const HB = { interval: 1000, timeoutFloor: 200, timeoutCeiling: 800, timeoutInitial: 500, k: 4 };
const HELLO = '{"t":"hello","v":1}';

/** A welcome as the server builds it (member order included). Defaults: session s1, heartbeat HB, new session. */
function W(o: Record<string, unknown> = {}): string {
  return JSON.stringify({ t: 'welcome', v: 1, hb: HB, session: 's1', token: 'tok1', ack: 0, resumed: false, ttl: 120_000, ...o });
}
const WELCOME = W();
/** A welcome without heartbeat: keeps the wire free of pings where they would only add noise. */
const QUIET = W({ hb: null });

type Opts = Partial<LifelineClientOptions> & { terminate?: boolean };

interface Setup {
  clock: FakeClock;
  env: FakeEnvironment;
  client: LifelineClient;
  sockets: FakeSocket[];
  /** The newest socket. */
  readonly socket: FakeSocket;
  closes: ClientCloseInfo[];
  opens: number;
  messages: Array<string | Uint8Array>;
  states: Array<[string, string]>;
  errors: Error[];
  reconnecting: Array<{ attempt: number; delay: number; reason: string }>;
  resumed: Array<{ replayed: number }>;
  lost: SessionLostInfo[];
  acked: number[];
  tOpen: number;
}

function setup(opts: Opts = {}): Setup {
  const clock = new FakeClock();
  const env = new FakeEnvironment();
  const sockets: FakeSocket[] = [];
  const { terminate = true, ...rest } = opts;
  const client = new LifelineClient('wss://example.test/live', {
    socketFactory: (url, protocols) => {
      const s = new FakeSocket(url, protocols, terminate);
      sockets.push(s);
      return s;
    },
    clock,
    environment: env,
    backoff: { base: 100, cap: 1600, random: seededRandom(1) },
    ...rest,
  });
  const out: Setup = {
    clock,
    env,
    client,
    sockets,
    get socket() {
      return sockets.at(-1)!;
    },
    closes: [],
    opens: 0,
    messages: [],
    states: [],
    errors: [],
    reconnecting: [],
    resumed: [],
    lost: [],
    acked: [],
    tOpen: NaN,
  };
  client.on('close', (info) => out.closes.push(info));
  client.on('open', () => out.opens++);
  client.on('message', (d) => out.messages.push(d));
  client.on('state', (s, cause) => out.states.push([s, cause]));
  client.on('error', (e) => out.errors.push(e));
  client.on('reconnecting', (r) => out.reconnecting.push(r));
  client.on('resumed', (r) => out.resumed.push(r));
  client.on('session-lost', (l) => out.lost.push(l));
  client.on('acked', (n) => out.acked.push(n));
  return out;
}

/** Socket open + hello + welcome: the client is 'open' at s.tOpen. */
function opened(opts: Opts = {}, welcome = WELCOME): Setup {
  const s = setup(opts);
  s.socket.serverOpen();
  s.socket.serverSend(welcome);
  assert.equal(s.client.state, 'open');
  s.tOpen = s.clock.now();
  return s;
}

/** Waits out the pending reconnect delay, opens the new socket and answers its hello with `welcome`. Returns the hello. */
function reconnect(s: Setup, welcome: string): Record<string, unknown> {
  const n = s.sockets.length;
  assert.equal(s.client.state, 'reconnecting');
  s.clock.advance(s.reconnecting.at(-1)!.delay);
  assert.equal(s.sockets.length, n + 1, 'a new socket after the delay');
  s.socket.serverOpen();
  const hellos = s.socket.controls('hello');
  assert.equal(hellos.length, 1);
  s.socket.serverSend(welcome);
  return hellos[0]!;
}

const pingTs = (s: Setup): number[] => s.socket.controls('ping').map((p) => p.ts as number);
const dataSeqs = (sock: FakeSocket): number[] => sock.dataSent().map((d) => d.seq);
const payloads = (sock: FakeSocket) => sock.dataSent().map((d) => d.payload);
/** Lets promise callbacks (the async token provider) run. */
const flush = () => new Promise<void>((r) => setImmediate(r));

// ---------------------------------------------------------------------------

describe('handshake', () => {
  it('creates the socket with lifeline.v1, binaryType arraybuffer, and sends hello (no session) on open', () => {
    const s = setup();
    assert.equal(s.sockets.length, 1);
    assert.equal(s.socket.url, 'wss://example.test/live');
    assert.deepEqual(s.socket.protocols, ['lifeline.v1']);
    assert.equal(s.socket.binaryType, 'arraybuffer');
    assert.equal(s.client.state, 'connecting');
    assert.deepEqual(s.socket.sent, []);
    s.socket.serverOpen();
    assert.deepEqual(s.socket.sent, [HELLO]);
    assert.equal(s.client.state, 'connecting', 'not open before the welcome');
    assert.equal(s.client.session, null);
    assert.equal(s.opens, 0);
  });

  it("'open' is emitted after the welcome, once, with the heartbeat and session taken from the welcome", () => {
    const s = setup();
    s.socket.serverOpen();
    assert.equal(s.client.heartbeatConfig, null);
    s.socket.serverSend(WELCOME);
    assert.equal(s.opens, 1);
    assert.equal(s.client.state, 'open');
    assert.deepEqual(s.states, [['open', 'welcome']]);
    // lateSlack is derived: min(2000, timeoutFloor).
    assert.deepEqual(s.client.heartbeatConfig, { ...HB, lateSlack: 200 });
    assert.equal(s.client.stats().connectedSince, s.clock.now());
    assert.equal(s.client.session, 's1');
    assert.equal(s.client.stats().session, 's1');
    assert.deepEqual(s.resumed, [], 'a first session is not a resume');
    assert.deepEqual(s.lost, []);
  });

  it('a welcome without a session is a protocol error (lifeline.v1 now always has sessions)', () => {
    const s = setup({ reconnect: false });
    s.socket.serverOpen();
    s.socket.serverSend(JSON.stringify({ t: 'welcome', v: 1, hb: HB }));
    assert.equal(s.opens, 0);
    assert.deepEqual(s.closes.map((c) => [c.cause, c.code]), [['protocol-error', 1002]]);
    assert.match(s.errors[0]!.message, /session/);
  });

  it('a second welcome is a protocol error: the connection is dropped and the client reconnects', () => {
    const s = opened();
    s.socket.serverSend(WELCOME);
    assert.equal(s.client.state, 'reconnecting');
    assert.deepEqual(s.reconnecting.map((r) => r.reason), ['protocol-error']);
    assert.equal(s.closes.length, 0);
    assert.equal(s.opens, 1);
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!.message, /second welcome/);
  });

  it('handshake timeout with reconnect off: no welcome in time -> close with cause handshake-timeout', () => {
    const s = setup({ handshakeTimeout: 3000, reconnect: false });
    s.socket.serverOpen();
    s.clock.advance(2999);
    assert.equal(s.client.state, 'connecting');
    s.clock.advance(1);
    assert.equal(s.client.state, 'closed');
    assert.equal(s.closes.length, 1);
    assert.equal(s.closes[0]!.cause, 'handshake-timeout');
    assert.equal(s.closes[0]!.code, 1006);
    assert.equal(s.socket.terminateCalls, 1, 'a silent server is dropped at once');
    assert.equal(s.opens, 0);
    assert.equal(s.clock.pending, 0, 'no timer left behind');
  });

  it('handshake timeout: the client tries again after a backoff delay', () => {
    const s = setup({ handshakeTimeout: 3000 });
    s.socket.serverOpen();
    s.clock.advance(3000);
    assert.equal(s.client.state, 'reconnecting');
    assert.equal(s.reconnecting.length, 1);
    assert.equal(s.reconnecting[0]!.reason, 'handshake-timeout');
    assert.equal(s.sockets[0]!.terminateCalls, 1);
    s.clock.advance(s.reconnecting[0]!.delay);
    assert.equal(s.sockets.length, 2);
    s.socket.serverOpen();
    assert.deepEqual(s.socket.sent, [HELLO], 'still no session: the first attempt never got a welcome');
    s.socket.serverSend(QUIET);
    assert.equal(s.client.state, 'open');
    assert.equal(s.opens, 1);
  });

  it('the handshake timer is cleared by the welcome', () => {
    const s = opened({ handshakeTimeout: 3000, heartbeat: 'off' });
    s.clock.advance(10_000);
    assert.equal(s.client.state, 'open');
    assert.equal(s.clock.pending, 0);
  });

  it("server that did not negotiate lifeline.v1 (protocol '') -> handshake-failed, no hello, no retry", () => {
    const s = setup();
    s.socket.serverOpen('');
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes.map((c) => [c.cause, c.code]), [['handshake-failed', 1002]]);
    assert.deepEqual(s.socket.sent, [], 'no hello to a plain WebSocket server');
    assert.equal(s.socket.closeCalls.length, 1);
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!.message, /lifeline\.v1/);
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
  });

  it('socket closed before the welcome, reconnect off -> handshake-failed', () => {
    const s = setup({ reconnect: false });
    s.socket.serverOpen();
    s.socket.serverClose(1006);
    assert.deepEqual(s.closes.map((c) => c.cause), ['handshake-failed']);
    assert.equal(s.socket.closeCalls.length, 0, 'already closed: not closed again');
  });

  it('socket closed before the welcome -> reconnecting (handshake-failed)', () => {
    const s = setup();
    s.socket.serverOpen();
    s.socket.serverClose(1006);
    assert.equal(s.client.state, 'reconnecting');
    assert.deepEqual(s.reconnecting.map((r) => r.reason), ['handshake-failed']);
    assert.equal(s.closes.length, 0);
  });

  it('a socket factory that throws -> handshake-failed, asynchronously (so a listener attached after construction hears it)', async () => {
    const clock = new FakeClock();
    const client = new LifelineClient('ws://x', {
      socketFactory: () => {
        throw new Error('bad url');
      },
      clock,
      environment: null,
    });
    const closes: ClientCloseInfo[] = [];
    client.on('close', (c) => closes.push(c));
    assert.equal(closes.length, 0);
    await Promise.resolve();
    await flush();
    assert.equal(client.state, 'closed');
    assert.deepEqual(closes, [{ code: 1006, reason: 'bad url', cause: 'handshake-failed' }]);
  });
});

describe('application messages', () => {
  it("delivers 'd'-sequenced text without the header", () => {
    const s = opened();
    s.socket.serverSend('d1:hello');
    s.socket.serverSend('d2:');
    s.socket.serverSend('d3:{"t":"ping"}');
    s.socket.serverSend('d4,0:d5:x');
    assert.deepEqual(s.messages, ['hello', '', '{"t":"ping"}', 'd5:x']);
    assert.deepEqual(s.socket.controls('pong'), [], 'a data message that looks like JSON is data');
    assert.equal(s.client.stats().messagesIn, 4);
  });

  it("delivers 'd'-sequenced binary (ArrayBuffer or Uint8Array) as Uint8Array without the header", () => {
    const s = opened();
    s.socket.serverSend(new Uint8Array([0x64, 0x31, 0x3a, 1, 2, 3]).buffer);
    s.socket.serverSend(new Uint8Array([0x64, 0x32, 0x3a, 0xff]));
    s.socket.serverSend(new Uint8Array([0x64, 0x33, 0x3a]).buffer);
    s.socket.serverSend(new Uint8Array([0x64, 0x34, 0x2c, 0x30, 0x3a, 0x3a]));
    assert.equal(s.messages.length, 4);
    for (const m of s.messages) assert.ok(m instanceof Uint8Array);
    assert.deepEqual(s.messages.map((m) => [...(m as Uint8Array)]), [[1, 2, 3], [0xff], [], [0x3a]]);
    assert.equal(s.client.stats().messagesIn, 4);
  });

  it("send() numbers messages 1, 2, 3...: 'd' SEQ ':' payload; text stays text, bytes stay bytes; ids returned", () => {
    const s = opened();
    const ids = [
      s.client.send('hi'),
      s.client.send(''),
      s.client.send(new Uint8Array([1, 2])),
      s.client.send(new Uint8Array([9, 8, 7]).buffer),
      s.client.send(new Uint8Array([0, 5, 6, 0]).subarray(1, 3)),
    ];
    assert.deepEqual(ids, [1, 2, 3, 4, 5]);
    const sent = s.socket.sent.slice(1); // after hello
    assert.deepEqual(sent.slice(0, 2), ['d1:hi', 'd2:']);
    assert.deepEqual(sent.slice(2).map((x) => (x instanceof Uint8Array ? [...x] : x)), [
      [0x64, 0x33, 0x3a, 1, 2],
      [0x64, 0x34, 0x3a, 9, 8, 7],
      [0x64, 0x35, 0x3a, 5, 6],
    ]);
    assert.equal(s.client.stats().messagesOut, 5);
    for (const id of ids) assert.equal(s.client.messageState(id), 'sent');
  });

  it('send() before the welcome queues (in order, sent after the welcome); after close it throws', () => {
    const s = setup();
    const a = s.client.send('early');
    assert.equal(s.client.messageState(a), 'queued');
    s.socket.serverOpen();
    const b = s.client.send(new Uint8Array([7]));
    assert.deepEqual(s.socket.sent, [HELLO], 'nothing but hello before the welcome');
    assert.equal(s.client.messageState(b), 'queued');
    s.socket.serverSend(QUIET);
    assert.deepEqual(s.socket.dataSent(), [
      { seq: 1, ack: -1, payload: 'early', binary: false },
      { seq: 2, ack: -1, payload: [7], binary: true },
    ]);
    assert.equal(s.client.messageState(a), 'sent');
    assert.equal(s.client.messageState(b), 'sent');
    s.client.close();
    assert.throws(() => s.client.send('x'), /closed/);
  });

  it('a data message with a piggybacked ack beyond what we sent is a protocol error', () => {
    const s = opened({ reconnect: false });
    s.client.send('a');
    s.socket.serverSend('d1,2:x');
    assert.deepEqual(s.closes.map((c) => c.cause), ['protocol-error']);
    assert.match(s.errors[0]!.message, /ack 2 beyond/);
  });

  it('...and its payload is not delivered after the failure: no message after the final close, no timer left', () => {
    const s = opened({ reconnect: false, heartbeat: 'off' });
    const order: string[] = [];
    s.client.on('close', () => order.push('close'));
    s.client.on('message', () => order.push('message'));
    s.client.send('a');
    s.socket.serverSend('d1,2:x');
    assert.deepEqual(order, ['close'], "nothing is emitted after 'close'");
    assert.equal(s.clock.pending, 0, 'no ack timer armed on a closed client');
  });
});

describe('inbound sequencing', () => {
  it('duplicates (seq <= received) are dropped and counted', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    s.socket.serverSend(new Uint8Array([0x64, 0x32, 0x3a, 1]));
    s.socket.serverSend('d3:c');
    assert.deepEqual(s.messages, ['a', 'b', 'c']);
    assert.equal(s.client.stats().duplicatesDropped, 3);
    assert.equal(s.client.stats().messagesIn, 3);
    assert.equal(s.client.state, 'open', 'a duplicate is not an error');
  });

  it('a gap (seq > received + 1) is not delivered: the client reconnects and asks from what it has', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d3:c');
    assert.deepEqual(s.messages, ['a']);
    assert.equal(s.client.state, 'reconnecting');
    assert.deepEqual(s.reconnecting.map((r) => r.reason), ['protocol-error']);
    assert.equal(s.sockets[0]!.onmessage, null, 'the old socket is detached');
    const hello = reconnect(s, W({ hb: null, resumed: true, ack: 0 }));
    assert.deepEqual(hello, { t: 'hello', v: 1, session: 's1', token: 'tok1', ack: 1 });
    s.socket.serverSend('d2:b');
    s.socket.serverSend('d3:c');
    assert.deepEqual(s.messages, ['a', 'b', 'c']);
  });
});

describe('acks', () => {
  it('a pending ack rides on the next outgoing data message; no standalone ack follows', () => {
    const s = opened({ heartbeat: 'off', ackEvery: 10, ackDelay: 100 });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    s.clock.advance(50);
    s.client.send('x');
    s.client.send('y');
    assert.deepEqual(s.socket.dataSent().map((d) => [d.seq, d.ack]), [
      [1, 2],
      [2, -1],
    ], 'the ack is taken once, then nothing is pending');
    s.clock.advance(1000);
    assert.deepEqual(s.socket.controls('ack'), []);
    assert.equal(s.clock.pending, 0, 'the ack timer was cancelled by the piggyback');
  });

  it('a standalone {"t":"ack"} goes out as soon as ackEvery messages are unacknowledged', () => {
    const s = opened({ heartbeat: 'off', ackEvery: 3, ackDelay: 10_000 });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    assert.deepEqual(s.socket.controls('ack'), []);
    s.socket.serverSend('d3:c');
    assert.deepEqual(s.socket.texts().slice(-1), ['{"t":"ack","seq":3}']);
    for (let i = 4; i <= 9; i++) s.socket.serverSend(`d${i}:z`);
    assert.deepEqual(s.socket.controls('ack').map((a) => a.seq), [3, 6, 9]);
  });

  it('...or ackDelay ms after the first unacknowledged message (fake clock)', () => {
    const s = opened({ heartbeat: 'off', ackEvery: 32, ackDelay: 50 });
    s.socket.serverSend('d1:a');
    s.clock.advance(20);
    s.socket.serverSend('d2:b'); // does not push the deadline back
    s.clock.advance(29);
    assert.deepEqual(s.socket.controls('ack'), []);
    s.clock.advance(1);
    assert.deepEqual(s.socket.texts().slice(-1), ['{"t":"ack","seq":2}']);
    s.clock.advance(1000);
    assert.equal(s.socket.controls('ack').length, 1, 'nothing pending, nothing sent');
    s.socket.serverSend('d3:c');
    s.clock.advance(50);
    assert.deepEqual(s.socket.controls('ack').map((a) => a.seq), [2, 3]);
  });

  it("the server's acks: 'acked' events, messageState acked / sent, outbox shrinks", () => {
    const s = opened({ heartbeat: 'off' });
    const ids = [s.client.send('a'), s.client.send('b'), s.client.send('c'), s.client.send('d')];
    assert.equal(s.client.stats().outbox, 4);
    s.socket.serverSend('{"t":"ack","seq":2}');
    assert.deepEqual(s.acked, [2]);
    assert.deepEqual(ids.map((id) => s.client.messageState(id)), ['acked', 'acked', 'sent', 'sent']);
    assert.equal(s.client.stats().outbox, 2);
    s.socket.serverSend('{"t":"ack","seq":1}'); // old news
    assert.deepEqual(s.acked, [2]);
    s.socket.serverSend('d1,3:x'); // piggybacked on server data
    assert.deepEqual(s.acked, [2, 3]);
    s.socket.serverSend('{"t":"ack","seq":4}');
    assert.deepEqual(s.acked, [2, 3, 4]);
    assert.deepEqual(ids.map((id) => s.client.messageState(id)), ['acked', 'acked', 'acked', 'acked']);
    assert.equal(s.client.stats().outbox, 0);
  });

  it('an ack control beyond the last message sent is a protocol error', () => {
    const s = opened({ heartbeat: 'off', reconnect: false });
    s.client.send('a');
    s.socket.serverSend('{"t":"ack","seq":2}');
    assert.deepEqual(s.closes.map((c) => c.cause), ['protocol-error']);
    assert.deepEqual(s.acked, []);
  });
});

describe('outbox', () => {
  it('OutboxFullError by count: nothing queued, the id is not consumed, room comes back with acks', () => {
    const s = opened({ heartbeat: 'off', outboxMaxMessages: 3 });
    s.client.send('a');
    s.client.send('b');
    s.client.send('c');
    const before = s.socket.sent.length;
    assert.throws(
      () => s.client.send('d'),
      (err: unknown) => err instanceof OutboxFullError && err.code === 'LL_ERR_OUTBOX_FULL' && /Outbox full/.test(err.message),
    );
    assert.equal(s.socket.sent.length, before, 'nothing transmitted');
    assert.equal(s.client.stats().outbox, 3);
    assert.equal(s.client.stats().messagesOut, 3);
    s.socket.serverSend('{"t":"ack","seq":1}');
    assert.equal(s.client.send('d'), 4);
    assert.deepEqual(dataSeqs(s.socket), [1, 2, 3, 4]);
  });

  it('OutboxFullError by bytes (header included) while reconnecting: nothing queued', () => {
    // 'd1:' + 7 chars = 10 bytes.
    const s = opened({ heartbeat: 'off', outboxMaxBytes: 20 });
    s.client.send('1234567');
    s.socket.serverClose(1006);
    assert.equal(s.client.state, 'reconnecting');
    const id = s.client.send('abcdefg');
    assert.equal(s.client.messageState(id), 'queued');
    assert.throws(() => s.client.send('x'), OutboxFullError);
    assert.equal(s.client.stats().outbox, 2);
    reconnect(s, W({ hb: null, resumed: true, ack: 0 }));
    assert.deepEqual(payloads(s.socket), ['1234567', 'abcdefg'], 'the refused message never appears');
  });

  it('a refused send does not swallow a pending ack (the ack still goes out by timer)', () => {
    const s = opened({ heartbeat: 'off', outboxMaxMessages: 1, ackEvery: 100, ackDelay: 100 });
    s.client.send('fills the outbox');
    s.socket.serverSend('d1:x');
    assert.throws(() => s.client.send('refused'), OutboxFullError);
    s.clock.advance(100);
    assert.deepEqual(s.socket.controls('ack').map((a) => a.seq), [1], 'the server must still learn that we have seq 1');
  });
});

describe('reconnect and resume', () => {
  it('reconnect: hello carries session, resume token and the last seq received; states and events in order', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    s.socket.serverSend('d3:c');
    s.socket.serverClose(1006);
    assert.equal(s.client.state, 'reconnecting');
    assert.equal(s.reconnecting.length, 1);
    assert.equal(s.reconnecting[0]!.reason, 'connection-lost');
    assert.equal(s.reconnecting[0]!.attempt, 1);
    s.clock.advance(s.reconnecting[0]!.delay);
    assert.equal(s.sockets.length, 2);
    s.socket.serverOpen();
    assert.deepEqual(s.socket.sent, ['{"t":"hello","v":1,"session":"s1","token":"tok1","ack":3}']);
    s.socket.serverSend(W({ hb: null, resumed: true, ack: 0 }));
    assert.equal(s.client.state, 'open');
    assert.deepEqual(s.resumed, [{ replayed: 0 }]);
    assert.equal(s.opens, 1, "'open' is for the first session only");
    assert.deepEqual(s.states, [
      ['open', 'welcome'],
      ['reconnecting', 'connection-lost'],
      ['open', 'resumed'],
    ]);
    const st = s.client.stats();
    assert.equal(st.reconnects, 1);
    assert.equal(st.resumes, 1);
    assert.equal(st.sessionsLost, 0);
  });

  it('every resume presents the token of the welcome that opened the session', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverClose(1006);
    assert.equal(reconnect(s, W({ hb: null, resumed: true })).token, 'tok1');
    s.socket.serverClose(1006);
    assert.equal(reconnect(s, W({ hb: null, resumed: true })).token, 'tok1');
    assert.equal(s.client.stats().resumes, 2);
  });

  it('resume: the client resends exactly the outbox entries with seq > welcome.ack, in order, then the queued ones', () => {
    const s = opened({ heartbeat: 'off' });
    const ids = [1, 2, 3, 4, 5].map((i) => s.client.send(`m${i}`));
    s.client.send(new Uint8Array([0xb, 0xb]));
    s.socket.serverSend('{"t":"ack","seq":2}');
    s.socket.serverClose(1006);
    // Sent while reconnecting: queued.
    const q1 = s.client.send('q7');
    const q2 = s.client.send('q8');
    assert.equal(s.client.messageState(q1), 'queued');
    assert.equal(s.client.messageState(q2), 'queued');
    assert.equal(s.client.messageState(ids[4]!), 'sent');
    const hello = reconnect(s, W({ hb: null, resumed: true, ack: 4 }));
    assert.equal(hello.ack, 0);
    assert.deepEqual(s.socket.dataSent(), [
      { seq: 5, ack: -1, payload: 'm5', binary: false },
      { seq: 6, ack: -1, payload: [0xb, 0xb], binary: true },
      { seq: 7, ack: -1, payload: 'q7', binary: false },
      { seq: 8, ack: -1, payload: 'q8', binary: false },
    ]);
    assert.deepEqual(s.resumed, [{ replayed: 4 }]);
    assert.deepEqual(s.acked, [2, 4]);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((id) => s.client.messageState(id)), ['acked', 'acked', 'acked', 'acked', 'sent', 'sent', 'sent', 'sent']);
    assert.equal(s.client.stats().replayed, 4);
    assert.equal(s.client.stats().outbox, 4);
    // New messages continue the numbering.
    assert.equal(s.client.send('n'), 9);
    assert.deepEqual(dataSeqs(s.socket), [5, 6, 7, 8, 9]);
  });

  it('resume when the server has everything: nothing replayed', () => {
    const s = opened({ heartbeat: 'off' });
    s.client.send('a');
    s.client.send('b');
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, resumed: true, ack: 2 }));
    assert.deepEqual(s.socket.dataSent(), []);
    assert.deepEqual(s.resumed, [{ replayed: 0 }]);
    assert.deepEqual(s.acked, [2]);
  });

  it('after a resume the server replays what we have: duplicates dropped and counted, the rest delivered once', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('d1:a');
    s.socket.serverSend('d2:b');
    s.socket.serverSend('d3:c');
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, resumed: true }));
    s.socket.serverSend('d2:b');
    s.socket.serverSend('d3:c');
    s.socket.serverSend('d4:d');
    s.socket.serverSend('d5:e');
    assert.deepEqual(s.messages, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(s.client.stats().duplicatesDropped, 2);
  });

  it('a resumed welcome whose ack is beyond what we sent is a protocol error, not a resume', () => {
    const s = opened({ heartbeat: 'off' });
    s.client.send('a');
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, resumed: true, ack: 5 }));
    assert.deepEqual(s.resumed, [], 'no resumed event');
    assert.notEqual(s.client.state, 'open', 'not open on a connection we failed');
    assert.equal(s.client.state, 'reconnecting');
    assert.equal(s.reconnecting.at(-1)!.reason, 'protocol-error');
    // And the client does come back.
    reconnect(s, W({ hb: null, resumed: true, ack: 1 }));
    assert.equal(s.client.state, 'open');
  });
});

describe('session lost', () => {
  it('session-expired with an exact count: failed ids, lost counts, new numbering from 1 with ids still increasing', () => {
    const s = opened({ heartbeat: 'off' });
    for (let i = 1; i <= 8; i++) assert.equal(s.client.send(`m${i}`), i);
    s.socket.serverSend('{"t":"ack","seq":3}');
    s.socket.serverSend('d1:old');
    s.socket.serverClose(1006);
    const hello = reconnect(s, W({ hb: null, session: 's2', token: 'tokB', lost: { reason: 'session-expired', toClient: 5, ack: 3 } }));
    assert.deepEqual(hello, { t: 'hello', v: 1, session: 's1', token: 'tok1', ack: 1 });
    assert.deepEqual(s.lost, [{ reason: 'session-expired', lostToServer: 5, lostToClient: 5, exact: true, failed: { from: 4, to: 8 } }]);
    assert.deepEqual(s.resumed, []);
    assert.equal(s.client.state, 'open');
    assert.deepEqual(s.states.at(-1), ['open', 'session-lost']);
    assert.equal(s.client.session, 's2');
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((id) => s.client.messageState(id)), ['acked', 'acked', 'acked', 'failed', 'failed', 'failed', 'failed', 'failed']);
    assert.deepEqual(s.socket.dataSent(), [], 'nothing of the old session is resent');
    assert.equal(s.client.stats().sessionsLost, 1);
    assert.equal(s.client.stats().outbox, 0);
    // The new session numbers from 1; ids keep increasing.
    assert.equal(s.client.send('n1'), 9);
    assert.equal(s.client.send('n2'), 10);
    assert.deepEqual(s.socket.dataSent().map((d) => [d.seq, d.payload]), [
      [1, 'n1'],
      [2, 'n2'],
    ]);
    assert.equal(s.client.messageState(9), 'sent');
    s.socket.serverSend('{"t":"ack","seq":1}');
    assert.deepEqual(s.acked, [3, 9]);
    assert.equal(s.client.messageState(9), 'acked');
    assert.equal(s.client.messageState(10), 'sent');
    assert.equal(s.client.messageState(5), 'failed', 'still failed in the new session');
    // Inbound numbering restarts too.
    s.socket.serverSend('d1:new');
    assert.deepEqual(s.messages, ['old', 'new']);
    // A later resume of the new session presents the new session's id and token.
    s.socket.serverClose(1006);
    const hello2 = reconnect(s, W({ hb: null, session: 's2', token: 'tokC', resumed: true, ack: 2 }));
    assert.deepEqual(hello2, { t: 'hello', v: 1, session: 's2', token: 'tokB', ack: 1 });
    assert.deepEqual(s.acked, [3, 9, 10]);
  });

  it('session-expired when the server had more than we knew was acked: only what it never received fails', () => {
    // The client sent 8 and saw no ack; the server's tombstone says it received 3.
    const s = opened({ heartbeat: 'off' });
    for (let i = 1; i <= 8; i++) s.client.send(`m${i}`);
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, session: 's2', lost: { reason: 'session-expired', toClient: 5, ack: 3 } }));
    assert.equal(s.lost.length, 1);
    const l = s.lost[0]!;
    assert.equal(l.lostToServer, 5);
    assert.equal(l.lostToClient, 5);
    assert.equal(l.exact, true);
    assert.deepEqual(l.failed, { from: 4, to: 8 }, 'messages 1..3 reached the server: they did not fail');
    assert.equal(l.failed!.to - l.failed!.from + 1, l.lostToServer, 'an exact count and the failed range agree');
    assert.deepEqual([1, 2, 3, 4, 8].map((id) => s.client.messageState(id)), ['acked', 'acked', 'acked', 'failed', 'failed']);
  });

  it('unknown-session: exact false, lostToClient null, every unconfirmed message failed', () => {
    const s = opened({ heartbeat: 'off' });
    for (let i = 1; i <= 6; i++) s.client.send(`m${i}`);
    s.socket.serverSend('{"t":"ack","seq":2}');
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, session: 's9', lost: { reason: 'unknown-session', toClient: null, ack: null } }));
    assert.deepEqual(s.lost, [{ reason: 'unknown-session', lostToServer: 4, lostToClient: null, exact: false, failed: { from: 3, to: 6 } }]);
    assert.equal(s.client.send('x'), 7);
    assert.deepEqual(dataSeqs(s.socket), [1]);
  });

  it('a fresh session without a lost member, after we had one: unknown-session, not exact', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, session: 's2' }));
    assert.deepEqual(s.lost, [{ reason: 'unknown-session', lostToServer: 0, lostToClient: null, exact: false, failed: null }]);
  });

  it('replay-overflow: reported with the counts the server gave', () => {
    const s = opened({ heartbeat: 'off' });
    s.client.send('a');
    s.socket.serverSend('d1:x');
    s.socket.serverClose(1006);
    reconnect(s, W({ hb: null, session: 's2', lost: { reason: 'replay-overflow', toClient: 1000, ack: 1 } }));
    assert.deepEqual(s.lost, [{ reason: 'replay-overflow', lostToServer: 0, lostToClient: 1000, exact: true, failed: null }]);
    assert.equal(s.client.messageState(1), 'acked');
  });
});

describe('backoff', () => {
  /** Lets every attempt fail before the welcome; returns the delays the client announced. */
  function failAttempts(s: Setup, n: number): number[] {
    for (let i = 0; i < n; i++) {
      const before = s.sockets.length;
      const d = s.reconnecting.at(-1)!.delay;
      if (d > 0) {
        s.clock.advance(d - 1);
        assert.equal(s.sockets.length, before, `attempt ${i}: not before the delay`);
      }
      s.clock.advance(d > 0 ? 1 : 0);
      assert.equal(s.sockets.length, before + 1, `attempt ${i}: right at the delay`);
      s.socket.serverClose(1006);
    }
    return s.reconnecting.map((r) => r.delay);
  }

  it('reconnect delays follow the policy (seeded random), attempts counted from 1', () => {
    const backoff = { base: 100, cap: 1600, random: seededRandom(77) };
    const s = opened({ heartbeat: 'off', backoff });
    s.socket.serverClose(1006);
    const delays = failAttempts(s, 9);
    const ref = new BackoffPolicy({ ...backoff, random: seededRandom(77) });
    assert.deepEqual(delays, Array.from({ length: 10 }, () => ref.next()));
    assert.deepEqual(s.reconnecting.map((r) => r.attempt), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(s.reconnecting.slice(1).map((r) => r.reason), new Array(9).fill('handshake-failed'));
    for (const [i, d] of delays.entries()) assert.ok(d >= 0 && d < Math.min(1600, 100 * 2 ** i));
    assert.equal(s.client.stats().reconnects, 9);
  });

  it('the backoff resets after stableAfter ms of being open, not before', () => {
    const backoff = { base: 100, cap: 100_000, random: seededRandom(3) };
    const s = opened({ heartbeat: 'off', backoff, stableAfter: 5000 });
    const ref = new BackoffPolicy({ ...backoff, random: seededRandom(3) });
    const expected: number[] = [];
    s.socket.serverClose(1006);
    expected.push(ref.next());
    failAttempts(s, 3);
    expected.push(ref.next(), ref.next(), ref.next());
    // Open, but only for 4999 ms: not stable.
    reconnect(s, W({ hb: null, resumed: true }));
    s.clock.advance(4999);
    s.socket.serverClose(1006);
    expected.push(ref.next());
    assert.deepEqual(s.reconnecting.map((r) => r.delay), expected);
    assert.equal(s.reconnecting.at(-1)!.attempt, 5);
    // Open for 5000 ms: stable, the next delay is drawn from the base ceiling again.
    reconnect(s, W({ hb: null, resumed: true }));
    s.clock.advance(5000);
    s.socket.serverClose(1006);
    ref.reset();
    expected.push(ref.next());
    assert.deepEqual(s.reconnecting.map((r) => r.delay), expected);
    assert.equal(s.reconnecting.at(-1)!.attempt, 1);
    assert.ok(s.reconnecting.at(-1)!.delay < 100);
  });

  it('maxAttempts used up -> closed with cause reconnect-failed', () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 10, cap: 10, maxAttempts: 2, random: () => 0.5 } });
    s.client.send('pending');
    s.socket.serverClose(1006);
    failAttempts(s, 2);
    assert.equal(s.client.state, 'closed');
    assert.equal(s.closes.length, 1);
    assert.equal(s.closes[0]!.cause, 'reconnect-failed');
    assert.equal(s.client.messageState(1), 'failed');
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 3);
  });

  it("'online' while reconnecting connects at once instead of waiting out the delay", () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 10_000, cap: 10_000, random: () => 0.9 } });
    s.socket.serverClose(1006);
    assert.equal(s.reconnecting[0]!.delay, 9000);
    s.clock.advance(10);
    s.env.fireOnline();
    assert.equal(s.sockets.length, 2, 'connected at once');
    assert.equal(s.client.stats().wakeProbes, 1);
    s.socket.serverOpen();
    s.socket.serverSend(W({ hb: null, resumed: true }));
    assert.equal(s.client.state, 'open');
    s.clock.advance(60_000);
    assert.equal(s.sockets.length, 2, 'the cancelled retry timer does not fire a second attempt');
  });

  it("a visible tab while reconnecting connects at once; a hidden one does not", () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 10_000, cap: 10_000, random: () => 0.9 } });
    s.socket.serverClose(1006);
    s.env.setVisibility('hidden');
    assert.equal(s.sockets.length, 1);
    s.env.setVisibility('visible');
    assert.equal(s.sockets.length, 2);
  });

  it("'online' while an attempt is already under way does not start another", () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverClose(1006);
    s.env.fireOnline();
    assert.equal(s.sockets.length, 2);
    s.env.fireOnline();
    assert.equal(s.sockets.length, 2);
  });

  it('an attempt triggered by a wake event counts as a reconnect in stats()', () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 10_000, cap: 10_000, random: () => 0.9 } });
    s.socket.serverClose(1006);
    s.env.fireOnline();
    assert.equal(s.sockets.length, 2);
    assert.equal(s.client.stats().reconnects, 1, 'reconnects = connection attempts after the first');
  });
});

describe('server bye and close', () => {
  it('bye with retryAfter: the next attempt comes exactly retryAfter ms later, the session resumes', () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 100, cap: 100, random: () => 0.5 } });
    s.client.send('a');
    s.socket.serverSend('{"t":"bye","reason":"server-shutdown","retryAfter":1234}');
    assert.equal(s.client.state, 'open', 'bye alone does not close');
    s.socket.serverClose(1001, 'going away');
    assert.equal(s.client.state, 'reconnecting');
    assert.equal(s.reconnecting.length, 1);
    assert.equal(s.reconnecting[0]!.delay, 1234);
    assert.equal(s.reconnecting[0]!.reason, 'peer-closed');
    s.clock.advance(1233);
    assert.equal(s.sockets.length, 1);
    s.clock.advance(1);
    assert.equal(s.sockets.length, 2);
    s.socket.serverOpen();
    s.socket.serverSend(W({ hb: null, resumed: true }));
    assert.deepEqual(s.resumed, [{ replayed: 1 }]);
    // The hint is used once: the next loss uses the backoff again.
    s.socket.serverClose(1006);
    assert.equal(s.reconnecting[1]!.delay, 50);
  });

  it('bye with retryAfter 0: retry at once', () => {
    const s = opened({ heartbeat: 'off', backoff: { base: 10_000, cap: 10_000, random: () => 0.5 } });
    s.socket.serverSend('{"t":"bye","reason":"server-shutdown","retryAfter":0}');
    s.socket.serverClose(1001);
    assert.equal(s.reconnecting[0]!.delay, 0);
    s.clock.advance(0);
    assert.equal(s.sockets.length, 2);
  });

  it("bye without retryAfter, then close: 'closed' with cause peer-closed, no reconnect, outbox failed", () => {
    const s = opened({ heartbeat: 'off' });
    s.client.send('a');
    s.client.send('b');
    s.socket.serverSend('{"t":"ack","seq":1}');
    s.socket.serverSend('{"t":"bye","reason":"normal"}');
    assert.equal(s.client.state, 'open');
    s.socket.serverClose(1000, 'bye');
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes, [{ code: 1000, reason: 'bye', cause: 'peer-closed' }]);
    assert.deepEqual(s.reconnecting, []);
    assert.equal(s.client.messageState(1), 'acked');
    assert.equal(s.client.messageState(2), 'failed');
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
    assert.equal(s.clock.pending, 0);
  });

  it('peer close without bye, reconnect off: 1000 -> peer-closed, 1006 -> connection-lost; the socket is not closed again', () => {
    const a = opened({ reconnect: false });
    a.socket.serverClose(1000, 'bye');
    assert.deepEqual(a.closes, [{ code: 1000, reason: 'bye', cause: 'peer-closed' }]);
    assert.equal(a.socket.closeCalls.length, 0);
    const b = opened({ reconnect: false });
    b.socket.serverClose(1006);
    assert.deepEqual(b.closes.map((c) => c.cause), ['connection-lost']);
  });

  it('peer close without bye: the client reconnects (1000 -> peer-closed, 1001 -> peer-closed, 1006 -> connection-lost)', () => {
    for (const [code, reason] of [
      [1000, 'peer-closed'],
      [1001, 'peer-closed'],
      [1011, 'peer-closed'],
      [1006, 'connection-lost'],
    ] as const) {
      const s = opened({ heartbeat: 'off' });
      s.socket.serverClose(code);
      assert.equal(s.client.state, 'reconnecting', `code ${code}`);
      assert.deepEqual(s.reconnecting.map((r) => r.reason), [reason]);
      assert.equal(s.closes.length, 0);
    }
  });
});

describe('fatal errors: no reconnect loop', () => {
  const fatalCodes: Array<[number, string]> = [
    [4401, 'auth-failed'],
    [4403, 'forbidden'],
    [4400, 'forbidden'],
    [4499, 'forbidden'],
    [1002, 'protocol-error'],
    [1003, 'protocol-error'],
    [1007, 'protocol-error'],
    [1010, 'protocol-error'],
  ];
  for (const [code, cause] of fatalCodes) {
    it(`close ${code} -> 'closed' with cause ${cause}; the factory is not called again`, () => {
      const s = opened({ heartbeat: 'off' });
      s.client.send('unacked');
      s.socket.serverClose(code, 'nope');
      assert.equal(s.client.state, 'closed');
      assert.deepEqual(s.closes, [{ code, reason: 'nope', cause }]);
      assert.deepEqual(s.reconnecting, []);
      assert.equal(s.client.messageState(1), 'failed');
      s.clock.advance(3600_000);
      s.env.fireOnline();
      assert.equal(s.sockets.length, 1);
      assert.equal(s.clock.pending, 0);
      assert.equal(s.env.listenerCount(), 0);
    });
  }

  it('close 4401 during the handshake of a reconnect is fatal too', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverClose(1006);
    s.clock.advance(s.reconnecting[0]!.delay);
    s.socket.serverOpen();
    s.socket.serverClose(4401, 'token expired');
    assert.deepEqual(s.closes.map((c) => c.cause), ['auth-failed']);
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 2);
  });

  it('4500 and 4000 are not fatal', () => {
    for (const code of [4000, 4500, 3000]) {
      const s = opened({ heartbeat: 'off' });
      s.socket.serverClose(code);
      assert.equal(s.client.state, 'reconnecting', `code ${code}`);
    }
  });

  it("error control with fatal:true, then the server's close -> 'closed' auth-failed, no reconnect", () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('{"t":"error","code":"auth-failed","message":"authentication failed","fatal":true}');
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!.message, /auth-failed/);
    s.socket.serverClose(1000);
    assert.equal(s.client.state, 'closed');
    // The cause comes from the error message, the code from the close frame that really arrived.
    assert.deepEqual(s.closes, [{ code: 1000, reason: 'authentication failed', cause: 'auth-failed' }]);
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
  });

  it("error control fatal with code auth-expired -> cause auth-expired; other codes -> forbidden", () => {
    const a = opened({ heartbeat: 'off' });
    a.socket.serverSend('{"t":"error","code":"auth-expired","message":"","fatal":true}');
    a.socket.serverClose(1006);
    assert.deepEqual(a.closes.map((c) => [c.cause, c.reason]), [['auth-expired', 'auth-expired']]);
    const b = opened({ heartbeat: 'off' });
    b.socket.serverSend('{"t":"error","code":"banned","message":"go away","fatal":true}');
    b.socket.serverClose(1006);
    assert.deepEqual(b.closes.map((c) => [c.cause, c.reason]), [['forbidden', 'go away']]);
  });

  it('error control without fatal: reported, the session goes on', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverSend('{"t":"error","code":"rate-limited","message":"slow down","fatal":false}');
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!.message, /rate-limited: slow down/);
    assert.equal(s.client.state, 'open');
    s.socket.serverClose(1006);
    assert.equal(s.client.state, 'reconnecting', 'a later loss is still retryable');
  });

  it("a server 'bye' without retryAfter followed by a dead socket (no close event, heartbeat timeout): the session is over, no reconnect", () => {
    const s = opened();
    s.socket.serverSend('{"t":"bye","reason":"normal"}');
    s.clock.advance(1500);
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes.map((c) => c.cause), ['peer-closed']);
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
  });

  it('a fatal error control followed by a dead socket (no close event, heartbeat timeout) still does not reconnect', () => {
    const s = opened();
    s.socket.serverSend('{"t":"error","code":"auth-failed","message":"authentication failed","fatal":true}');
    s.clock.advance(1500); // interval + timeoutInitial of silence
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes.map((c) => c.cause), ['auth-failed']);
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
  });
});

describe('auth', () => {
  it('the token provider is called for each hello; the token goes in hello.auth, never the URL', async () => {
    let n = 0;
    const s = setup({ token: async () => `jwt-${++n}` });
    s.socket.serverOpen();
    assert.deepEqual(s.socket.sent, [], 'the hello waits for the token');
    await flush();
    assert.deepEqual(s.socket.sent, ['{"t":"hello","v":1,"auth":"jwt-1"}']);
    assert.ok(!s.socket.url.includes('jwt'));
    s.socket.serverSend(QUIET);
    s.socket.serverSend('d1:a');
    s.socket.serverClose(1006);
    s.clock.advance(s.reconnecting[0]!.delay);
    s.socket.serverOpen();
    await flush();
    assert.deepEqual(s.socket.sent, ['{"t":"hello","v":1,"session":"s1","token":"tok1","ack":1,"auth":"jwt-2"}']);
    assert.equal(n, 2);
  });

  it('a synchronous provider works too', async () => {
    const s = setup({ token: () => 'static' });
    s.socket.serverOpen();
    await flush();
    assert.deepEqual(s.socket.controls('hello'), [{ t: 'hello', v: 1, auth: 'static' }]);
  });

  it('auth-refresh -> {"t":"auth","token":...} with a fresh token, without disconnecting', async () => {
    let n = 0;
    const s = setup({ token: async () => `jwt-${++n}` });
    s.socket.serverOpen();
    await flush();
    s.socket.serverSend(QUIET);
    s.socket.serverSend('{"t":"auth-refresh"}');
    await flush();
    assert.deepEqual(s.socket.texts().slice(-1), ['{"t":"auth","token":"jwt-2"}']);
    assert.equal(s.client.state, 'open');
    assert.equal(s.sockets.length, 1);
  });

  it('a token that arrives after its socket died is not sent anywhere', async () => {
    let release!: (t: string) => void;
    const s = setup({ token: () => new Promise<string>((r) => (release = r)) });
    s.socket.serverOpen();
    s.socket.serverClose(1006);
    await Promise.resolve(); // the provider is called from a promise job
    release('late');
    await flush();
    assert.deepEqual(s.sockets[0]!.sent, []);
  });

  it("a provider that rejects -> 'closed' with cause auth-failed, error reported, no reconnect", async () => {
    const s = setup({ token: () => Promise.reject(new Error('no credentials')) });
    s.socket.serverOpen();
    await flush();
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes.map((c) => c.cause), ['auth-failed']);
    assert.ok(s.errors.some((e) => /no credentials/.test(e.message)));
    s.clock.advance(3600_000);
    assert.equal(s.sockets.length, 1);
  });
});

describe('app-level ping/pong', () => {
  it('a server ping is answered with a pong carrying the same ts', () => {
    const s = opened();
    s.socket.serverSend('{"t":"ping","ts":1234567.5}');
    assert.deepEqual(s.socket.texts().slice(-1), ['{"t":"pong","ts":1234567.5}']);
  });

  it('a server that keeps pinging keeps the line busy: the client never pings and never times out', () => {
    const s = opened();
    for (let i = 0; i < 100; i++) {
      s.clock.advance(900);
      s.socket.serverSend(`{"t":"ping","ts":${s.clock.now()}}`);
    }
    assert.equal(s.client.state, 'open');
    assert.deepEqual(pingTs(s), []);
  });

  it('data from the server counts as life too: never a timeout while it flows, even with our keepalive pings unanswered', () => {
    const s = opened({ ackDelay: 10_000 });
    for (let i = 1; i <= 50; i++) {
      s.clock.advance(900);
      s.socket.serverSend(`d${i}:x`);
    }
    assert.equal(s.client.state, 'open');
    // We send nothing else, so we ping about once per interval to let the
    // sender hear from us (its own pings would wait behind its data).
    const pings = pingTs(s).length;
    assert.ok(pings >= 30 && pings <= 50, `keepalive pings: ${pings}`);
  });

  it('a pong answers our ping: RTT sampled, still open', () => {
    const s = opened();
    s.clock.advance(1000);
    assert.deepEqual(pingTs(s), [s.tOpen + 1000]);
    s.clock.advance(30);
    s.socket.serverSend(`{"t":"pong","ts":${s.tOpen + 1000}}`);
    s.clock.advance(1000);
    assert.equal(s.client.state, 'open');
    const hb = s.client.stats().heartbeat!;
    assert.equal(hb.pongsReceived, 1);
    assert.equal(hb.rtt.last, 30);
  });
});

describe('client-side death detection', () => {
  it('silence for interval + timeout, reconnect off -> close(heartbeat-timeout), socket terminated, emitted once', () => {
    const s = opened({ reconnect: false });
    const liveness: string[] = [];
    s.client.on('liveness', (l) => liveness.push(l));
    s.clock.advance(1000);
    assert.deepEqual(s.socket.texts().slice(1), [`{"t":"ping","ts":${s.tOpen + 1000}}`]);
    s.clock.advance(499);
    assert.equal(s.client.state, 'open');
    s.clock.advance(1);
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.closes, [{ code: 1006, reason: 'heartbeat-timeout', cause: 'heartbeat-timeout' }]);
    assert.equal(s.socket.terminateCalls, 1, 'a dead peer is dropped at once, no closing handshake');
    assert.equal(s.socket.closeCalls.length, 0);
    assert.deepEqual(liveness, ['probing', 'dead']);
    assert.deepEqual(s.states.at(-1), ['closed', 'heartbeat-timeout']);
    s.clock.advance(60_000);
    assert.equal(s.closes.length, 1, 'close is emitted once');
    assert.equal(s.clock.pending, 0);
    assert.deepEqual(s.client.stats().closes, { 'heartbeat-timeout': 1 });
  });

  it('heartbeat-timeout -> reconnect (not close): the dead socket is terminated, the session resumes', () => {
    const s = opened();
    s.client.send('a');
    s.clock.advance(1500);
    assert.equal(s.client.state, 'reconnecting');
    assert.deepEqual(s.closes, []);
    assert.deepEqual(s.reconnecting.map((r) => r.reason), ['heartbeat-timeout']);
    assert.equal(s.sockets[0]!.terminateCalls, 1);
    assert.equal(s.sockets[0]!.closeCalls.length, 0);
    assert.equal(s.sockets[0]!.onmessage, null, 'the dead socket is detached');
    reconnect(s, W({ resumed: true }));
    assert.equal(s.client.state, 'open');
    assert.deepEqual(payloads(s.socket), ['a']);
    assert.deepEqual(s.client.stats().closes, { 'heartbeat-timeout': 1 });
  });

  it('without terminate() (browser WebSocket) the socket is closed instead', () => {
    const s = opened({ terminate: false, reconnect: false });
    s.clock.advance(1500);
    assert.equal(s.closes[0]!.cause, 'heartbeat-timeout');
    assert.equal(s.socket.closeCalls.length, 1);
    assert.equal(s.socket.closeCalls[0]!.code, 4000);
  });

  it('late timer (frozen tab): the first check after the freeze probes instead of declaring death', () => {
    const s = opened({ reconnect: false });
    s.clock.advance(1000); // ping #1; its deadline check is planned at +1500
    s.clock.jump(60_000); // frozen past the deadline
    s.clock.advance(1); // the timer fires 59.5 s late
    const woke = s.tOpen + 61_000;
    assert.equal(s.client.state, 'open', 'not declared dead on a late timer');
    assert.deepEqual(pingTs(s), [s.tOpen + 1000, woke], 'a fresh probe at wake time');
    s.clock.advance(498); // woke + 499
    assert.equal(s.client.state, 'open');
    s.clock.advance(1); // woke + 500: the probe went unanswered too
    assert.equal(s.client.state, 'closed');
    assert.equal(s.closes[0]!.cause, 'heartbeat-timeout');
  });

  it('late timer, then a pong to the probe: stays open', () => {
    const s = opened();
    s.clock.advance(1000);
    s.clock.jump(60_000);
    s.clock.advance(1);
    const probe = pingTs(s)[1]!;
    s.clock.advance(50);
    s.socket.serverSend(`{"t":"pong","ts":${probe}}`);
    s.clock.advance(900);
    assert.equal(s.client.state, 'open');
    assert.equal(s.closes.length, 0);
    assert.equal(s.client.stats().heartbeat!.rtt.last, 51, 'the probe went out at wake time, 1 + 50 ms before the pong');
  });

  it('late timer on a quiet (not probing) line: pings first', () => {
    const s = opened();
    s.clock.jump(3600_000); // the laptop slept for an hour before the first ping was due
    s.clock.advance(0);
    assert.equal(s.client.state, 'open');
    assert.deepEqual(pingTs(s), [s.tOpen + 3600_000]);
    s.clock.advance(500);
    assert.equal(s.client.state, 'reconnecting');
    assert.equal(s.reconnecting[0]!.reason, 'heartbeat-timeout');
  });

  it("'online' while open triggers an immediate probe, counted in wakeProbes", () => {
    const s = opened();
    s.clock.advance(100);
    s.env.fireOnline();
    assert.deepEqual(pingTs(s), [s.tOpen + 100]);
    assert.equal(s.client.stats().wakeProbes, 1);
    // Unanswered: dead one timeout after the probe, well before interval + timeout.
    s.clock.advance(499);
    assert.equal(s.client.state, 'open');
    s.clock.advance(1);
    assert.equal(s.reconnecting[0]?.reason, 'heartbeat-timeout');
    assert.equal(s.clock.now(), s.tOpen + 600);
  });

  it("visibilitychange to 'visible' probes; to 'hidden' does not", () => {
    const s = opened();
    s.clock.advance(100);
    s.env.setVisibility('hidden');
    assert.deepEqual(pingTs(s), []);
    assert.equal(s.client.stats().wakeProbes, 0);
    s.env.setVisibility('visible');
    assert.deepEqual(pingTs(s), [s.tOpen + 100]);
    assert.equal(s.client.stats().wakeProbes, 1);
    s.clock.advance(20);
    s.socket.serverSend(`{"t":"pong","ts":${s.tOpen + 100}}`);
    s.env.fireOnline();
    assert.deepEqual(pingTs(s), [s.tOpen + 100, s.tOpen + 120]);
    assert.equal(s.client.stats().wakeProbes, 2);
    assert.equal(s.client.state, 'open');
  });

  it('wake events before the first welcome are ignored', () => {
    const s = setup();
    s.socket.serverOpen();
    s.env.fireOnline();
    assert.deepEqual(s.socket.sent, [HELLO]);
    assert.equal(s.client.stats().wakeProbes, 0);
    assert.equal(s.sockets.length, 1);
  });

  it("heartbeat 'off': no pings, no client-side timeout", () => {
    const s = opened({ heartbeat: 'off' });
    assert.equal(s.client.heartbeatConfig, null);
    s.clock.advance(3600_000);
    s.env.fireOnline();
    assert.equal(s.client.state, 'open');
    assert.deepEqual(pingTs(s), []);
    assert.equal(s.clock.pending, 0);
  });

  it("a welcome without hb (server heartbeat off) and heartbeat 'server': no pings", () => {
    const s = opened({}, QUIET);
    s.clock.advance(3600_000);
    assert.equal(s.client.state, 'open');
    assert.deepEqual(pingTs(s), []);
  });

  it('a local heartbeat option overrides the welcome', () => {
    const s = opened({ heartbeat: 'aggressive' });
    assert.equal(s.client.heartbeatConfig!.interval, 5000);
    s.clock.advance(4999);
    assert.deepEqual(pingTs(s), []);
    s.clock.advance(1);
    assert.deepEqual(pingTs(s), [s.tOpen + 5000]);
  });
});

describe('bad input from the server', () => {
  const invalid: Array<[string, unknown]> = [
    ['a reserved first byte', 'xyz'],
    ["the old 'm' data format", 'mhello'],
    ['a malformed data header', 'd01:x'],
    ['a data header without colon', 'd12'],
    ['a binary data header without colon', new Uint8Array([0x64, 0x31, 0x32]).buffer],
    ['malformed JSON', '{"t":"ping",'],
    ['an unknown control type', '{"t":"nack"}'],
    ['an ack without seq', '{"t":"ack"}'],
    ['an empty text message', ''],
    ['an empty binary message', new ArrayBuffer(0)],
    ["binary '{'", new TextEncoder().encode('{"t":"ping","ts":1}').buffer],
    ['a ping without ts', '{"t":"ping"}'],
    ['a hello from the server', HELLO],
    ['an auth from the server', '{"t":"auth","token":"x"}'],
  ];
  for (const [what, data] of invalid) {
    it(`${what} -> protocol-error: error reported, socket closed with a WHATWG-valid code, reconnect`, () => {
      const s = opened();
      assert.doesNotThrow(() => s.socket.serverSend(data));
      assert.equal(s.client.state, 'reconnecting');
      assert.deepEqual(s.reconnecting.map((r) => r.reason), ['protocol-error']);
      assert.equal(s.socket.closeCalls.length, 1);
      const code = s.socket.closeCalls[0]!.code!;
      assert.ok(code === 1000 || (code >= 3000 && code <= 4999), `WHATWG close() accepts only 1000 and 3000-4999, got ${code}`);
      assert.equal(s.errors.length, 1);
      assert.deepEqual(s.messages, []);
    });

    it(`${what}, reconnect off -> close with cause protocol-error, code 1002`, () => {
      const s = opened({ reconnect: false });
      s.socket.serverSend(data);
      assert.equal(s.client.state, 'closed');
      assert.deepEqual(s.closes.map((c) => [c.cause, c.code]), [['protocol-error', 1002]]);
    });
  }

  it('an application message before the welcome is a protocol error', () => {
    const s = setup({ reconnect: false });
    s.socket.serverOpen();
    s.socket.serverSend('d1:early');
    assert.deepEqual(s.closes.map((c) => c.cause), ['protocol-error']);
    assert.deepEqual(s.messages, []);
  });

  it('no error listener: bad input still fails the connection cleanly and never throws', () => {
    const clock = new FakeClock();
    let sock: FakeSocket | undefined;
    const client = new LifelineClient('ws://x', {
      socketFactory: (u, p) => (sock = new FakeSocket(u, p, true)),
      clock,
      environment: null,
    });
    sock!.serverOpen();
    sock!.serverSend(WELCOME);
    assert.doesNotThrow(() => sock!.serverSend('garbage'));
    assert.equal(client.state, 'reconnecting');
    client.close();
  });

  it('a welcome with an unsupported v is fatal: no open, no reconnect loop', () => {
    const s = setup();
    s.socket.serverOpen();
    assert.doesNotThrow(() => s.socket.serverSend(W({ v: 2 })));
    assert.equal(s.opens, 0);
    assert.equal(s.client.session, null);
    assert.equal(s.client.state, 'closed');
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!.message, /version 2/);
    assert.deepEqual(s.reconnecting.map((r) => r.reason), [], 'another version will not change on retry');
    assert.deepEqual(s.closes.map((c) => [c.cause, c.code]), [['protocol-error', 1002]]);
    const r = setup({ reconnect: false });
    r.socket.serverOpen();
    r.socket.serverSend(W({ v: 2 }));
    assert.deepEqual(r.closes.map((c) => [c.cause, c.code]), [['protocol-error', 1002]]);
  });

  it('a welcome whose hb the client cannot accept fails the session (protocol-error) instead of throwing', () => {
    // Well-formed for wire.parseControl, but rejected by resolveHeartbeat(): interval 0,
    // timeoutInitial above the ceiling, ceiling below the floor, negative k.
    const hbs = [
      { ...HB, interval: 0 },
      { ...HB, timeoutInitial: 5000 },
      { ...HB, timeoutFloor: 900, timeoutCeiling: 800 },
      { ...HB, k: -1 },
    ];
    const outcomes = hbs.map((hb) => {
      const s = setup({ reconnect: false });
      s.socket.serverOpen();
      let threw: string | null = null;
      try {
        s.socket.serverSend(W({ hb }));
      } catch (err) {
        threw = (err as Error).message;
      }
      s.clock.advance(60_000); // well past the 15 s handshake timeout
      return { hb, threw, state: s.client.state, causes: s.closes.map((c) => c.cause), opens: s.opens };
    });
    assert.deepEqual(
      outcomes,
      outcomes.map((o) => ({ hb: o.hb, threw: null, state: 'closed', causes: ['protocol-error'], opens: 0 })),
    );
    // With reconnect on (the default): not open, retrying, nothing thrown.
    for (const hb of hbs) {
      const s = setup();
      s.socket.serverOpen();
      assert.doesNotThrow(() => s.socket.serverSend(W({ hb })));
      assert.equal(s.client.state, 'reconnecting');
      assert.deepEqual(s.reconnecting.map((r) => r.reason), ['protocol-error']);
      assert.equal(s.opens, 0);
    }
  });
});

describe('options', () => {
  // Checked at construction: before, a NaN outboxMaxBytes left the outbox
  // unbounded and a NaN handshakeTimeout (a timer that fires at once) failed
  // every handshake, with nothing said.
  const BAD: Array<[keyof LifelineClientOptions, unknown]> = [
    ['handshakeTimeout', NaN],
    ['handshakeTimeout', 2 ** 31],
    ['stableAfter', -1],
    ['outboxMaxMessages', NaN],
    ['outboxMaxBytes', -1],
    ['outboxMaxBytes', '8mb'],
    ['ackEvery', Infinity],
    ['ackDelay', -5],
  ];
  it('a bad count or timeout throws WS_ERR_INVALID_OPTION naming it, before any socket is made', () => {
    for (const [name, value] of BAD) {
      let sockets = 0;
      assert.throws(
        () =>
          new LifelineClient('wss://example.test/live', {
            socketFactory: (url, protocols) => {
              sockets++;
              return new FakeSocket(url, protocols, false);
            },
            clock: new FakeClock(),
            environment: null,
            [name]: value,
          }),
        (err: Error & { code?: string }) =>
          err.code === 'WS_ERR_INVALID_OPTION' && err.message === `${name} must be a number >= 0 and <= 2147483647, got ${String(value)}`,
        `${name}: ${String(value)}`,
      );
      assert.equal(sockets, 0, `${name}: no connection attempt`);
    }
  });

  it('zero and the largest timer value are taken', () => {
    const { client } = setup({ handshakeTimeout: 2 ** 31 - 1, stableAfter: 0, ackDelay: 0, outboxMaxMessages: 0, outboxMaxBytes: 0 });
    assert.equal(client.state, 'connecting');
    client.close();
  });
});

describe('closing', () => {
  it('close() sends bye, then closes the socket with the code and reason; emitted once', () => {
    const s = opened();
    s.client.close(1000, 'done');
    assert.equal(s.socket.texts().at(-1), '{"t":"bye","reason":"done"}');
    assert.deepEqual(s.socket.closeCalls, [{ code: 1000, reason: 'done' }]);
    assert.deepEqual(s.closes, [{ code: 1000, reason: 'done', cause: 'local-closed' }]);
    assert.equal(s.client.state, 'closed');
    s.client.close();
    assert.equal(s.closes.length, 1, 'a second close() is a no-op');
    assert.equal(s.socket.controls('bye').length, 1);
    assert.equal(s.clock.pending, 0);
  });

  it("close() without a reason says bye 'normal'", () => {
    const s = opened();
    s.client.close();
    assert.equal(s.socket.texts().at(-1), '{"t":"bye","reason":"normal"}');
    assert.deepEqual(s.socket.closeCalls, [{ code: 1000, reason: '' }]);
  });

  it('close(): outbox leftovers are marked failed, acknowledged ones stay acked', () => {
    const s = opened({ heartbeat: 'off' });
    const ids = [s.client.send('a'), s.client.send('b'), s.client.send('c')];
    s.socket.serverSend('{"t":"ack","seq":1}');
    s.client.close();
    assert.deepEqual(ids.map((id) => s.client.messageState(id)), ['acked', 'failed', 'failed']);
    assert.equal(s.client.stats().outbox, 0);
  });

  it('close() while connecting: no bye, socket closed', () => {
    const s = setup();
    s.client.close();
    assert.deepEqual(s.socket.sent, []);
    assert.equal(s.socket.closeCalls.length, 1);
    assert.deepEqual(s.closes.map((c) => c.cause), ['local-closed']);
  });

  it('close() while reconnecting: no socket to close, queued messages failed, no further attempt', () => {
    const s = opened({ heartbeat: 'off' });
    s.socket.serverClose(1006);
    const q = s.client.send('queued');
    s.client.close();
    assert.deepEqual(s.closes, [{ code: 1000, reason: '', cause: 'local-closed' }]);
    assert.equal(s.client.messageState(q), 'failed');
    s.clock.advance(3600_000);
    s.env.fireOnline();
    assert.equal(s.sockets.length, 1);
    assert.equal(s.clock.pending, 0);
  });

  it("a server 'bye' is accepted quietly (the close follows)", () => {
    const s = opened();
    s.socket.serverSend('{"t":"bye","reason":"restart"}');
    assert.equal(s.client.state, 'open');
    assert.equal(s.closes.length, 0);
  });

  it('events after close are ignored: stale socket handlers, environment, timers', () => {
    const s = opened();
    const { onmessage, onclose, onopen } = s.socket;
    s.client.close();
    const sentBefore = s.socket.sent.length;
    // The client detached its handlers...
    assert.equal(s.socket.onmessage, null);
    assert.equal(s.socket.onclose, null);
    // ...and a stale reference called anyway (a late event from the old transport) does nothing.
    onmessage!({ data: 'd1:late' });
    onmessage!({ data: '{"t":"ping","ts":1}' });
    onmessage!({ data: 'garbage' });
    onclose!({ code: 1006, reason: '' });
    onopen!({});
    assert.deepEqual(s.messages, []);
    assert.equal(s.socket.sent.length, sentBefore);
    assert.equal(s.closes.length, 1);
    assert.deepEqual(s.errors, []);
    // The environment listeners are gone.
    assert.equal(s.env.listenerCount(), 0);
    s.env.fireOnline();
    s.env.setVisibility('visible');
    s.client.probe();
    s.clock.advance(3600_000);
    assert.equal(s.socket.sent.length, sentBefore);
    assert.equal(s.client.stats().wakeProbes, 0);
    assert.equal(s.closes.length, 1);
    assert.equal(s.sockets.length, 1, 'no reconnect after close()');
  });

  it('stale handlers of a dropped socket are ignored after a reconnect', () => {
    const s = opened({ heartbeat: 'off' });
    const old = s.socket;
    const { onmessage, onclose } = old;
    old.serverClose(1006);
    reconnect(s, W({ hb: null, resumed: true }));
    onmessage!({ data: 'd1:stale' });
    onclose!({ code: 4401, reason: '' });
    assert.deepEqual(s.messages, []);
    assert.equal(s.client.state, 'open');
  });

  it('registers exactly two environment listeners while alive', () => {
    const s = opened();
    assert.equal(s.env.listenerCount(), 2);
  });
});

// lifeline.v1's app heartbeat, {"t":"ping","ts":N} answered by
// {"t":"pong","ts":N}, both ways. The server reads pings and pongs in the
// form our clients write without JSON.parse (parseCanonicalPing/Pong); every
// other valid JSON form must be taken just the same, through the general
// parser. Its own pings and pongs come from templates (encodePing/Pong),
// which must stay byte-identical to encodeControl's.
//
// LifelineServer on 127.0.0.1 and a raw lifeline.v1 client over net that
// writes pings and pongs in the form under test.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Cleanup, clientText, rawSession } from './helpers.js';

const PINGS = 3;
const PING = /^\{"t":"ping","ts":(\d+)\}$/;

const FORMS: Array<[string, (ts: string) => string]> = [
  ['canonical (the fast path)', (ts) => `{"t":"pong","ts":${ts}}`],
  ['fields reordered, with spaces', (ts) => `{ "ts" : ${ts} , "t" : "pong" }`],
  ['an extra field', (ts) => `{"t":"pong","ts":${ts},"x":1}`],
  ['ts with a fraction of zero', (ts) => `{"t":"pong","ts":${ts}.0}`],
];

describe('server: app pongs from lifeline.v1 peers', () => {
  for (const [name, pong] of FORMS) {
    test(`a pong ${name} answers the ping`, async () => {
      const cleanup = new Cleanup();
      try {
        const { served, client, s } = await rawSession(cleanup, { heartbeat: { interval: 50, timeoutFloor: 2000, timeoutCeiling: 4000, timeoutInitial: 4000 } });

        // Answer PINGS pings; the server sends the next one only after a
        // quiet interval, so by then it has taken the previous pong.
        for (let i = 1; i <= PINGS + 1; i++) {
          const [ping] = await client.frames(i, i + 1);
          const m = PING.exec(ping!);
          assert.ok(m, `frame ${i} is an app ping as encodeControl writes it: ${ping}`);
          if (i <= PINGS) client.sock.write(clientText(pong(m[1]!)));
        }
        const st = served.server.stats();
        assert.equal(st.pongsReceived, PINGS);
        assert.equal(st.pingsMissed, 0);
        assert.equal(s.state, 'open');
        assert.equal(s.liveness, 'probing', 'the last ping is still unanswered');
      } finally {
        await cleanup.run();
      }
    });
  }
});

describe('server: app pings from lifeline.v1 peers', () => {
  const pings: Array<[string, string, string]> = [
    ['canonical (the fast path)', '{"t":"ping","ts":1795362397336}', '{"t":"pong","ts":1795362397336}'],
    ['fields reordered, with spaces', '{ "ts" : 42 , "t" : "ping" }', '{"t":"pong","ts":42}'],
    ['an extra field', '{"t":"ping","ts":7,"x":1}', '{"t":"pong","ts":7}'],
    ['a fractional ts (performance.now())', '{"t":"ping","ts":1234.5}', '{"t":"pong","ts":1234.5}'],
    ['ts 0', '{"t":"ping","ts":0}', '{"t":"pong","ts":0}'],
  ];
  test('each gets a pong with its ts, in encodeControl form, in order', async () => {
    const cleanup = new Cleanup();
    try {
      // Heartbeat off: no pings of the server's own between the answers.
      const { client, s } = await rawSession(cleanup, { heartbeat: 'off' });
      client.sock.write(Buffer.concat(pings.map(([, ping]) => clientText(ping))));
      const answers = await client.frames(1, 1 + pings.length);
      assert.deepEqual(
        answers,
        pings.map(([, , pong]) => pong),
        pings.map(([name]) => name).join(', '),
      );
      assert.equal(s.state, 'open');
    } finally {
      await cleanup.run();
    }
  });
});

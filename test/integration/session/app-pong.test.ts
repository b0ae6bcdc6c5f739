// A lifeline.v1 peer answers the server's app pings {"t":"ping","ts":N} with
// {"t":"pong","ts":N}. The server reads the form our clients write without
// JSON.parse (parseCanonicalPong); every other valid JSON form must count
// just the same, through the general parser. And the pings themselves are
// written by encodePing, which must stay byte-identical to encodeControl.
//
// LifelineServer on 127.0.0.1 with a 50 ms heartbeat interval, and a raw
// lifeline.v1 client over net that answers each ping in the form under test.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { ServerSession } from '../../../src/server/lifeline-server.js';
import { ms, once } from '../../helpers/peers.js';
import { Cleanup, clientText, RawClient, Served } from './helpers.js';

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
        const served = await Served.start({ heartbeat: { interval: 50, timeoutFloor: 2000, timeoutCeiling: 4000, timeoutInitial: 4000 } });
        cleanup.add(() => served.close());
        const sessP = once<ServerSession>(served.server, 'connection', ms(5000));
        const client = await RawClient.connect(served.port);
        cleanup.add(() => client.sock.destroy());
        client.sock.write(clientText('{"t":"hello","v":1}'));
        const s = await sessP;
        const [welcome] = await client.frames(0, 1);
        assert.match(welcome!, /^\{"t":"welcome"/);

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

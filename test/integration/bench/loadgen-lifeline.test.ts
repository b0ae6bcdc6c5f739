// The bench's load generator in lifeline.v1 mode (scenario g) against the
// bench's session echo server, both from the files `npm run bench` runs:
// every round trip comes back in order and intact, and the server, which
// fails a session on a sequence gap, a malformed data header or an invalid
// ack, keeps every session open. The data frames come from one table shared
// by all connections (bench/loadgen.mjs, llSlice): built for seq 1-1,024
// first, then grown, so the runs here go past that; the 200-byte payloads
// take the 16-bit length form of the frame header. The acks are written by
// hand (ackFrame): one every 32 echoes, in the same write as data frames.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { killAllScripts, runLoadgen, startBenchServer, stopProc, type LoadgenResult } from '../../helpers/bench-procs.js';
import { ensureDistBuilt } from '../../helpers/dist.js';

function loadgen(port: number, connections: number, size: number, messages: number, warmup: number): Promise<LoadgenResult> {
  return runLoadgen([
    '--port', String(port),
    '--protocol', 'lifeline',
    '--connections', String(connections),
    '--size', String(size),
    '--window', '16',
    '--messages', String(messages),
    '--warmup', String(warmup),
  ]);
}

before(ensureDistBuilt);
after(killAllScripts);

describe('bench loadgen, lifeline.v1 mode, against the bench session echo server', () => {
  for (const c of [
    // 3 x 2,200 round trips: seq past the first 1,024-frame table, so it grows.
    { connections: 3, size: 32, messages: 6_000, warmup: 600 },
    // 200-byte payloads: frames with a 16-bit length; seq still past 1,024.
    { connections: 2, size: 200, messages: 2_400, warmup: 200 },
  ]) {
    test(`${c.connections} connections x ${c.size} B, ${c.messages} + ${c.warmup} warm-up round trips: all back, in order, intact`, async () => {
      const { server, port } = await startBenchServer('bench/servers/lifeline-session-echo.mjs', ['--port', '0']);
      try {
        const r = await loadgen(port, c.connections, c.size, c.messages, c.warmup);
        assert.deepEqual(r.errors, []);
        assert.equal(r.ok, true);
        assert.equal(r.outcome, 'ok');
        assert.equal(r.protocol, 'lifeline');
        assert.equal(r.sent, c.messages);
        assert.equal(r.received, c.messages);
        assert.equal(r.lost, 0);
        // Every echo's payload compared with what was sent, warm-up included.
        assert.equal(r.verified, c.messages + c.warmup);
        assert.ok((c.messages + c.warmup) / c.connections > 1024, 'the run must go past the first frame table');
      } finally {
        await stopProc(server);
      }
    });
  }
});

// The bench's raw `net` echo servers (bench/servers/net-echo.mjs), in every
// mode `npm run bench` runs, against the bench's loadgen in netlen mode:
// every round trip comes back in order and intact. For wsfloor (scenario b's
// floor) that shows its in-place unmask with the zero key leaves the bytes
// as they were, with bufferutil's native unmask, lifeline's WebAssembly SIMD
// one (LIFELINE_NO_NATIVE=1) and its JavaScript one (LIFELINE_NO_SIMD=1
// too), over messages that straddle reads
// and over sizes that leave unaligned tails for its byte-wise ends.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { killAllScripts, runLoadgen, runScript, startBenchServer, stopProc } from '../../helpers/bench-procs.js';
import { ensureDistBuilt } from '../../helpers/dist.js';
import { ms, withTimeout } from '../../helpers/peers.js';

before(ensureDistBuilt);
after(killAllScripts);

describe('bench net echo servers against the netlen loadgen', () => {
  const cases = [
    { mode: 'batched', env: {} },
    { mode: 'perframe', env: {} },
    { mode: 'wsfloor', env: {} },
    { mode: 'wsfloor', env: { LIFELINE_NO_NATIVE: '1' } },
    { mode: 'wsfloor', env: { LIFELINE_NO_NATIVE: '1', LIFELINE_NO_SIMD: '1' } },
  ];
  for (const c of cases) {
    for (const size of [16 * 1024, 1001]) {
      const env: Record<string, string | undefined> = c.env;
      const label = `${c.mode}${env.LIFELINE_NO_SIMD ? ' (JS unmask)' : env.LIFELINE_NO_NATIVE ? ' (SIMD unmask)' : ''}, ${size} B`;
      test(`${label}: every echo back, in order, intact`, async () => {
        const { server, port } = await startBenchServer('bench/servers/net-echo.mjs', ['--mode', c.mode, '--port', '0'], { ...process.env, ...c.env });
        try {
          const messages = 3_000;
          const warmup = 300;
          const r = await runLoadgen(['--port', String(port), '--protocol', 'netlen', '--binary', '--connections', '3', '--size', String(size), '--window', '4', '--messages', String(messages), '--warmup', String(warmup)]);
          assert.deepEqual(r.errors, []);
          assert.equal(r.ok, true);
          assert.equal(r.protocol, 'netlen');
          assert.equal(r.received, messages);
          assert.equal(r.lost, 0);
          assert.equal(r.verified, messages + warmup);
        } finally {
          await stopProc(server);
        }
      });
    }
  }

  test('refuses an unknown mode', async () => {
    const p = runScript('bench/servers/net-echo.mjs', ['--mode', 'nope', '--port', '0']);
    assert.equal(await withTimeout(p.exited, ms(10_000), 'net-echo to exit'), 2);
    assert.match(p.stderr(), /--mode must be batched, perframe or wsfloor, got nope/);
  });
});

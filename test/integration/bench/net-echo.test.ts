// The bench's raw `net` echo servers (bench/servers/net-echo.mjs), in every
// mode `npm run bench` runs, against the bench's loadgen in netlen mode:
// every round trip comes back in order and intact. For wsfloor (scenario b's
// floor) that shows its in-place unmask with the zero key leaves the bytes
// as they were, with bufferutil's native unmask and with the JavaScript loop
// (LIFELINE_NO_NATIVE=1), over messages that straddle reads and over sizes
// that leave unaligned tails for the loop's byte-wise ends.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ensureDistBuilt, ROOT } from '../../helpers/dist.js';
import { ms, withTimeout } from '../../helpers/peers.js';

const running = new Set<ChildProcessWithoutNullStreams>();

interface Proc {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const proc = spawn(process.execPath, [path.join(ROOT, script), ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    proc.emit('line');
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => {
      running.delete(proc);
      resolve(code);
    });
  });
  return { proc, lines, stderr: () => stderr, exited };
}

async function netEcho(mode: string, env?: NodeJS.ProcessEnv): Promise<{ server: Proc; port: number }> {
  const server = run('bench/servers/net-echo.mjs', ['--mode', mode, '--port', '0'], env);
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const check = () => {
        const m = server.lines.map((l) => /^listening (\d+)$/.exec(l)).find((x) => x !== null);
        if (m) resolve(Number(m[1]));
      };
      server.proc.on('line', check);
      server.proc.on('exit', () => reject(new Error(`net echo server exited: ${server.stderr()}`)));
      check();
    }),
    ms(15_000),
    'the net echo server to listen',
  );
  return { server, port };
}

interface LoadgenResult {
  ok: boolean;
  outcome: string;
  sent: number;
  received: number;
  lost: number;
  verified: number;
  protocol: string;
  errors: string[];
}

before(ensureDistBuilt);

after(() => {
  for (const p of running) p.kill('SIGKILL');
});

describe('bench net echo servers against the netlen loadgen', () => {
  const cases = [
    { mode: 'batched', env: {} },
    { mode: 'perframe', env: {} },
    { mode: 'wsfloor', env: {} },
    { mode: 'wsfloor', env: { LIFELINE_NO_NATIVE: '1' } },
  ];
  for (const c of cases) {
    for (const size of [16 * 1024, 1001]) {
      const label = `${c.mode}${c.env.LIFELINE_NO_NATIVE ? ' (JS unmask)' : ''}, ${size} B`;
      test(`${label}: every echo back, in order, intact`, async () => {
        const { server, port } = await netEcho(c.mode, { ...process.env, ...c.env });
        try {
          const messages = 3_000;
          const warmup = 300;
          const lg = run('bench/loadgen.mjs', ['--port', String(port), '--protocol', 'netlen', '--binary', '--connections', '3', '--size', String(size), '--window', '4', '--messages', String(messages), '--warmup', String(warmup)]);
          const code = await withTimeout(lg.exited, ms(60_000), 'the loadgen to finish');
          const line = lg.lines.filter((l) => l.startsWith('result ')).pop();
          assert.ok(line, `no result line from the loadgen (exit ${code}): ${lg.stderr()}`);
          const r = JSON.parse(line.slice('result '.length)) as LoadgenResult;
          assert.equal(code, 0, `loadgen exit ${code}: ${JSON.stringify(r.errors)} ${lg.stderr()}`);
          assert.deepEqual(r.errors, []);
          assert.equal(r.ok, true);
          assert.equal(r.protocol, 'netlen');
          assert.equal(r.received, messages);
          assert.equal(r.lost, 0);
          assert.equal(r.verified, messages + warmup);
        } finally {
          server.proc.kill('SIGTERM');
          await withTimeout(server.exited, ms(10_000), 'the echo server to exit');
        }
      });
    }
  }

  test('refuses an unknown mode', async () => {
    const p = run('bench/servers/net-echo.mjs', ['--mode', 'nope', '--port', '0']);
    assert.equal(await withTimeout(p.exited, ms(10_000), 'net-echo to exit'), 2);
    assert.match(p.stderr(), /--mode must be batched, perframe or wsfloor, got nope/);
  });
});

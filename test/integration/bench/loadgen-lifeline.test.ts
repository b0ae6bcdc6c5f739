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

function run(script: string, args: string[]): Proc {
  const proc = spawn(process.execPath, [path.join(ROOT, script), ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
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

/** Starts the session echo server; resolves with it and its port. */
async function sessionEcho(): Promise<{ server: Proc; port: number }> {
  const server = run('bench/servers/lifeline-session-echo.mjs', ['--port', '0']);
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const check = () => {
        const m = server.lines.map((l) => /^listening (\d+)$/.exec(l)).find((x) => x !== null);
        if (m) resolve(Number(m[1]));
      };
      server.proc.on('line', check);
      server.proc.on('exit', () => reject(new Error(`echo server exited: ${server.stderr()}`)));
      check();
    }),
    ms(15_000),
    'the session echo server to listen',
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

async function loadgen(port: number, connections: number, size: number, messages: number, warmup: number): Promise<LoadgenResult> {
  const lg = run('bench/loadgen.mjs', [
    '--port', String(port),
    '--protocol', 'lifeline',
    '--connections', String(connections),
    '--size', String(size),
    '--window', '16',
    '--messages', String(messages),
    '--warmup', String(warmup),
  ]);
  const code = await withTimeout(lg.exited, ms(60_000), 'the loadgen to finish');
  const line = lg.lines.filter((l) => l.startsWith('result ')).pop();
  assert.ok(line, `no result line from the loadgen (exit ${code}): ${lg.stderr()}`);
  const result = JSON.parse(line.slice('result '.length)) as LoadgenResult;
  assert.equal(code, 0, `loadgen exit ${code}: ${JSON.stringify(result.errors)} ${lg.stderr()}`);
  return result;
}

before(ensureDistBuilt);

after(() => {
  for (const p of running) p.kill('SIGKILL');
});

describe('bench loadgen, lifeline.v1 mode, against the bench session echo server', () => {
  for (const c of [
    // 3 x 2,200 round trips: seq past the first 1,024-frame table, so it grows.
    { connections: 3, size: 32, messages: 6_000, warmup: 600 },
    // 200-byte payloads: frames with a 16-bit length; seq still past 1,024.
    { connections: 2, size: 200, messages: 2_400, warmup: 200 },
  ]) {
    test(`${c.connections} connections x ${c.size} B, ${c.messages} + ${c.warmup} warm-up round trips: all back, in order, intact`, async () => {
      const { server, port } = await sessionEcho();
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
        server.proc.kill('SIGTERM');
        await withTimeout(server.exited, ms(10_000), 'the echo server to exit');
      }
    });
  }
});

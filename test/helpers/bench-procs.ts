// The bench's own scripts (servers, loadgen) as child processes, for the
// tests that check them: started from the files `npm run bench` runs, their
// stdout kept as lines, every one killed when the file's tests end.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

import { ROOT } from './dist.js';
import { ms, withTimeout } from './peers.js';

export interface Proc {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** `node ROOT/script args...`; emits 'line' on the process for each complete stdout line. */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
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

/** Starts a bench server script and resolves with it and the port from its `listening <port>` line. */
export async function startBenchServer(script: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ server: Proc; port: number }> {
  const server = runScript(script, args, env);
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const check = () => {
        const m = server.lines.map((l) => /^listening (\d+)$/.exec(l)).find((x) => x !== null);
        if (m) resolve(Number(m[1]));
      };
      server.proc.on('line', check);
      server.proc.on('exit', () => reject(new Error(`${script} exited: ${server.stderr()}`)));
      check();
    }),
    ms(15_000),
    `${script} to listen`,
  );
  return { server, port };
}

export interface LoadgenResult {
  ok: boolean;
  outcome: string;
  sent: number;
  received: number;
  lost: number;
  verified: number;
  protocol: string;
  errors: string[];
}

/** Runs bench/loadgen.mjs to the end; its `result` line, after asserting it exited 0. */
export async function runLoadgen(args: string[]): Promise<LoadgenResult> {
  const lg = runScript('bench/loadgen.mjs', args);
  const code = await withTimeout(lg.exited, ms(60_000), 'the loadgen to finish');
  const line = lg.lines.filter((l) => l.startsWith('result ')).pop();
  assert.ok(line, `no result line from the loadgen (exit ${code}): ${lg.stderr()}`);
  const result = JSON.parse(line.slice('result '.length)) as LoadgenResult;
  assert.equal(code, 0, `loadgen exit ${code}: ${JSON.stringify(result.errors)} ${lg.stderr()}`);
  return result;
}

/** SIGTERM, and wait for the exit. */
export async function stopProc(p: Proc): Promise<void> {
  p.proc.kill('SIGTERM');
  await withTimeout(p.exited, ms(10_000), 'a bench process to exit');
}

/** For after(): SIGKILL whatever is still running. */
export function killAllScripts(): void {
  for (const p of running) p.kill('SIGKILL');
}

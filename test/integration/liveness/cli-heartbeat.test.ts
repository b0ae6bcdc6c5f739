// Acceptance: `lifeline echo --heartbeat normal|aggressive|off|INTERVAL_MS:TIMEOUT_MS`
// as users run it (node bin/lifeline.mjs over dist/, built in before() when
// missing or older than src/).
//
// - '300:200' (ping after 300 ms of quiet, fixed 200 ms answer timeout): a
//   `ws` client with autoPong: false (it receives pings, never answers) is
//   dropped within 300 + 200 ms + slack (2 wheel ticks of 50 ms + ms(150) for
//   the process boundary), not before 300 ms; a client that answers is not;
//   a LifelineClient is told {interval 300, timeout 200..200} in the welcome.
// - 'off': the silent `ws` client gets no ping and stays connected for
//   2.5 s (5 windows of 300:200); a LifelineClient is told hb: null.
// - 'aggressive': the welcome announces the aggressive preset.
// - a bad spec exits 1 with a message naming --heartbeat's forms.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { WebSocket as WsClient } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { HEARTBEAT_PRESETS, type HeartbeatConfig } from '../../../src/session/heartbeat.js';
import { ensureDistBuilt } from '../../helpers/dist.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';
import { now, runFor } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'lifeline.mjs');

const running = new Set<ChildProcessWithoutNullStreams>();
const results: string[] = [];

interface Echo {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawns `node bin/lifeline.mjs args`; collects stdout lines and stderr. */
function spawnCli(args: string[]): { proc: ChildProcessWithoutNullStreams; lines: string[]; stderr: () => string; exited: Promise<number | null>; onLine: (fn: () => void) => void } {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  const lines: string[] = [];
  const listeners: Array<() => void> = [];
  let partial = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => {
    partial += d;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      lines.push(partial.slice(0, i));
      partial = partial.slice(i + 1);
    }
    for (const l of listeners) l();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    proc.on('close', (code) => {
      running.delete(proc);
      for (const l of listeners) l();
      resolve(code);
    }),
  );
  return { proc, lines, stderr: () => stderr, exited, onLine: (fn) => listeners.push(fn) };
}

async function startEcho(spec: string): Promise<Echo> {
  const c = spawnCli(['echo', '--port', '0', '--host', '127.0.0.1', '--heartbeat', spec]);
  let exited = false;
  void c.exited.then(() => (exited = true));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = () => {
        for (const l of c.lines) {
          const m = /^listening (ws:\/\/127\.0\.0\.1:\d+)$/.exec(l);
          if (m) return resolve(m[1]!);
        }
        if (exited) reject(new Error(`lifeline echo --heartbeat ${spec} exited: ${c.stderr()}`));
      };
      c.onLine(check);
      check();
    }),
    ms(10_000),
    `"listening" from lifeline echo --heartbeat ${spec}`,
  ).catch((err) => {
    c.proc.kill('SIGKILL');
    throw err;
  });
  return { proc: c.proc, url: `${url}/`, stderr: c.stderr, exited: c.exited };
}

async function stopEcho(e: Echo): Promise<void> {
  if (e.proc.exitCode === null && e.proc.signalCode === null) e.proc.kill('SIGTERM');
  await withTimeout(e.exited, ms(10_000), 'lifeline echo to exit after SIGTERM');
}

// The child processes run dist/ (built when missing or older than src/).
before(ensureDistBuilt);

after(() => {
  for (const p of running) p.kill('SIGKILL');
  console.log('\n=== lifeline echo --heartbeat ===');
  for (const r of results) console.log(r);
});

function report(line: string): void {
  results.push(line);
  console.log(line);
}

/** A plain ws client that receives pings and never answers them. */
async function silentClient(url: string): Promise<{ ws: WsClient; openedAt: number; pings: number[]; closed: Promise<{ code: number; at: number }> }> {
  const ws = new WsClient(url, { autoPong: false });
  ws.on('error', () => {});
  const pings: number[] = [];
  ws.on('ping', () => pings.push(now()));
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.on('close', (code) => resolve({ code, at: now() })));
  await once(ws, 'open', ms(5000));
  return { ws, openedAt: now(), pings, closed };
}

/** The heartbeat a LifelineClient adopts from the server's welcome (null: off). */
async function announced(url: string): Promise<HeartbeatConfig | null> {
  const c = new LifelineClient(url, { reconnect: false });
  c.on('error', () => {});
  try {
    await once(c, 'open', ms(5000));
    return c.heartbeatConfig;
  } finally {
    c.close();
  }
}

describe('lifeline echo --heartbeat 300:200', () => {
  let echo: Echo;
  before(async () => {
    echo = await startEcho('300:200');
  });
  after(async () => {
    await stopEcho(echo);
  });

  const INTERVAL = 300;
  const TIMEOUT = 200;
  const TICK = 50; // the server's wheel: min(interval, floor) / 4
  const BOUND = INTERVAL + TIMEOUT + 2 * TICK + ms(150);

  test(`a ws client that never answers pings is dropped within ${INTERVAL} + ${TIMEOUT} ms + slack`, async () => {
    const c = await silentClient(echo.url);
    try {
      const { code, at } = await withTimeout(c.closed, ms(BOUND + 5000), 'the silent client to be dropped');
      const detection = at - c.openedAt;
      report(
        `300:200 silent ws client: dropped ${detection.toFixed(0)} ms after open (bound ${INTERVAL}..${BOUND}), close code ${code}, ` +
          `pings received at +${c.pings.map((p) => (p - c.openedAt).toFixed(0)).join(', +')} ms`,
      );
      assert.equal(code, 1006, 'dropped without a closing handshake');
      assert.ok(c.pings.length >= 1, 'it was pinged first');
      assert.ok(detection >= INTERVAL, `dropped after ${detection.toFixed(0)} ms: before the interval`);
      assert.ok(detection <= BOUND, `dropped after ${detection.toFixed(0)} ms: later than ${BOUND}`);
    } finally {
      c.ws.terminate();
    }
  });

  test('a ws client that answers pings stays connected for 5 windows', async () => {
    const ws = new WsClient(echo.url);
    ws.on('error', () => {});
    const pings: number[] = [];
    ws.on('ping', () => pings.push(now()));
    let closedCode: number | null = null;
    ws.on('close', (code) => (closedCode = code));
    try {
      await once(ws, 'open', ms(5000));
      await runFor(5 * (INTERVAL + TIMEOUT));
      report(`300:200 answering ws client: ${pings.length} pings in ${5 * (INTERVAL + TIMEOUT)} ms, still open: ${closedCode === null}`);
      assert.equal(closedCode, null, 'still connected');
      assert.ok(pings.length >= 3, `pinged ${pings.length} times`);
    } finally {
      ws.terminate();
    }
  });

  test('a LifelineClient is told the heartbeat in the welcome', async () => {
    const hb = await announced(echo.url);
    assert.ok(hb);
    assert.equal(hb.interval, INTERVAL);
    assert.equal(hb.timeoutFloor, TIMEOUT);
    assert.equal(hb.timeoutCeiling, TIMEOUT);
    assert.equal(hb.timeoutInitial, TIMEOUT);
  });
});

describe('lifeline echo --heartbeat off', () => {
  let echo: Echo;
  before(async () => {
    echo = await startEcho('off');
  });
  after(async () => {
    await stopEcho(echo);
  });

  test('a ws client that never answers pings is neither pinged nor dropped (2.5 s)', async () => {
    const c = await silentClient(echo.url);
    let closed = false;
    void c.closed.then(() => (closed = true));
    try {
      await runFor(2500);
      report(`off: silent ws client after 2500 ms: ${c.pings.length} pings, closed: ${closed}`);
      assert.equal(c.pings.length, 0, 'no ping');
      assert.equal(closed, false, 'not dropped');
      assert.equal(c.ws.readyState, WsClient.OPEN);
    } finally {
      c.ws.terminate();
    }
  });

  test('a LifelineClient is told hb: null and runs no heartbeat', async () => {
    assert.equal(await announced(echo.url), null);
  });
});

describe('lifeline echo --heartbeat aggressive', () => {
  test('the welcome announces the aggressive preset', async () => {
    const echo = await startEcho('aggressive');
    try {
      const hb = await announced(echo.url);
      assert.ok(hb);
      const p = HEARTBEAT_PRESETS.aggressive;
      assert.deepEqual(
        { interval: hb.interval, timeoutFloor: hb.timeoutFloor, timeoutCeiling: hb.timeoutCeiling, timeoutInitial: hb.timeoutInitial, k: hb.k },
        { interval: p.interval, timeoutFloor: p.timeoutFloor, timeoutCeiling: p.timeoutCeiling, timeoutInitial: p.timeoutInitial, k: p.k },
      );
    } finally {
      await stopEcho(echo);
    }
  });
});

describe('lifeline echo --heartbeat BAD', () => {
  for (const bad of ['fast', '300', '300:', ':200', '300:abc', '0:200', '300:0', '-5:200', '300:200:1', 'normal:200']) {
    test(`--heartbeat ${JSON.stringify(bad)} exits 1 with a usage message`, async () => {
      const c = spawnCli(['echo', '--port', '0', '--host', '127.0.0.1', `--heartbeat=${bad}`]);
      const code = await withTimeout(c.exited, ms(10_000), `lifeline echo --heartbeat ${bad} to exit`);
      assert.equal(code, 1, `exit code (stdout ${JSON.stringify(c.lines)}, stderr ${JSON.stringify(c.stderr())})`);
      assert.match(c.stderr(), /heartbeat/, 'stderr names the option');
      assert.ok(!c.lines.some((l) => l.startsWith('listening')), 'never listened');
    });
  }
});

// Helpers for tests that talk to real peers over real sockets.
//
// - peerAvailability(): which real peers this machine has (python-websockets,
//   libwebsockets' test server, headless Chromium). `npm test` installs them
//   through scripts/bootstrap.mjs --system; where that cannot work the suites
//   that need them are skipped loudly, and under CI=true they fail instead.
// - skipUnless(): the `{ skip }` option for test()/describe().
// - UNIT / ms(): every real-socket timeout is a multiple of one unit, scaled by
//   LIFELINE_TEST_UNIT on slow machines.
// - freePort(), once(), withTimeout(): so a real-socket test never hangs.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The python3 that has Debian's python3-websockets (`python3` on PATH may be a pyenv without it). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const CHROMIUM = '/usr/bin/chromium';
const LWS_TEST_SERVER = 'libwebsockets-test-server';

export interface PeerAvailability {
  /** `/usr/bin/python3 -c "import websockets"` works. */
  python3Websockets: boolean;
  /** Path of the libwebsockets-test-server binary, or null. */
  lwsTestServer: string | null;
  /** Path of the Chromium binary for playwright-core's executablePath, or null. */
  chromium: string | null;
}

let cached: PeerAvailability | undefined;

/** Detects the real peers once per process. */
export function peerAvailability(): PeerAvailability {
  cached ??= {
    python3Websockets: hasPythonWebsockets(),
    lwsTestServer: findLwsTestServer(),
    chromium: isExecutable(CHROMIUM) ? CHROMIUM : null,
  };
  return cached;
}

function hasPythonWebsockets(): boolean {
  if (!isExecutable(SYSTEM_PYTHON)) return false;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import websockets'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

function findLwsTestServer(): string | null {
  const onPath = which(LWS_TEST_SERVER);
  if (onPath) return onPath;
  // Not on PATH: ask dpkg where the package put it.
  try {
    const listed = execFileSync('dpkg', ['-L', 'libwebsockets-test-server'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
    });
    for (const line of listed.split('\n')) {
      const p = line.trim();
      if (path.basename(p) === LWS_TEST_SERVER && isExecutable(p)) return p;
    }
  } catch {
    // no dpkg, or package not installed
  }
  return null;
}

function which(cmd: string): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/bin', '/usr/local/bin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Options for test()/describe(): run when `available`, otherwise skip loudly.
 * Under CI=true a missing peer is an error (nothing may be skipped in CI).
 *
 *   describe('python-websockets client', skipUnless(peers.python3Websockets, 'python3-websockets'), () => ...)
 */
export function skipUnless(available: boolean, what: string): { skip: string | false } {
  if (available) return { skip: false };
  const reason = `${what} not available`;
  if (process.env.CI === 'true') {
    throw new Error(`${reason}, and CI=true forbids skipping: install it (npm test runs scripts/bootstrap.mjs --system)`);
  }
  console.warn(`*** SKIPPED: ${reason} (install it, or run npm test as root so bootstrap can) ***`);
  return { skip: reason };
}

/** One time unit for real-socket tests, in milliseconds per unit (LIFELINE_TEST_UNIT, default 1). */
export const UNIT = parseUnit(process.env.LIFELINE_TEST_UNIT);

function parseUnit(raw: string | undefined): number {
  const n = Number(raw ?? '1');
  if (!Number.isFinite(n) || n <= 0) throw new Error(`LIFELINE_TEST_UNIT must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** A real-socket duration: `ms(500)` is 500 ms on a normal machine, scaled by LIFELINE_TEST_UNIT. */
export function ms(n: number): number {
  return n * UNIT;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: could not read the bound address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Anything with Node's on/off, or the DOM's addEventListener/removeEventListener. */
export type Emitter =
  | {
      on(event: string, listener: (...args: any[]) => void): unknown;
      off(event: string, listener: (...args: any[]) => void): unknown;
    }
  | {
      addEventListener(event: string, listener: (ev: any) => void): unknown;
      removeEventListener(event: string, listener: (ev: any) => void): unknown;
    };

/**
 * Resolves with the first argument of the next `event`; rejects with an error
 * naming the event after `timeoutMs`, or, like events.once, when the emitter
 * emits 'error' first (unless `event` is 'error').
 *
 *   const code = await once<number>(ws, 'close', ms(2000)); // ws emits ('close', code, reason)
 */
export function once<T = unknown>(emitter: Emitter, event: string, timeoutMs: number = ms(5000)): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const on = (name: string, fn: (...args: any[]) => void) =>
      'on' in emitter ? emitter.on(name, fn) : emitter.addEventListener(name, fn);
    const off = (name: string, fn: (...args: any[]) => void) =>
      'off' in emitter ? emitter.off(name, fn) : emitter.removeEventListener(name, fn);

    const cleanup = () => {
      clearTimeout(timer);
      off(event, onEvent);
      if (event !== 'error') off('error', onError);
    };
    const onEvent = (value: T) => {
      cleanup();
      resolve(value);
    };
    const onError = (err: unknown) => {
      cleanup();
      const cause = err instanceof Error ? err : new Error(String((err as { message?: unknown })?.message ?? err));
      reject(new Error(`'error' while waiting for '${event}': ${cause.message}`, { cause }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);

    on(event, onEvent);
    if (event !== 'error') on('error', onError);
  });
}

/** Rejects with an error naming `what` if `promise` has not settled within `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

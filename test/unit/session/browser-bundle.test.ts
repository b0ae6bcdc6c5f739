// The browser bundle (scripts/build-browser.mjs -> dist/browser/lifeline.bundle.mjs),
// built afresh into a temp dir (not dist/: a browser suite may be reading that
// one meanwhile), held to its size budget, checked for its exports, and then
// put through the whole LifelineClient unit suite (lifeline-client.test.ts) in
// place of the TypeScript source: the bundle is not the source as tsc emits
// it (minified, class fields lowered to constructor assignments), and a
// difference that shows only there fails here. The browser suites
// (test/browser) run the same bundle in Chromium.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { FakeClock } from '../../../src/session/clock.js';
import { FakeSocket } from './fakes.js';
import type { ClientUnderTest } from './lifeline-client.test.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BUILD_SCRIPT = path.join(ROOT, 'scripts/build-browser.mjs');
/**
 * What the bundle may not grow past: 8,279 B as built by commit 847d8e8
 * (esbuild 0.28.2), plus about 70 B of slack for a toolchain update; raised
 * by 50 B when the RTT estimate went to whole units of 1/1024 ms and three
 * of the heartbeat's booleans into one field (8,389 B: the server's idle
 * connections hold 48 B less each, docs/BENCHMARKS.md, "Memory per idle
 * connection, once pings are answered"); raised by 100 B when the client's
 * numeric options were checked at construction (8,482 B: before, a NaN
 * outboxMaxBytes left the outbox unbounded and a NaN handshakeTimeout failed
 * every handshake, silently). The
 * goal of issue 4 is 6,144 B (bench/run.mjs BUNDLE_GOAL_GZIP, printed by every
 * bench run) and out of reach of the build alone (docs/BENCHMARKS.md,
 * "Browser bundle"); this keeps the bundle from sliding further away. Lower it
 * as the bundle shrinks; raise it only in a commit that says what the bytes
 * bought.
 */
const BUDGET_GZIP = 8_500;

const dir = mkdtempSync(path.join(tmpdir(), 'lifeline-bundle-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const outfile = path.join(dir, 'lifeline.bundle.mjs');
const report = JSON.parse(
  execFileSync(process.execPath, [BUILD_SCRIPT, '--json', '--outfile', outfile], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!,
) as { bytes: number; gzipBytes: number };
const bundle = (await import(pathToFileURL(outfile).href)) as Record<string, unknown>;
const BundleClient = bundle.LifelineClient as ClientUnderTest['LifelineClient'];

describe('browser bundle', () => {
  it(`stays within its budget of ${BUDGET_GZIP} B min+gzip`, () => {
    assert.ok(report.gzipBytes <= BUDGET_GZIP, `${report.gzipBytes} B min+gzip (${report.bytes} B minified) is over the budget of ${BUDGET_GZIP} B`);
  });

  it('reports the size of what it wrote', () => {
    const code = readFileSync(outfile);
    assert.equal(report.bytes, code.length);
    assert.equal(report.gzipBytes, gzipSync(code, { level: 9 }).length);
  });

  it('exports LifelineClient, a class over the native WebSocket by default', () => {
    assert.deepEqual(Object.keys(bundle), ['LifelineClient']);
    assert.equal(typeof BundleClient, 'function');
    // Without a socketFactory it creates the platform's WebSocket (a stand-in here).
    const g = globalThis as { WebSocket?: unknown };
    const had = 'WebSocket' in g;
    const saved = g.WebSocket;
    const created: Array<{ url: string; protocols: string[] }> = [];
    g.WebSocket = class extends FakeSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols, false);
        created.push({ url, protocols });
      }
    };
    try {
      const client = new BundleClient('wss://example.test/live', { clock: new FakeClock(), environment: null } as never);
      assert.deepEqual(created, [{ url: 'wss://example.test/live', protocols: ['lifeline.v1'] }]);
      client.close();
      assert.equal(client.state, 'closed');
    } finally {
      if (had) g.WebSocket = saved;
      else delete g.WebSocket;
    }
  });
});

// The bundle does not export OutboxFullError (browser code tells it by its
// `code`); the suite checks `instanceof`, so take the class from a refusal.
function outboxFullErrorClass(): ClientUnderTest['OutboxFullError'] {
  const client = new BundleClient('ws://x', { socketFactory: (u, p) => new FakeSocket(u, p, false), clock: new FakeClock(), environment: null, outboxMaxMessages: 0 });
  try {
    client.send('x');
  } catch (err) {
    return (err as Error).constructor as ClientUnderTest['OutboxFullError'];
  } finally {
    client.close();
  }
  throw new Error('the bundle did not refuse a send to a full outbox');
}

(globalThis as { lifelineClientUnderTest?: ClientUnderTest }).lifelineClientUnderTest = { LifelineClient: BundleClient, OutboxFullError: outboxFullErrorClass() };
await import('./lifeline-client.test.js');

// Interop: a real `ws` client (its own masking) against a lifeline echo
// server (bench/servers/lifeline-echo.mjs, from dist/) under each of the
// Node transport's unmask choices: bufferutil (installed as a dev
// dependency), the WebAssembly SIMD kernel (LIFELINE_NO_NATIVE=1) and the
// built-in JavaScript one (LIFELINE_NO_SIMD=1 too). Long messages, text and
// binary, come back intact; a long text message whose last bytes are not
// UTF-8 is refused with 1007 (the SIMD kernel's OR of the bytes is what
// sends it to the UTF-8 check).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { killAllScripts, startBenchServer, stopProc } from '../helpers/bench-procs.js';
import { ensureDistBuilt } from '../helpers/dist.js';
import { ms, withTimeout } from '../helpers/peers.js';

before(ensureDistBuilt);
after(killAllScripts);

const choices = [
  { name: 'bufferutil', env: {} },
  { name: 'SIMD kernel', env: { LIFELINE_NO_NATIVE: '1' } },
  { name: 'built-in JavaScript', env: { LIFELINE_NO_NATIVE: '1', LIFELINE_NO_SIMD: '1' } },
];
const SIZES = [383, 575, 576, 577, 1000, 16 * 1024, 65_536 + 13, 300_001];

/** Bytes that are not all ASCII, with a different pattern per size. */
function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
  return b;
}

/** Valid UTF-8 text of exactly n bytes: 48 ASCII letters and a 2-byte 'é', repeated, then ASCII to the length. */
function text(n: number): string {
  const unit = 'a'.repeat(48) + 'é'; // 50 bytes
  return unit.repeat(Math.floor(n / 50)) + 'b'.repeat(n % 50);
}

async function connect(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, maxPayload: 1 << 24 });
  await withTimeout(new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject))), ms(10_000), 'ws to open');
  return ws;
}

describe('a ws client against a lifeline server, under each bulk unmask', () => {
  for (const c of choices) {
    test(`${c.name}: long binary and text messages echo back intact; a long text ending in bad UTF-8 gets 1007`, async () => {
      const { server, port } = await startBenchServer('bench/servers/lifeline-echo.mjs', ['--port', '0'], { ...process.env, ...c.env });
      try {
        const ws = await connect(port);
        const echoes: Array<{ data: Buffer; isBinary: boolean }> = [];
        let wanted = 0;
        let done: () => void = () => {};
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          echoes.push({ data, isBinary });
          if (echoes.length === wanted) done();
        });
        const all = new Promise<void>((resolve) => (done = resolve));
        const sent: Array<{ data: Buffer; isBinary: boolean }> = [];
        for (const n of SIZES) {
          sent.push({ data: payload(n), isBinary: true }, { data: Buffer.from(text(n)), isBinary: false });
        }
        wanted = sent.length;
        for (const m of sent) ws.send(m.isBinary ? m.data : m.data.toString(), { binary: m.isBinary });
        await withTimeout(all, ms(20_000), 'every echo');
        assert.equal(echoes.length, sent.length);
        echoes.forEach((e, i) => {
          assert.equal(e.isBinary, sent[i]!.isBinary, `message ${i}: text stays text`);
          assert.ok(e.data.equals(sent[i]!.data), `message ${i} (${sent[i]!.data.length} B) intact`);
        });
        // 1000 B of ASCII and then a lone continuation byte: valid until the end.
        const bad = Buffer.concat([Buffer.alloc(1000, 0x61), Buffer.from([0x80])]);
        // Had the server echoed it, ws would refuse it itself (an 'error' event, and 1007 too): the close must be the server's.
        let clientError: Error | null = null;
        ws.on('error', (err: Error) => (clientError = err));
        const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
        // ws checks what it sends only as a string; a Buffer with binary: false goes out as it is.
        ws.send(bad, { binary: false });
        assert.equal(await withTimeout(closed, ms(10_000), 'the close'), 1007);
        assert.equal(clientError, null, 'the server echoed invalid UTF-8, and the client refused it');
        assert.equal(echoes.length, sent.length);
      } finally {
        await stopProc(server);
      }
    });
  }
});

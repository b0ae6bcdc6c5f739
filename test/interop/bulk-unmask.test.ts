// Interop: a real `ws` client (its own masking) against a lifeline echo
// server (bench/servers/lifeline-echo.mjs, from dist/) under each of the
// Node transport's unmask choices: bufferutil (installed as a dev
// dependency), the WebAssembly SIMD kernel (LIFELINE_NO_NATIVE=1) and the
// built-in JavaScript one (LIFELINE_NO_SIMD=1 too). Long messages, text and
// binary, come back intact; a long text message whose last bytes are not
// UTF-8 is refused with 1007 (the SIMD kernel's OR of the bytes is what
// sends it to the UTF-8 check). And the other way: our Node client (from
// dist/, in a Node of its own per choice) masks the same messages with each
// mask-and-copy (bufferutil's mask(), the kernel's, none) for a ws echo
// server, which unmasks them with its own code.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

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

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Our client in a Node of its own (the transport picks its mask at import,
 * from the environment): connects to `port`, sends every size of SIZES as
 * binary and as text, and prints which mask-and-copy it used and whether
 * every echo came back equal, in order, with its type.
 */
const CLIENT = `
const { connect } = await import('./dist/index.js');
const native = await import('./dist/transport/node/native.js');
const simd = await import('./dist/protocol/simd-unmask.js');
const kind = native.nodeBulkMask === null ? 'none' : native.nodeBulkMask === simd.sharedSimdMask() ? 'simd' : 'bufferutil';
const sizes = JSON.parse(process.env.SIZES);
const sent = [];
for (const n of sizes) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
  sent.push({ data: b, isBinary: true });
  const unit = 'a'.repeat(48) + '\u00e9';
  sent.push({ data: Buffer.from(unit.repeat(Math.floor(n / 50)) + 'b'.repeat(n % 50)), isBinary: false });
}
const ws = await connect('ws://127.0.0.1:' + process.env.PORT + '/', { deflate: false, maxMessageSize: 1 << 24 });
const got = [];
const all = new Promise((resolve) => ws.on('message', (data, isBinary) => { got.push({ data: Buffer.from(data), isBinary }); if (got.length === sent.length) resolve(); }));
for (const m of sent) ws.send(m.isBinary ? m.data : m.data.toString(), { binary: m.isBinary });
await all;
const bad = got.findIndex((g, i) => g.isBinary !== sent[i].isBinary || !g.data.equals(sent[i].data));
console.log(kind, bad === -1 ? 'intact' : 'message ' + bad + ' differs');
ws.close();
`;

describe('our Node client against a ws server, under each mask-and-copy', () => {
  const clientChoices = [
    { name: 'bufferutil', kind: 'bufferutil', env: {} },
    { name: 'SIMD kernel', kind: 'simd', env: { LIFELINE_NO_NATIVE: '1' } },
    { name: 'none (copy, then the built-in unmask)', kind: 'none', env: { LIFELINE_NO_NATIVE: '1', LIFELINE_NO_SIMD: '1' } },
  ];
  for (const c of clientChoices) {
    test(`${c.name}: long binary and text messages reach ws unmasked right, and its echoes come back intact`, async () => {
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: 1 << 24 });
      try {
        await withTimeout(new Promise<void>((resolve) => wss.once('listening', () => resolve())), ms(5000), 'the ws server to listen');
        // ws unmasks with its own code (bufferutil here); its echo goes back unmasked, as a server's must.
        wss.on('connection', (ws) => {
          ws.on('error', () => {});
          ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
        });
        const port = (wss.address() as { port: number }).port;
        const out = await withTimeout(
          new Promise<string>((resolve, reject) => {
            execFile(
              process.execPath,
              ['--input-type=module', '-e', CLIENT],
              { cwd: ROOT, env: { ...process.env, LIFELINE_NO_NATIVE: '', LIFELINE_NO_SIMD: '', ...c.env, PORT: String(port), SIZES: JSON.stringify(SIZES) } },
              (err, stdout, stderr) => (err ? reject(new Error(`client failed: ${err.message}\n${stderr}`)) : resolve(stdout.trim())),
            );
          }),
          ms(30_000),
          'the client to finish',
        );
        assert.equal(out, `${c.kind} intact`);
      } finally {
        for (const ws of wss.clients) ws.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
      }
    });
  }
});

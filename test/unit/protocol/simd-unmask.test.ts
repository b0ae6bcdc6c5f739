import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Connection } from '../../../src/protocol/connection.js';
import { BULK_MASK_MIN, maskInto, unmaskWithKey } from '../../../src/protocol/frame.js';
import { phaseZeroUnmask } from '../../../src/protocol/parser.js';
import { type BulkMask, type BulkUnmask, createSimdKernel, createSimdUnmask, kernelModuleBytes, sharedSimdMask, sharedSimdUnmask } from '../../../src/protocol/simd-unmask.js';
import { RecordingHandler } from '../../helpers/recording.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Runs ES module `code` in a fresh Node (through tsx, from the project root)
 * with the unmask switches cleared and then `env` set; its stdout, trimmed.
 * stderr is dropped (node --jitless warns about the flags it turns off).
 */
function runModule(code: string, env: Record<string, string>, nodeFlags: string[] = []): string {
  return execFileSync(process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, LIFELINE_NO_NATIVE: '', LIFELINE_NO_SIMD: '', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
}

/** The kernel: Node >= 20 has WebAssembly SIMD on every platform it ships for, so its absence here is a failure, not a skip. */
function kernel(): BulkUnmask {
  const k = createSimdUnmask();
  assert.ok(k !== null, 'WebAssembly SIMD is missing on this runtime: the SIMD unmask is never used');
  return k;
}

/** Bytes 0..n-1 from a seed, with both ASCII and high bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Runs both unmasks on copies of `buf`; asserts equal bytes (inside and outside the range) and equal OR of bytes. */
function agree(simd: BulkUnmask, buf: Buffer, start: number, end: number, key: number, maskOffset: number): void {
  const a = Buffer.from(buf);
  const b = Buffer.from(buf);
  const bitsA = unmaskWithKey(a, start, end, key, maskOffset);
  const bitsB = simd(b, start, end, key, maskOffset);
  assert.ok(a.equals(b), `bytes differ: ${end - start} B at ${start}, key ${key >>> 0}, phase ${maskOffset}`);
  assert.equal(bitsB, bitsA, `OR of the bytes differs: ${end - start} B at ${start}`);
}

describe('SIMD bulk unmask (WebAssembly)', () => {
  it('is a valid module on this runtime, and one instance serves the thread', () => {
    const wasm = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    assert.ok(wasm.validate(kernelModuleBytes()));
    kernel();
    assert.equal(sharedSimdUnmask(), sharedSimdUnmask());
  });

  it('matches the built-in unmask byte for byte, and in the OR of the bytes, for any range, key and phase', () => {
    const simd = kernel();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 19 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.nat(),
        fc.integer(),
        (n, start, after, key, maskOffset, seed) => {
          agree(simd, bytes(start + n + after, seed), start, start + n, key, maskOffset);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reports ASCII as ASCII: the OR stays under 0x80 when every unmasked byte does', () => {
    const simd = kernel();
    for (const n of [64, 65, 127, 1000]) {
      const key = 0x11223344;
      const plain = Buffer.alloc(n, 0x41);
      plain[n - 1] = 0x7f;
      const masked = Buffer.from(plain);
      unmaskWithKey(masked, 0, n, key, 0); // masking is the same XOR
      assert.equal(simd(masked, 0, n, key, 0), 0x7f);
      assert.ok(masked.equals(plain));
      masked[n >> 1] ^= 0x80; // one high byte, in the vector part or the tail
      unmaskWithKey(masked, 0, n, key, 0);
      assert.ok(simd(masked, 0, n, key, 0) >= 0x80);
    }
  });

  it('goes through its memory in 16 KiB pieces: slices longer than that, at odd offsets and phases', () => {
    const simd = kernel();
    const buf = bytes(300_007, 7);
    for (const [start, end, phase] of [
      [0, 16_384, 0],
      [1, 16_385 + 1, 1],
      [3, 32_768 + 3 + 5, 2],
      [6, 49_152 + 6 - 1, 3],
      [0, 65_536, 0],
      [1, 65_537, 1],
      [3, 65_539 + 1, 2],
      [5, 131_072 + 5 + 63, 3],
      [2, 300_001, 1],
    ] as const) {
      agree(simd, buf, start, end, 0x9abcdef0 | 0, phase);
    }
  });

  it('mask-and-copy: the frame gets the payload XOR the key from phase 0, for every length around its 16 KiB pieces, and nothing else is written', () => {
    const k = createSimdKernel();
    assert.ok(k !== null);
    const src = bytes(140_009, 11);
    for (const n of [0, 1, 3, 4, 5, 63, 64, 65, 511, 512, 16_383, 16_384, 16_385, 32_771, 65_536, 140_001]) {
      for (const [srcOffset, dstOffset, key] of [[0, 14, 0x01020304], [1, 6, 0x9abcdef0 | 0], [3, 8, -1], [2, 7, 0x80000001 | 0]] as const) {
        // A payload at an odd offset into a larger ArrayBuffer, as pooled Node buffers are.
        const payload = Buffer.from(src.buffer, src.byteOffset + srcOffset, n);
        const before = Buffer.from(payload);
        const dst = Buffer.alloc(dstOffset + n + 9, 0xee);
        k.mask(payload, dst, dstOffset, key);
        const expected = Buffer.alloc(dst.length, 0xee);
        before.copy(expected, dstOffset);
        unmaskWithKey(expected, dstOffset, dstOffset + n, key, 0);
        const what = `${n} B, src offset ${srcOffset}, dst offset ${dstOffset}, key ${key >>> 0}`;
        assert.ok(dst.equals(expected), what);
        assert.ok(payload.equals(before), `the payload itself is left as it was: ${what}`);
      }
    }
  });

  it('maskInto: payloads of BULK_MASK_MIN bytes and more go to the bulk mask, shorter ones are copied and unmasked by the built-in loop', () => {
    const calls: number[] = [];
    const simdMask = sharedSimdMask()!;
    const recording: BulkMask = (src, dst, off, key) => {
      calls.push(src.length);
      simdMask(src, dst, off, key);
    };
    const mask = Buffer.from([0xa1, 0x02, 0xf3, 0x44]);
    const sizes = [1, 7, BULK_MASK_MIN - 1, BULK_MASK_MIN, BULK_MASK_MIN + 1, 20_000];
    for (const n of sizes) {
      const payload = bytes(n, n);
      const viaBulk = Buffer.alloc(n + 6);
      const viaLoop = Buffer.alloc(n + 6);
      maskInto(payload, viaBulk, 6, mask, recording);
      maskInto(payload, viaLoop, 6, mask, null);
      const ref = Buffer.from(payload);
      for (let i = 0; i < n; i++) ref[i] = ref[i]! ^ mask[i & 3]!;
      assert.ok(viaBulk.subarray(6).equals(ref), `${n} B with a bulk mask`);
      assert.ok(viaLoop.subarray(6).equals(ref), `${n} B without one`);
    }
    assert.deepEqual(calls, sizes.filter((n) => n >= BULK_MASK_MIN));
  });

  it('is what a Connection uses unless told otherwise (bulkUnmask, or a native unmask)', () => {
    const parserUnmask = (c: Connection) => (c as unknown as { parser: { unmask: BulkUnmask | null } }).parser.unmask;
    assert.equal(parserUnmask(new Connection(new RecordingHandler(), { role: 'server' })), sharedSimdUnmask());
    assert.equal(parserUnmask(new Connection(new RecordingHandler(), { role: 'server', bulkUnmask: null })), null);
    const native = (buf: Buffer, mask: Buffer): void => {
      for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ mask[i & 3]!;
    };
    assert.equal(parserUnmask(new Connection(new RecordingHandler(), { role: 'server', unmask: native })), phaseZeroUnmask(native));
  });

  it('is null where the runtime has no WebAssembly (node --jitless), and the transport then uses none', () => {
    const code = "const s = await import('./src/protocol/simd-unmask.ts'); const n = await import('./src/transport/node/native.ts'); console.log(typeof WebAssembly, s.createSimdUnmask(), n.bulkUnmaskKind)";
    assert.equal(runModule(code, { LIFELINE_NO_NATIVE: '1' }, ['--jitless']), 'undefined null none');
  });

  it("the Node transport's choice: bufferutil when installed, else SIMD, else none (LIFELINE_NO_NATIVE, LIFELINE_NO_SIMD)", () => {
    const kindWith = (env: Record<string, string>): string => runModule("const m = await import('./src/transport/node/native.ts'); console.log(m.bulkUnmaskKind)", env);
    // bufferutil is a dev dependency (ws's, for the bench), so it is here.
    assert.equal(kindWith({}), 'bufferutil');
    assert.equal(kindWith({ LIFELINE_NO_NATIVE: '1' }), 'simd');
    assert.equal(kindWith({ LIFELINE_NO_NATIVE: '1', LIFELINE_NO_SIMD: '1' }), 'none');
  });

  it("the Node transport's mask-and-copy for clients: bufferutil's mask() when installed, else the SIMD kernel's, else none; each masks right", () => {
    // In a fresh Node per choice: which one it is, and a 20,000-byte payload at an odd offset masked into a frame at offset 6 by it.
    const code = [
      "const n = await import('./src/transport/node/native.ts');",
      "const s = await import('./src/protocol/simd-unmask.ts');",
      "const kind = n.nodeBulkMask === null ? 'none' : n.nodeBulkMask === s.sharedSimdMask() ? 'simd' : 'native';",
      'let ok = null;',
      'if (n.nodeBulkMask !== null) {',
      '  const big = Buffer.alloc(20_003); for (let i = 0; i < big.length; i++) big[i] = (i * 37 + 5) & 0xff;',
      '  const src = big.subarray(3); const dst = Buffer.alloc(src.length + 6);',
      '  const key = 0xf1e2d3c4 | 0; n.nodeBulkMask(src, dst, 6, key);',
      '  ok = true; for (let i = 0; i < src.length; i++) if (dst[6 + i] !== (src[i] ^ ((key >>> (24 - 8 * (i & 3))) & 0xff))) ok = false;',
      '}',
      'console.log(kind, ok);',
    ].join(' ');
    assert.equal(runModule(code, {}), 'native true');
    assert.equal(runModule(code, { LIFELINE_NO_NATIVE: '1' }), 'simd true');
    assert.equal(runModule(code, { LIFELINE_NO_NATIVE: '1', LIFELINE_NO_SIMD: '1' }), 'none null');
  });
});

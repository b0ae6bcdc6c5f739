#!/usr/bin/env node
// Unmask and mask costs per payload slice, in process: lifeline's built-in
// word loop (unmaskWithKey), its WebAssembly SIMD bulk unmask (copies
// included) and bufferutil's native unmask when installed; then a client's
// masking of an outgoing payload: the old byte loop that masked while
// copying, a copy followed by the built-in unmask in place, and the bulk
// masks that mask while they copy (the SIMD kernel's, through its memory,
// and bufferutil's `mask()`, as lifeline's Node transport calls it). The same buffer
// every time (hot in cache, as a payload just read is); the best of
// --rounds rounds, in ns per slice. Needs a built dist/.
//
//   node bench/unmask.mjs [--sizes 128,256,384,1024,4096,16384,65536] [--rounds 3]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { maskInto, unmaskWithKey } from '../dist/protocol/frame.js';
import { phaseZeroUnmask } from '../dist/protocol/parser.js';
import { sharedSimdMask, sharedSimdUnmask } from '../dist/protocol/simd-unmask.js';
import { bulkUnmaskKind, nodeBulkMask } from '../dist/transport/node/native.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '128,256,384,1024,4096,16384,65536' },
    rounds: { type: 'string', default: '3' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
if (sizes.some((n) => !(n > 0)) || !(rounds > 0)) {
  console.error('usage: node bench/unmask.mjs [--sizes 128,256,...] [--rounds 3]');
  process.exit(2);
}

let bufferutil = null;
try {
  const m = createRequire(import.meta.url)('bufferutil');
  const fallback = createRequire(import.meta.url)('bufferutil/fallback');
  if (m.unmask !== fallback.unmask) bufferutil = m;
} catch {
  // not installed: its columns stay empty
}
const simd = sharedSimdUnmask();
const simdMask = sharedSimdMask();
// The Node transport's mask-and-copy when it is bufferutil's (LIFELINE_NO_NATIVE unset and bufferutil installed).
const nativeMask = bulkUnmaskKind === 'bufferutil' && nodeBulkMask !== simdMask ? nodeBulkMask : null;
const KEY = 0x01020304;
const MASK = Buffer.from([1, 2, 3, 4]);

/** Best ns per call of fn over `rounds` rounds of `iters` calls. */
function best(iters, fn) {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) fn(i);
    min = Math.min(min, Number(process.hrtime.bigint() - t) / iters);
  }
  return min;
}

/** maskInto as it was before 66e3b29: masking while copying, four bytes an iteration. */
function maskWhileCopying(src, dst, dstOffset, mask) {
  const n = src.length;
  const m0 = mask[0], m1 = mask[1], m2 = mask[2], m3 = mask[3];
  let i = 0;
  for (const stop4 = n - 3; i < stop4; i += 4) {
    dst[dstOffset + i] = src[i] ^ m0;
    dst[dstOffset + i + 1] = src[i + 1] ^ m1;
    dst[dstOffset + i + 2] = src[i + 2] ^ m2;
    dst[dstOffset + i + 3] = src[i + 3] ^ m3;
  }
  for (let m = 0; i < n; i++, m++) dst[dstOffset + i] = src[i] ^ mask[m];
}

const fmt = (ns) => (ns === null ? '-' : `${Math.round(ns).toLocaleString('en-US')} ns`);
console.log(`node ${process.version}; SIMD kernel ${simd ? 'available' : 'MISSING'}; bufferutil ${bufferutil ? 'native' : 'not installed'}`);
console.log('\nunmask in place, per slice (offset 2, a new phase each call):');
console.log(['size', 'built-in', 'SIMD', 'bufferutil (as lifeline calls it)'].join('\t'));
for (const size of sizes) {
  const buf = Buffer.alloc(size + 8, 7);
  const iters = Math.max(2000, Math.floor(2e8 / size));
  const js = best(iters, (i) => unmaskWithKey(buf, 2, 2 + size, KEY, i & 3));
  const sv = simd ? best(iters, (i) => simd(buf, 2, 2 + size, KEY, i & 3)) : null;
  // As the parser calls it: through phaseZeroUnmask (the key rotated to the phase, a view of the slice).
  const native = bufferutil ? phaseZeroUnmask(bufferutil.unmask) : null;
  const bu = native ? best(iters, (i) => native(buf, 2, 2 + size, KEY, i & 3)) : null;
  console.log([size, fmt(js), fmt(sv), fmt(bu)].join('\t'));
}
console.log('\nmask a payload into a frame (a client send), per payload:');
console.log(['size', 'masking while copying (before)', 'copy+built-in', 'copy+SIMD in place', 'SIMD mask-and-copy', 'bufferutil mask'].join('\t'));
for (const size of sizes) {
  const src = Buffer.alloc(size, 7);
  const dst = Buffer.alloc(size + 14);
  const iters = Math.max(2000, Math.floor(1e8 / size));
  const byteLoop = best(iters, () => maskWhileCopying(src, dst, 6, MASK));
  const copyJs = best(iters, () => maskInto(src, dst, 6, MASK));
  const copySimd = simd
    ? best(iters, () => {
        dst.set(src, 6);
        simd(dst, 6, 6 + size, KEY, 0);
      })
    : null;
  const fusedSimd = simdMask ? best(iters, () => simdMask(src, dst, 6, KEY)) : null;
  const fusedNative = nativeMask ? best(iters, () => nativeMask(src, dst, 6, KEY)) : null;
  console.log([size, fmt(byteLoop), fmt(copyJs), fmt(copySimd), fmt(fusedSimd), fmt(fusedNative)].join('\t'));
}

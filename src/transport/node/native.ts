/**
 * The Node transport's choice of bulk unmask (payload slices of
 * BULK_UNMASK_MIN bytes and more): bufferutil's native unmask when the
 * application has it installed (as ws users often do), else the protocol
 * core's WebAssembly SIMD kernel, else none (the built-in JavaScript unmask
 * does every slice). Lifeline has no dependency on bufferutil; its pure-JS
 * fallback is never used (ours is faster), so only a loaded native build
 * counts. For comparisons: LIFELINE_NO_NATIVE=1 leaves bufferutil out,
 * LIFELINE_NO_SIMD=1 the SIMD kernel.
 */
import { createRequire } from 'node:module';
import { phaseZeroUnmask } from '../../protocol/parser.js';
import { type BulkUnmask, sharedSimdUnmask } from '../../protocol/simd-unmask.js';

type Unmask = (buf: Buffer, mask: Buffer) => void;

function load(): Unmask | null {
  if (process.env.LIFELINE_NO_NATIVE === '1') return null;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('bufferutil') as { unmask?: Unmask };
    let fallback: { unmask?: Unmask } | null = null;
    try {
      fallback = require('bufferutil/fallback') as { unmask?: Unmask };
    } catch {
      // Older layouts without a fallback file: the module is native.
    }
    if (typeof mod.unmask !== 'function' || (fallback !== null && mod.unmask === fallback.unmask)) return null;
    return mod.unmask;
  } catch {
    return null;
  }
}

/** bufferutil's native unmask, or null. */
export const nativeUnmask: Unmask | null = load();

/** Which bulk unmask the Node transport uses, by name (for the bench's report and the tests). */
export const bulkUnmaskKind: 'bufferutil' | 'simd' | 'none' =
  nativeUnmask !== null ? 'bufferutil' : process.env.LIFELINE_NO_SIMD !== '1' && sharedSimdUnmask() !== null ? 'simd' : 'none';

/** The bulk unmask the Node transport gives its connections. */
export const nodeBulkUnmask: BulkUnmask | null =
  bulkUnmaskKind === 'bufferutil' ? phaseZeroUnmask(nativeUnmask!) : bulkUnmaskKind === 'simd' ? sharedSimdUnmask() : null;

/**
 * The Node transport's choice of bulk unmask (payload slices of
 * BULK_UNMASK_MIN bytes and more) and of a client's mask-and-copy (payloads
 * of BULK_MASK_MIN and more): bufferutil's native ones when the
 * application has it installed (as ws users often do), else the protocol
 * core's WebAssembly SIMD kernel, else none (the built-in JavaScript unmask
 * does every slice). Lifeline has no dependency on bufferutil; its pure-JS
 * fallback is never used (ours is faster), so only a loaded native build
 * counts. For comparisons: LIFELINE_NO_NATIVE=1 leaves bufferutil out,
 * LIFELINE_NO_SIMD=1 the SIMD kernel.
 */
import { createRequire } from 'node:module';
import { phaseZeroUnmask } from '../../protocol/parser.js';
import { type BulkMask, type BulkUnmask, sharedSimdMask, sharedSimdUnmask } from '../../protocol/simd-unmask.js';

type Unmask = (buf: Buffer, mask: Buffer) => void;
type Mask = (source: Uint8Array, mask: Buffer, output: Uint8Array, offset: number, length: number) => void;
interface BufferUtil {
  unmask?: Unmask;
  mask?: Mask;
}

function load(): BufferUtil | null {
  if (process.env.LIFELINE_NO_NATIVE === '1') return null;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('bufferutil') as BufferUtil;
    let fallback: BufferUtil | null = null;
    try {
      fallback = require('bufferutil/fallback') as BufferUtil;
    } catch {
      // Older layouts without a fallback file: the module is native.
    }
    if (typeof mod.unmask !== 'function' || (fallback !== null && mod.unmask === fallback.unmask)) return null;
    return mod;
  } catch {
    return null;
  }
}

const bufferutil = load();

/** bufferutil's native unmask, or null. */
export const nativeUnmask: Unmask | null = bufferutil?.unmask ?? null;

/** bufferutil's native mask-and-copy, or null (a build without it, or its JavaScript fallback). */
const nativeMask: Mask | null = bufferutil !== null && typeof bufferutil.mask === 'function' ? bufferutil.mask : null;

/** The key's bytes for nativeMask (masking is synchronous: one buffer serves every call). */
const MASK_KEY = Buffer.alloc(4);

/** nativeMask as a BulkMask: one pass that reads the payload and writes the masked frame. */
function nativeBulkMask(src: Uint8Array, dst: Uint8Array, dstOffset: number, key: number): void {
  MASK_KEY.writeInt32BE(key | 0, 0);
  nativeMask!(src, MASK_KEY, dst, dstOffset, src.length);
}

/** Which bulk unmask the Node transport uses, by name (for the bench's report and the tests). */
export const bulkUnmaskKind: 'bufferutil' | 'simd' | 'none' =
  nativeUnmask !== null ? 'bufferutil' : process.env.LIFELINE_NO_SIMD !== '1' && sharedSimdUnmask() !== null ? 'simd' : 'none';

/** The bulk unmask the Node transport gives its connections. */
export const nodeBulkUnmask: BulkUnmask | null =
  bulkUnmaskKind === 'bufferutil' ? phaseZeroUnmask(nativeUnmask!) : bulkUnmaskKind === 'simd' ? sharedSimdUnmask() : null;

/**
 * The mask-and-copy the Node transport gives its client connections:
 * bufferutil's (there only when bufferutil is the bulk unmask), else the SIMD
 * kernel's, else none, as the bulk unmask is chosen.
 */
export const nodeBulkMask: BulkMask | null = nativeMask !== null ? nativeBulkMask : bulkUnmaskKind === 'none' ? null : sharedSimdMask();

/**
 * The bulk unmask: RFC 6455 5.3 masking of long payload slices in a
 * WebAssembly SIMD kernel, 16 bytes an instruction, for runtimes that have
 * WebAssembly with SIMD (Node >= 16.4, current browsers); null elsewhere.
 *
 * Why WebAssembly: JavaScript has no vector type, and the built-in unmask
 * (frame.ts) does a 32-bit word per iteration at about 4 us per 16 KiB on
 * our machines; bufferutil's native addon does it in about 0.36 us, but is a
 * native dependency we do not take. This kernel needs no build step and no
 * dependency: the module is 310 bytes, written out below.
 *
 * A WebAssembly module cannot see a JavaScript buffer's memory, so a slice
 * is copied into the module's memory, XOR-ed there, and copied back (two
 * memcpys, 16 KiB at a time): that fixed cost is why slices under the parser's
 * BULK_UNMASK_MIN stay on the built-in path. One instance per thread
 * (sharedSimdUnmask), shared by every parser: unmasking is synchronous.
 */

/**
 * An in-place unmask with the built-in one's contract (unmaskWithKey):
 * `buf[start..end)` XOR-ed with the big-endian 32-bit `key` from payload
 * index `maskOffset` on; returns the unmasked bytes OR-ed together, or
 * UNMASK_BITS_UNKNOWN (frame.ts) when it did not look at them.
 */
export type BulkUnmask = (buf: Uint8Array, start: number, end: number, key: number, maskOffset: number) => number;

/**
 * A client's masking of a whole payload into its frame, fused with the copy:
 * `dst[dstOffset..dstOffset + src.length)` = `src` XOR the big-endian 32-bit
 * `key` from payload index 0. One pass over the bytes fewer than a copy and
 * then an unmask in place (bufferutil's `mask()` does it in one).
 */
export type BulkMask = (src: Uint8Array, dst: Uint8Array, dstOffset: number, key: number) => void;

// The kernel, as text (WebAssembly's text format):
//
// (module
//   (memory (export "m") 1)
//   (func (export "x") (param $n i32) (param $k i32) (result i32)
//     (local $i i32) (local $end i32) (local $bits i32) (local $b i32)
//     (local $kv v128) (local $a0 v128) (local $v v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
//     (local.set $kv (i32x4.splat (local.get $k)))
//     (local.set $end (i32.and (local.get $n) (i32.const -64)))
//     ;; 64 bytes an iteration; four accumulators, so that the ORs are not one chain
//     (block $d (loop $l
//       (br_if $d (i32.ge_u (local.get $i) (local.get $end)))
//       ;; for o in 0, 16, 32, 48 and a = a0..a3:
//       (v128.store offset=o (local.get $i)
//         (local.tee $v (v128.xor (v128.load offset=o (local.get $i)) (local.get $kv))))
//       (local.set $a (v128.or (local.get $a) (local.get $v)))
//       (local.set $i (i32.add (local.get $i) (i32.const 64)))
//       (br $l)))
//     ;; the last 0-63 bytes one by one
//     (block $d (loop $l
//       (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
//       (i32.store8 (local.get $i) (local.tee $b (i32.xor (i32.load8_u (local.get $i))
//         (i32.shr_u (local.get $k) (i32.shl (i32.and (local.get $i) (i32.const 3)) (i32.const 3))))))
//       (local.set $bits (i32.or (local.get $bits) (local.get $b)))
//       (local.set $i (i32.add (local.get $i) (i32.const 1)))
//       (br $l)))
//     ;; OR of every byte: the four accumulators, their four lanes, a lane's four bytes
//     (local.set $a0 (v128.or (v128.or (local.get $a0) (local.get $a1)) (v128.or (local.get $a2) (local.get $a3))))
//     (local.set $end (i32.or (i32.or (i32x4.extract_lane 0 (local.get $a0)) (i32x4.extract_lane 1 (local.get $a0)))
//                             (i32.or (i32x4.extract_lane 2 (local.get $a0)) (i32x4.extract_lane 3 (local.get $a0)))))
//     (i32.and (i32.or (i32.or (local.get $end) (i32.shr_u (local.get $end) (i32.const 8)))
//                      (i32.or (i32.or (i32.shr_u (local.get $end) (i32.const 16)) (i32.shr_u (local.get $end) (i32.const 24)))
//                              (local.get $bits)))
//              (i32.const 255))))
//
// The key's byte for memory offset j is (k >>> 8 * (j & 3)) & 0xff: k holds
// the mask little-endian from a 4-aligned offset (WebAssembly memory is
// little-endian on every host), which is also how i32x4.splat lays it out.
// A tail byte's XOR leaves garbage above its low byte in $b and so in $bits:
// i32.store8 keeps the low byte, and the final mask drops the rest.

// Opcodes used (WebAssembly core spec 5.4, SIMD proposal's 0xfd prefix).
const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22;
const I32_LOAD8_U = 0x2d, I32_STORE8 = 0x3a, I32_CONST = 0x41;
const I32_GE_U = 0x4f, I32_ADD = 0x6a, I32_AND = 0x71, I32_OR = 0x72, I32_XOR = 0x73, I32_SHL = 0x74, I32_SHR_U = 0x76;
const V128_LOAD = 0x00, V128_STORE = 0x0b, I32X4_SPLAT = 0x11, I32X4_EXTRACT_LANE = 0x1b, V128_OR = 0x50, V128_XOR = 0x51;
const SIMD = 0xfd;
// Locals: params n, k; then i, end, bits, b (i32); kv, a0, v, a1, a2, a3 (v128).
const N = 0, K = 1, I = 2, E = 3, BITS = 4, B = 5, KV = 6, A0 = 7, V = 8, A1 = 9, A2 = 10, A3 = 11;
const ACC = [A0, A1, A2, A3];

function kernelBody(): number[] {
  const get = (l: number) => [LOCAL_GET, l];
  const set = (l: number) => [LOCAL_SET, l];
  // Every constant used fits one signed LEB128 byte (-64..63) but 255, which takes two.
  const i32 = (v: number) => (v === 255 ? [I32_CONST, 0xff, 0x01] : [I32_CONST, v & 0x7f]);
  const lane = (n: number) => [...get(A0), SIMD, I32X4_EXTRACT_LANE, n];
  const vectors: number[] = [];
  for (let j = 0; j < 4; j++) {
    const o = 16 * j;
    // memarg: alignment 2^4, offset o (< 128: one byte).
    vectors.push(...get(I), ...get(I), SIMD, V128_LOAD, 4, o, ...get(KV), SIMD, V128_XOR, LOCAL_TEE, V, SIMD, V128_STORE, 4, o);
    vectors.push(...get(ACC[j]!), ...get(V), SIMD, V128_OR, ...set(ACC[j]!));
  }
  return [
    // local declarations: 4 x i32, 6 x v128
    2, 4, I32, 6, V128,
    ...get(K), SIMD, I32X4_SPLAT, ...set(KV),
    ...get(N), ...i32(-64), I32_AND, ...set(E),
    BLOCK, VOID, LOOP, VOID,
    ...get(I), ...get(E), I32_GE_U, BR_IF, 1,
    ...vectors,
    ...get(I), I32_CONST, 0xc0, 0x00, I32_ADD, ...set(I), // i += 64 (two LEB bytes: 64 has bit 6 set)
    BR, 0, END, END,
    BLOCK, VOID, LOOP, VOID,
    ...get(I), ...get(N), I32_GE_U, BR_IF, 1,
    ...get(I), ...get(I), I32_LOAD8_U, 0, 0, ...get(K), ...get(I), ...i32(3), I32_AND, ...i32(3), I32_SHL, I32_SHR_U, I32_XOR,
    LOCAL_TEE, B, I32_STORE8, 0, 0,
    ...get(BITS), ...get(B), I32_OR, ...set(BITS),
    ...get(I), ...i32(1), I32_ADD, ...set(I),
    BR, 0, END, END,
    ...get(A0), ...get(A1), SIMD, V128_OR, ...get(A2), ...get(A3), SIMD, V128_OR, SIMD, V128_OR, ...set(A0),
    ...lane(0), ...lane(1), I32_OR, ...lane(2), ...lane(3), I32_OR, I32_OR, ...set(E),
    ...get(E), ...get(E), ...i32(8), I32_SHR_U, I32_OR,
    ...get(E), ...i32(16), I32_SHR_U, ...get(E), ...i32(24), I32_SHR_U, I32_OR, ...get(BITS), I32_OR,
    I32_OR, ...i32(255), I32_AND,
    END,
  ];
}

/** The module's bytes (for tests; `wasm2wat` from wabt prints them back as the text above). */
export function kernelModuleBytes(): Uint8Array {
  const body = kernelBody();
  const uleb = (v: number): number[] => {
    const out: number[] = [];
    do {
      const b = v & 0x7f;
      v >>>= 7;
      out.push(v !== 0 ? b | 0x80 : b);
    } while (v !== 0);
    return out;
  };
  const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // types: (i32, i32) -> i32
    ...section(3, [1, 0]), // functions: one, of type 0
    ...section(5, [1, 0x00, 1]), // memories: one, at least 1 page (64 KiB), no maximum
    ...section(7, [2, 1, 0x6d, 0x02, 0, 1, 0x78, 0x00, 0]), // exports: "m" memory 0, "x" function 0
    ...section(10, [1, ...uleb(body.length), ...body]), // code
  ]);
}

/**
 * Slices go through the kernel's memory (one 64 KiB page) in pieces of this
 * size, a multiple of 4 so that the key's phase carries over. 16 KiB, not
 * the whole page: a piece's copy in, XOR and copy out then stay within a
 * core's L1 data cache (32-48 KiB); in 64 KiB pieces a 64 KiB slice took
 * 1.7x as long per byte as a 16 KiB one, in 16 KiB pieces 1.2x
 * (bench/unmask.mjs).
 */
const PIECE = 16384;

/** What this module needs of the WebAssembly API (the project's type libraries leave it out). */
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { m: { buffer: ArrayBuffer }; x: (n: number, k: number) => number } };
}

/**
 * A big-endian key (the mask byte for the first payload byte in the high
 * bits) byte-swapped for the kernel: that byte in the low bits, as
 * WebAssembly's little-endian memory lays it over the payload (see the
 * kernel's notes).
 */
function littleEndianKey(k: number): number {
  return ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >>> 8) & 0xff00) | (k >>> 24);
}

/** The kernel's two entry points: the bulk unmask (in place) and the client's mask-and-copy. */
export interface SimdKernel {
  unmask: BulkUnmask;
  mask: BulkMask;
}

/** The SIMD kernel, or null where WebAssembly or its SIMD is missing (the built-in unmask then does it all). */
export function createSimdKernel(): SimdKernel | null {
  const wasm = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  let xor: (n: number, k: number) => number;
  let mem: Uint8Array;
  let memBuffer: ArrayBuffer;
  try {
    if (typeof wasm !== 'object' || wasm === null) return null;
    const bytes = kernelModuleBytes();
    if (!wasm.validate(bytes)) return null;
    const exports = new wasm.Instance(new wasm.Module(bytes)).exports;
    xor = exports.x;
    // The memory never grows, so this view stays valid.
    memBuffer = exports.m.buffer;
    mem = new Uint8Array(memBuffer, 0, PIECE);
  } catch {
    // A runtime that forbids compiling WebAssembly (a browser's CSP without
    // 'wasm-unsafe-eval').
    return null;
  }
  /**
   * `src[start..end)` through the kernel's memory, XOR-ed with `le` (the key
   * already at the slice's phase, little-endian), into `dst` from `at`: in
   * place when dst is src and at is start, a masked copy otherwise. Returns
   * the XOR-ed bytes OR-ed together.
   */
  const run = (src: Uint8Array, start: number, end: number, le: number, dst: Uint8Array, at: number): number => {
    let bits = 0;
    // Views made with the constructor, not subarray(): a Buffer's subarray()
    // looks up its species constructor (Node's FastBuffer) on every call:
    // 15-25 ns of the copies' fixed cost (bench/unmask.mjs).
    const ab = src.buffer;
    const off = src.byteOffset;
    for (let a = start; a < end; a += PIECE) {
      const n = end - a < PIECE ? end - a : PIECE;
      mem.set(new Uint8Array(ab, off + a, n));
      bits |= xor(n, le);
      dst.set(n === PIECE ? mem : new Uint8Array(memBuffer, 0, n), at + (a - start));
    }
    return bits;
  };
  return {
    unmask: (buf, start, end, key, maskOffset) => {
      if (end <= start) return 0;
      // The key rotated to this slice's phase.
      const r = (maskOffset & 3) << 3;
      return run(buf, start, end, littleEndianKey(r === 0 ? key : (key << r) | (key >>> (32 - r))), buf, start);
    },
    mask: (src, dst, dstOffset, key) => {
      // Straight into the frame: no copy of the payload there first.
      if (src.length > 0) run(src, 0, src.length, littleEndianKey(key), dst, dstOffset);
    },
  };
}

/** The SIMD bulk unmask, or null where WebAssembly or its SIMD is missing (the built-in unmask then does it all). */
export function createSimdUnmask(): BulkUnmask | null {
  return createSimdKernel()?.unmask ?? null;
}

let shared: SimdKernel | null | undefined;

/** One SIMD bulk unmask for the whole thread (made on first use), or null where there is none. */
export function sharedSimdUnmask(): BulkUnmask | null {
  if (shared === undefined) shared = createSimdKernel();
  return shared === null ? null : shared.unmask;
}

/** The same kernel's mask-and-copy for a client's long payloads, or null where there is none. */
export function sharedSimdMask(): BulkMask | null {
  if (shared === undefined) shared = createSimdKernel();
  return shared === null ? null : shared.mask;
}

/**
 * RFC 6455 section 5 building blocks: opcodes, close codes, frame header
 * encoding and payload masking. Pure functions; the only state is what
 * memoryOf() and the unmask's 32-bit view remember of the last buffer.
 */

import { Buffer } from 'node:buffer';
import type { BulkMask } from './simd-unmask.js';

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: MUST NOT be sent in a close frame (RFC 6455 7.4.1). */
  NoStatus: 1005,
  /** Reserved: MUST NOT be sent in a close frame (RFC 6455 7.4.1). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: MUST NOT be sent in a close frame (RFC 6455 7.4.1). */
  TlsHandshake: 1015,
} as const;

/** RFC 6455 5.5: control frames carry at most 125 bytes of payload. */
export const MAX_CONTROL_PAYLOAD = 125;

export function isControlOpcode(op: number): boolean {
  return (op & 0x8) !== 0;
}

/**
 * Whether `code` may appear in a close frame on the wire (RFC 6455 7.4.1/7.4.2
 * and the IANA registry): 1000-1003, 1007-1014 are defined; 1004, 1005, 1006
 * and 1015 are reserved and never sent; 3000-4999 belong to libraries and apps.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 1000 && code <= 1014) {
    return code !== 1004 && code !== 1005 && code !== 1006;
  }
  return code >= 3000 && code <= 4999;
}

/**
 * Encodes a frame header. Returns a fresh buffer of 2-14 bytes.
 * When `mask` is given (4 bytes), the mask key is written and the MASK bit set;
 * the caller masks the payload separately.
 */
export function encodeFrameHeader(
  fin: boolean,
  opcode: number,
  rsv1: boolean,
  payloadLength: number,
  mask: Uint8Array | null,
): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderSize(payloadLength, mask !== null));
  writeFrameHeader(header, 0, (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, payloadLength, mask ?? undefined);
  return header;
}

/**
 * Writes a frame header into `buf` at `at` (which has room for it): first byte
 * `b0` (FIN, RSV and opcode bits), the minimal length encoding, and the mask
 * key when given (MASK bit set). Returns the offset after the header.
 */
export function writeFrameHeader(buf: Uint8Array, at: number, b0: number, len: number, mask?: Uint8Array): number {
  buf[at] = b0;
  const maskBit = mask ? 0x80 : 0;
  let p = at + 2;
  if (len < 126) {
    buf[at + 1] = maskBit | len;
  } else if (len < 65536) {
    buf[at + 1] = maskBit | 126;
    buf[at + 2] = len >>> 8;
    buf[at + 3] = len & 0xff;
    p = at + 4;
  } else {
    buf[at + 1] = maskBit | 127;
    // RFC 6455 5.2: the most significant bit MUST be 0. JS numbers stay below 2^53.
    const hi = Math.floor(len / 0x100000000);
    const lo = len >>> 0;
    buf[at + 2] = hi >>> 24;
    buf[at + 3] = (hi >>> 16) & 0xff;
    buf[at + 4] = (hi >>> 8) & 0xff;
    buf[at + 5] = hi & 0xff;
    buf[at + 6] = lo >>> 24;
    buf[at + 7] = (lo >>> 16) & 0xff;
    buf[at + 8] = (lo >>> 8) & 0xff;
    buf[at + 9] = lo & 0xff;
    p = at + 10;
  }
  if (mask) {
    buf[p] = mask[0]!;
    buf[p + 1] = mask[1]!;
    buf[p + 2] = mask[2]!;
    buf[p + 3] = mask[3]!;
    p += 4;
  }
  return p;
}

/** Size of the header encodeFrameHeader would produce. */
export function frameHeaderSize(payloadLength: number, masked: boolean): number {
  const base = payloadLength >= 65536 ? 10 : payloadLength > 125 ? 4 : 2;
  return masked ? base + 4 : base;
}

/**
 * From this many bytes on, unmask 32 bits at a time: below, the unrolled byte
 * loop is faster when the 32-bit view has to be made for this frame alone
 * (32 B: 40-47 ns against 104-111 through the word view; 125 B: 196 against
 * 117-149).
 */
const WORD_UNMASK_MIN = 96;
/**
 * In a read of at least WORD_UNMASK_READ_MIN bytes, frames from
 * WORD_UNMASK_MIN_IN_READ bytes take the word path too: such a read holds
 * several frames, which share one view. Fresh 16-frame reads of 32-byte
 * payloads: 23 against 32 ns a frame; of 41-byte ones: 28 against 45; four
 * frames of 41 bytes (188 B): 34 against 43; one frame per read: 84 against
 * 44, which is why a small read keeps the byte loop. At least 8: the word
 * path relies on a range's first and last words being different ones.
 */
const WORD_UNMASK_MIN_IN_READ = 16;
const WORD_UNMASK_READ_MIN = 256;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** What is known of a payload slice's bytes when nothing looked at them (unmasked frames, or a native unmask). */
export const UNMASK_BITS_UNKNOWN = 0x100;

/** Where a buffer's bytes are: its ArrayBuffer and its offset into it. */
export interface BufferMemory {
  /** The buffer this describes (null before the first memoryOf()). */
  of: Uint8Array | null;
  buffer: ArrayBufferLike;
  base: number;
}

// Node 20's V8 does not inline a typed array's `buffer` and `byteOffset`
// getters: each is a call (in a loop on the bench machine about 16 and 12 ns
// a read, against 3.5 for `length`; a Buffer view itself costs about 20). A
// read is unmasked frame by frame and then cut into views message by
// message, all asking about the same chunk: memoryOf() answers for the last
// buffer asked about, so they are read once per read. Holds on to one
// buffer (the last read) at most.
const lastMemory: BufferMemory = { of: null, buffer: new ArrayBuffer(0), base: 0 };

/** `buf`'s ArrayBuffer and offset, in an object shared by every caller: read it before the next call. */
export function memoryOf(buf: Uint8Array): BufferMemory {
  const mem = lastMemory;
  if (buf !== mem.of) {
    mem.buffer = buf.buffer;
    mem.base = buf.byteOffset;
    mem.of = buf;
  }
  return mem;
}

// memoryOf as this module's own constant: an exported binding is read from
// its cell, with a hole check, at every use, even inside this module (about 5
// instructions a frame); V8 folds a module's own constant.
const memoryOfHere = memoryOf;

// A 32-bit view of the ArrayBuffer last unmasked in: a read holds many
// frames, so this costs one view per read, not one per frame (a view costs
// about as much as unmasking 32 bytes byte by byte).
let wordsOf: ArrayBufferLike | null = null;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

function wordView(ab: ArrayBufferLike): Uint32Array<ArrayBufferLike> {
  if (ab !== wordsOf) {
    words = new Uint32Array(ab, 0, ab.byteLength >>> 2);
    wordsOf = ab;
  }
  return words;
}

/**
 * XORs `buf[start..end)` in place with the 4-byte `mask`, where `maskOffset`
 * is the index into the payload of `buf[start]` (so a payload that arrives in
 * several chunks can be unmasked chunk by chunk). Returns the unmasked bytes
 * OR-ed together (under 0x80: all ASCII), found while the bytes pass by anyway.
 */
export function unmaskInPlace(
  buf: Uint8Array,
  start: number,
  end: number,
  mask: Uint8Array,
  maskOffset: number,
): number {
  return unmaskWithKey(buf, start, end, (mask[0]! << 24) | (mask[1]! << 16) | (mask[2]! << 8) | mask[3]!, maskOffset);
}

/**
 * unmaskInPlace with the masking key as one number, its first byte in the
 * high bits (as a frame header holds it; signed or not): the parser keeps it
 * that way, so no key bytes are written or read per frame.
 */
export function unmaskWithKey(buf: Uint8Array, start: number, end: number, key: number, maskOffset: number): number {
  const n = end - start;
  if (n <= 0) return 0;
  if (LITTLE_ENDIAN && (n >= WORD_UNMASK_MIN || (n >= WORD_UNMASK_MIN_IN_READ && buf.length >= WORD_UNMASK_READ_MIN))) {
    // 32-bit words of the underlying memory, the partial words at either end
    // included: those XOR only the range's own bytes (the rest of such a
    // word, another frame's, is XOR-ed with zero). Byte loops at the ends
    // cost about 35 instructions a byte in V8 (a bounds check and the
    // array's map on every access), a masked word about as much for all four.
    const mem = memoryOfHere(buf);
    const base = mem.base;
    const view = wordView(mem.buffer);
    const a = base + start;
    const z = base + end;
    // Words past the last whole one of the ArrayBuffer are not in the view:
    // bytes there (a read's last 1-3, when its length is not a multiple of 4) go byte by byte below.
    const lim = view.length << 2;
    const zw = z < lim ? z : lim;
    let bits = 0;
    if (zw > a) {
      const lead = a & 3;
      // The key laid over memory from the word boundary before `a` (whose byte `lead` is payload byte maskOffset).
      const le = ((key & 0xff) << 24) | ((key & 0xff00) << 8) | ((key >>> 8) & 0xff00) | (key >>> 24);
      const r = ((maskOffset - lead) & 3) << 3;
      const word = r === 0 ? le : (le >>> r) | (le << (32 - r));
      const headSel = -1 << (lead << 3);
      const t = zw & 3;
      const tailSel = t === 0 ? -1 : (1 << (t << 3)) - 1;
      // The first and last words differ: this path takes 16 bytes and more,
      // of which at most 3 lie beyond the view.
      let w = a >>> 2;
      const last = (zw - 1) >>> 2;
      let v = view[w]! ^ (word & headSel);
      view[w] = v;
      let wbits = v & headSel;
      // Four words an iteration, all loaded before any is stored: V8 checks
      // the view's map and reloads its length and data pointer once per
      // iteration (after each loop back edge's interrupt check), not once per
      // word (17 instructions a word one at a time, about 12.5 four at a time).
      const stop4 = last - 3;
      for (w++; w < stop4; w += 4) {
        const v0 = view[w]! ^ word;
        const v1 = view[w + 1]! ^ word;
        const v2 = view[w + 2]! ^ word;
        const v3 = view[w + 3]! ^ word;
        view[w] = v0;
        view[w + 1] = v1;
        view[w + 2] = v2;
        view[w + 3] = v3;
        wbits |= v0 | v1 | v2 | v3;
      }
      for (; w < last; w++) {
        v = view[w]! ^ word;
        view[w] = v;
        wbits |= v;
      }
      v = view[last]! ^ (word & tailSel);
      view[last] = v;
      wbits |= v & tailSel;
      bits = (wbits | (wbits >>> 8) | (wbits >>> 16) | (wbits >>> 24)) & 0xff;
      if (zw === z) return bits;
    }
    // The read's last bytes beyond the view (see lim).
    for (let i = (zw > a ? zw : a) - base; i < end; i++) {
      const b = buf[i]! ^ ((key >>> ((3 - ((maskOffset + i - start) & 3)) << 3)) & 0xff);
      buf[i] = b;
      bits |= b;
    }
    return bits;
  }
  const m0 = key >>> 24, m1 = (key >>> 16) & 0xff, m2 = (key >>> 8) & 0xff, m3 = key & 0xff;
  let i = start;
  let bits = 0;
  // Align to the mask phase, then do four bytes at a time.
  for (let m = maskOffset & 3; i < end && m !== 0; i++, m = (m + 1) & 3) {
    const b = buf[i]! ^ ((key >>> ((3 - m) << 3)) & 0xff);
    buf[i] = b;
    bits |= b;
  }
  const stop4 = end - 3;
  for (; i < stop4; i += 4) {
    const b0 = buf[i]! ^ m0;
    const b1 = buf[i + 1]! ^ m1;
    const b2 = buf[i + 2]! ^ m2;
    const b3 = buf[i + 3]! ^ m3;
    buf[i] = b0;
    buf[i + 1] = b1;
    buf[i + 2] = b2;
    buf[i + 3] = b3;
    bits |= b0 | b1 | b2 | b3;
  }
  for (let m = 0; i < end; i++, m++) {
    const b = buf[i]! ^ ((key >>> ((3 - m) << 3)) & 0xff);
    buf[i] = b;
    bits |= b;
  }
  return bits;
}

/**
 * Shortest payload slice given to a bulk unmask (BulkUnmask: the SIMD
 * kernel or a native one): below it the built-in word loop is as fast as
 * either kind. `node bench/unmask.mjs --sizes 384,512,640,768`, Node 20,
 * AMD EPYC, ns per slice, built-in / SIMD / bufferutil: 384 B 74 / 97 / 94;
 * 512 B 91 / 98 / 93; 640 B 109 / 104 / 97; 768 B 128 / 106 / 97 (16 KiB:
 * 3,690 / 542 / 330). It was 384 until the word loop took four words an
 * iteration (384 B: 127 ns before). The parser uses it; a client's masking
 * has its own threshold, BULK_MASK_MIN.
 */
export const BULK_UNMASK_MIN = 576;

/**
 * Shortest payload a client masks with a bulk mask (BulkMask: the SIMD
 * kernel's or bufferutil's mask-and-copy), measured like BULK_UNMASK_MIN
 * (`node bench/unmask.mjs`, its "mask a payload into a frame" table).
 */
export const BULK_MASK_MIN = 512;

/**
 * Writes `src` XOR mask into `dst` at `dstOffset`: a client's payload into
 * its frame. Payloads of BULK_MASK_MIN bytes and more go to `bulk` when
 * given, which masks as it copies. Shorter ones (and all without it) are
 * copied (memmove) and then unmasked in place by the word loop, not masked
 * by one byte loop while copying: about 2.2x as fast from 256 B on
 * (`node bench/unmask.mjs`, Node 20, AMD EPYC).
 */
export function maskInto(src: Uint8Array, dst: Uint8Array, dstOffset: number, mask: Uint8Array, bulk: BulkMask | null = null): void {
  const n = src.length;
  if (n === 0) return;
  const key = (mask[0]! << 24) | (mask[1]! << 16) | (mask[2]! << 8) | mask[3]!;
  if (n >= BULK_MASK_MIN && bulk !== null) {
    bulk(src, dst, dstOffset, key);
    return;
  }
  dst.set(src, dstOffset);
  unmaskWithKey(dst, dstOffset, dstOffset + n, key, 0);
}

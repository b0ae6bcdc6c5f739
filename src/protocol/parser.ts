/**
 * Incremental frame parser (RFC 6455 5.2): bytes in, frame headers and
 * unmasked payload slices out. It knows the wire format only; which frames are
 * allowed when (fragmentation, control rules, limits) is the FrameSink's call.
 *
 * Hot-path choices: numeric states, a 14-byte spill buffer for headers split
 * across reads, payload handed out as ranges of the input (unmasked in place),
 * one sink object set at construction instead of closures per frame.
 */
import { Buffer } from 'node:buffer';
import { ProtocolError } from './errors.js';
import { BULK_UNMASK_MIN, UNMASK_BITS_UNKNOWN as UNMASK_BITS_UNKNOWN_IMPORT, unmaskWithKey as unmaskWithKeyImport } from './frame.js';
import type { BulkUnmask } from './simd-unmask.js';
import { coldFieldDefaults, ownColdFields } from './cold-fields.js';

// Hot-path bindings as this module's own constants: V8 reads an imported or
// exported binding from its cell, with a hole check, at every use (about 5
// instructions each, per message, even where the callee is inlined), and
// folds a module's own constant (bench/opt-code-instructions.mjs shows them).
const UNMASK_BITS_UNKNOWN = UNMASK_BITS_UNKNOWN_IMPORT;
const unmaskWithKey = unmaskWithKeyImport;

export interface FrameSink {
  /**
   * A complete frame header. Return false to stop parsing (the sink failed
   * the connection). `length` is exact: the parser rejects lengths >= 2^53.
   */
  onFrameHeader(fin: boolean, rsv: number, opcode: number, masked: boolean, length: number): boolean;
  /**
   * A slice of the current frame's payload, already unmasked: bytes
   * `chunk[start..end)` (a range, not a view: most messages need one view,
   * which the sink makes, and some none). The bytes stay as they are after
   * the call; the rest of `chunk` does not. `last` is true on the slice that
   * completes the frame (an empty frame gets one empty slice). Return false to
   * stop parsing, or 'pause' to hold the remaining input until resume() (used
   * while a compressed message is being inflated).
   */
  onFramePayload(chunk: Buffer, start: number, end: number, last: boolean): boolean | 'pause';
  /** A framing error the sink did not see coming (e.g. an oversized 64-bit length). */
  onParseError(err: ProtocolError): void;
}

const S_HEADER = 0;
const S_PAYLOAD = 1;
const S_STOPPED = 2;

const EMPTY = Buffer.alloc(0);
/** Shared empty list: a parser that never pauses allocates no array of its own. */
const NO_BUFS = Object.freeze([]) as unknown as Buffer[];
export { BULK_UNMASK_MIN };
// What the parse loop compares with: V8 folds a module's own constant, but
// reads an exported or imported one from its cell, with a hole check, on
// every frame (5 instructions a message in bench/inproc.mjs).
const BULK_MIN = BULK_UNMASK_MIN;

/**
 * The mask of the frame being unmasked, as bytes, for a native unmask of
 * bufferutil's kind (phaseZeroUnmask): shared by every parser, as parsing is
 * synchronous. Saves two small buffers per connection, which idle servers
 * hold by the thousand.
 */
const MASK_BYTES = Buffer.alloc(4);
let adaptedNative: ((buf: Buffer, mask: Buffer) => void) | null = null;
let adapted: BulkUnmask | null = null;

/**
 * A native unmask that takes a whole buffer and a 4-byte key at phase 0
 * (bufferutil's `unmask(buf, mask)`), as a BulkUnmask: the key is rotated
 * to the slice's phase and written to one shared 4-byte buffer. The bytes
 * are not looked at: the answer is UNMASK_BITS_UNKNOWN. One adapter per
 * native function (the last one asked for is kept), not one per parser.
 */
export function phaseZeroUnmask(native: (buf: Buffer, mask: Buffer) => void): BulkUnmask {
  if (native === adaptedNative && adapted !== null) return adapted;
  const fn: BulkUnmask = (buf, start, end, key, maskOffset) => {
    const r = (maskOffset & 3) << 3;
    const k = r === 0 ? key : (key << r) | (key >>> (32 - r));
    MASK_BYTES[0] = k >>> 24;
    MASK_BYTES[1] = (k >>> 16) & 0xff;
    MASK_BYTES[2] = (k >>> 8) & 0xff;
    MASK_BYTES[3] = k & 0xff;
    const b = buf as Buffer;
    native(start === 0 && end === b.length ? b : b.subarray(start, end), MASK_BYTES);
    return UNMASK_BITS_UNKNOWN;
  };
  adaptedNative = native;
  adapted = fn;
  return fn;
}
/** A parser's split-header and pause state until first used (see FrameParser.coldFields()). */
const PARSER_COLD_FIELDS = Object.freeze({ spill: null, spillLen: 0, paused: false, pending: NO_BUFS });

/**
 * The bytes of the payload slice being handed to onFramePayload OR-ed
 * together, when unmasking saw them (under 0x80: all ASCII, so a text slice
 * needs no UTF-8 check); UNMASK_BITS_UNKNOWN otherwise. Module state like
 * MASK_BYTES (parsing is synchronous), so it costs parsers no field.
 */
let sliceBits = UNMASK_BITS_UNKNOWN;

/** During onFramePayload: what unmasking learned of the slice's bytes (see sliceBits). */
export function payloadSliceBits(): number {
  return sliceBits;
}

export class FrameParser {
  private state = S_HEADER;
  /** The current frame's masking key, big-endian in one 32-bit number. */
  private mask = 0;
  /**
   * Whether the current frame is masked: cold (the prototype's true), written
   * only when it changes. A server's parser only ever sees masked frames
   * (clients must mask, RFC 6455 5.3) and keeps none of its own (8 B); a
   * client's owns it from its first frame.
   */
  declare private masked: boolean;
  private remaining = 0;
  private maskOffset = 0;
  // Cold fields: their idle values (PARSER_COLD_FIELDS) live on the
  // prototype until a header is split across reads or the sink pauses; then
  // all four become own properties at once, in one order (coldFields()).
  /** A header split across reads is gathered here (allocated the first time that happens). */
  declare private spill: Buffer | null;
  declare private spillLen: number;
  declare private paused: boolean;
  declare private pending: Buffer[];

  /**
   * `unmask`: an optional accelerated unmask (the WebAssembly SIMD kernel,
   * or a native one through phaseZeroUnmask), for slices of at least
   * BULK_UNMASK_MIN bytes, where its fixed cost pays off; shorter ones, and
   * all of them without it, take the built-in unmaskWithKey.
   */
  constructor(
    private readonly sink: FrameSink,
    private readonly unmask: BulkUnmask | null = null,
  ) {}

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops parsing for good; later input is ignored. */
  stop(): void {
    this.state = S_STOPPED;
    if (this.pending !== NO_BUFS) this.pending = NO_BUFS;
  }

  /** Before the first write of a cold field: all four become own properties, always in this order (one hidden class more, not one per order). */
  private coldFields(): void {
    if (!Object.hasOwn(this, 'spill')) ownColdFields(this, PARSER_COLD_FIELDS);
  }

  /** Continues after the sink returned 'pause', replaying held input. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    while (this.pending.length > 0 && !this.paused && this.state !== S_STOPPED) {
      const next = this.pending.shift()!;
      this.parse(next);
    }
  }

  push(chunk: Buffer): void {
    if (this.state === S_STOPPED || chunk.length === 0) return;
    if (this.paused) {
      if (this.pending === NO_BUFS) this.pending = [];
      this.pending.push(chunk);
      return;
    }
    this.parse(chunk);
  }

  private parse(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.state === S_HEADER) {
        let src: Buffer;
        let at: number;
        if (this.spillLen === 0 && len - pos >= 2 && len - pos >= headerLength(chunk[pos + 1]!)) {
          src = chunk;
          at = pos;
          pos += headerLength(chunk[pos + 1]!);
        } else {
          // Header split across reads: gather it in the spill buffer.
          if (this.spill === null) {
            this.coldFields();
            this.spill = Buffer.allocUnsafe(14);
          }
          const spill = this.spill;
          if (this.spillLen < 2) {
            const take = Math.min(2 - this.spillLen, len - pos);
            chunk.copy(spill, this.spillLen, pos, pos + take);
            this.spillLen += take;
            pos += take;
            if (this.spillLen < 2) return;
          }
          const need = headerLength(spill[1]!);
          const take = Math.min(need - this.spillLen, len - pos);
          chunk.copy(spill, this.spillLen, pos, pos + take);
          this.spillLen += take;
          pos += take;
          if (this.spillLen < need) return;
          src = spill;
          at = 0;
          this.spillLen = 0;
        }
        if (!this.readHeader(src, at)) {
          this.state = S_STOPPED;
          return;
        }
        if (this.remaining === 0) {
          if (!this.proceed(this.sink.onFramePayload(EMPTY, 0, 0, true), chunk, pos)) return;
        } else {
          this.state = S_PAYLOAD;
        }
      } else if (this.state === S_PAYLOAD) {
        const avail = len - pos;
        const take = avail < this.remaining ? avail : this.remaining;
        const end = pos + take;
        if (this.masked) {
          sliceBits =
            take >= BULK_MIN && this.unmask !== null
              ? this.unmask(chunk, pos, end, this.mask, this.maskOffset)
              : unmaskWithKey(chunk, pos, end, this.mask, this.maskOffset);
        } else {
          sliceBits = UNMASK_BITS_UNKNOWN;
        }
        this.maskOffset += take;
        this.remaining -= take;
        const last = this.remaining === 0;
        if (last) this.state = S_HEADER;
        const r = this.sink.onFramePayload(chunk, pos, end, last);
        pos = end;
        if (!this.proceed(r, chunk, pos)) return;
      } else {
        return;
      }
    }
  }

  /** Acts on the sink's answer to a payload slice; true to keep parsing this chunk. */
  private proceed(r: boolean | 'pause', chunk: Buffer, pos: number): boolean {
    if (r === true) return true;
    if (r === false) this.state = S_STOPPED;
    else this.pauseWith(chunk, pos);
    return false;
  }

  private pauseWith(chunk: Buffer, pos: number): void {
    this.coldFields();
    this.paused = true;
    if (pos < chunk.length) {
      if (this.pending === NO_BUFS) this.pending = [];
      this.pending.unshift(chunk.subarray(pos));
    }
  }

  private readHeader(b: Buffer, at: number): boolean {
    const b0 = b[at]!;
    const b1 = b[at + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 0x7;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.masked) this.masked = masked;
    let length = b1 & 0x7f;
    let p = at + 2;
    if (length === 126) {
      length = (b[p]! << 8) | b[p + 1]!;
      p += 2;
      // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
      if (length < 126) return this.nonMinimal(length);
    } else if (length === 127) {
      const hi = b.readUInt32BE(p);
      const lo = b.readUInt32BE(p + 4);
      p += 8;
      // RFC 6455 5.2: "the most significant bit MUST be 0".
      if (hi & 0x80000000) {
        this.sink.onParseError(new ProtocolError('WS_ERR_INVALID_LENGTH', 'Payload length has the most significant bit set'));
        return false;
      }
      if (hi > 0x1fffff) {
        this.sink.onParseError(new ProtocolError('WS_ERR_UNSUPPORTED_LENGTH', 'Payload length above 2^53 - 1 bytes', 1009));
        return false;
      }
      length = hi * 0x100000000 + lo;
      if (length < 65536) return this.nonMinimal(length);
    }
    // Kept as a signed 32-bit value: always a Smi (an unsigned key >= 2^31 would make
    // the field a double, boxed in a HeapNumber per parser).
    if (masked) this.mask = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
    this.remaining = length;
    this.maskOffset = 0;
    return this.sink.onFrameHeader(fin, rsv, opcode, masked, length);
  }

  private nonMinimal(length: number): false {
    this.sink.onParseError(new ProtocolError('WS_ERR_NON_MINIMAL_LENGTH', `Payload length ${length} not encoded in the minimal number of bytes`));
    return false;
  }
}

/** Header size implied by the second header byte. */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  const base = len7 === 127 ? 10 : len7 === 126 ? 4 : 2;
  return b1 & 0x80 ? base + 4 : base;
}

coldFieldDefaults(FrameParser.prototype, PARSER_COLD_FIELDS);
coldFieldDefaults(FrameParser.prototype, { masked: true });

/**
 * permessage-deflate (RFC 7692): negotiation of its four parameters, and the
 * per-connection codec that compresses and decompresses message payloads.
 *
 * Negotiation is pure: ExtensionOffer in (see extensions.ts for the header
 * grammar), ExtensionOffer / DeflateParams out.
 *
 * The codec uses node:zlib raw deflate streams. zlib work is asynchronous (it
 * runs on the libuv thread pool), so every call takes a callback; callbacks of
 * one direction (compress or decompress) fire in call order. All zlib jobs of
 * the process pass through a FIFO limiter (default 10 in flight) so that
 * 10,000 connections cannot start 10,000 zlib jobs at once.
 *
 * Window bits 8: zlib refuses windowBits 8 for raw deflate, and Node.js
 * upgrades it to 9. That is still correct on the wire: zlib never emits a
 * match distance above (window size - 262), i.e. 250 for windowBits 9, so
 * the output fits in the 256-byte window the peer allocated. (Node.js docs:
 * "passing windowBits = 9 to zlib actually results in a compressed stream that
 * effectively uses an 8-bit window only".) Inflating with windowBits 8 works.
 */
import { Buffer } from 'node:buffer';
import {
  constants as zc,
  createDeflateRaw,
  createInflateRaw,
  type DeflateRaw,
  type InflateRaw,
} from 'node:zlib';
import { HandshakeError, LifelineError, MessageTooBigError, ProtocolError, UsageError } from './errors.js';
import { formatExtensionHeader, type ExtensionOffer } from './extensions.js';

export const EXTENSION_NAME = 'permessage-deflate';

/** Messages smaller than this many bytes are sent uncompressed. */
export const DEFAULT_THRESHOLD = 1024;
/** Max zlib jobs in flight per limiter (process-wide by default). */
export const DEFAULT_CONCURRENCY_LIMIT = 10;
/** Max inflated size of one message when the caller gives no maxPayload (100 MiB). */
export const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;

const MIN_WINDOW_BITS = 8;
const MAX_WINDOW_BITS = 15;

// RFC 7692 7.2.1 / 7.2.2: the tail removed by the sender and appended by the receiver.
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface DeflateOptions {
  /** Server: always answer server_no_context_takeover. Client: ask the server for it (and require it). */
  serverNoContextTakeover?: boolean;
  /** Server: impose client_no_context_takeover. Client: announce it (and honour it whatever the answer). */
  clientNoContextTakeover?: boolean;
  /** 8..15. Server: cap for our compressor. Client: ask the server to cap its compressor (and require it). */
  serverMaxWindowBits?: number;
  /**
   * 8..15, or `true`. Server: cap the client's compressor (offers that don't
   * allow it are declined). Client: offer the parameter, with this value if a
   * number; `true` or undefined offers it without a value.
   */
  clientMaxWindowBits?: number | true;
  /** Messages smaller than this (bytes) are sent uncompressed; default 1024. */
  threshold?: number;
  /** Max zlib jobs in flight process-wide; default 10. */
  concurrencyLimit?: number;
  /** zlib compression level, -1..9; default -1 (zlib's default, 6). */
  level?: number;
  /** zlib memLevel, 1..9; default 8. */
  memLevel?: number;
}

/** Options after validation, with defaults filled in. */
export interface NormalizedDeflateOptions {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  clientMaxWindowBits: number | true | undefined;
  threshold: number;
  concurrencyLimit: number;
  level: number;
  memLevel: number;
}

/** The negotiated agreement. Window bits default to 15 when not negotiated. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

// ---------------------------------------------------------------------------
// Options

function isWindowBits(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= MIN_WINDOW_BITS && v <= MAX_WINDOW_BITS;
}

function badOption(name: string, value: unknown, want: string): UsageError {
  return new UsageError('WS_ERR_INVALID_OPTION', `permessage-deflate option ${name} must be ${want}, got ${String(value)}`);
}

function intOption(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badOption(name, v, `an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? 'inf' : max}`);
  }
  return v;
}

function boolOption(name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw badOption(name, v, 'a boolean');
  return v;
}

/** Validates once, fills defaults. Throws UsageError('WS_ERR_INVALID_OPTION') for bad values. */
export function validateDeflateOptions(o: DeflateOptions = {}): NormalizedDeflateOptions {
  const smwb = o.serverMaxWindowBits;
  if (smwb !== undefined && !isWindowBits(smwb)) throw badOption('serverMaxWindowBits', smwb, 'an integer in 8..15');
  const cmwb = o.clientMaxWindowBits;
  if (cmwb !== undefined && cmwb !== true && !isWindowBits(cmwb)) {
    throw badOption('clientMaxWindowBits', cmwb, 'true or an integer in 8..15');
  }
  return {
    serverNoContextTakeover: boolOption('serverNoContextTakeover', o.serverNoContextTakeover),
    clientNoContextTakeover: boolOption('clientNoContextTakeover', o.clientNoContextTakeover),
    serverMaxWindowBits: smwb,
    clientMaxWindowBits: cmwb,
    threshold: intOption('threshold', o.threshold, DEFAULT_THRESHOLD, 0, Number.MAX_SAFE_INTEGER),
    concurrencyLimit: intOption('concurrencyLimit', o.concurrencyLimit, DEFAULT_CONCURRENCY_LIMIT, 1, Number.MAX_SAFE_INTEGER),
    level: intOption('level', o.level, zc.Z_DEFAULT_COMPRESSION, -1, 9),
    memLevel: intOption('memLevel', o.memLevel, 8, 1, 9),
  };
}

// ---------------------------------------------------------------------------
// Negotiation

interface WireParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true` only in an offer: the parameter without a value. */
  clientMaxWindowBits: number | true | undefined;
}

// RFC 7692 7.1.2.1 / 7.1.2.2: "a decimal integer value without leading zeroes
// between 8 to 15, inclusive". (A quoted value has already been unescaped.)
const WINDOW_BITS_VALUE = /^(?:[89]|1[0-5])$/;

/**
 * Reads the parameters of one offer or response. Returns a reason string when
 * they are unacceptable. RFC 7692 7: an offer (or response) is invalid when it
 * "contains an extension parameter not defined for use in an offer / a
 * response", "an extension parameter with an invalid value", or "multiple
 * extension parameters with the same name".
 */
function readParams(params: ExtensionOffer['params'], side: 'offer' | 'response'): WireParams | string {
  const out: WireParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (seen.has(name)) return `repeated parameter ${name}`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        // RFC 7692 7.1.1.1 / 7.1.1.2: "This extension parameter has no value."
        if (value !== true) return `${name} must not have a value`;
        if (name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === true || !WINDOW_BITS_VALUE.test(value)) return `invalid ${name} value`;
        out.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        // RFC 7692 7.1.2.2: in an offer "this parameter has no value or a
        // decimal integer value"; a response carries a value.
        if (value === true) {
          if (side === 'response') return `${name} must have a value in a response`;
          out.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS_VALUE.test(value)) return `invalid ${name} value`;
          out.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return `unknown parameter ${name}`;
    }
  }
  return out;
}

function isDeflate(offer: ExtensionOffer): boolean {
  return offer.name.toLowerCase() === EXTENSION_NAME;
}

function toOffer(p: WireParams): ExtensionOffer {
  const params: ExtensionOffer['params'] = [];
  if (p.serverNoContextTakeover) params.push(['server_no_context_takeover', true]);
  if (p.clientNoContextTakeover) params.push(['client_no_context_takeover', true]);
  if (p.serverMaxWindowBits !== undefined) params.push(['server_max_window_bits', String(p.serverMaxWindowBits)]);
  if (p.clientMaxWindowBits === true) params.push(['client_max_window_bits', true]);
  else if (p.clientMaxWindowBits !== undefined) params.push(['client_max_window_bits', String(p.clientMaxWindowBits)]);
  return { name: EXTENSION_NAME, params };
}

/** Client: the offer as a structured ExtensionOffer. */
export function clientOfferExtension(opts: DeflateOptions): ExtensionOffer {
  const o = validateDeflateOptions(opts);
  return toOffer({
    serverNoContextTakeover: o.serverNoContextTakeover,
    clientNoContextTakeover: o.clientNoContextTakeover,
    serverMaxWindowBits: o.serverMaxWindowBits,
    // We can always obey a server's client_max_window_bits, so we offer the
    // parameter by default (RFC 7692 7.1.2.2: offering it tells the server
    // "the client supports the client_max_window_bits extension parameter").
    clientMaxWindowBits: o.clientMaxWindowBits ?? true,
  });
}

/** Client: the Sec-WebSocket-Extensions offer value. */
export function clientOffer(opts: DeflateOptions): string {
  return formatExtensionHeader([clientOfferExtension(opts)]);
}

/**
 * Server: choose among the client's offers (RFC 7692 5 and 7.1). Offers of
 * other extensions are skipped. The first acceptable permessage-deflate offer
 * wins; an offer with an unknown parameter, a bad value or a repeated
 * parameter is declined and the next one is tried. Returns null when none is
 * acceptable (then the response carries no permessage-deflate at all).
 */
export function serverAccept(
  offers: ExtensionOffer[],
  opts: DeflateOptions,
): { response: ExtensionOffer; params: DeflateParams } | null {
  const o = validateDeflateOptions(opts);
  const ourClientCap = typeof o.clientMaxWindowBits === 'number' ? o.clientMaxWindowBits : undefined;
  for (const offer of offers) {
    if (!isDeflate(offer)) continue;
    const p = readParams(offer.params, 'offer');
    // RFC 7692 7: "A server MUST decline an extension negotiation offer for
    // this extension if any of the following conditions are met" (bad params).
    if (typeof p === 'string') continue;

    // RFC 7692 7.1.2.2: "If a received extension negotiation offer doesn't have
    // the client_max_window_bits extension parameter, the corresponding
    // extension negotiation response to the offer MUST NOT include" it. We were
    // configured to cap the client's window and cannot: "the server doesn't
    // support the offered configuration", so decline this offer.
    if (ourClientCap !== undefined && p.clientMaxWindowBits === undefined) continue;

    // RFC 7692 7.1.1.1: a server accepts server_no_context_takeover by
    // including it, and "MAY include" it even if not offered.
    const serverNoContextTakeover = o.serverNoContextTakeover || p.serverNoContextTakeover;
    // RFC 7692 7.1.1.2: "A server MAY include the client_no_context_takeover
    // extension parameter"; when offered we echo it so both sides agree.
    const clientNoContextTakeover = o.clientNoContextTakeover || p.clientNoContextTakeover;

    // RFC 7692 7.1.2.1: "A server accepts an extension negotiation offer with
    // this parameter by including the server_max_window_bits extension
    // parameter in the extension negotiation response to send back to the
    // client with the same or smaller value as the offer." It MAY include it
    // even when not offered.
    let serverMaxWindowBits = o.serverMaxWindowBits;
    if (p.serverMaxWindowBits !== undefined) {
      serverMaxWindowBits = Math.min(p.serverMaxWindowBits, serverMaxWindowBits ?? MAX_WINDOW_BITS);
    }

    // RFC 7692 7.1.2.2: if the offered client_max_window_bits has a value, the
    // server may answer "with a value equal to or smaller than the received
    // value". We answer min(ours, theirs) whenever either is a number.
    let clientMaxWindowBits: number | undefined;
    if (p.clientMaxWindowBits !== undefined) {
      const theirs = p.clientMaxWindowBits === true ? undefined : p.clientMaxWindowBits;
      if (ourClientCap !== undefined || theirs !== undefined) {
        clientMaxWindowBits = Math.min(ourClientCap ?? MAX_WINDOW_BITS, theirs ?? MAX_WINDOW_BITS);
      }
    }

    const wire: WireParams = { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits };
    return {
      response: toOffer(wire),
      params: {
        serverNoContextTakeover,
        clientNoContextTakeover,
        serverMaxWindowBits: serverMaxWindowBits ?? MAX_WINDOW_BITS,
        clientMaxWindowBits: clientMaxWindowBits ?? MAX_WINDOW_BITS,
      },
    };
  }
  return null;
}

function negotiationError(why: string): HandshakeError {
  // Status 0: the server already answered 101; there is no HTTP status to
  // send, the client fails the connection.
  return new HandshakeError('WS_ERR_DEFLATE_NEGOTIATION', 0, `Invalid permessage-deflate response: ${why}`);
}

/**
 * Client: validate the server's response against what we offered
 * (clientOffer(opts)). Throws HandshakeError('WS_ERR_DEFLATE_NEGOTIATION',
 * status 0) when the response is invalid or not what we asked for. RFC 7692
 * 7: "A client MUST _Fail the WebSocket Connection_ if the peer server
 * accepted an extension negotiation offer for this extension with an
 * extension negotiation response meeting any of the following conditions".
 *
 * Strictness (as python-websockets): if we asked for server_no_context_takeover
 * or server_max_window_bits=N, a response without it is refused, because the
 * server did not accept the offer we made.
 */
export function clientAccept(response: ExtensionOffer, opts: DeflateOptions): DeflateParams {
  const o = validateDeflateOptions(opts);
  if (!isDeflate(response)) throw negotiationError(`unexpected extension ${response.name}`);
  const p = readParams(response.params, 'response');
  if (typeof p === 'string') throw negotiationError(p);

  // RFC 7692 7.1.1.1: the server accepts our server_no_context_takeover by
  // including it. (It MAY include it unasked; we support that.)
  if (o.serverNoContextTakeover && !p.serverNoContextTakeover) {
    throw negotiationError('server_no_context_takeover was requested but not accepted');
  }

  // RFC 7692 7.1.2.1: "... by including the server_max_window_bits extension
  // parameter ... with the same or smaller value as the offer."
  if (o.serverMaxWindowBits !== undefined) {
    if (p.serverMaxWindowBits === undefined) throw negotiationError('server_max_window_bits was requested but not accepted');
    if (p.serverMaxWindowBits > o.serverMaxWindowBits) {
      throw negotiationError(`server_max_window_bits=${p.serverMaxWindowBits} exceeds the offered ${o.serverMaxWindowBits}`);
    }
  }

  // clientOffer() always offers client_max_window_bits (valueless when the
  // option is unset), so a response value is allowed; with an offered value,
  // RFC 7692 7.1.2.2: the server answers "with a value equal to or smaller
  // than the received value".
  let clientMaxWindowBits: number;
  const offered = o.clientMaxWindowBits ?? true;
  if (p.clientMaxWindowBits === undefined) {
    // We promised not to exceed our offered value even if the server is silent.
    clientMaxWindowBits = offered === true ? MAX_WINDOW_BITS : offered;
  } else {
    const got = p.clientMaxWindowBits as number; // a response always has a value (readParams)
    if (offered !== true && got > offered) {
      throw negotiationError(`client_max_window_bits=${got} exceeds the offered ${offered}`);
    }
    clientMaxWindowBits = got;
  }

  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    // RFC 7692 7.1.1.2: "A client MUST support the client_no_context_takeover
    // extension parameter." Having announced it, we honour it regardless.
    clientNoContextTakeover: p.clientNoContextTakeover || o.clientNoContextTakeover,
    serverMaxWindowBits: p.serverMaxWindowBits ?? MAX_WINDOW_BITS,
    clientMaxWindowBits,
  };
}

// ---------------------------------------------------------------------------
// Concurrency limiter

/** A unit of work the limiter starts when a slot is free; it must call release() exactly once. */
export interface LimiterJob {
  start(): void;
}

/**
 * FIFO limiter: at most `limit` jobs in flight. Jobs that get a slot run in
 * submission order. No closures are allocated per job.
 */
export class ZlibLimiter {
  readonly limit: number;
  private running = 0;
  private readonly queue: Array<LimiterJob | undefined> = [];
  private head = 0;
  private draining = false;

  constructor(limit: number = DEFAULT_CONCURRENCY_LIMIT) {
    if (!Number.isInteger(limit) || limit < 1) throw badOption('concurrencyLimit', limit, 'an integer >= 1');
    this.limit = limit;
  }

  /** Jobs currently holding a slot. */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  submit(job: LimiterJob): void {
    this.queue.push(job);
    this.drain();
  }

  release(): void {
    if (this.running === 0) throw new Error('ZlibLimiter.release() without a job in flight');
    this.running--;
    this.drain();
  }

  private drain(): void {
    // A job may release synchronously from start(); the loop, not recursion, picks up the next one.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.running < this.limit && this.head < this.queue.length) {
        const job = this.queue[this.head]!;
        this.queue[this.head++] = undefined;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        this.running++;
        job.start();
      }
    } finally {
      this.draining = false;
    }
  }
}

const sharedLimiters = new Map<number, ZlibLimiter>();

/** The process-wide limiter for a given concurrency limit. */
export function sharedLimiter(limit: number = DEFAULT_CONCURRENCY_LIMIT): ZlibLimiter {
  let l = sharedLimiters.get(limit);
  if (!l) {
    l = new ZlibLimiter(limit);
    sharedLimiters.set(limit, l);
  }
  return l;
}

// ---------------------------------------------------------------------------
// Codec

export type DeflateCallback = (err: Error | null, result?: Buffer) => void;

interface Call {
  data: Buffer;
  fin: boolean;
  cb: DeflateCallback;
}

/**
 * One direction of the codec: a queue of calls served one at a time by one
 * zlib stream, each call holding a limiter slot while zlib works on it.
 *
 *   idle    -- nothing to do
 *   queued  -- submitted to the limiter, waiting for a slot
 *   running -- holds a slot; zlib is working on `current`
 *   dead    -- closed or failed; every call gets `error`
 */
type LaneState = 'idle' | 'queued' | 'running' | 'dead';

abstract class Lane<S extends DeflateRaw | InflateRaw> implements LimiterJob {
  protected state: LaneState = 'idle';
  protected stream: S | null = null;
  protected current: Call | null = null;
  /** Output of the stream since it was last collected. */
  protected chunks: Buffer[] = [];
  protected length = 0;
  private error: Error | null = null;
  private readonly calls: Array<Call | undefined> = [];
  private head = 0;

  constructor(protected readonly limiter: ZlibLimiter) {}

  /** Creates the zlib stream. */
  protected abstract create(): S;
  /** Feeds `call` to the stream and flushes; onFlushed() follows. */
  protected abstract process(call: Call, stream: S): void;
  /** The flush of `call` finished. Must end with complete() or die(). */
  protected abstract flushed(call: Call, stream: S): void;

  enqueue(data: Buffer, fin: boolean, cb: DeflateCallback): void {
    if (this.state === 'dead') {
      const err = this.error!;
      // Asynchronous like every other outcome; microtasks keep call order.
      queueMicrotask(() => cb(err));
      return;
    }
    this.calls.push({ data, fin, cb });
    if (this.state === 'idle') this.submit();
  }

  private submit(): void {
    this.state = 'queued';
    this.limiter.submit(this);
  }

  /** LimiterJob: we hold a slot now. */
  start(): void {
    if (this.state !== 'queued') {
      // Closed or failed while waiting for the slot.
      this.limiter.release();
      return;
    }
    const call = this.calls[this.head]!;
    this.calls[this.head++] = undefined;
    if (this.head === this.calls.length) {
      this.calls.length = 0;
      this.head = 0;
    }
    this.state = 'running';
    this.current = call;
    if (this.stream === null) this.stream = this.attach(this.create());
    this.process(call, this.stream);
  }

  private attach(s: S): S {
    s.on('data', this.onData);
    // Keep the error listener for the stream's whole life: an 'error' with no
    // listener would crash the process.
    s.on('error', this.onError);
    return s;
  }

  protected readonly onData = (chunk: Buffer): void => {
    if (this.state !== 'running') return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.onChunk();
  };

  /** Hook after each output chunk (the inflater checks maxPayload here). */
  protected onChunk(): void {}

  private readonly onError = (err: Error): void => {
    this.die(this.wrapZlibError(err));
  };

  protected abstract wrapZlibError(err: Error): Error;

  /** Bound once; passed to stream.flush(). */
  protected readonly onFlushed = (err?: Error | null): void => {
    const call = this.current;
    const s = this.stream;
    if (this.state !== 'running' || call === null || s === null) return; // stale: closed or failed
    if (err) {
      this.die(this.wrapZlibError(err));
      return;
    }
    // Output pushed while the readable side was paused would sit in its
    // buffer; pull it out so it is counted before we collect.
    while (s.readableLength > 0 && s.read() !== null) {
      if (this.state !== 'running') return;
    }
    this.flushed(call, s);
  };

  protected takeOutput(): Buffer {
    const out = this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks, this.length);
    this.chunks = [];
    this.length = 0;
    return out;
  }

  /** Finish `current` successfully, release the slot, move on. */
  protected complete(result: Buffer | undefined): void {
    const call = this.current!;
    this.current = null;
    this.state = 'idle';
    this.limiter.release();
    // Start the next call before handing out the result, so an exception
    // thrown by the callback cannot stall the queue. The next result arrives
    // asynchronously, so callback order is kept.
    if (this.state === 'idle' && this.head < this.calls.length) this.submit();
    call.cb(null, result);
  }

  /** Stop for good: free zlib, release the slot, fail every pending call (asynchronously, in order). */
  die(err: Error): void {
    if (this.state === 'dead') return;
    const wasRunning = this.state === 'running';
    this.state = 'dead';
    this.error = err;
    const failed: Call[] = [];
    if (this.current) failed.push(this.current);
    for (let i = this.head; i < this.calls.length; i++) failed.push(this.calls[i]!);
    this.current = null;
    this.calls.length = 0;
    this.head = 0;
    this.chunks = [];
    this.length = 0;
    if (this.stream) {
      // destroy() also stops a write in progress: zlib checks `destroyed`
      // between output chunks, so an inflation bomb stops here.
      this.stream.destroy();
      this.stream = null;
    }
    // A 'queued' lane still sits in the limiter; start() will release that slot.
    if (wasRunning) this.limiter.release();
    if (failed.length > 0) {
      queueMicrotask(() => {
        for (const c of failed) c.cb(err);
      });
    }
  }
}

class Compressor extends Lane<DeflateRaw> {
  constructor(
    limiter: ZlibLimiter,
    private readonly windowBits: number,
    private readonly noContextTakeover: boolean,
    private readonly level: number,
    private readonly memLevel: number,
  ) {
    super(limiter);
  }

  protected create(): DeflateRaw {
    // zlib cannot deflate raw with windowBits 8; 9 is equivalent (see header).
    return createDeflateRaw({ windowBits: Math.max(9, this.windowBits), level: this.level, memLevel: this.memLevel });
  }

  protected process(call: Call, s: DeflateRaw): void {
    if (call.data.length > 0) s.write(call.data);
    s.flush(zc.Z_SYNC_FLUSH, this.onFlushed);
  }

  protected flushed(call: Call, s: DeflateRaw): void {
    let out = this.takeOutput();
    if (call.fin) {
      const n = out.length;
      if (n === 0) {
        // Nothing new since the last sync flush (an empty message, or an
        // empty last fragment). RFC 7692 7.2.3.6: a message with an empty
        // payload is sent as a single 0x00 (an empty stored block once the
        // receiver appends 00 00 ff ff).
        out = Buffer.from([0x00]);
      } else if (n >= 4 && out[n - 4] === 0x00 && out[n - 3] === 0x00 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
        // RFC 7692 7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff)
        // from the tail end."
        out = out.subarray(0, n - 4);
      }
      // RFC 7692 7.1.1: with no_context_takeover on our side, each message
      // starts from an empty LZ77 window.
      if (this.noContextTakeover) s.reset();
    }
    this.complete(out);
  }

  protected wrapZlibError(err: Error): Error {
    // Our own failure, not the peer's: 1011 (internal error).
    const e = new LifelineError('WS_ERR_DEFLATE_FAILED', 1011, `permessage-deflate compression failed: ${err.message}`);
    (e as { cause?: unknown }).cause = err;
    return e;
  }
}

class Decompressor extends Lane<InflateRaw> {
  /** Compressed bytes of the current message fed to zlib (excluding our trailer). */
  private messageIn = 0;
  /** Bytes written to the current stream, to detect a stream that stopped consuming. */
  private fed = 0;
  /** Window to carry into the next stream after a BFINAL block (context takeover). */
  private dictionary: Buffer | null = null;

  constructor(
    limiter: ZlibLimiter,
    private readonly windowBits: number,
    private readonly noContextTakeover: boolean,
    private readonly maxPayload: number,
  ) {
    super(limiter);
  }

  protected create(): InflateRaw {
    this.fed = 0;
    const dictionary = this.dictionary;
    this.dictionary = null;
    return dictionary
      ? createInflateRaw({ windowBits: this.windowBits, dictionary })
      : createInflateRaw({ windowBits: this.windowBits });
  }

  protected process(call: Call, s: InflateRaw): void {
    if (call.data.length > 0) {
      s.write(call.data);
      this.fed += call.data.length;
      this.messageIn += call.data.length;
    }
    // RFC 7692 7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end
    // of the payload of the message." A message with no payload at all has no
    // deflate data to complete; feeding the trailer alone would leave the
    // inflater inside a bogus stored block, so we skip it.
    if (call.fin && this.messageIn > 0) {
      s.write(TRAILER);
      this.fed += TRAILER.length;
    }
    s.flush(zc.Z_SYNC_FLUSH, this.onFlushed);
  }

  protected override onChunk(): void {
    // Output accumulates over all frames of the message, so `length` is the
    // inflated size of the message so far.
    if (this.maxPayload > 0 && this.length > this.maxPayload) {
      // Stop inflating now: do not buffer the rest of a decompression bomb.
      this.die(
        new MessageTooBigError(
          'WS_ERR_MESSAGE_TOO_BIG',
          `Inflated message exceeds maxPayload (${this.maxPayload} bytes)`,
        ),
      );
    }
  }

  protected flushed(call: Call, s: InflateRaw): void {
    // A sender may end a message with a BFINAL block (RFC 7692 7.2.3.4);
    // zlib then stops consuming input and the stream ends. Input left over
    // beyond our own trailer is data after the end of the deflate stream.
    const unconsumed = this.fed - s.bytesWritten;
    const ended = unconsumed > 0;
    if (ended && unconsumed > (call.fin && this.messageIn > 0 ? TRAILER.length : 0)) {
      this.die(new ProtocolError('WS_ERR_INVALID_COMPRESSED_DATA', 'Data after the final deflate block', 1007));
      return;
    }
    if (!call.fin) {
      // Output accumulates until the last frame of the message.
      this.complete(undefined);
      return;
    }
    const out = this.takeOutput();
    this.messageIn = 0;
    if (ended) {
      // The deflate stream is finished; the next message gets a new one.
      // With context takeover the peer may still refer to what it sent
      // before, so the new inflater starts from the tail of this message as
      // its dictionary (older history is lost: a reference into it fails
      // with 1007, never silently).
      s.destroy();
      this.stream = null;
      if (!this.noContextTakeover && out.length > 0) {
        this.dictionary = Buffer.from(out.subarray(Math.max(0, out.length - (1 << this.windowBits))));
      }
    } else if (this.noContextTakeover) {
      // RFC 7692 7.1.1: the peer starts each message with an empty window.
      s.reset();
    }
    this.complete(out);
  }

  protected wrapZlibError(err: Error): Error {
    // As ws: undecodable compressed data closes with 1007.
    const e = new ProtocolError('WS_ERR_INVALID_COMPRESSED_DATA', `Invalid compressed data: ${err.message}`, 1007);
    (e as { cause?: unknown }).cause = err;
    return e;
  }

  override die(err: Error): void {
    this.messageIn = 0;
    super.die(err);
  }
}

export interface PerMessageDeflateCodecOptions {
  /** Messages smaller than this (bytes) should be sent uncompressed; default 1024. */
  threshold?: number;
  /** Max inflated bytes of one message, 0 = unlimited; default 100 MiB. */
  maxPayload?: number;
  /** Concurrency limit of the process-wide limiter to use; default 10. Ignored when `limiter` is given. */
  concurrencyLimit?: number;
  /** A specific limiter (tests, or to isolate a group of connections). */
  limiter?: ZlibLimiter;
  level?: number;
  memLevel?: number;
}

/**
 * The codec of one connection. `role` decides which negotiated parameters
 * apply to our compressor (server_* for a server) and which to our
 * decompressor (the peer's).
 *
 * Failure and close:
 *  - Inflated message bigger than maxPayload: MessageTooBigError (1009); bad
 *    compressed data: ProtocolError 'WS_ERR_INVALID_COMPRESSED_DATA' (1007).
 *    The decompress side is then dead: that call, the queued ones and all
 *    later ones get the same error. The compress side keeps working.
 *  - close(): pending callbacks of both sides are called asynchronously, in
 *    call order, with UsageError('WS_ERR_DEFLATE_CLOSED'); so are later calls.
 *    Nothing is dropped silently.
 */
export class PerMessageDeflate {
  readonly role: 'server' | 'client';
  readonly params: Readonly<DeflateParams>;
  readonly threshold: number;
  readonly maxPayload: number;
  private readonly compressor: Compressor;
  private readonly decompressor: Decompressor;
  private closed = false;

  constructor(role: 'server' | 'client', params: DeflateParams, opts: PerMessageDeflateCodecOptions = {}) {
    if (role !== 'server' && role !== 'client') throw badOption('role', role, "'server' or 'client'");
    if (!isWindowBits(params.serverMaxWindowBits)) throw badOption('serverMaxWindowBits', params.serverMaxWindowBits, 'an integer in 8..15');
    if (!isWindowBits(params.clientMaxWindowBits)) throw badOption('clientMaxWindowBits', params.clientMaxWindowBits, 'an integer in 8..15');
    const o = validateDeflateOptions({
      threshold: opts.threshold,
      concurrencyLimit: opts.concurrencyLimit,
      level: opts.level,
      memLevel: opts.memLevel,
    });
    this.maxPayload = intOption('maxPayload', opts.maxPayload, DEFAULT_MAX_PAYLOAD, 0, Number.MAX_SAFE_INTEGER);
    this.role = role;
    this.params = { ...params };
    this.threshold = o.threshold;
    const limiter = opts.limiter ?? sharedLimiter(o.concurrencyLimit);
    const server = role === 'server';
    this.compressor = new Compressor(
      limiter,
      server ? params.serverMaxWindowBits : params.clientMaxWindowBits,
      server ? params.serverNoContextTakeover : params.clientNoContextTakeover,
      o.level,
      o.memLevel,
    );
    this.decompressor = new Decompressor(
      limiter,
      server ? params.clientMaxWindowBits : params.serverMaxWindowBits,
      server ? params.clientNoContextTakeover : params.serverNoContextTakeover,
      this.maxPayload,
    );
  }

  /** Whether a message of this many bytes is worth compressing (>= threshold). */
  shouldCompress(byteLength: number): boolean {
    return byteLength >= this.threshold;
  }

  /**
   * Compress one whole message (fin=true) or one fragment of a streamed
   * message (fin=false; the last fragment has fin=true). On fin the trailing
   * 00 00 ff ff is stripped (RFC 7692 7.2.1). Callbacks fire in call order.
   */
  compress(data: Buffer, fin: boolean, cb: DeflateCallback): void {
    this.compressor.enqueue(data, fin, cb);
  }

  /**
   * Decompress one frame's payload of a compressed message. On fin the
   * callback gets the whole inflated message; before that, cb(null, undefined).
   * Callbacks fire in call order.
   */
  decompress(data: Buffer, fin: boolean, cb: DeflateCallback): void {
    this.decompressor.enqueue(data, fin, cb);
  }

  /** Release zlib resources (see the class comment for pending callbacks). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new UsageError('WS_ERR_DEFLATE_CLOSED', 'permessage-deflate codec is closed');
    this.compressor.die(err);
    this.decompressor.die(err);
  }
}

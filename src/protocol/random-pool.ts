/**
 * Random values for identifiers and keys, cut from one pooled buffer: a
 * server's session ids and resume tokens, a client's Sec-WebSocket-Key.
 *
 * Why a pool: node:crypto's randomBytes() pays a fixed cost per call (a new
 * Buffer, and OpenSSL's fork check: a getpid() system call) that dwarfs the
 * 12-18 bytes asked for: the two of a lifeline.v1 session open took about
 * 11.5 us on the bench machine, against 0.3 us from the pool, whose fill
 * (about 5 us for 4 KiB) is paid once per a few hundred values. The bytes
 * come from the same CSPRNG (Web Crypto's getRandomValues, which Node backs
 * with OpenSSL); each byte is handed out once, and wiped from the pool then.
 */
import { Buffer } from 'node:buffer';
import { UsageError } from './errors.js';

/** The shared pool's size: 256 values of 16 bytes per fill (getRandomValues takes at most 65,536). */
export const RANDOM_POOL_SIZE = 4096;

export type RandomEncoding = 'base64' | 'base64url' | 'hex';

export class RandomPool {
  private readonly pool: Buffer;
  /** Bytes before this index have been handed out (the pool starts used up: filled on first use). */
  private at: number;

  /** `fill` is the randomness source (tests count its calls); it must fill the whole array it is given. */
  constructor(
    size: number = RANDOM_POOL_SIZE,
    private readonly fill: (buf: Uint8Array) => void = webCryptoFill,
  ) {
    if (!Number.isSafeInteger(size) || size < 1 || size > 65536) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `RandomPool size must be an integer in 1..65536, got ${String(size)}`);
    }
    this.pool = Buffer.alloc(size);
    this.at = size;
  }

  /** `n` random bytes never handed out before, as a string in `encoding`. */
  take(n: number, encoding: RandomEncoding): string {
    const pool = this.pool;
    if (!Number.isSafeInteger(n) || n < 1 || n > pool.length) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `Can take 1..${pool.length} random bytes at a time, got ${String(n)}`);
    }
    if (this.at + n > pool.length) {
      this.fill(pool);
      this.at = 0;
    }
    const start = this.at;
    const end = start + n;
    this.at = end;
    const s = pool.toString(encoding, start, end);
    pool.fill(0, start, end);
    return s;
  }
}

/** Fills `buf` from Web Crypto's CSPRNG (at most 65,536 bytes a call): the pool's source, and connections' for masking keys. */
export function webCryptoFill(buf: Uint8Array): void {
  globalThis.crypto.getRandomValues(buf);
}

/** The process's pool (Node has no fork(): a child process starts with a pool of its own). */
export const randomPool = new RandomPool();

/**
 * Reconnect delays: exponential backoff with full jitter ("Exponential
 * Backoff And Jitter", AWS Architecture Blog): attempt n waits a uniformly
 * random time in [0, min(cap, base * 2^n)). Full jitter spreads a crowd of
 * clients that lost the same server, so they do not come back all at once.
 * A small iterator, reset after a stable connection, testable alone.
 */
import { UsageError } from '../protocol/errors.js';

export interface BackoffOptions {
  /** First ceiling, ms. Default 500. */
  base?: number;
  /** Largest ceiling, ms. Default 30000. */
  cap?: number;
  /** Attempts before giving up; Infinity (default) never gives up. */
  maxAttempts?: number;
  /** Random source in [0, 1). Default Math.random; tests pass a seeded one. */
  random?: () => number;
}

export class BackoffPolicy {
  readonly base: number;
  readonly cap: number;
  readonly maxAttempts: number;
  private readonly random: () => number;
  private n = 0;

  constructor(options: BackoffOptions = {}) {
    this.base = options.base ?? 500;
    this.cap = options.cap ?? 30_000;
    this.maxAttempts = options.maxAttempts ?? Infinity;
    this.random = options.random ?? Math.random;
    if (!(this.base > 0) || !Number.isFinite(this.base)) throw new UsageError('WS_ERR_INVALID_OPTION', `backoff.base must be a positive number, got ${this.base}`);
    if (!(this.cap >= this.base) || !Number.isFinite(this.cap)) throw new UsageError('WS_ERR_INVALID_OPTION', `backoff.cap must be a number >= base, got ${this.cap}`);
    if (!(this.maxAttempts >= 1)) throw new UsageError('WS_ERR_INVALID_OPTION', `backoff.maxAttempts must be >= 1, got ${this.maxAttempts}`);
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.n;
  }

  /** The ceiling for attempt `n` (0-based): min(cap, base * 2^n). */
  ceiling(n: number): number {
    // 2^n overflows to Infinity for large n; min() keeps it at the cap.
    return Math.min(this.cap, this.base * 2 ** n);
  }

  /** Delay before the next attempt, ms; -1 when maxAttempts are used up. */
  next(): number {
    if (this.n >= this.maxAttempts) return -1;
    const delay = Math.floor(this.random() * this.ceiling(this.n));
    this.n++;
    return delay;
  }

  /** After a stable connection: start from the base again. */
  reset(): void {
    this.n = 0;
  }
}

/** A seeded PRNG (mulberry32) for tests and reproducible chaos runs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

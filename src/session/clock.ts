/**
 * Time, injected. Everything in session/ reads time and arms timers through a
 * Clock so unit tests can drive it (FakeClock) and so deadlines are judged by
 * the wall clock, not by counting timer fires (browsers throttle timers in
 * background tabs; laptops sleep).
 */

export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds; only differences matter. Wall-clock based so it advances during sleep. */
  now(): number;
  setTimeout(cb: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: Date.now() and the host's timers (unref'd in Node so they never hold the process open). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(cb, ms) {
    const t = globalThis.setTimeout(cb, ms) as unknown as { unref?: () => void };
    if (t && typeof t.unref === 'function') t.unref();
    return t;
  },
  clearTimeout(handle) {
    globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>);
  },
};

/**
 * `base` counted from the moment this is called: the same timers, and now()
 * as whole milliseconds since that moment, plus one. Heartbeat bookkeeping keeps several
 * times per connection; as small whole numbers (under 2^31 ms, about 24 days
 * of uptime, with a whole-millisecond base like Date.now()) V8 stores them
 * in the object itself, where epoch milliseconds (above 2^31) take a 16-byte
 * box each.
 */
export function relativeClock(base: Clock): Clock & { readonly epoch: number } {
  // From 1, not 0: a ping's timestamp of 0 would read as none (an empty pong
  // payload parses as 0, and monitors ignore ts <= 0).
  const epoch = base.now() - 1;
  return {
    /** The base's reading at which now() reads 0: epoch + now() is the base's time. */
    epoch,
    // Math.floor: a difference of two doubles is a boxed double even when it
    // is whole; Math.floor's result is a small integer where it can be.
    now: () => Math.floor(base.now() - epoch),
    setTimeout: (cb, ms) => base.setTimeout(cb, ms),
    clearTimeout: (handle) => base.clearTimeout(handle),
  };
}

interface FakeTimer {
  id: number;
  at: number;
  cb: () => void;
}

/**
 * A clock for tests: time moves only when advance() is called, and timers due
 * by then fire in order. `jump()` moves time without firing anything, to model
 * a process that was frozen or asleep.
 */
export class FakeClock implements Clock {
  private t: number;
  private timers: FakeTimer[] = [];
  private nextId = 1;

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(cb: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.t + Math.max(0, ms), cb };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.timers.length;
  }

  /** Advances time by `ms`, firing every timer that falls due, in due order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const x of this.timers) if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.id < next.id))) next = x;
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.cb();
    }
    this.t = end;
  }

  /** Moves time forward without firing timers (a frozen page, a sleeping laptop). Timers fire late on the next advance(). */
  jump(ms: number): void {
    this.t += ms;
  }
}

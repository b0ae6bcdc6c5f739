/**
 * Drivers that run HeartbeatMonitor.check() on time.
 *
 * HeartbeatWheel (servers): one timer per server, not per connection. Monitors
 * sit in the slot of their next check on a hashed timing wheel; each tick
 * handles only the slot that fell due, so the cost per tick is the number of
 * connections due, and the cost per message is zero (inbound traffic only
 * writes a number, see `now`). Slots are arrays, removal is lazy.
 *
 * HeartbeatTimer (clients): one timer per connection, re-armed only when it
 * fires (never per message).
 */
import type { Clock, TimerHandle } from './clock.js';
import type { HeartbeatMonitor } from './heartbeat.js';

export class HeartbeatWheel {
  /** Coarse current time, refreshed every tick: read it instead of the clock on hot paths. */
  now: number;
  readonly tickMs: number;
  private readonly clock: Clock;
  private readonly slots: HeartbeatMonitor[][];
  /** Absolute tick number of the next slot to process. */
  private cursor: number;
  private timer: TimerHandle | null = null;
  private plannedAt = 0;
  private count = 0;
  /** An empty array that takes the place of the slot being processed (slots are swapped, not reallocated, per tick). */
  private spare: HeartbeatMonitor[] = [];
  private readonly runTick: (tick: () => void) => void;
  /** The first error a host threw during the current tick (rethrown once the tick is done). */
  private tickThrew = false;
  private tickError: unknown = undefined;
  private readonly tick = (): void => this.onTick();

  /**
   * `runTick` runs each tick's work (the server's: inside one write batch, so
   * the pings of a tick go out in one pass, not one scheduled flush each).
   */
  constructor(clock: Clock, tickMs: number, slotCount = 1024, runTick?: (tick: () => void) => void) {
    this.clock = clock;
    this.tickMs = tickMs;
    this.runTick = runTick ?? callNow;
    this.slots = Array.from({ length: slotCount }, () => []);
    this.now = clock.now();
    this.cursor = Math.floor(this.now / tickMs) + 1;
  }

  /** Monitors currently scheduled (including lazily removed ones not yet swept). */
  get size(): number {
    return this.count;
  }

  add(m: HeartbeatMonitor): void {
    if (this.timer === null) {
      // The wheel was idle: its cursor stood still while time moved on.
      this.now = this.clock.now();
      this.cursor = Math.floor(this.now / this.tickMs) + 1;
    }
    this.place(m, m.nextCheck);
    if (this.timer === null) this.arm();
  }

  /** Lazy removal: the monitor is skipped and dropped when its slot comes up. */
  remove(m: HeartbeatMonitor): void {
    m.detached = true;
  }

  /** Refreshes `now` from the clock (e.g. when a connection opens between ticks). */
  refresh(): number {
    return (this.now = this.clock.now());
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    for (const s of this.slots) s.length = 0;
    this.count = 0;
  }

  private place(m: HeartbeatMonitor, at: number): void {
    // Never schedule into the past or beyond the wheel's horizon: such monitors
    // are simply checked again at the slot we put them in.
    let tick = Math.ceil(at / this.tickMs);
    if (tick < this.cursor) tick = this.cursor;
    const horizon = this.cursor + this.slots.length - 1;
    if (tick > horizon) tick = horizon;
    this.slots[tick % this.slots.length]!.push(m);
    this.count++;
  }

  private arm(): void {
    const due = this.cursor * this.tickMs;
    this.plannedAt = due;
    this.timer = this.clock.setTimeout(this.tick, Math.max(0, due - this.clock.now()));
  }

  private onTick(): void {
    this.timer = null;
    this.tickThrew = false;
    this.runTick(this.processDue);
    if (this.count > 0) this.arm();
    // A host threw (an application's 'liveness' listener, say): every other
    // monitor was still checked and the wheel is armed; now the error surfaces.
    if (this.tickThrew) {
      const err = this.tickError;
      this.tickThrew = false;
      this.tickError = undefined;
      throw err;
    }
  }

  private readonly processDue = (): void => {
    const now = (this.now = this.clock.now());
    const planned = this.plannedAt;
    const lastTick = Math.floor(now / this.tickMs);
    const n = this.slots.length;
    const steps = Math.min(lastTick - this.cursor + 1, n);
    if (steps === 1) {
      // The usual tick: one slot fell due. It is swapped for the spare array,
      // processed, emptied, and kept as the next spare.
      const idx = this.cursor % n;
      const slot = this.slots[idx]!;
      this.slots[idx] = this.spare;
      this.cursor = lastTick + 1;
      this.processSlot(slot, now, planned);
      slot.length = 0;
      this.spare = slot;
      return;
    }
    // Take every slot that fell due. After a freeze longer than one lap, that is all of them.
    const due: HeartbeatMonitor[][] = [];
    for (let k = 0; k < steps; k++) {
      const idx = (this.cursor + k) % n;
      due.push(this.slots[idx]!);
      this.slots[idx] = [];
    }
    // Move the cursor before re-placing, so nothing lands in a slot already passed.
    if (this.cursor <= lastTick) this.cursor = lastTick + 1;
    for (const slot of due) this.processSlot(slot, now, planned);
  };

  private processSlot(slot: HeartbeatMonitor[], now: number, planned: number): void {
    this.count -= slot.length;
    for (let i = 0; i < slot.length; i++) {
      const m = slot[i]!;
      if (m.detached) continue;
      if (m.nextCheck > now) {
        this.place(m, m.nextCheck);
        continue;
      }
      let next: number;
      try {
        next = m.check(now, planned);
      } catch (err) {
        if (!this.tickThrew) {
          this.tickThrew = true;
          this.tickError = err;
        }
        // Keep it scheduled: when check() threw is not known, so it looks again next tick.
        next = m.nextCheck > now ? m.nextCheck : now + this.tickMs;
      }
      if (next >= 0 && !m.detached) this.place(m, next);
    }
  }
}

function callNow(fn: () => void): void {
  fn();
}

export class HeartbeatTimer {
  private readonly clock: Clock;
  private readonly monitor: HeartbeatMonitor;
  private timer: TimerHandle | null = null;
  private plannedAt = 0;

  constructor(clock: Clock, monitor: HeartbeatMonitor) {
    this.clock = clock;
    this.monitor = monitor;
  }

  start(): void {
    this.schedule(this.monitor.nextCheck);
  }

  /** Probe at once (online / visible events) and reschedule. */
  probeNow(): void {
    const next = this.monitor.probeNow(this.clock.now());
    if (next >= 0) this.schedule(next);
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(at: number): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.plannedAt = at;
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, at - this.clock.now()));
  }

  private fire(): void {
    this.timer = null;
    const next = this.monitor.check(this.clock.now(), this.plannedAt);
    if (next >= 0) this.schedule(next);
  }
}

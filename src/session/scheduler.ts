/**
 * Drivers that run HeartbeatMonitor.check() on time.
 *
 * HeartbeatWheel (servers): one timer per server, not per connection. Monitors
 * sit in the slot of their next check on a hashed timing wheel; each tick
 * handles only the slot that fell due, so the cost per tick is the number of
 * connections due, and the cost per message is zero (inbound traffic only
 * writes a number, see `coarseNow`). Slots are arrays, removal is lazy.
 * The timer is armed for the next slot that holds monitors, not for every
 * tick: a wakeup of an otherwise idle process costs far more than the tick's
 * work (about 100-200 us of CPU each on our 2-vCPU machines), and a quiet server
 * would otherwise pay it four times a second.
 *
 * HeartbeatTimer (clients): one timer per connection, re-armed only when it
 * fires (never per message).
 */
import type { Clock, TimerHandle } from './clock.js';
import type { HeartbeatMonitor } from './heartbeat.js';

/** `HeartbeatWheel.now` while the wheel sleeps through empty slots: the next reader reads the clock. */
const ASLEEP = -1;

export class HeartbeatWheel {
  /**
   * Coarse current time, refreshed every tick; ASLEEP while the wheel sleeps
   * through empty slots. Private: a direct reader could get ASLEEP; readers
   * use coarseNow() (or refresh() for the clock's time).
   */
  private now: number;
  readonly tickMs: number;
  private readonly clock: Clock;
  private readonly slots: HeartbeatMonitor[][];
  /** Absolute tick number of the next slot to process. */
  private cursor: number;
  private timer: TimerHandle | null = null;
  /** The absolute tick the timer is armed for (while `timer` is set). */
  private armedTick = 0;
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

  /**
   * Probes `m` now (HeartbeatMonitor.probeNow) and checks it again at the
   * probe's deadline, which may come before the slot it sits in: it gets a
   * new entry there, and the old one is skipped when its slot comes up.
   */
  probe(m: HeartbeatMonitor): void {
    const next = m.probeNow(this.refresh());
    // A second entry only in an earlier slot: one in the same slot would be checked twice.
    if (next >= 0 && !m.detached && this.tickFor(next) < m.slotTick) this.place(m, next);
  }

  /**
   * The time for hot paths (a read, a send): the last tick's time, at most one
   * tick old. While the wheel sleeps the clock is read once, and the wheel
   * ticks again at the next boundary, so later readers stay within one tick.
   */
  coarseNow(): number {
    const t = this.now;
    return t !== ASLEEP ? t : this.wake(this.clock.now());
  }

  /** Refreshes `now` from the clock (e.g. when a connection opens between ticks). */
  refresh(): number {
    const t = this.clock.now();
    if (this.now === ASLEEP) return this.wake(t);
    return (this.now = t);
  }

  private wake(t: number): number {
    this.now = t;
    // No monitors: nothing reads the time on their behalf, and add() starts the wheel again.
    if (this.count > 0) this.armBy(Math.floor(t / this.tickMs) + 1);
    return t;
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    for (const s of this.slots) s.length = 0;
    this.count = 0;
  }

  /** The tick whose slot a check due at `at` goes into. */
  private tickFor(at: number): number {
    // Never schedule into the past or beyond the wheel's horizon: such monitors
    // are simply checked again at the slot we put them in.
    const tick = Math.ceil(at / this.tickMs);
    if (tick < this.cursor) return this.cursor;
    const horizon = this.cursor + this.slots.length - 1;
    return tick > horizon ? horizon : tick;
  }

  private place(m: HeartbeatMonitor, at: number): void {
    const tick = this.tickFor(at);
    this.slots[tick % this.slots.length]!.push(m);
    m.slotTick = tick;
    this.count++;
    // Asleep until a later slot: wake for this one.
    if (this.timer !== null && tick < this.armedTick) this.armBy(tick);
  }

  /** Arms the timer for the next slot that holds monitors (count > 0: one lies within a lap). */
  private arm(): void {
    const n = this.slots.length;
    const last = this.cursor + n - 1;
    let tick = this.cursor;
    while (tick < last && this.slots[tick % n]!.length === 0) tick++;
    // Skipping empty slots: no tick refreshes `now` until then, so its next reader reads the clock.
    if (tick > this.cursor) this.now = ASLEEP;
    this.armAt(tick);
  }

  /** Makes the timer fire at tick `tick` or earlier. */
  private armBy(tick: number): void {
    if (this.timer !== null) {
      if (this.armedTick <= tick) return;
      this.clock.clearTimeout(this.timer);
    }
    this.armAt(tick);
  }

  private armAt(tick: number): void {
    const due = tick * this.tickMs;
    this.armedTick = tick;
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
    // The slots that fell due: usually one; several when the wheel slept
    // through empty ones or the process was frozen (after a freeze longer
    // than one lap, all of them). Every non-empty one is taken out before any
    // is processed. The first is swapped for the spare array, processed,
    // emptied and kept as the next spare (no array per tick); any others get
    // a new array in their place.
    let first = -1;
    let more: { slot: HeartbeatMonitor[]; tick: number }[] | null = null;
    for (let k = 0; k < steps; k++) {
      const tick = this.cursor + k;
      const idx = tick % n;
      const slot = this.slots[idx]!;
      if (slot.length === 0) continue;
      if (first < 0) {
        first = tick;
        continue;
      }
      (more ??= []).push({ slot, tick });
      this.slots[idx] = [];
    }
    // Move the cursor before re-placing, so nothing lands in a slot already passed.
    if (this.cursor <= lastTick) this.cursor = lastTick + 1;
    if (first < 0) return;
    const slot = this.slots[first % n]!;
    this.slots[first % n] = this.spare;
    this.processSlot(slot, first, now, planned);
    slot.length = 0;
    this.spare = slot;
    if (more !== null) for (const d of more) this.processSlot(d.slot, d.tick, now, planned);
  };

  /** Checks the monitors of the slot for absolute tick `tick`. */
  private processSlot(slot: HeartbeatMonitor[], tick: number, now: number, planned: number): void {
    this.count -= slot.length;
    for (let i = 0; i < slot.length; i++) {
      const m = slot[i]!;
      // Stopped, or a stale entry (a probe gave the monitor an earlier one).
      if (m.detached || m.slotTick !== tick) continue;
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

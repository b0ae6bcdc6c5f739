/**
 * Exactly-once, in-order delivery across reconnects (../shared/DESIGN.md,
 * "Resume"): each direction numbers its application messages 1, 2, 3...;
 * the receiver acknowledges cumulatively; the sender keeps what is not yet
 * acknowledged in a bounded ReplayBuffer and resends it after a reconnect;
 * the receiver drops anything at or below what it already has.
 *
 * Pure bookkeeping, browser-safe: no timers (the owner schedules acks).
 */

/**
 * One sent message kept for replay: its sequence number and its encoded wire
 * form (`offset`: where in `wire` it starts, for owners that keep many
 * messages in one buffer; 0 otherwise).
 */
export interface ReplayEntry<T> {
  seq: number;
  wire: T;
  offset: number;
  bytes: number;
}

/**
 * Unacknowledged outgoing messages, oldest first. Bounded by count and
 * bytes; what happens at the bound is the owner's policy: `wouldOverflow`
 * lets a client refuse the send, `evictOldest` lets a server drop and
 * remember that it did (so a later resume can tell exactly what was lost).
 */
export class ReplayBuffer<T> {
  readonly maxMessages: number;
  readonly maxBytes: number;
  // A ring rather than an entry object per message: the push/ack pair runs
  // once per message on the hot path, and under steady acks nothing is
  // shifted, sliced or regrown. Entry k of the `mask + 1` slots (a power of
  // two, doubled when full) sits at 3k (wire), 3k + 1 (offset) and 3k + 2
  // (bytes) of one array, not in one array per field: a push or a release
  // touches one place in memory, not three (a busy server keeps a ring per
  // session). An empty buffer that release() let go of (or one never used)
  // holds a shared frozen array. Sequence numbers are not stored: the
  // entries' are consecutive (see push()), so an ack knows how many entries
  // it releases without reading them.
  private ring: Array<T | number | undefined> = NO_SLOTS as Array<T | number | undefined>;
  /** Index of the oldest entry. */
  private head = 0;
  /** Sequence number of the oldest entry (when count > 0). */
  private first = 0;
  private count = 0;
  private mask = -1;
  private _bytes = 0;
  /** Highest sequence number evicted unacknowledged (0 = none). */
  evictedThrough = 0;
  /** How many messages were evicted unacknowledged. */
  evictedCount = 0;

  constructor(maxMessages: number, maxBytes: number) {
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
  }

  get length(): number {
    return this.count;
  }

  get bytes(): number {
    return this._bytes;
  }

  /** Slots allocated (0 when it holds no storage of its own). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Sequence number of the oldest entry (0 when empty). */
  get firstSeq(): number {
    return this.count > 0 ? this.first : 0;
  }

  wouldOverflow(bytes: number): boolean {
    return this.count + 1 > this.maxMessages || this._bytes + bytes > this.maxBytes;
  }

  /**
   * Keeps message `seq`, which must be the one after the newest entry's
   * (firstSeq + length; any when empty): both directions number their
   * messages 1, 2, 3... and keep every one they send.
   */
  push(seq: number, wire: T, bytes: number, offset = 0): void {
    if (this.count === 0) this.first = seq;
    if (this.count === this.mask + 1) this.grow();
    const b = ((this.head + this.count) & this.mask) * 3;
    const ring = this.ring;
    ring[b] = wire;
    ring[b + 1] = offset;
    ring[b + 2] = bytes;
    this.count++;
    this._bytes += bytes;
  }

  /** Drops the oldest entries until one more message of `bytes` fits; records what was dropped. */
  evictFor(bytes: number): number {
    let n = 0;
    while (this.count > 0 && this.wouldOverflow(bytes)) {
      this.evictedThrough = this.first;
      this.drop(1);
      this.evictedCount++;
      n++;
    }
    if (n > 0 && this.mask >= 1023) this.shrinkIfSparse();
    return n;
  }

  /** Forgets every entry with seq <= `ack`. Returns how many were released. */
  ack(ack: number): number {
    const n = Math.min(ack - this.first + 1, this.count);
    if (!(n > 0)) return 0;
    this.drop(n);
    if (this.mask >= 1023) this.shrinkIfSparse();
    return n;
  }

  /** Entries with seq > `after`, oldest first (what to resend after a resume). */
  *from(after: number): IterableIterator<ReplayEntry<T>> {
    for (let k = Math.max(0, after - this.first + 1); k < this.count; k++) {
      const b = ((this.head + k) & this.mask) * 3;
      yield { seq: this.first + k, wire: this.ring[b] as T, offset: this.ring[b + 1] as number, bytes: this.ring[b + 2] as number };
    }
  }

  clear(): void {
    this.ring = NO_SLOTS as Array<T | number | undefined>;
    this.head = 0;
    this.count = 0;
    this.mask = -1;
    this._bytes = 0;
  }

  /** Lets go of the storage if empty (a session gone quiet keeps no slots). */
  release(): void {
    if (this.count === 0 && this.mask >= 0) this.clear();
  }

  /** Drops the `n` oldest entries (n <= count): their wires let go, their bytes summed in one pass. */
  private drop(n: number): void {
    const ring = this.ring;
    const mask = this.mask;
    let h = this.head;
    let freed = 0;
    for (let k = 0; k < n; k++) {
      ring[h * 3] = undefined;
      freed += ring[h * 3 + 2] as number;
      h = (h + 1) & mask;
    }
    this.head = h;
    this.first += n;
    this.count -= n;
    this._bytes -= freed;
  }

  /** Doubles the capacity (16 at first). */
  private grow(): void {
    const cap = this.mask + 1;
    this.resize(cap === 0 ? 16 : cap * 2);
  }

  /**
   * After a burst (a client away for a while), a ring of thousands of slots
   * would stay that size under light traffic: once at most an eighth of a
   * ring of 1024 or more is in use, it shrinks to twice what is held.
   */
  private shrinkIfSparse(): void {
    const cap = this.mask + 1;
    if (cap < 1024 || this.count * 8 > cap) return;
    let next = 16;
    while (next < this.count * 2) next *= 2;
    this.resize(next);
  }

  /** Moves the entries, in order, to the start of a new ring of `next` slots (a power of two >= count). */
  private resize(next: number): void {
    const ring: Array<T | number | undefined> = [];
    // Pushed one by one, so the array stays packed (new Array(n) would be holey).
    for (let k = 0; k < next; k++) {
      if (k < this.count) {
        const b = ((this.head + k) & this.mask) * 3;
        ring.push(this.ring[b], this.ring[b + 1], this.ring[b + 2]);
      } else {
        ring.push(undefined, 0, 0);
      }
    }
    this.ring = ring;
    this.head = 0;
    this.mask = next - 1;
  }
}

const NO_SLOTS = Object.freeze([]) as unknown as unknown[];

/**
 * The receiving side of one direction: accepts each sequence number once and
 * in order, and decides when a standalone ack is due.
 */
export class InboundSequencer {
  /** Highest sequence number delivered to the application. */
  received = 0;
  /** Highest sequence number we have told the peer about. */
  acked = 0;
  duplicates = 0;
  readonly ackEvery: number;

  constructor(ackEvery: number) {
    this.ackEvery = ackEvery;
  }

  /**
   * 'deliver' for the next message in order, 'duplicate' for one we already
   * have (replayed after a resume), 'gap' for one beyond the next: a broken
   * sender, since the transport is ordered.
   */
  accept(seq: number): 'deliver' | 'duplicate' | 'gap' {
    if (seq === this.received + 1) {
      this.received = seq;
      return 'deliver';
    }
    if (seq <= this.received) {
      this.duplicates++;
      return 'duplicate';
    }
    return 'gap';
  }

  /** Unacknowledged deliveries. */
  get pending(): number {
    return this.received - this.acked;
  }

  /** True when enough deliveries piled up to send an ack without waiting for the timer. */
  get ackDue(): boolean {
    return this.received - this.acked >= this.ackEvery;
  }

  /** Marks everything received as acknowledged (the caller sends or piggybacks it). Returns the ack value. */
  takeAck(): number {
    this.acked = this.received;
    return this.received;
  }
}

/**
 * Exactly-once, in-order delivery across reconnects (../shared/DESIGN.md,
 * "Resume"): each direction numbers its application messages 1, 2, 3...;
 * the receiver acknowledges cumulatively; the sender keeps what is not yet
 * acknowledged in a bounded ReplayBuffer and resends it after a reconnect;
 * the receiver drops anything at or below what it already has.
 *
 * Pure bookkeeping, browser-safe: no timers (the owner schedules acks).
 */

/** One sent message kept for replay: its sequence number and its encoded wire form. */
export interface ReplayEntry<T> {
  seq: number;
  wire: T;
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
  private entries: Array<ReplayEntry<T> | undefined> = [];
  private head = 0;
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
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this._bytes;
  }

  /** Sequence number of the oldest entry (0 when empty). */
  get firstSeq(): number {
    return this.length > 0 ? this.entries[this.head]!.seq : 0;
  }

  wouldOverflow(bytes: number): boolean {
    return this.length + 1 > this.maxMessages || this._bytes + bytes > this.maxBytes;
  }

  push(seq: number, wire: T, bytes: number): void {
    this.entries.push({ seq, wire, bytes });
    this._bytes += bytes;
  }

  /** Drops the oldest entries until one more message of `bytes` fits; records what was dropped. */
  evictFor(bytes: number): number {
    let n = 0;
    while (this.length > 0 && this.wouldOverflow(bytes)) {
      const e = this.shift();
      this.evictedThrough = e.seq;
      this.evictedCount++;
      n++;
    }
    return n;
  }

  /** Forgets every entry with seq <= `ack`. Returns how many were released. */
  ack(ack: number): number {
    let n = 0;
    while (this.length > 0 && this.entries[this.head]!.seq <= ack) {
      this.shift();
      n++;
    }
    return n;
  }

  /** Entries with seq > `after`, oldest first (what to resend after a resume). */
  *from(after: number): IterableIterator<ReplayEntry<T>> {
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.seq > after) yield e;
    }
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this._bytes = 0;
  }

  private shift(): ReplayEntry<T> {
    const e = this.entries[this.head]!;
    this.entries[this.head] = undefined;
    this.head++;
    this._bytes -= e.bytes;
    // Compact once the dead prefix dominates, so memory follows the live size.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return e;
  }
}

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

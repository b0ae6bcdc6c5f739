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
  // Parallel arrays rather than an entry object per message: the push/ack
  // pair runs once per message on the hot path. Slots before `head` are dead.
  private seqs: number[] = [];
  private wires: Array<T | undefined> = [];
  private offsets: number[] = [];
  private sizes: number[] = [];
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
    return this.seqs.length - this.head;
  }

  get bytes(): number {
    return this._bytes;
  }

  /** Sequence number of the oldest entry (0 when empty). */
  get firstSeq(): number {
    return this.length > 0 ? this.seqs[this.head]! : 0;
  }

  wouldOverflow(bytes: number): boolean {
    return this.length + 1 > this.maxMessages || this._bytes + bytes > this.maxBytes;
  }

  push(seq: number, wire: T, bytes: number, offset = 0): void {
    this.seqs.push(seq);
    this.wires.push(wire);
    this.offsets.push(offset);
    this.sizes.push(bytes);
    this._bytes += bytes;
  }

  /** Drops the oldest entries until one more message of `bytes` fits; records what was dropped. */
  evictFor(bytes: number): number {
    let n = 0;
    while (this.length > 0 && this.wouldOverflow(bytes)) {
      this.evictedThrough = this.seqs[this.head]!;
      this.shift();
      this.evictedCount++;
      n++;
    }
    this.compact();
    return n;
  }

  /** Forgets every entry with seq <= `ack`. Returns how many were released. */
  ack(ack: number): number {
    let n = 0;
    while (this.length > 0 && this.seqs[this.head]! <= ack) {
      this.shift();
      n++;
    }
    this.compact();
    return n;
  }

  /** Entries with seq > `after`, oldest first (what to resend after a resume). */
  *from(after: number): IterableIterator<ReplayEntry<T>> {
    for (let i = this.head; i < this.seqs.length; i++) {
      const seq = this.seqs[i]!;
      if (seq > after) yield { seq, wire: this.wires[i]!, offset: this.offsets[i]!, bytes: this.sizes[i]! };
    }
  }

  clear(): void {
    this.seqs = [];
    this.wires = [];
    this.offsets = [];
    this.sizes = [];
    this.head = 0;
    this._bytes = 0;
  }

  private shift(): void {
    const i = this.head;
    this.wires[i] = undefined;
    this._bytes -= this.sizes[i]!;
    this.head = i + 1;
  }

  /** Once the dead prefix dominates, drop it, so memory follows the live size. */
  private compact(): void {
    const h = this.head;
    if (h === this.seqs.length) {
      // Empty: reuse the arrays from the start (the common case under steady acks).
      if (h > 0) {
        this.seqs.length = 0;
        this.wires.length = 0;
        this.offsets.length = 0;
        this.sizes.length = 0;
        this.head = 0;
      }
    } else if (h > 1024 && h * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(h);
      this.wires = this.wires.slice(h);
      this.offsets = this.offsets.slice(h);
      this.sizes = this.sizes.slice(h);
      this.head = 0;
    }
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

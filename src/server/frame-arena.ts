/**
 * Where a lifeline.v1 session keeps the frames it has sent until they are
 * acknowledged: byte chunks filled front to back, each frame encoded once
 * (WebSocket header, data header, payload) and referenced from the
 * ReplayBuffer as (chunk, offset). Sending a message then costs no buffer or
 * object of its own, and a resume resends the same bytes.
 *
 * A written frame's bytes do not change while anything may still read them:
 * a replay entry, or a socket writing a view of them. Only a chunk whose
 * every frame the peer has acknowledged is filled again, and only on the
 * socket those acknowledgements came over: the peer cannot acknowledge bytes
 * the socket has not handed to the kernel, so no write of ours still reads
 * them. That recycling is for a session under steady traffic (one 16 KiB
 * chunk being filled, the one before it waiting for its acks): without it,
 * every 16 KiB of messages cost a new buffer for the garbage collector to
 * find. Any other chunk is left to the garbage collector, which frees it once
 * no replay entry (and no pending write) refers to it.
 *
 * A peer that acknowledges frames it has not received (ack numbers are only
 * checked against what was sent) can have a chunk filled again while a write
 * of it is still queued. What it then receives is garbled, but it is its own
 * session's newer frames: arenas are per session, and the replay buffer
 * never reads a recycled chunk (its entries there were acknowledged).
 */

import { Buffer } from 'node:buffer';

/** First chunk of a session, and the size it returns to after release(). */
export const ARENA_FIRST_CHUNK = 512;
/** Chunks double up to this size while a session keeps sending. */
export const ARENA_MAX_CHUNK = 16 * 1024;
/** Frames above this size get a buffer of their own (a chunk would mostly hold one of them). */
export const ARENA_OWN_BUFFER_ABOVE = 4 * 1024;

export class FrameArena {
  private chunk: Buffer | null = null;
  private used = 0;
  private nextSize = ARENA_FIRST_CHUNK;
  /** Highest sequence number written into `chunk`. */
  private chunkLast = 0;
  /** The chunk filled before `chunk`, until all its frames are acknowledged (then it becomes `spare`). */
  private retired: Buffer | null = null;
  private retiredLast = 0;
  /** A full-size chunk whose frames were all acknowledged: the next chunk to fill. */
  private spare: Buffer | null = null;
  /** Where the frame of the last reserve() goes in the buffer it returned. */
  at = 0;

  /**
   * Room for the frame of message `seq`, `size` bytes: returns the buffer;
   * the frame starts at `this.at`. Sequence numbers must grow from call to
   * call (acknowledged() trusts that a chunk's last is its highest).
   */
  reserve(size: number, seq: number): Buffer {
    if (size > ARENA_OWN_BUFFER_ABOVE) {
      this.at = 0;
      return Buffer.allocUnsafeSlow(size);
    }
    let c = this.chunk;
    if (c === null || this.used + size > c.length) {
      // The chunk being left waits for its acks; one waiting before it (the
      // peer is more than a chunk behind) is left to the garbage collector.
      if (c !== null) {
        this.retired = c;
        this.retiredLast = this.chunkLast;
      }
      if (this.spare !== null) {
        c = this.spare;
        this.spare = null;
      } else {
        // allocUnsafeSlow: a chunk of its own, not a slice of Node's shared
        // pool, so a chunk kept for replay does not keep the pool alive.
        c = Buffer.allocUnsafeSlow(Math.max(this.nextSize, size));
        this.nextSize = Math.min(this.nextSize * 2, ARENA_MAX_CHUNK);
      }
      this.chunk = c;
      this.used = 0;
    }
    this.at = this.used;
    this.used += size;
    this.chunkLast = seq;
    return c;
  }

  /**
   * The peer acknowledged every message up to `ack` on the socket the
   * frames were written to: the retired chunk, if all of its frames are
   * among them, may be filled again (full-size chunks only; a smaller one
   * would only start the doubling over).
   */
  acknowledged(ack: number): void {
    const r = this.retired;
    if (r === null || this.retiredLast > ack) return;
    this.retired = null;
    if (r.length === ARENA_MAX_CHUNK) this.spare = r;
  }

  /**
   * Lets go of every chunk (frames already written stay readable while the
   * replay buffer or a write refers to them): for a session gone quiet, so
   * an idle session holds no spare bytes, and on a resume, whose replayed
   * views go to a new socket (the acks of the old one no longer say what it
   * wrote). The next chunk starts small again.
   */
  release(): void {
    this.chunk = null;
    this.used = 0;
    this.nextSize = ARENA_FIRST_CHUNK;
    this.retired = null;
    this.spare = null;
  }

  /** Bytes of the chunk being filled (0 when none): what release() would let go of. */
  get capacity(): number {
    return this.chunk === null ? 0 : this.chunk.length;
  }
}

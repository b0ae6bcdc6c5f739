/**
 * Where a lifeline.v1 session keeps the frames it has sent until they are
 * acknowledged: append-only byte chunks, each frame encoded once (WebSocket
 * header, data header, payload) and referenced from the ReplayBuffer as
 * (chunk, offset). Sending a message then costs no buffer or object of its
 * own, and a resume resends the same bytes.
 *
 * Append-only on purpose: bytes in a chunk never change, so a socket may
 * still be writing a view of a frame that the peer has already acknowledged
 * or that was evicted. A chunk is freed by the garbage collector once no
 * replay entry (and no pending write) refers to it.
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
  /** Where the frame of the last reserve() goes in the buffer it returned. */
  at = 0;

  /** Room for a frame of `size` bytes: returns the buffer; the frame starts at `this.at`. */
  reserve(size: number): Buffer {
    if (size > ARENA_OWN_BUFFER_ABOVE) {
      this.at = 0;
      return Buffer.allocUnsafeSlow(size);
    }
    let c = this.chunk;
    if (c === null || this.used + size > c.length) {
      // allocUnsafeSlow: a chunk of its own, not a slice of Node's shared pool,
      // so a chunk kept for replay does not keep the pool alive.
      c = this.chunk = Buffer.allocUnsafeSlow(Math.max(this.nextSize, size));
      this.nextSize = Math.min(this.nextSize * 2, ARENA_MAX_CHUNK);
      this.used = 0;
    }
    this.at = this.used;
    this.used += size;
    return c;
  }

  /**
   * Lets go of the chunk being filled (its frames stay readable while the
   * replay buffer refers to them): for a session gone quiet, so an idle
   * session holds no spare bytes. The next chunk starts small again.
   */
  release(): void {
    this.chunk = null;
    this.used = 0;
    this.nextSize = ARENA_FIRST_CHUNK;
  }

  /** Bytes of the chunk being filled (0 when none): what release() would let go of. */
  get capacity(): number {
    return this.chunk === null ? 0 : this.chunk.length;
  }
}

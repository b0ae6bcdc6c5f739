/**
 * Where a lifeline.v1 session keeps the frames it has sent until they are
 * acknowledged: byte chunks filled front to back, each frame encoded once
 * (WebSocket header, data header, payload) and referenced from the
 * ReplayBuffer as (chunk, offset). Sending a message then costs no buffer or
 * object of its own, and a resume resends the same bytes.
 *
 * A written frame's bytes do not change while anything may still read them:
 * a replay entry, or a write of the socket. The one chunk ever filled again
 * is the full-size chunk before the current one, once the peer has
 * acknowledged every frame in it (no replay entry is left there) and its
 * socket has drained since the arena moved on from it (no write still reads
 * it: see WebSocket._drains). The second rule does not rely on the peer
 * telling the truth about what it received. That recycling is for a session
 * under steady traffic: without it, every 16 KiB of messages cost a new
 * buffer for the garbage collector to find. Any other chunk is left to the
 * garbage collector, which frees it once no replay entry (and no pending
 * write) refers to it. A resume releases the arena: the new socket's drains
 * say nothing about what the old one still had queued.
 */

import { Buffer } from 'node:buffer';

/** First chunk of a session, and the size it returns to after release(). */
export const ARENA_FIRST_CHUNK = 512;
const FIRST_CHUNK = ARENA_FIRST_CHUNK;
/** Chunks double up to this size while a session keeps sending. */
export const ARENA_MAX_CHUNK = 16 * 1024;
const MAX_CHUNK = ARENA_MAX_CHUNK;
/** Frames above this size get a buffer of their own (a chunk would mostly hold one of them). */
export const ARENA_OWN_BUFFER_ABOVE = 4 * 1024;
// This module's own constants for its uses: an exported binding is read from
// its cell, with a hole check, at every use (about 5 instructions a message).
const OWN_BUFFER_ABOVE = ARENA_OWN_BUFFER_ABOVE;

export class FrameArena {
  private chunk: Buffer | null = null;
  private used = 0;
  private nextSize = FIRST_CHUNK;
  /** Highest sequence number written into `chunk`. */
  private chunkLast = 0;
  /** The chunk filled before `chunk`, until all its frames are acknowledged and the socket drained (then it becomes `spare`). */
  private retired: Buffer | null = null;
  private retiredLast = 0;
  /** The socket's drain count when `retired` was left (see reserve()). */
  private retiredDrains = 0;
  /** A full-size chunk whose frames were all acknowledged and written out: the next chunk to fill. */
  private spare: Buffer | null = null;
  /** Where the frame of the last reserve() goes in the buffer it returned. */
  at = 0;

  /**
   * Room for the frame of message `seq`, `size` bytes: returns the buffer;
   * the frame starts at `this.at`. Sequence numbers must grow from call to
   * call (acknowledged() trusts that a chunk's last is its highest).
   * `drains`: the socket's drain count now (WebSocket._drains), which only grows.
   */
  reserve(size: number, seq: number, drains: number): Buffer {
    if (size > OWN_BUFFER_ABOVE) {
      this.at = 0;
      return Buffer.allocUnsafeSlow(size);
    }
    let c = this.chunk;
    if (c === null || this.used + size > c.length) {
      // The chunk being left waits for its acks and a drain; one waiting
      // before it (the peer is more than a chunk behind) is left to the
      // garbage collector.
      if (c !== null) {
        this.retired = c;
        this.retiredLast = this.chunkLast;
        this.retiredDrains = drains;
      }
      if (this.spare !== null) {
        c = this.spare;
        this.spare = null;
      } else {
        // allocUnsafeSlow: a chunk of its own, not a slice of Node's shared
        // pool, so a chunk kept for replay does not keep the pool alive.
        c = Buffer.allocUnsafeSlow(Math.max(this.nextSize, size));
        this.nextSize = Math.min(this.nextSize * 2, MAX_CHUNK);
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
   * The peer acknowledged every message up to `ack`; `drains` is the
   * socket's drain count now. The retired chunk may be filled again if all
   * of its frames are acknowledged and the socket drained after the arena
   * left it (full-size chunks only; a smaller one would only start the
   * doubling over).
   */
  acknowledged(ack: number, drains: number): void {
    const r = this.retired;
    if (r === null || this.retiredLast > ack || drains <= this.retiredDrains) return;
    this.retired = null;
    if (r.length === MAX_CHUNK) this.spare = r;
  }

  /**
   * Lets go of every chunk (frames already written stay readable while the
   * replay buffer or a write refers to them): for a session gone quiet, so
   * an idle session holds no spare bytes, and on a resume, whose replayed
   * views go to a new socket (whose drains say nothing of what the old one
   * still had queued). The next chunk starts small again.
   */
  release(): void {
    this.chunk = null;
    this.used = 0;
    this.nextSize = FIRST_CHUNK;
    this.retired = null;
    this.spare = null;
  }

  /** Bytes of the chunk being filled (0 when none): what release() would let go of. */
  get capacity(): number {
    return this.chunk === null ? 0 : this.chunk.length;
  }
}

// FrameArena: the byte chunks a session keeps its sent frames in until acked.
// Chunks filled front to back and growing from ARENA_FIRST_CHUNK to
// ARENA_MAX_CHUNK, big frames in buffers of their own; a full-size chunk
// whose frames are all acknowledged is filled again, and nothing else is
// ever written over.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ARENA_FIRST_CHUNK, ARENA_MAX_CHUNK, ARENA_OWN_BUFFER_ABOVE, FrameArena } from '../../../src/server/frame-arena.js';

/** FILLED[b]: bytes all b, as long as any frame in these tests. */
const FILLED = Array.from({ length: 256 }, (_, b) => Buffer.alloc(ARENA_OWN_BUFFER_ABOVE + 100, b));

/** Sends `n` frames of `size` bytes from seq `first`: the chunks they went to, in order. */
function fill(a: FrameArena, first: number, n: number, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const c = a.reserve(size, first + i, 0);
    if (chunks[chunks.length - 1] !== c) chunks.push(c);
  }
  return chunks;
}

/** An arena already at full-size chunks; returns the next seq. */
function warmed(a: FrameArena): number {
  let seq = 1;
  while (a.capacity < ARENA_MAX_CHUNK) a.reserve(100, seq++, 0);
  return seq;
}

describe('FrameArena', () => {
  it('places frames one after another in the chunk being filled', () => {
    const a = new FrameArena();
    const c1 = a.reserve(10, 1, 0);
    assert.equal(a.at, 0);
    const c2 = a.reserve(20, 2, 0);
    assert.equal(c2, c1);
    assert.equal(a.at, 10);
    a.reserve(5, 3, 0);
    assert.equal(a.at, 30);
    assert.equal(a.capacity, ARENA_FIRST_CHUNK);
  });

  it('a frame that does not fit starts a new chunk, twice the size, up to ARENA_MAX_CHUNK', () => {
    const a = new FrameArena();
    const sizes: number[] = [];
    let last: Buffer | null = null;
    for (let i = 0; i < 2000; i++) {
      const c = a.reserve(100, i + 1, 0);
      if (c !== last) {
        sizes.push(c.length);
        assert.equal(a.at, 0, 'a new chunk is filled from its start');
        last = c;
      }
    }
    assert.deepEqual(sizes.slice(0, 6), [512, 1024, 2048, 4096, 8192, 16384]);
    assert.ok(sizes.every((n) => n <= ARENA_MAX_CHUNK));
    assert.ok(sizes.slice(6).every((n) => n === ARENA_MAX_CHUNK), 'steady at the cap');
  });

  it('frames above ARENA_OWN_BUFFER_ABOVE get an exact buffer and leave the chunk alone', () => {
    const a = new FrameArena();
    const c = a.reserve(8, 1, 0);
    const big = a.reserve(ARENA_OWN_BUFFER_ABOVE + 1, 2, 0);
    assert.notEqual(big, c);
    assert.equal(big.length, ARENA_OWN_BUFFER_ABOVE + 1);
    assert.equal(a.at, 0);
    assert.equal(a.reserve(8, 3, 0), c, 'small frames continue in the same chunk');
    assert.equal(a.at, 8);
  });

  it('without acknowledgements, never writes over a frame: bytes stay as written across new frames, chunks and release()', () => {
    const a = new FrameArena();
    const kept: Array<{ buf: Buffer; at: number; byte: number; size: number }> = [];
    for (let i = 0; i < 500; i++) {
      const size = 1 + ((i * 37) % 300);
      if (i === 250) a.release();
      const buf = a.reserve(size, i + 1, 0);
      const at = a.at;
      buf.fill(i & 0xff, at, at + size);
      kept.push({ buf, at, byte: i & 0xff, size });
    }
    for (const [i, k] of kept.entries()) {
      assert.ok(k.buf.subarray(k.at, k.at + k.size).every((b) => b === k.byte), `frame ${i} unchanged`);
    }
  });

  it('release() lets go of the chunk being filled; the next one starts small again', () => {
    const a = new FrameArena();
    for (let i = 0; i < 100; i++) a.reserve(100, i + 1, 0);
    assert.ok(a.capacity > ARENA_FIRST_CHUNK);
    const before = a.reserve(1, 101, 0);
    a.release();
    assert.equal(a.capacity, 0);
    const after = a.reserve(1, 102, 0);
    assert.notEqual(after, before);
    assert.equal(a.capacity, ARENA_FIRST_CHUNK);
    assert.equal(a.at, 0);
  });

  it('a full-size chunk whose every frame is acknowledged is the chunk after the next one, filled from its start', () => {
    const a = new FrameArena();
    let seq = warmed(a);
    const first = a.reserve(100, seq++, 0);
    let second = first;
    while (second === first) second = a.reserve(100, seq++, 0);
    a.acknowledged(seq - 2, 1); // up to the frame before the one that opened `second`
    let third = second;
    while (third === second) third = a.reserve(100, seq++, 0);
    assert.equal(third, first, 'the acknowledged chunk');
    assert.equal(a.at, 0);
  });

  it('an acknowledged chunk waits until the socket has drained since the arena left it', () => {
    const a = new FrameArena();
    let seq = warmed(a);
    const drains = 7;
    const first = a.reserve(100, seq++, drains);
    let second = first;
    while (second === first) second = a.reserve(100, seq++, drains);
    // Every frame of `first` acknowledged, but no drain since it was left: a write may still read it.
    a.acknowledged(seq - 1, drains);
    let third = second;
    while (third === second) third = a.reserve(100, seq++, drains);
    assert.notEqual(third, first, 'not filled again without a drain');
    // The same with a drain after the arena left the chunk.
    const b = new FrameArena();
    let s2 = warmed(b);
    const f = b.reserve(100, s2++, drains);
    let g = f;
    while (g === f) g = b.reserve(100, s2++, drains);
    b.acknowledged(s2 - 1, drains + 1);
    let h = g;
    while (h === g) h = b.reserve(100, s2++, drains + 1);
    assert.equal(h, f, 'filled again once drained');
  });

  it('a chunk with one frame not yet acknowledged is never filled again', () => {
    const a = new FrameArena();
    let seq = warmed(a);
    const first = a.reserve(100, seq++, 0);
    while (a.reserve(100, seq, 0) === first) seq++;
    const lastOfFirst = seq - 1;
    seq++;
    a.acknowledged(lastOfFirst - 1, 1);
    const next = fill(a, seq, (2 * ARENA_MAX_CHUNK) / 100, 100);
    assert.ok(!next.includes(first), 'a new buffer instead');
    // Acknowledged later, after it was let go: too late, it stays as written.
    a.acknowledged(lastOfFirst + 10_000, 1);
    assert.ok(!fill(a, seq + 10_000, (2 * ARENA_MAX_CHUNK) / 100, 100).includes(first));
  });

  it('after release() (a resume), acknowledgements recycle no chunk written before it', () => {
    const a = new FrameArena();
    let seq = warmed(a);
    const before = new Set(fill(a, seq, (3 * ARENA_MAX_CHUNK) / 100, 100));
    seq += (3 * ARENA_MAX_CHUNK) / 100;
    a.release();
    a.acknowledged(seq, 1);
    const after = fill(a, seq, (3 * ARENA_MAX_CHUNK) / 100, 100);
    assert.ok(after.every((c) => !before.has(c)));
  });

  it('chunks smaller than ARENA_MAX_CHUNK are not kept for recycling', () => {
    const a = new FrameArena();
    const first = a.reserve(400, 1, 0);
    assert.equal(first.length, ARENA_FIRST_CHUNK);
    a.reserve(400, 2, 0); // a new chunk; the first is retired
    a.acknowledged(2, 1);
    const seen = fill(a, 3, 100, 400);
    assert.ok(!seen.includes(first));
  });

  it('property: no frame is written over before it is both acknowledged and written out', () => {
    let recycled = 0;
    fc.assert(
      fc.property(
        // How far behind the peer's acks run, in frames (at most about four full chunks' worth).
        fc.integer({ min: 0, max: 200 }),
        fc.array(
          fc.oneof(
            { weight: 240, arbitrary: fc.record({ send: fc.integer({ min: 1, max: 700 }) }) },
            { weight: 10, arbitrary: fc.record({ send: fc.integer({ min: ARENA_OWN_BUFFER_ABOVE - 50, max: ARENA_OWN_BUFFER_ABOVE + 50 }) }) },
            { weight: 60, arbitrary: fc.record({ ackBack: fc.integer({ min: 0, max: 20 }) }) },
            // Right at the edge of the chunk left last: its last frame, or one before or after.
            { weight: 40, arbitrary: fc.record({ ackEdge: fc.integer({ min: -1, max: 1 }) }) },
            // The socket drained: everything sent so far has been written.
            { weight: 20, arbitrary: fc.record({ drain: fc.constant(true) }) },
            // Rare: a release starts the chunks small again.
            { weight: 1, arbitrary: fc.record({ release: fc.constant(true) }) },
          ),
          { minLength: 1, maxLength: 800, size: 'max' },
        ),
        (lag, ops) => {
          const a = new FrameArena();
          const live: Array<{ seq: number; buf: Buffer; at: number; size: number }> = [];
          const chunksSeen = new Set<Buffer>();
          let current: Buffer | null = null;
          /** Last seq written into the chunk before `current` (0: none yet). */
          let lastOfPrevious = 0;
          let seq = 0;
          let acked = 0;
          let drains = 0;
          /** Frames sent before this seq were written out by the last drain. */
          let writtenBefore = 1;
          for (const op of ops) {
            if ('send' in op) {
              seq++;
              const buf = a.reserve(op.send, seq, drains);
              const at = a.at;
              assert.ok(at + op.send <= buf.length);
              if (buf !== current && at === 0 && op.send <= ARENA_OWN_BUFFER_ABOVE) {
                if (chunksSeen.has(buf)) recycled++;
                chunksSeen.add(buf);
                if (current !== null) lastOfPrevious = seq - 1;
                current = buf;
              }
              buf.fill(seq & 0xff, at, at + op.send);
              live.push({ seq, buf, at, size: op.send });
            } else if ('ackBack' in op || 'ackEdge' in op) {
              // Cumulative, never backwards, never beyond what was sent.
              const to = 'ackBack' in op ? seq - lag - op.ackBack : Math.min(seq, lastOfPrevious + op.ackEdge);
              acked = Math.max(acked, to);
              a.acknowledged(acked, drains);
            } else if ('drain' in op) {
              drains++;
              writtenBefore = seq + 1;
            } else {
              a.release();
            }
            // A frame may be written over once it is acknowledged AND written out.
            while (live.length > 0 && live[0]!.seq <= acked && live[0]!.seq < writtenBefore) live.shift();
            // Only a send writes: check after each one.
            if ('send' in op) {
              for (const f of live) {
                const view = f.buf.subarray(f.at, f.at + f.size);
                assert.ok(view.equals(FILLED[f.seq & 0xff]!.subarray(0, f.size)), `frame ${f.seq} (unacknowledged or unwritten) unchanged`);
              }
            }
          }
        },
      ),
      // No shrinking: a failing run is hundreds of operations, and shrinking them takes minutes.
      { numRuns: 200, endOnFailure: true },
    );
    assert.ok(recycled > 0, 'the runs did recycle chunks (the property was put to the test)');
  });
});

// FrameArena: the byte chunks a session keeps its sent frames in until acked.
// Append-only (a frame's bytes never change once written), chunks growing
// from ARENA_FIRST_CHUNK to ARENA_MAX_CHUNK, big frames in buffers of their own.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ARENA_FIRST_CHUNK, ARENA_MAX_CHUNK, ARENA_OWN_BUFFER_ABOVE, FrameArena } from '../../../src/server/frame-arena.js';

describe('FrameArena', () => {
  it('places frames one after another in the chunk being filled', () => {
    const a = new FrameArena();
    const c1 = a.reserve(10);
    assert.equal(a.at, 0);
    const c2 = a.reserve(20);
    assert.equal(c2, c1);
    assert.equal(a.at, 10);
    a.reserve(5);
    assert.equal(a.at, 30);
    assert.equal(a.capacity, ARENA_FIRST_CHUNK);
  });

  it('a frame that does not fit starts a new chunk, twice the size, up to ARENA_MAX_CHUNK', () => {
    const a = new FrameArena();
    const sizes: number[] = [];
    let last: Buffer | null = null;
    for (let i = 0; i < 2000; i++) {
      const c = a.reserve(100);
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
    const c = a.reserve(8);
    const big = a.reserve(ARENA_OWN_BUFFER_ABOVE + 1);
    assert.notEqual(big, c);
    assert.equal(big.length, ARENA_OWN_BUFFER_ABOVE + 1);
    assert.equal(a.at, 0);
    assert.equal(a.reserve(8), c, 'small frames continue in the same chunk');
    assert.equal(a.at, 8);
  });

  it('never overwrites a written frame: bytes stay as written across new frames, chunks and release()', () => {
    const a = new FrameArena();
    const kept: Array<{ buf: Buffer; at: number; byte: number; size: number }> = [];
    for (let i = 0; i < 500; i++) {
      const size = 1 + ((i * 37) % 300);
      if (i === 250) a.release();
      const buf = a.reserve(size);
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
    for (let i = 0; i < 100; i++) a.reserve(100);
    assert.ok(a.capacity > ARENA_FIRST_CHUNK);
    const before = a.reserve(1);
    a.release();
    assert.equal(a.capacity, 0);
    const after = a.reserve(1);
    assert.notEqual(after, before);
    assert.equal(a.capacity, ARENA_FIRST_CHUNK);
    assert.equal(a.at, 0);
  });
});

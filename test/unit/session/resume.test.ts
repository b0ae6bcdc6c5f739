// Resume bookkeeping (src/session/resume.ts): the sender's bounded
// ReplayBuffer of unacknowledged messages and the receiver's InboundSequencer
// (deliver in order once, drop duplicates, spot gaps, decide when to ack).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { InboundSequencer, ReplayBuffer } from '../../../src/session/resume.js';
import { fullGc } from '../../helpers/gc.js';

const seqs = <T>(b: ReplayBuffer<T>, after = 0): number[] => [...b.from(after)].map((e) => e.seq);

/** A buffer holding seqs from..to, each entry `bytes` long, wire = 'w' + seq. */
function filled(from: number, to: number, bytes = 10, maxMessages = 1000, maxBytes = 1_000_000): ReplayBuffer<string> {
  const b = new ReplayBuffer<string>(maxMessages, maxBytes);
  for (let s = from; s <= to; s++) b.push(s, `w${s}`, bytes);
  return b;
}

describe('ReplayBuffer', () => {
  it('starts empty', () => {
    const b = new ReplayBuffer<string>(10, 100);
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
    assert.equal(b.firstSeq, 0);
    assert.equal(b.evictedThrough, 0);
    assert.equal(b.evictedCount, 0);
    assert.deepEqual([...b.from(0)], []);
    assert.equal(b.maxMessages, 10);
    assert.equal(b.maxBytes, 100);
  });

  it('push keeps order, counts entries and bytes, and from() returns the entries themselves', () => {
    const b = new ReplayBuffer<string>(10, 1000);
    b.push(1, 'd1:a', 4);
    b.push(2, 'd2:bb', 5);
    b.push(3, 'd3:ccc', 6);
    assert.equal(b.length, 3);
    assert.equal(b.bytes, 15);
    assert.equal(b.firstSeq, 1);
    assert.deepEqual([...b.from(0)], [
      { seq: 1, wire: 'd1:a', offset: 0, bytes: 4 },
      { seq: 2, wire: 'd2:bb', offset: 0, bytes: 5 },
      { seq: 3, wire: 'd3:ccc', offset: 0, bytes: 6 },
    ]);
  });

  it('keeps each entry\'s offset into a shared wire through acks and compaction', () => {
    const shared = 'x'.repeat(10);
    const b = new ReplayBuffer<string>(5000, 1e9);
    for (let seq = 1; seq <= 3000; seq++) b.push(seq, shared, 1, seq * 7);
    b.ack(2000); // past the compaction threshold: the arrays are sliced
    const rest = [...b.from(2990)];
    assert.deepEqual(rest.map((e) => [e.seq, e.offset]), [...Array(10)].map((_, i) => [2991 + i, (2991 + i) * 7]));
    assert.ok(rest.every((e) => e.wire === shared));
  });

  it('from(after) yields only seq > after, oldest first', () => {
    const b = filled(1, 6);
    assert.deepEqual(seqs(b, 0), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(seqs(b, 3), [4, 5, 6]);
    assert.deepEqual(seqs(b, 6), []);
    assert.deepEqual(seqs(b, 100), []);
    assert.equal(b.length, 6, 'from() does not consume');
  });

  it('ack(n) releases every entry with seq <= n, returns how many, and updates bytes', () => {
    const b = filled(1, 6, 10);
    assert.equal(b.ack(0), 0);
    assert.equal(b.ack(2), 2);
    assert.equal(b.length, 4);
    assert.equal(b.bytes, 40);
    assert.equal(b.firstSeq, 3);
    assert.equal(b.ack(2), 0, 'an old (or repeated) cumulative ack releases nothing');
    assert.equal(b.ack(1), 0);
    assert.equal(b.ack(5), 3);
    assert.deepEqual(seqs(b), [6]);
    assert.equal(b.ack(1000), 1, 'an ack beyond the last entry empties the buffer');
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
    assert.equal(b.firstSeq, 0);
    assert.equal(b.evictedCount, 0, 'acknowledged is not evicted');
  });

  it('wouldOverflow: by count at maxMessages', () => {
    const b = new ReplayBuffer<string>(3, 1_000_000);
    assert.equal(b.wouldOverflow(1), false);
    b.push(1, 'a', 1);
    b.push(2, 'b', 1);
    assert.equal(b.wouldOverflow(1), false, 'the 3rd fits');
    b.push(3, 'c', 1);
    assert.equal(b.wouldOverflow(0), true, 'a 4th does not, whatever its size');
    b.ack(1);
    assert.equal(b.wouldOverflow(1), false);
  });

  it('wouldOverflow: by bytes at maxBytes (inclusive)', () => {
    const b = new ReplayBuffer<string>(1000, 100);
    assert.equal(b.wouldOverflow(100), false, 'exactly maxBytes fits');
    assert.equal(b.wouldOverflow(101), true, 'one message larger than the whole buffer never fits');
    b.push(1, 'a', 60);
    assert.equal(b.wouldOverflow(40), false);
    assert.equal(b.wouldOverflow(41), true);
    b.push(2, 'b', 40);
    assert.equal(b.wouldOverflow(0), false, 'zero bytes still fit by bytes');
    assert.equal(b.wouldOverflow(1), true);
    b.ack(1);
    assert.equal(b.wouldOverflow(60), false);
  });

  it('evictFor by count: drops the oldest until one more fits, records evictedThrough/evictedCount', () => {
    const b = filled(1, 5, 1, 5, 1_000_000);
    assert.equal(b.evictFor(1), 1);
    assert.deepEqual(seqs(b), [2, 3, 4, 5]);
    assert.equal(b.evictedThrough, 1);
    assert.equal(b.evictedCount, 1);
    b.push(6, 'w6', 1);
    b.push(7, 'w7', 1); // over the bound: push does not enforce it, the owner does
    assert.equal(b.length, 6);
    assert.equal(b.evictFor(1), 2);
    assert.deepEqual(seqs(b), [4, 5, 6, 7]);
    assert.equal(b.evictedThrough, 3);
    assert.equal(b.evictedCount, 3);
    assert.equal(b.evictFor(1), 0, 'nothing to evict when it fits');
    assert.equal(b.evictedThrough, 3);
  });

  it('evictFor by bytes: drops as many as needed, in order', () => {
    const b = new ReplayBuffer<string>(1000, 100);
    b.push(1, 'a', 30);
    b.push(2, 'b', 30);
    b.push(3, 'c', 30);
    assert.equal(b.evictFor(50), 2, '90 + 50 > 100: two must go (30 + 50 fits)');
    assert.deepEqual(seqs(b), [3]);
    assert.equal(b.bytes, 30);
    assert.equal(b.evictedThrough, 2);
    assert.equal(b.evictedCount, 2);
  });

  it('evictFor a message larger than the whole buffer empties it and stops', () => {
    const b = filled(1, 3, 10, 1000, 100);
    assert.equal(b.evictFor(101), 3);
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
    assert.equal(b.evictedThrough, 3);
    assert.equal(b.evictFor(101), 0, 'terminates on an empty buffer');
  });

  it('eviction after acks: evictedThrough names the last evicted unacknowledged seq', () => {
    const b = filled(1, 10, 1, 10, 1_000_000);
    b.ack(4);
    b.push(11, 'w11', 1);
    b.push(12, 'w12', 1);
    // 8 entries (5..12), room for 10: nothing to evict.
    assert.equal(b.evictFor(1), 0);
    b.push(13, 'w13', 1);
    b.push(14, 'w14', 1);
    assert.equal(b.evictFor(1), 1);
    assert.equal(b.evictedThrough, 5);
    assert.equal(b.evictedCount, 1);
  });

  it('clear() empties it but keeps the eviction record', () => {
    const b = filled(1, 4, 5, 3);
    b.evictFor(1);
    b.clear();
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
    assert.equal(b.firstSeq, 0);
    assert.deepEqual(seqs(b), []);
    assert.equal(b.evictedThrough, 2);
    assert.equal(b.evictedCount, 2);
    b.push(7, 'w7', 5);
    assert.deepEqual(seqs(b), [7]);
    assert.equal(b.bytes, 5);
  });

  it('binary wire forms are kept as given (by reference)', () => {
    const b = new ReplayBuffer<Uint8Array>(10, 100);
    const w = new Uint8Array([0x64, 0x31, 0x3a, 7]);
    b.push(1, w, w.length);
    assert.equal([...b.from(0)][0]!.wire, w);
  });

  it('10k pushes and acks in a sliding window: the ring keeps order, counts and bytes right, and stops growing', () => {
    const b = new ReplayBuffer<string>(100_000, 100_000_000);
    let next = 1;
    let acked = 0;
    const window = 37;
    for (let round = 0; round < 10_000; round++) {
      b.push(next, `w${next}`, next % 7);
      next++;
      if (next - 1 - acked > window) {
        acked += 1 + (round % 3); // acks of 1..3 at a time
        b.ack(acked);
      }
      if (round % 997 === 0) {
        // Full check now and then (the ring has wrapped many times by now).
        const want: number[] = [];
        for (let s = acked + 1; s < next; s++) want.push(s);
        assert.deepEqual(seqs(b), want, `round ${round}`);
        assert.equal(b.bytes, want.reduce((a, s) => a + (s % 7), 0));
      }
    }
    const want: number[] = [];
    for (let s = acked + 1; s < next; s++) want.push(s);
    assert.deepEqual(seqs(b), want);
    assert.equal(b.length, want.length);
    assert.equal(b.firstSeq, acked + 1);
    assert.deepEqual([...b.from(next - 4)].map((e) => e.wire), [`w${next - 3}`, `w${next - 2}`, `w${next - 1}`]);
    assert.equal(b.bytes, want.reduce((a, s) => a + (s % 7), 0));
    // At most window + 3 in flight: a ring of 64 slots, never regrown past it.
    assert.equal(b.capacity, 64);
    // Everything released: empty and consistent.
    assert.equal(b.ack(next), want.length);
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
  });

  it("released entries let go of their wires: an acknowledged or evicted message's buffer can be collected", async () => {
    // A server's wires are the chunks of its sessions' arenas: a ring slot
    // that kept one after its ack would keep up to 16 KiB per session alive.
    const b = new ReplayBuffer<Uint8Array>(4, 1_000_000);
    const refs: Array<WeakRef<Uint8Array>> = [];
    // Six messages into a buffer of at most four: 1 and 2 evicted, then 3 and 4 acknowledged, 5 and 6 kept.
    (function fill() {
      for (let seq = 1; seq <= 6; seq++) {
        const wire = new Uint8Array(1024);
        refs.push(new WeakRef(wire));
        if (b.wouldOverflow(wire.length)) b.evictFor(wire.length);
        b.push(seq, wire, wire.length);
      }
    })();
    assert.equal(b.evictedThrough, 2);
    assert.equal(b.ack(4), 2);
    // A WeakRef's target stays alive until the job that made it ends.
    await new Promise((resolve) => setImmediate(resolve));
    fullGc();
    assert.deepEqual(
      refs.map((r) => r.deref() !== undefined),
      [false, false, false, false, true, true],
      'only the unacknowledged messages 5 and 6 are still reachable',
    );
    assert.deepEqual(seqs(b), [5, 6]);
  });

  it('after a burst, a sparse ring shrinks as acks come in; order and bytes kept', () => {
    const b = filled(1, 5000, 2, 10_000, 1_000_000);
    assert.equal(b.capacity, 8192);
    b.ack(3900); // 1,100 left of 8,192: more than an eighth, kept
    assert.equal(b.capacity, 8192);
    b.ack(4990); // 10 left: shrunk to a ring of 32
    assert.equal(b.capacity, 32);
    assert.deepEqual(seqs(b), Array.from({ length: 10 }, (_, i) => 4991 + i));
    assert.equal(b.bytes, 20);
    for (let s = 5001; s <= 5030; s++) b.push(s, `w${s}`, 2);
    assert.equal(b.capacity, 64);
    assert.deepEqual(seqs(b, 5025), [5026, 5027, 5028, 5029, 5030]);
    // Small rings are never shrunk (no churn at the window's size).
    const small = filled(1, 500, 1);
    small.ack(499);
    assert.equal(small.capacity, 512);
  });

  it('grows from the wrapped position with order kept, and release() drops only empty storage', () => {
    const b = new ReplayBuffer<string>(1000, 1_000_000);
    assert.equal(b.capacity, 0, 'no storage before the first push');
    b.release();
    // Wrap a 16-slot ring: head in the middle, then fill it and push one more (grow).
    for (let s = 1; s <= 10; s++) b.push(s, `w${s}`, 1, s * 3);
    b.ack(7);
    for (let s = 11; s <= 23; s++) b.push(s, `w${s}`, 1, s * 3);
    assert.equal(b.capacity, 16);
    assert.equal(b.length, 16);
    b.push(24, 'w24', 1, 72);
    assert.equal(b.capacity, 32);
    assert.deepEqual(seqs(b), Array.from({ length: 17 }, (_, i) => 8 + i));
    assert.deepEqual(
      [...b.from(21)].map((e) => [e.wire, e.offset]),
      [['w22', 66], ['w23', 69], ['w24', 72]],
    );
    b.release();
    assert.equal(b.capacity, 32, 'not empty: release() keeps it');
    b.ack(24);
    b.release();
    assert.equal(b.capacity, 0);
    assert.equal(b.firstSeq, 0);
    b.push(25, 'w25', 5);
    assert.deepEqual(seqs(b), [25]);
    assert.equal(b.bytes, 5);
  });

  it('10k pushes, then 10k single acks: order held', () => {
    const b = filled(1, 10_000, 3, 20_000, 1_000_000);
    assert.equal(b.bytes, 30_000);
    for (let a = 1; a <= 10_000; a++) {
      assert.equal(b.ack(a), 1);
      if (a % 1500 === 0 || a === 1025 || a === 2049) {
        assert.equal(b.firstSeq, a + 1);
        assert.equal(b.length, 10_000 - a);
        const it = b.from(a + 5);
        const first = it.next();
        assert.equal(first.done, false);
        assert.equal(first.value!.seq, a + 6 <= 10_000 ? a + 6 : undefined);
      }
    }
    assert.equal(b.length, 0);
    assert.equal(b.bytes, 0);
  });

  it('property: against a plain-array model under random push/ack/evict/release, from() from any point', () => {
    type Op = { k: 'push'; bytes: number } | { k: 'ack'; by: number } | { k: 'evict'; bytes: number } | { k: 'release' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ k: fc.constant('push' as const), bytes: fc.integer({ min: 0, max: 50 }) }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant('ack' as const), by: fc.integer({ min: -3, max: 10 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('evict' as const), bytes: fc.integer({ min: 0, max: 60 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('release' as const) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 300 }), fc.array(op, { maxLength: 3000 }), (maxM, maxB, ops) => {
        const b = new ReplayBuffer<number>(maxM, maxB);
        let model: Array<{ seq: number; bytes: number }> = [];
        let next = 1;
        let ackedTo = 0;
        let evictedThrough = 0;
        let evictedCount = 0;
        const over = (n: number) => model.length + 1 > maxM || model.reduce((a, e) => a + e.bytes, 0) + n > maxB;
        for (const o of ops) {
          if (o.k === 'push') {
            assert.equal(b.wouldOverflow(o.bytes), over(o.bytes));
            b.push(next, next * 10, o.bytes);
            model.push({ seq: next, bytes: o.bytes });
            next++;
          } else if (o.k === 'ack') {
            ackedTo = Math.max(0, ackedTo + o.by);
            const before = model.length;
            model = model.filter((e) => e.seq > ackedTo);
            assert.equal(b.ack(ackedTo), before - model.length);
          } else if (o.k === 'release') {
            // Frees the ring only when empty; what it holds never changes.
            b.release();
            if (model.length === 0) assert.equal(b.capacity, 0);
          } else {
            let n = 0;
            while (model.length > 0 && over(o.bytes)) {
              evictedThrough = model.shift()!.seq;
              evictedCount++;
              n++;
            }
            assert.equal(b.evictFor(o.bytes), n);
          }
        }
        assert.deepEqual([...b.from(0)].map((e) => [e.seq, e.wire, e.bytes]), model.map((e) => [e.seq, e.seq * 10, e.bytes]));
        // The seqs are implied by the entries' order: from() must start at the right one from anywhere.
        for (const after of [-1, ackedTo - 1, ackedTo, ackedTo + 1, evictedThrough + 1, next - 2, next - 1, next + 5]) {
          assert.deepEqual([...b.from(after)].map((e) => e.seq), model.filter((e) => e.seq > after).map((e) => e.seq));
        }
        assert.equal(b.length, model.length);
        assert.equal(b.bytes, model.reduce((a, e) => a + e.bytes, 0));
        assert.equal(b.firstSeq, model[0]?.seq ?? 0);
        assert.equal(b.evictedThrough, evictedThrough);
        assert.equal(b.evictedCount, evictedCount);
      }),
      { numRuns: 200 },
    );
  });
});

describe('InboundSequencer', () => {
  it('starts at 0 with nothing pending', () => {
    const s = new InboundSequencer(4);
    assert.equal(s.received, 0);
    assert.equal(s.acked, 0);
    assert.equal(s.duplicates, 0);
    assert.equal(s.pending, 0);
    assert.equal(s.ackDue, false);
    assert.equal(s.ackEvery, 4);
  });

  it('delivers 1, 2, 3... in order', () => {
    const s = new InboundSequencer(100);
    for (let i = 1; i <= 50; i++) {
      assert.equal(s.accept(i), 'deliver');
      assert.equal(s.received, i);
    }
    assert.equal(s.duplicates, 0);
  });

  it('seq <= received is a duplicate: counted, received unchanged', () => {
    const s = new InboundSequencer(100);
    s.accept(1);
    s.accept(2);
    s.accept(3);
    assert.equal(s.accept(3), 'duplicate');
    assert.equal(s.accept(1), 'duplicate');
    assert.equal(s.accept(0), 'duplicate', '0 is never a message');
    assert.equal(s.received, 3);
    assert.equal(s.duplicates, 3);
    assert.equal(s.accept(4), 'deliver', 'the next one still goes through');
  });

  it('seq > received + 1 is a gap: not delivered, received unchanged, not counted as duplicate', () => {
    const s = new InboundSequencer(100);
    assert.equal(s.accept(2), 'gap', 'the first message must be 1');
    s.accept(1);
    assert.equal(s.accept(3), 'gap');
    assert.equal(s.accept(1000), 'gap');
    assert.equal(s.received, 1);
    assert.equal(s.duplicates, 0);
    assert.equal(s.accept(2), 'deliver');
  });

  it('a replay after resume: duplicates dropped, the rest delivered in order', () => {
    const s = new InboundSequencer(100);
    for (let i = 1; i <= 5; i++) s.accept(i);
    const verdicts = [3, 4, 5, 6, 7].map((q) => s.accept(q));
    assert.deepEqual(verdicts, ['duplicate', 'duplicate', 'duplicate', 'deliver', 'deliver']);
    assert.equal(s.received, 7);
    assert.equal(s.duplicates, 3);
  });

  it('ackDue after ackEvery unacknowledged deliveries; takeAck returns received and clears pending', () => {
    const s = new InboundSequencer(3);
    s.accept(1);
    s.accept(2);
    assert.equal(s.pending, 2);
    assert.equal(s.ackDue, false);
    s.accept(3);
    assert.equal(s.ackDue, true);
    assert.equal(s.takeAck(), 3);
    assert.equal(s.acked, 3);
    assert.equal(s.pending, 0);
    assert.equal(s.ackDue, false);
    s.accept(4);
    s.accept(5);
    assert.equal(s.ackDue, false);
    assert.equal(s.takeAck(), 5, 'takeAck works before ackDue too (piggyback, timer)');
    assert.equal(s.pending, 0);
    assert.equal(s.takeAck(), 5, 'idempotent');
  });

  it('duplicates and gaps do not make an ack due', () => {
    const s = new InboundSequencer(2);
    s.accept(1);
    s.accept(1);
    s.accept(1);
    s.accept(5);
    assert.equal(s.pending, 1);
    assert.equal(s.ackDue, false);
  });

  it('ackEvery 1: every delivery makes an ack due', () => {
    const s = new InboundSequencer(1);
    s.accept(1);
    assert.equal(s.ackDue, true);
    s.takeAck();
    s.accept(2);
    assert.equal(s.ackDue, true);
  });

  it('property: any interleaving of in-order, duplicate and gap seqs delivers each seq exactly once, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 500 }), fc.integer({ min: 1, max: 10 }), (offsets, every) => {
        const s = new InboundSequencer(every);
        const delivered: number[] = [];
        let dups = 0;
        for (const o of offsets) {
          const before = s.received;
          const seq = Math.max(0, before + 1 + o);
          const v = s.accept(seq);
          assert.equal(v, seq === before + 1 ? 'deliver' : seq <= before ? 'duplicate' : 'gap');
          if (v === 'deliver') delivered.push(seq);
          if (v === 'duplicate') dups++;
          if (s.ackDue) assert.ok(s.pending >= every);
          if (s.pending >= every) s.takeAck();
        }
        assert.deepEqual(delivered, Array.from({ length: delivered.length }, (_, i) => i + 1));
        assert.equal(s.duplicates, dups);
      }),
      { numRuns: 300 },
    );
  });
});

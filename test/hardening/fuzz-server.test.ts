/**
 * Property run against the server end of the parser (sans-I/O Connection,
 * role 'server'): random byte streams and mostly-valid frame streams with
 * mutations, split at arbitrary points. No throw, no hang, memory bounded;
 * every run ends either cleanly or failed with 1002/1007/1009 and a close
 * frame carrying that code on the wire.
 *
 * Runs: 100,000 by default; LIFELINE_FUZZ_RUNS overrides (e.g. 1000000 for a
 * longer run). LIFELINE_FUZZ_SEED replays a seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Connection } from '../../src/protocol/connection.js';
import { RecordingHandler } from '../helpers/recording.js';
import { PerMessageDeflate } from '../../src/protocol/deflate.js';
import { fullGc } from '../helpers/gc.js';
import zlib from 'node:zlib';

const RUNS = Number(process.env.LIFELINE_FUZZ_RUNS ?? 100_000);
const SEED = process.env.LIFELINE_FUZZ_SEED ? Number(process.env.LIFELINE_FUZZ_SEED) : undefined;
/** Small limits so random lengths hit them often. */
const MAX_MESSAGE = 4096;
const MAX_FRAME = 2048;
const FAIL_CODES = new Set([1002, 1007, 1009]);

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  lenForm: 'minimal' | '16' | '64';
  payload: Uint8Array;
}

function encode(f: FrameSpec): Buffer {
  const len = f.payload.length;
  let ext: Buffer;
  let len7: number;
  const form = f.lenForm === 'minimal' ? (len > 65535 ? '64' : len > 125 ? '16' : 'minimal') : f.lenForm;
  if (form === 'minimal') {
    ext = Buffer.alloc(0);
    len7 = len;
  } else if (form === '16') {
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len & 0xffff);
    len7 = 126;
  } else {
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
    len7 = 127;
  }
  const mask = Buffer.from([0x5a, 0x13, 0xc4, 0x7e]);
  const head = Buffer.from([(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode, (f.masked ? 0x80 : 0) | len7]);
  const body = Buffer.from(f.payload);
  if (f.masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, ext, f.masked ? mask : Buffer.alloc(0), body]);
}

const closePayload = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.tuple(fc.oneof(fc.constantFrom(1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1015, 2999, 3000, 4999, 5000), fc.integer({ min: 0, max: 65535 })), fc.uint8Array({ maxLength: 12 })).map(([code, reason]) => {
    const b = Buffer.alloc(2 + reason.length);
    b.writeUInt16BE(code, 0);
    Buffer.from(reason).copy(b, 2);
    return new Uint8Array(b);
  }),
  fc.uint8Array({ minLength: 1, maxLength: 1 }),
);

const utf8ish = fc.oneof(
  fc.string({ maxLength: 40, unit: 'binary' }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  fc.uint8Array({ maxLength: 40 }),
);

const frameSpec: fc.Arbitrary<FrameSpec> = fc
  .record({
    fin: fc.boolean(),
    rsv: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
    opcode: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }),
    masked: fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    lenForm: fc.oneof({ weight: 15, arbitrary: fc.constant('minimal' as const) }, { weight: 1, arbitrary: fc.constantFrom('16' as const, '64' as const) }),
    payload: fc.oneof({ weight: 6, arbitrary: utf8ish }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 2100 }) }),
    closeBody: closePayload,
  })
  .map(({ closeBody, ...f }) => (f.opcode === 8 ? { ...f, payload: closeBody } : f));

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 10 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(buf: Buffer, muts: Array<{ kind: string; at: number; byte?: number; bytes?: Uint8Array; n?: number }>): Buffer {
  let b = buf;
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % (b.length + 1);
    if (m.kind === 'flip' && at < b.length) {
      b = Buffer.from(b);
      b[at] = m.byte!;
    } else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes!), b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n!)]);
    else if (m.kind === 'truncate') b = b.subarray(0, at);
  }
  return b;
}

const stream: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.array(frameSpec, { minLength: 1, maxLength: 8 }), fc.array(mutation, { maxLength: 3 }))
      .map(([frames, muts]) => mutate(Buffer.concat(frames.map(encode)), muts)),
  },
);

const splits = fc.array(fc.nat(), { maxLength: 6 });

interface Tally {
  runs: number;
  clean: number;
  peerClosed: number;
  failed: Map<number, number>;
}

/** Parses unmasked server frames from the written bytes (the server must never mask). */
function serverFrames(buf: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let p = 0;
  while (p < buf.length) {
    assert.ok(buf.length - p >= 2, 'server wrote a truncated frame header');
    const b1 = buf[p + 1]!;
    assert.equal(b1 & 0x80, 0, 'server frames are never masked');
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      len = buf.readUInt16BE(p + 2);
      h = 4;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p + 2));
      h = 10;
    }
    assert.ok(buf.length - p >= h + len, 'server wrote a truncated frame');
    out.push({ opcode: buf[p]! & 0x0f, payload: buf.subarray(p + h, p + h + len) });
    p += h + len;
  }
  return out;
}

function runOne(bytes: Buffer, cuts: number[], tally: Tally): void {
  const h = new RecordingHandler();
  const c = new Connection(h, { role: 'server', maxMessageSize: MAX_MESSAGE, maxFrameSize: MAX_FRAME });
  const points = [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  // Feed in pieces; stop feeding once the transport would be closed (as the real transport does).
  for (const p of [...points, bytes.length]) {
    if (h.events.some((e) => e.type === 'close-transport')) break;
    c.receiveData(bytes.subarray(prev, p));
    prev = p;
  }
  const events = h.events;
  const errors = events.filter((e) => e.type === 'error');
  const written = serverFrames(h.takeWritten());
  const closes = written.filter((f) => f.opcode === 8);
  assert.ok(closes.length <= 1, 'at most one close frame written');
  for (const e of events) {
    if (e.type === 'message' && !e.isBinary) assert.ok(Buffer.from(e.data.toString('utf8')).equals(e.data), 'text messages delivered are valid UTF-8');
    if (e.type === 'message') assert.ok(e.data.length <= MAX_MESSAGE, 'message within maxMessageSize');
  }
  if (errors.length > 0) {
    assert.equal(errors.length, 1, 'one error per connection');
    const err = (errors[0] as { error: { closeCode?: number } }).error;
    assert.ok(FAIL_CODES.has(err.closeCode ?? -1), `closeCode ${err.closeCode} in {1002,1007,1009}`);
    const peerClosedFirst = events.findIndex((e) => e.type === 'close-frame');
    if (peerClosedFirst === -1) {
      assert.equal(closes.length, 1, 'a close frame was written');
      assert.equal(closes[0]!.payload.readUInt16BE(0), err.closeCode, 'the close frame carries the error code');
    }
    assert.ok(events.some((e) => e.type === 'close-transport'), 'transport close requested');
    tally.failed.set(err.closeCode!, (tally.failed.get(err.closeCode!) ?? 0) + 1);
  } else if (events.some((e) => e.type === 'close-frame')) {
    const cf = events.find((e) => e.type === 'close-frame') as { code: number };
    assert.equal(closes.length, 1, 'close frame echoed');
    if (cf.code === 1005) assert.equal(closes[0]!.payload.length, 0);
    else assert.equal(closes[0]!.payload.readUInt16BE(0), cf.code);
    assert.ok(events.some((e) => e.type === 'close-transport'), 'server closes TCP after the close handshake');
    tally.peerClosed++;
  } else {
    assert.equal(closes.length, 0, 'no close frame without a reason');
    assert.equal(c.state, 'open');
    tally.clean++;
  }
  c.transportClosed();
  assert.equal(c.state, 'closed');
  assert.equal(h.events.filter((e) => e.type === 'closed').length, 1, 'onClosed exactly once');
  tally.runs++;
}

test(`fuzz: ${RUNS} random byte streams against the server parser: no crash, no hang, bounded memory`, () => {
  // A full GC before each heap reading, so the bound is on what the parser
  // keeps, not on garbage not yet collected (without it, Node 24 read
  // 15-65 MiB of growth over the same runs, Node 20 2-15, against a bound
  // of 64 MiB then).
  fullGc();
  const heap0 = process.memoryUsage().heapUsed;
  const tally: Tally = { runs: 0, clean: 0, peerClosed: 0, failed: new Map() };
  const t0 = performance.now();
  let peakHeap = 0;
  fc.assert(
    fc.property(stream, splits, (bytes, cuts) => {
      runOne(bytes, cuts, tally);
      if ((tally.runs & 4095) === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - heap0);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  const elapsed = performance.now() - t0;
  fullGc();
  const growth = process.memoryUsage().heapUsed - heap0;
  console.log(
    `fuzz: ${tally.runs} runs in ${(elapsed / 1000).toFixed(1)} s; clean ${tally.clean}, peer-closed ${tally.peerClosed}, failed ${[...tally.failed].map(([k, v]) => `${k}:${v}`).join(' ')}; heap growth ${(growth / 2 ** 20).toFixed(1)} MiB (peak sampled ${(peakHeap / 2 ** 20).toFixed(1)} MiB, after a full GC)`,
  );
  assert.ok(tally.runs >= RUNS, 'every run executed');
  // Every outcome class is exercised, so the property is not vacuous.
  assert.ok(tally.clean > 0 && tally.peerClosed > 0, 'clean and peer-closed runs seen');
  for (const code of FAIL_CODES) assert.ok((tally.failed.get(code) ?? 0) > 0, `failures with ${code} seen`);
  // After a full GC the parser keeps about 1 MiB over 100,000 runs (Node 20
  // and 24); a leak of 200 B per run would pass 16 MiB.
  assert.ok(growth < 16 * 2 ** 20, `heap grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
  // No hang: a generous wall-clock budget per run (the default run takes well under a minute).
  assert.ok(elapsed < RUNS * 2, `took ${elapsed.toFixed(0)} ms`);
});

// ------------------------------------------------------------ with permessage-deflate

const DEFLATE_RUNS = Math.max(1, Math.floor(RUNS / 25));

function deflateRawSync(data: Uint8Array): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, -4);
}

/** A compressed data message (RSV1 on the first frame), maybe split into continuation frames. */
const compressedMessage = fc
  .record({
    text: fc.boolean(),
    data: fc.oneof(
      utf8ish,
      fc.integer({ min: 0, max: 12_000 }).map((n) => new Uint8Array(n)), // zeros: inflates beyond maxMessageSize
    ),
    pieces: fc.integer({ min: 1, max: 3 }),
  })
  .map(({ text, data, pieces }) => {
    const z = deflateRawSync(data);
    const frames: Buffer[] = [];
    const step = Math.max(1, Math.ceil(z.length / pieces));
    for (let off = 0, i = 0; off < z.length || i === 0; off += step, i++) {
      const end = Math.min(z.length, off + step);
      frames.push(encode({ fin: end >= z.length, rsv: i === 0 ? 4 : 0, opcode: i === 0 ? (text ? 1 : 2) : 0, masked: true, lenForm: 'minimal', payload: z.subarray(off, end) }));
    }
    return Buffer.concat(frames);
  });

const deflateStream: fc.Arbitrary<Buffer> = fc
  .tuple(fc.array(fc.oneof({ weight: 3, arbitrary: compressedMessage }, { weight: 1, arbitrary: frameSpec.map(encode) }), { minLength: 1, maxLength: 5 }), fc.array(mutation, { maxLength: 2 }))
  .map(([parts, muts]) => mutate(Buffer.concat(parts), muts));

test(`fuzz: ${DEFLATE_RUNS} compressed streams against the server parser with permessage-deflate`, async () => {
  const tally: Tally = { runs: 0, clean: 0, peerClosed: 0, failed: new Map() };
  const sentinel = encode({ fin: true, rsv: 0, opcode: 9, masked: true, lenForm: 'minimal', payload: Buffer.from('SENTINEL') });
  const t0 = performance.now();
  let settledBySignal = 0;
  await fc.assert(
    fc.asyncProperty(deflateStream, splits, async (bytes, cuts) => {
      const h = new RecordingHandler();
      const codec = new PerMessageDeflate(
        'server',
        { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
        { maxPayload: MAX_MESSAGE },
      );
      const c = new Connection(h, { role: 'server', maxMessageSize: MAX_MESSAGE, maxFrameSize: MAX_FRAME, codec });
      const all = Buffer.concat([bytes, sentinel]);
      const points = [...new Set(cuts.map((x) => x % (all.length + 1)))].sort((a, b) => a - b);
      let prev = 0;
      for (const p of [...points, all.length]) {
        if (h.events.some((e) => e.type === 'close-transport')) break;
        c.receiveData(all.subarray(prev, p));
        prev = p;
      }
      // Wait (bounded) for the inflater: done when the sentinel ping came out or the connection ended.
      const done = () => h.events.some((e) => e.type === 'close-transport' || (e.type === 'ping' && e.data.toString() === 'SENTINEL'));
      for (let i = 0; i < 2000 && !done(); i++) await new Promise((r) => setImmediate(r));
      if (done()) settledBySignal++;
      const errors = h.events.filter((e) => e.type === 'error');
      const written = serverFrames(h.takeWritten());
      const closes = written.filter((f) => f.opcode === 8);
      for (const e of h.events) {
        if (e.type === 'message') assert.ok(e.data.length <= MAX_MESSAGE, 'inflated message within maxMessageSize');
        if (e.type === 'message' && !e.isBinary) assert.ok(Buffer.from(e.data.toString('utf8')).equals(e.data), 'valid UTF-8');
      }
      if (errors.length > 0) {
        const err = (errors[0] as { error: { closeCode?: number } }).error;
        assert.ok(FAIL_CODES.has(err.closeCode ?? -1), `closeCode ${err.closeCode}`);
        if (!h.events.some((e) => e.type === 'close-frame')) assert.equal(closes[0]?.payload.readUInt16BE(0), err.closeCode, 'close frame carries the code');
        tally.failed.set(err.closeCode!, (tally.failed.get(err.closeCode!) ?? 0) + 1);
      } else if (h.events.some((e) => e.type === 'close-frame')) tally.peerClosed++;
      else tally.clean++;
      c.transportClosed();
      assert.equal(c.state, 'closed');
      tally.runs++;
    }),
    { numRuns: DEFLATE_RUNS, seed: SEED },
  );
  const elapsed = performance.now() - t0;
  console.log(
    `fuzz (deflate): ${tally.runs} runs in ${(elapsed / 1000).toFixed(1)} s; settled by signal ${settledBySignal}; clean ${tally.clean}, peer-closed ${tally.peerClosed}, failed ${[...tally.failed].map(([k, v]) => `${k}:${v}`).join(' ')}`,
  );
  assert.equal(tally.runs, DEFLATE_RUNS);
  for (const code of FAIL_CODES) assert.ok((tally.failed.get(code) ?? 0) > 0, `failures with ${code} seen`);
});

// PreparedMessage / Connection.sendPrepared: the broadcast building block.
// The shared frame must be byte-identical to what send() writes, and every
// connection that cannot use shared bytes must fall back to its own framing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Connection,
  PreparedMessage,
  encodedFrameSize,
  writeDataFrame,
  type ConnectionOptions,
  viewOf,
} from '../../../src/protocol/connection.js';
import { frameHeaderSize } from '../../../src/protocol/frame.js';
import { UsageError } from '../../../src/protocol/errors.js';
import { RecordingHandler } from '../../helpers/recording.js';

function server(opts: Partial<ConnectionOptions> = {}) {
  const h = new RecordingHandler();
  return { conn: new Connection(h, { role: 'server', ...opts }), h };
}

describe('PreparedMessage', () => {
  for (const [name, data, binary] of [
    ['empty text', '', false],
    ['short text', 'héllo', false],
    ['126-byte text (16-bit length)', 'x'.repeat(126), false],
    ['64 KiB binary (64-bit length)', Buffer.alloc(65536, 7), true],
    ['binary as text', Buffer.from('abc'), false],
  ] as const) {
    it(`${name}: frame bytes equal send()'s`, () => {
      const a = server();
      a.conn.send(data, binary);
      const b = server();
      const p = new PreparedMessage(data, binary);
      b.conn.sendPrepared(p);
      assert.deepEqual(b.h.takeWritten(), a.h.takeWritten());
      assert.equal(b.conn.messagesOut, 1);
      assert.equal(b.conn.bytesOut, p.frame.length);
      assert.equal(p.binary, binary);
    });
  }

  it('a PayloadPrefix object writes the same frame as the equal string prefix (text, binary, small and large payloads)', () => {
    const prefixText = 'd12,7:';
    const prefix = { length: prefixText.length, writeInto: (buf: Buffer, at: number) => void buf.write(prefixText, at, 'latin1') };
    for (const data of ['hi', Buffer.from('bin'), Buffer.alloc(300, 3), 'x'.repeat(70_000)]) {
      const a = new PreparedMessage(data, typeof data !== 'string', prefixText);
      const b = new PreparedMessage(data, typeof data !== 'string', prefix);
      assert.deepEqual(b.frame, a.frame);
      assert.equal(b.payloadLength, prefixText.length + Buffer.byteLength(data));
      assert.equal(b.payload.subarray(0, prefixText.length).toString(), prefixText);
    }
  });

  it('shares the frame bytes (one buffer for every connection)', () => {
    const p = new PreparedMessage('shared');
    const seen: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const h = new RecordingHandler();
      h.write = (d: Buffer) => void seen.push(d);
      new Connection(h, { role: 'server' }).sendPrepared(p);
    }
    assert.equal(seen.length, 3);
    for (const s of seen) assert.equal(s, p.frame);
  });

  it('fragmentSize smaller than the payload: falls back to fragmented frames', () => {
    const a = server({ fragmentSize: 4 });
    a.conn.send('0123456789', false);
    const b = server({ fragmentSize: 4 });
    b.conn.sendPrepared(new PreparedMessage('0123456789'));
    const out = b.h.takeWritten();
    assert.deepEqual(out, a.h.takeWritten());
    assert.equal(out[0], 0x01, 'first fragment: text opcode without FIN');
  });

  it('client role: masks (never writes the unmasked shared frame)', () => {
    const h = new RecordingHandler();
    const conn = new Connection(h, { role: 'client', randomFill: (b) => b.fill(0x5a) });
    const p = new PreparedMessage('abc');
    conn.sendPrepared(p);
    const out = h.takeWritten();
    assert.equal(out[1]! & 0x80, 0x80, 'MASK bit set');
    assert.notDeepEqual(out, p.frame);
  });

  it('after close(): throws like send()', () => {
    const { conn } = server();
    conn.close(1000);
    assert.throws(() => conn.sendPrepared(new PreparedMessage('late')), UsageError);
  });
});

/** `data` encoded with writeDataFrame at offset `at` of a larger buffer filled with 0xee. */
function encodedAt(at: number, data: string | Buffer, binary: boolean, prefix = '') {
  const dlen = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  const size = frameHeaderSize(prefix.length + dlen, false) + prefix.length + dlen;
  const buf = Buffer.alloc(at + size + 7, 0xee);
  const end = writeDataFrame(buf, at, binary, prefix, data, dlen);
  assert.equal(end, at + size);
  return { buf, start: at, end };
}

describe('writeDataFrame / encodedFrameSize / Connection.sendEncoded', () => {
  const cases = [
    ['short text', 'héllo', false],
    ['125 B (7-bit length)', 'y'.repeat(125), false],
    ['126 B binary (16-bit length)', Buffer.alloc(126, 1), true],
    ['64 KiB text (64-bit length)', 'z'.repeat(65536), false],
  ] as const;

  for (const [name, data, binary] of cases) {
    it(`${name}: the frame written at an offset is PreparedMessage's frame, and encodedFrameSize reads its size back`, () => {
      const { buf, start, end } = encodedAt(13, data, binary, 'd5,2:');
      assert.deepEqual(buf.subarray(start, end), new PreparedMessage(data, binary, 'd5,2:').frame);
      assert.equal(encodedFrameSize(buf, start), end - start);
      assert.equal(buf[end], 0xee, 'nothing written past the frame');
    });

    it(`${name}: sendEncoded writes the same bytes as send() of prefix + data`, () => {
      const { buf, start, end } = encodedAt(5, data, binary, 'd9:');
      const a = server();
      a.conn.send(Buffer.concat([Buffer.from('d9:'), Buffer.from(data)]), binary);
      const b = server();
      b.conn.sendEncoded(buf, start, end, true);
      assert.deepEqual(b.h.takeWritten(), a.h.takeWritten());
      assert.equal(b.conn.messagesOut, 1);
      assert.equal(b.conn.bytesOut, end - start);
    });
  }

  it('not shared: every frame goes to writeBytes as (src, start, end); shared: to write() as is (broadcast)', () => {
    const calls: Array<[string, Buffer, number, number]> = [];
    const h = new RecordingHandler();
    const handler = Object.assign(h, {
      writeBytes: (src: Buffer, s: number, e: number) => void calls.push(['bytes', src, s, e]),
      write: (d: Buffer) => void calls.push(['write', d, d.byteOffset, d.length]),
    });
    const conn = new Connection(handler, { role: 'server' });
    const small = encodedAt(3, 'x'.repeat(10), false);
    const large = encodedAt(3, 'x'.repeat(70_000), false);
    conn.sendEncoded(small.buf, small.start, small.end, false);
    conn.sendEncoded(large.buf, large.start, large.end, false);
    assert.deepEqual(calls[0], ['bytes', small.buf, small.start, small.end]);
    assert.deepEqual(calls[1], ['bytes', large.buf, large.start, large.end]);
    const p = new PreparedMessage('shared');
    conn.sendEncoded(p.frame, 0, p.frame.length, true);
    assert.equal(calls[2]![0], 'write');
    assert.equal(calls[2]![1], p.frame, 'the shared buffer itself');
    // Without writeBytes, a frame inside a larger buffer goes to write() as a view of it.
    const seen: Buffer[] = [];
    const plain = new RecordingHandler();
    plain.write = (d: Buffer) => void seen.push(d);
    new Connection(plain, { role: 'server' }).sendEncoded(large.buf, large.start, large.end, false);
    assert.equal(seen[0]!.buffer, large.buf.buffer, 'a view of the stored bytes, not a copy');
    assert.deepEqual(seen[0], large.buf.subarray(large.start, large.end));
  });

  it('fragmentSize smaller than the payload: re-framed from the payload after the header', () => {
    const { buf, start, end } = encodedAt(9, '0123456789', false);
    const a = server({ fragmentSize: 4 });
    a.conn.send('0123456789', false);
    const b = server({ fragmentSize: 4 });
    b.conn.sendEncoded(buf, start, end, true);
    assert.deepEqual(b.h.takeWritten(), a.h.takeWritten());
  });

  it('binary frames keep their opcode on the re-framing path', () => {
    const { buf, start, end } = encodedAt(2, Buffer.from([1, 2, 3, 4, 5, 6]), true);
    const a = server({ fragmentSize: 2 });
    a.conn.send(Buffer.from([1, 2, 3, 4, 5, 6]), true);
    const b = server({ fragmentSize: 2 });
    b.conn.sendEncoded(buf, start, end, true);
    assert.deepEqual(b.h.takeWritten(), a.h.takeWritten());
  });
});

describe('viewOf (the receive path\'s Buffer views)', () => {
  it('is a Buffer like subarray() makes: same class, same bytes, same memory; the chunk itself when whole', () => {
    // A pooled Buffer: its byteOffset into the pool is not 0.
    const chunk = Buffer.from('0123456789abcdef');
    for (const [start, end] of [[0, 16], [0, 0], [3, 9], [15, 16], [16, 16]] as const) {
      const v = viewOf(chunk, start, end);
      const ref = chunk.subarray(start, end);
      assert.ok(Buffer.isBuffer(v) && v instanceof Buffer, `${start}..${end}: a Buffer`);
      assert.equal(Object.getPrototypeOf(v), Object.getPrototypeOf(ref));
      assert.equal(v.constructor, Buffer);
      assert.equal(v.toString(), ref.toString());
      assert.equal(v.byteOffset, ref.byteOffset);
      assert.equal(v.buffer, chunk.buffer, 'no copy');
      if (start === 0 && end === chunk.length) assert.equal(v, chunk);
    }
    const v = viewOf(chunk, 4, 6);
    v[0] = 0x58;
    assert.equal(chunk.toString(), '0123X56789abcdef', 'writes go to the chunk');
    assert.equal(viewOf(chunk, 2, 8).subarray(1, 3).toString(), '3X', 'and views of views are Buffers too');
  });

  it('views the chunk it is given when chunks alternate (it remembers the last chunk\'s buffer and offset)', () => {
    // Two slices of one pool (same ArrayBuffer, different offsets), a chunk
    // with its own ArrayBuffer, and a view of a view: a remembered offset or
    // buffer that was not refreshed would read the wrong bytes.
    const pool = Buffer.from('AAAAAAAABBBBBBBBCCCCCCCC');
    const a = pool.subarray(0, 8);
    const b = pool.subarray(8, 16);
    const own = Buffer.from(new Uint8Array([0x44, 0x44, 0x44, 0x44]).buffer);
    const inner = b.subarray(2, 6);
    const order = [a, a, b, a, own, own, b, inner, b, pool, inner];
    for (const [i, chunk] of order.entries()) {
      const v = viewOf(chunk, 1, 3);
      assert.equal(v.toString('latin1'), chunk.subarray(1, 3).toString('latin1'), `step ${i}`);
      assert.equal(v.byteOffset, chunk.byteOffset + 1, `step ${i}: offset`);
      assert.equal(v.buffer, chunk.buffer, `step ${i}: same memory`);
    }
  });
});

// PreparedMessage / Connection.sendPrepared: the broadcast building block.
// The shared frame must be byte-identical to what send() writes, and every
// connection that cannot use shared bytes must fall back to its own framing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, PreparedMessage, type ConnectionOptions } from '../../../src/protocol/connection.js';
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

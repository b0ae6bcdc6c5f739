// Client frames for tests whose peer is bare TCP: the exact bytes a browser
// or ws would send, masked as RFC 6455 5.3 requires of clients.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

/** One unfragmented, masked client frame with a payload under 126 bytes (7-bit length). */
export function maskedClientFrame(opcode: number, payload: Uint8Array): Buffer {
  assert.ok(payload.length < 126, `payload of ${payload.length} bytes: this helper writes 7-bit lengths only`);
  const key = randomBytes(4);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  key.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ key[i & 3]!;
  return out;
}

// Client frames for the bench's load generators (loadgen.mjs,
// idle-loadgen.mjs, inproc.mjs): masked as RFC 6455 5.3 requires.
import crypto from 'node:crypto';

// Masking keys come from a pool of random bytes, refilled when used up (one
// randomBytes() call per frame would cost more than the frame).
const keyPool = Buffer.alloc(4096);
let keyAt = keyPool.length;

/** A masked client frame (RFC 6455 5.2): FIN, `opcode` (text by default), MASK, minimal length, key, masked payload. */
export function maskedFrame(payload, opcode = 0x1) {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const f = Buffer.allocUnsafe(2 + ext + 4 + len);
  f[0] = 0x80 | opcode;
  if (ext === 0) f[1] = 0x80 | len;
  else if (ext === 2) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(len, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeBigUInt64BE(BigInt(len), 2);
  }
  if (keyAt + 4 > keyPool.length) {
    crypto.randomFillSync(keyPool);
    keyAt = 0;
  }
  const k = 2 + ext;
  keyPool.copy(f, k, keyAt, keyAt + 4);
  keyAt += 4;
  for (let j = 0; j < len; j++) f[k + 4 + j] = payload[j] ^ f[k + (j & 3)];
  return f;
}

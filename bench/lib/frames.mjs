// RFC 6455 pieces the bench's own peers need: masked client frames for the
// load generators (loadgen.mjs, idle-loadgen.mjs, inproc.mjs), as 5.3
// requires, the handshake's accept value (the load generators check it), and
// the bare upgrade of the Node floor servers (servers/broadcast-net.mjs,
// servers/idle-net-ping.mjs), over node:http or over a bare node:net server.
import crypto from 'node:crypto';
import { createServer } from 'node:http';
import net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2). */
export function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

function ignoreError() {}

/**
 * A node:http server that answers a WebSocket upgrade with just enough of
 * RFC 6455 4.2.2 for the bench's loadgens (101 and the accept value; no
 * subprotocol, no extension) and hands each upgraded socket, with
 * setNoDelay(true) as lifeline's and an error listener, to `onSocket`. Other
 * requests get 426. The caller listens.
 */
export function bareUpgradeServer(onSocket) {
  const http = createServer((req, res) => {
    res.writeHead(426).end();
  });
  http.on('upgrade', (req, socket) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
      socket.destroy();
      return;
    }
    socket.on('error', ignoreError);
    acceptUpgrade(socket, key, onSocket);
  });
  return http;
}

/** Both servers' answer to a valid upgrade: the 101 with the accept value, then the socket, with setNoDelay(true) as lifeline's, to `onSocket`. */
function acceptUpgrade(socket, key, onSocket) {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`);
  socket.setNoDelay(true);
  onSocket(socket);
}

/** The longest request head bareNetUpgradeServer reads before it gives up on a connection. */
const MAX_HEAD = 8192;
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * The same upgrade on a node:net server, without node:http: the request head
 * is read off the socket by hand (up to MAX_HEAD bytes, across reads), so no
 * HTTP parser, IncomingMessage or node:http socket state is made for it, and
 * nothing of the head stays on the socket. The floor of a server that owns
 * its listening socket (node:http's part of a connection's memory is what
 * this leaves out); a head without a Sec-WebSocket-Key, or not asking to
 * upgrade to websocket, is dropped.
 */
export function bareNetUpgradeServer(onSocket) {
  // Heads that span reads, until complete (the loadgens write theirs in one piece).
  const partial = new Map();
  function readHead(chunk) {
    const before = partial.get(this);
    const head = before === undefined ? chunk : Buffer.concat([before, chunk]);
    const end = head.indexOf(HEAD_END);
    if (end < 0) {
      if (head.length > MAX_HEAD) {
        partial.delete(this);
        this.destroy();
      } else {
        if (before === undefined) this.once('close', () => partial.delete(this));
        partial.set(this, head);
      }
      return;
    }
    partial.delete(this);
    // The loadgens send nothing after the head until the 101.
    this.removeListener('data', readHead);
    const text = head.latin1Slice(0, end);
    const key = /\r\nsec-websocket-key:[ \t]*([^\r]+?)[ \t]*(?:\r|$)/i.exec(text);
    if (key === null || !/\r\nupgrade:[ \t]*websocket[ \t]*(?:\r|$)/i.test(text)) {
      this.destroy();
      return;
    }
    acceptUpgrade(this, key[1], onSocket);
  }
  return net.createServer((socket) => {
    socket.on('error', ignoreError);
    socket.on('data', readHead);
  });
}

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

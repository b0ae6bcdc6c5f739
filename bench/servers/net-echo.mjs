// Bench echo server on raw `node:net`: the physical reference (what Node and
// the kernel cost per message with no WebSocket at all). Messages are framed
// as a 4-byte big-endian length and that many bytes (loadgen.mjs
// --protocol netlen).
//
//   --mode batched   (default) every complete message in a read is parsed and
//                    all of them are echoed with ONE socket.write per read
//   --mode perframe  the same parse, but one socket.write per message (what a
//                    naive server does; shows what batching is worth)
//   --mode wsfloor   what any WebSocket echo on Node's sockets must do beyond
//                    `batched`: each payload is unmasked in place (with an
//                    all-zero key, so the bytes come back as sent: the same
//                    work as a real key) by lifeline's own choice of unmask
//                    (dist/transport/node/native.js, with the same
//                    threshold: bufferutil's native one when installed, as
//                    ws uses too, else the WebAssembly SIMD kernel, else
//                    or below BULK_UNMASK_MIN (576 B) the JavaScript unmaskWithKey; see
//                    LIFELINE_NO_NATIVE / LIFELINE_NO_SIMD there), and each
//                    echo goes to Node as its own header and payload buffers,
//                    corked, so one writev per read takes them: the echo of a
//                    read is no longer one of its own slices, as it is
//                    for no WebSocket server. Scenario b's floor.
//
// A message split across reads is kept until it is complete. Listens on
// 127.0.0.1, port 0 (or --port N), prints `listening <port>`.
import net from 'node:net';
import { exitOnSignal, portArg } from './common.mjs';

const i = process.argv.indexOf('--mode');
const MODE = i === -1 ? 'batched' : process.argv[i + 1];
if (MODE !== 'batched' && MODE !== 'perframe' && MODE !== 'wsfloor') {
  console.error(`net-echo: --mode must be batched, perframe or wsfloor, got ${MODE}`);
  process.exit(2);
}
const BATCHED = MODE === 'batched';
const WSFLOOR = MODE === 'wsfloor';
const ZERO_KEY = Buffer.alloc(4);
// The unmask lifeline itself picks, loaded only for wsfloor: the other modes
// stay free of lifeline's code.
const native = WSFLOOR ? await import('../../dist/transport/node/native.js') : null;
// dist/ builds from before the SIMD kernel have only bufferutil's unmask, with a threshold of 256 B.
const bulk =
  native === null ? null
  : native.nodeBulkUnmask !== undefined ? native.nodeBulkUnmask
  : native.nativeUnmask !== null ? (buf, start, end) => native.nativeUnmask(buf.subarray(start, end), ZERO_KEY)
  : null;
const { unmaskWithKey } = WSFLOOR ? await import('../../dist/protocol/frame.js') : { unmaskWithKey: null };
const { BULK_UNMASK_MIN: bulkMin = 256 } = WSFLOOR ? await import('../../dist/protocol/parser.js') : {};

/** Refuse absurd lengths instead of buffering without bound (a framing bug in a peer). */
const MAX_MESSAGE = 64 * 1024 * 1024;

const server = net.createServer({ noDelay: true }, (sock) => {
  // noDelay as ws, uWS and lifeline set it: no Nagle delay on small echoes.
  sock.setNoDelay(true);
  let spill = null;
  sock.on('data', (chunk) => {
    const buf = spill === null ? chunk : Buffer.concat([spill, chunk]);
    spill = null;
    const end = buf.length;
    let off = 0;
    // Bounded: each pass consumes one whole message of >= 4 bytes.
    while (end - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > MAX_MESSAGE) {
        sock.destroy();
        return;
      }
      if (end - off < 4 + len) break;
      if (WSFLOOR) {
        if (off === 0) sock.cork();
        // The key read from the buffer per call, not a literal 0: the compiler cannot fold the XOR away.
        if (bulk !== null && len >= bulkMin) bulk(buf, off + 4, off + 4 + len, ZERO_KEY.readInt32BE(0), 0);
        else unmaskWithKey(buf, off + 4, off + 4 + len, ZERO_KEY.readInt32BE(0), 0);
        sock.write(buf.subarray(off, off + 4));
        sock.write(buf.subarray(off + 4, off + 4 + len));
      } else if (!BATCHED) sock.write(buf.subarray(off, off + 4 + len));
      off += 4 + len;
    }
    if (WSFLOOR && off > 0) sock.uncork();
    // The echo of every complete message is those same bytes, in order: one write.
    if (BATCHED && off > 0) sock.write(off === end ? buf : buf.subarray(0, off));
    if (off < end) spill = buf.subarray(off);
  });
  sock.on('error', () => {}); // the loadgen reports broken connections
});
server.on('error', (err) => {
  console.error(`net-echo: ${err.message}`);
  process.exit(1);
});
server.listen(portArg(), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
exitOnSignal();

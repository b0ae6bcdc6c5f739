// Bench echo server on raw `node:net`: the physical reference (what Node and
// the kernel cost per message with no WebSocket at all). Messages are framed
// as a 4-byte big-endian length and that many bytes (loadgen.mjs
// --protocol netlen).
//
//   --mode batched   (default) every complete message in a read is parsed and
//                    all of them are echoed with ONE socket.write per read
//   --mode perframe  the same parse, but one socket.write per message (what a
//                    naive server does; shows what batching is worth)
//
// A message split across reads is kept until it is complete. Listens on
// 127.0.0.1, port 0 (or --port N), prints `listening <port>`.
import net from 'node:net';
import { exitOnSignal, portArg } from './common.mjs';

const i = process.argv.indexOf('--mode');
const MODE = i === -1 ? 'batched' : process.argv[i + 1];
if (MODE !== 'batched' && MODE !== 'perframe') {
  console.error(`net-echo: --mode must be batched or perframe, got ${MODE}`);
  process.exit(2);
}
const BATCHED = MODE === 'batched';
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
      if (!BATCHED) sock.write(buf.subarray(off, off + 4 + len));
      off += 4 + len;
    }
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

// Bench echo server on the `ws` package: the reference. bufferutil and
// utf-8-validate are installed (ws picks them up by itself) and
// perMessageDeflate is off, the fastest configuration ws offers.
// Listens on 127.0.0.1, port 0 (or --port N), prints `listening <port>`,
// echoes every message as received (text stays text).
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';
import { exitOnSignal, portArg } from './common.mjs';

// Fail loudly if the native helpers are missing: without them ws is slower
// and the comparison would flatter us.
const require = createRequire(import.meta.url);
require('bufferutil');
require('utf-8-validate');

const wss = new WebSocketServer({ port: portArg(), host: '127.0.0.1', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});
wss.on('error', (err) => {
  console.error(`ws-echo: ${err.message}`);
  process.exit(1);
});
wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});
exitOnSignal();

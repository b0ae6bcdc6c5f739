// Idle-connection bench server on the `ws` package (scenario d), with the
// heartbeat ws documents in its README ("How to detect and close broken
// connections?"), verbatim apart from the counters and the interval:
//
//   setInterval over wss.clients every 30 s (--interval MS): a client whose
//   isAlive is still false is terminated, every other one gets isAlive = false
//   and ws.ping(); a 'pong' sets isAlive = true again.
//
//   node --expose-gc bench/servers/idle-ws.mjs [--interval 30000]
//
// Same configuration as ws-echo.mjs (bufferutil, utf-8-validate,
// perMessageDeflate off). Listens on 127.0.0.1, port 0, prints
// `listening <port>`, then answers the control commands of idle-common.mjs.
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';
import { argValue, controlChannel } from './idle-common.mjs';

const require = createRequire(import.meta.url);
require('bufferutil');
require('utf-8-validate');

const intervalMs = Number(argValue('interval', '30000'));
if (!Number.isInteger(intervalMs) || intervalMs < 1) {
  console.error(`idle-ws: bad --interval ${argValue('interval')}`);
  process.exit(2);
}

let connections = 0;
let closes = 0;
let pingsSent = 0;
let pongsReceived = 0;
let terminated = 0;
const closeCodes = {};

function heartbeat() {
  this.isAlive = true;
  pongsReceived++;
}

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });

// Shared listener functions, no closure per connection (as in idle-lifeline.mjs).
function onClose(code) {
  closes++;
  closeCodes[code] = (closeCodes[code] ?? 0) + 1;
}

wss.on('connection', function connection(ws) {
  connections++;
  ws.isAlive = true;
  ws.on('error', console.error);
  ws.on('pong', heartbeat);
  ws.on('close', onClose);
});

const interval = setInterval(function ping() {
  wss.clients.forEach(function each(ws) {
    if (ws.isAlive === false) {
      terminated++;
      return ws.terminate();
    }

    ws.isAlive = false;
    ws.ping();
    pingsSent++;
  });
}, intervalMs);

wss.on('close', function close() {
  clearInterval(interval);
});
wss.on('error', (err) => {
  console.error(`idle-ws: ${err.message}`);
  process.exit(1);
});
wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

controlChannel('idle-ws', () => ({
  intervalMs,
  connections: connections - closes,
  clients: wss.clients.size,
  accepted: connections,
  closes,
  closeCodes,
  terminated,
  pingsSent,
  pongsReceived,
}));

// Broadcast bench server on the `ws` package (scenario e), broadcasting the
// way ws's README shows ("Server broadcast"): for each client in wss.clients,
// if its readyState is OPEN, client.send(data, { binary }).
//
//   node --expose-gc bench/servers/broadcast-ws.mjs [--binary]
//
// Same configuration as ws-echo.mjs (bufferutil, utf-8-validate,
// perMessageDeflate off), no heartbeat. Listens on 127.0.0.1, port 0, prints
// `listening <port>`, then answers the control commands of idle-common.mjs
// plus `broadcast SEQ`: sends broadcastMessage(SEQ) to every open client and
// answers `broadcast SEQ {"queued":N}`.
import { createRequire } from 'node:module';
import WebSocket, { WebSocketServer } from 'ws';
import { broadcastMessage, seqArg } from './broadcast-common.mjs';
import { controlChannel } from './idle-common.mjs';

const require = createRequire(import.meta.url);
require('bufferutil');
require('utf-8-validate');

const binary = process.argv.includes('--binary');
let connections = 0;
let closes = 0;
let broadcasts = 0;

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
wss.on('connection', (ws) => {
  connections++;
  ws.on('error', () => {});
  ws.on('close', () => closes++);
});
wss.on('error', (err) => {
  console.error(`broadcast-ws: ${err.message}`);
  process.exit(1);
});
wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

function broadcast(data) {
  let queued = 0;
  wss.clients.forEach(function each(client) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(data, { binary });
      queued++;
    }
  });
  return queued;
}

controlChannel(
  'broadcast-ws',
  () => ({ connections: connections - closes, accepted: connections, closes, broadcasts, path: 'wss.clients.forEach + send', binary }),
  {
    broadcast: (id) => {
      const queued = broadcast(broadcastMessage(seqArg(id)));
      broadcasts++;
      return { queued };
    },
  },
);

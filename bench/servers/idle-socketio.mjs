// Idle-connection bench server on socket.io (scenario d): WebSocket transport
// only, its default heartbeat (Engine.IO: the server sends a ping packet `2`
// every pingInterval = 25 s and closes a connection that has not answered
// `3` within pingTimeout = 20 s), perMessageDeflate off, no client bundle.
// engine.io runs on ws, which picks up bufferutil and utf-8-validate.
//
//   node --expose-gc bench/servers/idle-socketio.mjs
//
// Listens on 127.0.0.1, port 0, prints `listening <port>`, then answers the
// control commands of idle-common.mjs. Pings and pongs are counted from
// engine.io's packet events (`packetCreate` for what it sends, `packet` for
// what it receives); connections are socket.io sockets in the main namespace.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { controlChannel } from './idle-common.mjs';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, httpCompression: false, serveClient: false });

let connections = 0;
let closes = 0;
let pingsSent = 0;
let pongsReceived = 0;
const closeReasons = {};

// Shared listeners (no closure per connection): the counting should cost as little memory as it can.
function onPacketCreate(p) {
  if (p.type === 'ping') pingsSent++;
}
function onPacket(p) {
  if (p.type === 'pong') pongsReceived++;
}
function onDisconnect(reason) {
  closes++;
  closeReasons[reason] = (closeReasons[reason] ?? 0) + 1;
}

io.on('connection', (socket) => {
  connections++;
  socket.conn.on('packetCreate', onPacketCreate);
  socket.conn.on('packet', onPacket);
  socket.on('disconnect', onDisconnect);
});
http.on('error', (err) => {
  console.error(`idle-socketio: ${err.message}`);
  process.exit(1);
});
http.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});

controlChannel('idle-socketio', () => ({
  connections: connections - closes,
  engineClients: io.engine.clientsCount,
  accepted: connections,
  closes,
  closeCodes: closeReasons,
  pingInterval: io.engine.opts.pingInterval,
  pingTimeout: io.engine.opts.pingTimeout,
  pingsSent,
  pongsReceived,
}));

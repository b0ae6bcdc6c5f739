// Broadcast bench server on socket.io (scenario e): WebSocket transport only,
// perMessageDeflate off, broadcasting the socket.io way: io.emit('m', text)
// (the adapter encodes the packet once and writes it to every socket of the
// main namespace). Its heartbeat stays on (it cannot be turned off; the
// receivers answer its pings, every 25 s).
//
//   node --expose-gc bench/servers/broadcast-socketio.mjs
//
// Text only: a Buffer would go out as two frames (a placeholder event and a
// binary attachment). Listens on 127.0.0.1, port 0, prints `listening <port>`,
// then answers the control commands of idle-common.mjs plus `broadcast SEQ`:
// emits broadcastMessage(SEQ) as a string and answers
// `broadcast SEQ {"queued":N}` (N = engine.io clients).
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { broadcastMessage, seqArg } from './broadcast-common.mjs';
import { controlChannel } from './idle-common.mjs';

if (process.argv.includes('--binary')) {
  console.error('broadcast-socketio: --binary is not supported (socket.io sends binary as placeholder + attachment)');
  process.exit(2);
}
const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, httpCompression: false, serveClient: false });

let connections = 0;
let closes = 0;
let broadcasts = 0;

function onDisconnect() {
  closes++;
}
io.on('connection', (socket) => {
  connections++;
  socket.on('disconnect', onDisconnect);
});
http.on('error', (err) => {
  console.error(`broadcast-socketio: ${err.message}`);
  process.exit(1);
});
http.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});

controlChannel(
  'broadcast-socketio',
  () => ({ connections: connections - closes, engineClients: io.engine.clientsCount, accepted: connections, closes, broadcasts, path: "io.emit('m')", binary: false }),
  {
    broadcast: (id) => {
      io.emit('m', broadcastMessage(seqArg(id)).toString('latin1'));
      broadcasts++;
      return { queued: io.engine.clientsCount };
    },
  },
);

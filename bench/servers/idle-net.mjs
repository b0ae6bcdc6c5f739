// The physical reference for scenario d: a plain `net` server that accepts TCP
// connections and holds them, nothing else (no HTTP, no WebSocket, no reads
// beyond what net.Socket does by itself). Its RSS per connection is roughly
// what a Node process must spend per socket at the very least.
//
//   node --expose-gc bench/servers/idle-net.mjs
//
// Listens on 127.0.0.1, port 0, prints `listening <port>`, then answers the
// control commands of idle-common.mjs.
import net from 'node:net';
import { controlChannel } from './idle-common.mjs';

let connections = 0;
let closes = 0;

// Shared listener functions, no closure per connection (as in the other idle servers).
function onError() {}
function onClose() {
  closes++;
}
const server = net.createServer((sock) => {
  connections++;
  sock.on('error', onError);
  sock.on('close', onClose);
});
server.on('error', (err) => {
  console.error(`idle-net: ${err.message}`);
  process.exit(1);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

controlChannel('idle-net', () => ({
  connections: connections - closes,
  accepted: connections,
  closes,
  pingsSent: 0,
  pongsReceived: 0,
}));

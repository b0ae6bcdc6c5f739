// Broadcast floor for Node (scenario e): the least a Node server can do per
// delivery. node:http answers the WebSocket upgrade (RFC 6455 4.2.2, just
// enough for the bench's receivers), and a broadcast is one socket.write() of
// one pre-encoded frame per open socket: no WebSocket object, no parser, no
// per-client state beyond Node's own socket. Any Node WebSocket server pays at
// least this; it plays the part of the raw `net` echo of scenarios a-c.
//
//   node --expose-gc bench/servers/broadcast-net.mjs [--binary]
//
// Sockets get setNoDelay(true), as lifeline's do. Listens on 127.0.0.1, port
// 0, prints `listening <port>`, then answers the control commands of
// idle-common.mjs plus `broadcast SEQ` (as the other broadcast servers).
import { bareUpgradeServer } from '../lib/frames.mjs';
import { broadcastMessage, seqArg } from './broadcast-common.mjs';
import { controlChannel } from './idle-common.mjs';

const binary = process.argv.includes('--binary');
const sockets = new Set();
let connections = 0;
let closes = 0;
let broadcasts = 0;

function onClose() {
  sockets.delete(this);
  closes++;
}

const http = bareUpgradeServer((socket) => {
  socket.on('close', onClose);
  // The receivers never send after the handshake; anything they do send is dropped.
  socket.resume();
  sockets.add(socket);
  connections++;
});
http.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});

/** One unmasked frame (FIN, text or binary) around a payload under 126 bytes. */
function frame(payload) {
  const f = Buffer.allocUnsafe(2 + payload.length);
  f[0] = binary ? 0x82 : 0x81;
  f[1] = payload.length;
  payload.copy(f, 2);
  return f;
}

function broadcast(data) {
  const f = frame(data);
  let queued = 0;
  for (const s of sockets) {
    s.write(f);
    queued++;
  }
  return queued;
}

controlChannel(
  'broadcast-net',
  () => ({ connections: connections - closes, accepted: connections, closes, broadcasts, path: 'socket.write(frame) per socket', binary }),
  {
    broadcast: (id) => {
      const queued = broadcast(broadcastMessage(seqArg(id)));
      broadcasts++;
      return { queued };
    },
  },
);

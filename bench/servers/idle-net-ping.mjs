// Heartbeat floor for Node (scenario d): the least a Node server can spend per
// ping on an idle WebSocket connection. node:http answers the upgrade (RFC
// 6455 4.2.2, just enough for the bench's loadgen), then every connection gets
// one pre-encoded, empty ping frame (0x89 0x00) after 25 s (lifeline
// `normal`'s interval; --interval-ms to change it) and again every interval,
// one socket.write() each; the pong comes back through the socket's 'data'
// event and only stamps the time it arrived. No WebSocket object, no parser,
// no timeout: what a Node WebSocket server's heartbeat cannot do without.
// It plays for the idle-CPU goal the part the raw `net` echo plays in a-c.
// With --bare the upgrade is read off a bare node:net server instead
// (frames.mjs bareNetUpgradeServer): node:http's share of a connection's
// memory left out too, the floor of a server that owns its listening socket
// (scenario d's `net-ping-bare`, the floor its goals are set beside).
//
//   node --expose-gc bench/servers/idle-net-ping.mjs [--interval-ms 25000] [--bare]
//
// Pinging is driven by one 1 s timer over a queue of the connections in the
// order they fall due (all get the same interval, so a socket just pinged or
// just opened goes to the back): no timer per connection. Listens on 127.0.0.1,
// port 0, prints `listening <port>`, then answers the control commands of
// idle-common.mjs.
import { bareNetUpgradeServer, bareUpgradeServer } from '../lib/frames.mjs';
import { argValue, controlChannel } from './idle-common.mjs';

const intervalMs = Number(argValue('interval-ms', '25000'));
const bare = process.argv.includes('--bare');
const PING = Buffer.from([0x89, 0x00]);

/** Sockets in the order they fall due, from `head` on, and when each is due. */
let queue = [];
let dueAt = [];
let head = 0;
let connections = 0;
let closes = 0;
let pingsSent = 0;
let pongReads = 0;

// Times kept as ms since the start, `| 0` so that V8 stores a small integer
// in the socket itself: an epoch time (and even the difference of two, left
// a double) takes a 16-byte box per socket. The floor is also goal d's
// memory reference, so it must hold no more than a heartbeat needs.
const T0 = Date.now();

function onData() {
  // A pong (or several in one read): the floor only notes that the peer answered.
  this.lastSeen = (Date.now() - T0) | 0;
  pongReads++;
}
function onClose() {
  closes++;
}

const server = (bare ? bareNetUpgradeServer : bareUpgradeServer)((socket) => {
  const now = Date.now();
  socket.lastSeen = (now - T0) | 0;
  socket.on('close', onClose);
  socket.on('data', onData);
  queue.push(socket);
  dueAt.push(now + intervalMs);
  connections++;
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// A ping round takes the due sockets off the front and puts them at the back;
// the consumed front is dropped once it is half the queue.
setInterval(() => {
  const now = Date.now();
  const end = queue.length;
  while (head < end && dueAt[head] <= now) {
    const s = queue[head++];
    if (s.destroyed) continue;
    s.write(PING);
    pingsSent++;
    queue.push(s);
    dueAt.push(now + intervalMs);
  }
  if (head > queue.length >> 1) {
    queue = queue.slice(head);
    dueAt = dueAt.slice(head);
    head = 0;
  }
}, 1000).unref();

controlChannel(bare ? 'idle-net-ping --bare' : 'idle-net-ping', () => ({
  connections: connections - closes,
  accepted: connections,
  closes,
  pingsSent,
  pongsReceived: pongReads,
  intervalMs,
}));

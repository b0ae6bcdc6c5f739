// Broadcast bench server on lifeline (scenario e): a WebSocketServer from the
// compiled dist/, as users get it, broadcasting with server.broadcast(data,
// { binary }), which encodes the frame once and queues the same bytes to
// every open client.
//
// dist/ builds from before broadcast() existed get the loop an application
// would write instead (for each client: if OPEN, send); the server says
// which on stderr at start and in `stats` (path), and the bench prints it.
//
//   node --expose-gc bench/servers/broadcast-lifeline.mjs [--binary] [--loop]
//
// --loop forces the per-client loop even when broadcast() exists (to compare
// the two). permessage-deflate off, no heartbeat (plain WebSocketServer).
// Listens on 127.0.0.1, port 0, prints `listening <port>`, then answers the
// control commands of idle-common.mjs plus `broadcast SEQ`: sends
// broadcastMessage(SEQ) to every open client and answers
// `broadcast SEQ {"queued":N}` (broadcast()'s return value).
import { WebSocketServer } from '../../dist/server/index.js';
import { broadcastMessage, seqArg } from './broadcast-common.mjs';
import { controlChannel } from './idle-common.mjs';

const binary = process.argv.includes('--binary');
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', deflate: false });
const forceLoop = process.argv.includes('--loop');
const native = typeof wss.broadcast === 'function' && !forceLoop;
const path = native ? 'server.broadcast()' : forceLoop ? 'per-client send loop (--loop)' : 'per-client send loop [FALLBACK: this dist/ has no broadcast()]';
process.stderr.write(`broadcast-lifeline: using ${path}\n`);

let connections = 0;
let closes = 0;
let broadcasts = 0;

wss.on('connection', (ws) => {
  connections++;
  ws.on('error', () => {});
  ws.on('close', () => closes++);
});
wss.on('error', (err) => {
  console.error(`broadcast-lifeline: ${err.message}`);
  process.exit(1);
});
wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

function broadcast(data) {
  if (native) return wss.broadcast(data, { binary });
  let queued = 0;
  for (const c of wss.clients) {
    if (c.readyState === 1) {
      c.send(data, { binary });
      queued++;
    }
  }
  return queued;
}

controlChannel(
  'broadcast-lifeline',
  () => ({ connections: connections - closes, clients: wss.clients.size, accepted: connections, closes, broadcasts, path, binary }),
  {
    broadcast: (id) => {
      const queued = broadcast(broadcastMessage(seqArg(id)));
      broadcasts++;
      return { queued };
    },
  },
);

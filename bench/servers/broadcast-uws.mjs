// Broadcast bench server on uWebSockets.js (scenario e): the native addon
// (loadUwsNative: never the JS fallback), broadcasting the uWS way: every
// connection subscribes to topic 'b' when it opens, and a broadcast is
// app.publish('b', data, isBinary).
//
//   node --expose-gc bench/servers/broadcast-uws.mjs [--binary]
//
// Compression off, idle timeout off (no pings during the run, like the other
// broadcast servers), maxBackpressure raised so that no publish is ever
// skipped for a slow receiver (uWS skips a subscriber over the limit instead
// of queueing; the bench would count that as a lost message). Listens on
// 127.0.0.1, port 0, prints `listening <port>`, then answers the control
// commands of idle-common.mjs plus `broadcast SEQ`: publishes
// broadcastMessage(SEQ) and answers `broadcast SEQ {"queued":N}` (N = the
// topic's subscribers).
import { createRequire } from 'node:module';
import { broadcastMessage, seqArg } from './broadcast-common.mjs';
import { loadUwsNative } from './common.mjs';
import { controlChannel } from './idle-common.mjs';

const uWS = loadUwsNative('broadcast-uws', createRequire(import.meta.url));
const binary = process.argv.includes('--binary');

let connections = 0;
let closes = 0;
let broadcasts = 0;
let backpressured = 0;
const app = uWS.App();
app
  .ws('/*', {
    compression: uWS.DISABLED,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    open: (ws) => {
      connections++;
      ws.subscribe('b');
    },
    drain: () => {
      backpressured++;
    },
    close: () => {
      closes++;
    },
  })
  .listen('127.0.0.1', 0, (listenSocket) => {
    if (!listenSocket) {
      console.error('broadcast-uws: listen failed');
      process.exit(1);
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(listenSocket)}\n`);
  });

controlChannel(
  'broadcast-uws',
  () => ({ connections: connections - closes, subscribers: app.numSubscribers('b'), accepted: connections, closes, broadcasts, drains: backpressured, path: "app.publish('b')", binary }),
  {
    broadcast: (id) => {
      app.publish('b', broadcastMessage(seqArg(id)), binary);
      broadcasts++;
      return { queued: app.numSubscribers('b') };
    },
  },
);

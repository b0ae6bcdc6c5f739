// Idle-connection bench server on uWebSockets.js (scenario d): the native
// addon (loadUwsNative: never the JS fallback) with its built-in heartbeat,
// the uWS counterpart of ws's README heartbeat: idleTimeout +
// sendPingsAutomatically. uWS pings a connection that has been quiet for
// idleTimeout minus a margin, and closes it when the margin passes without an
// answer; the margin is 4, 8 or 16 s (16 from an idleTimeout of 32 up), and
// its timers tick every 4 s. So --idle-timeout 60 (the default here) pings
// after about 44 s of quiet, and 40 after about 24 s, lifeline normal's
// cadence (measured: with 40 every connection is pinged within a 30 s window
// that starts right after connecting, with 60 none is).
//
//   node --expose-gc bench/servers/idle-uws.mjs [--idle-timeout 60]
//
// Compression off. Listens on 127.0.0.1, port 0, prints `listening <port>`,
// then answers the control commands of idle-common.mjs. uWS does not tell
// when it pings, so `stats` has pingsSent: null (the bench takes the pings
// the loadgen received instead) and counts pongs in the `pong` handler.
import { createRequire } from 'node:module';
import { loadUwsNative } from './common.mjs';
import { argValue, controlChannel } from './idle-common.mjs';

const uWS = loadUwsNative('idle-uws', createRequire(import.meta.url));

const idleTimeout = Number(argValue('idle-timeout', '60'));
if (!Number.isInteger(idleTimeout) || idleTimeout < 8 || idleTimeout % 4 !== 0) {
  console.error(`idle-uws: --idle-timeout must be a multiple of 4, at least 8 (uWS's granularity), got ${argValue('idle-timeout')}`);
  process.exit(2);
}

let connections = 0;
let closes = 0;
let pongsReceived = 0;
const closeCodes = {};

uWS
  .App()
  .ws('/*', {
    compression: uWS.DISABLED,
    idleTimeout,
    sendPingsAutomatically: true,
    open: () => {
      connections++;
    },
    pong: () => {
      pongsReceived++;
    },
    close: (ws, code) => {
      closes++;
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    },
  })
  .listen('127.0.0.1', 0, (listenSocket) => {
    if (!listenSocket) {
      console.error('idle-uws: listen failed');
      process.exit(1);
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(listenSocket)}\n`);
  });

controlChannel('idle-uws', () => ({
  idleTimeout,
  connections: connections - closes,
  accepted: connections,
  closes,
  closeCodes,
  pingsSent: null,
  pongsReceived,
}));

// Bench echo server on uWebSockets.js (@trufflesuite/uws-js-unofficial, a
// registry build of uNetworking's uWebSockets.js with its native binaries).
//
// The native addon is loaded directly by its file name, never through the
// package's main: that one silently falls back to a pure-JS implementation
// when the binary does not load, and a bench against the fallback would
// flatter us. If the binary is missing or does not load, this prints a loud
// error and exits 1 (the run fails).
//
// Compression off (DISABLED), idle timeout off (0: no timer-driven closes or
// pings during a run), backpressure limits raised so that nothing is ever
// dropped (uWS drops a send over maxBackpressure instead of queueing it).
// Listens on 127.0.0.1, port 0 (or --port N), prints `listening <port>`,
// echoes every message as received (text stays text). `--check` only loads
// the binary and prints `uws native ok <file>`.
import { createRequire } from 'node:module';
import { UWS_BINARY, exitOnSignal, loadUwsNative, portArg } from './common.mjs';

const require = createRequire(import.meta.url);
const uWS = loadUwsNative('uws-echo', require);

if (process.argv.includes('--check')) {
  process.stdout.write(`uws native ok ${UWS_BINARY}\n`);
  process.exit(0);
}

let dropped = 0;
uWS
  .App()
  .ws('/*', {
    compression: uWS.DISABLED,
    // Larger than any bench message (scenario b sends 16 KiB; uWS closes the
    // connection on a bigger one, default 16 KiB exactly).
    maxPayloadLength: 16 * 1024 * 1024,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    maxBackpressure: 256 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    message: (ws, msg, isBinary) => {
      // 1 = sent, 0 = queued (backpressure, drains by itself), 2 = dropped.
      if (ws.send(msg, isBinary) === 2 && dropped++ === 0) console.error('uws-echo: a send was dropped (backpressure limit)');
    },
  })
  .listen('127.0.0.1', portArg(), (listenSocket) => {
    if (!listenSocket) {
      console.error('uws-echo: listen failed');
      process.exit(1);
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(listenSocket)}\n`);
  });
exitOnSignal();

// Bench echo server on socket.io: what a typical "realtime" Node app runs.
// WebSocket transport only (no long-polling, no upgrade dance),
// perMessageDeflate off, no client bundle served. The echo is the idiomatic
// one: `socket.on('m', (d) => socket.emit('m', d))`. The loadgen speaks
// Engine.IO v4 / Socket.IO v5 framing over a raw WebSocket itself
// (loadgen.mjs --protocol socketio). engine.io uses ws underneath, which picks
// up bufferutil and utf-8-validate from the top-level node_modules.
// Listens on 127.0.0.1, port 0 (or --port N), prints `listening <port>`.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { exitOnSignal, portArg } from './common.mjs';

const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  // Above scenario b's 16 KiB (default 1 MB is enough; explicit for clarity).
  maxHttpBufferSize: 16 * 1024 * 1024,
});
io.on('connection', (socket) => {
  socket.on('m', (d) => socket.emit('m', d));
});
http.on('error', (err) => {
  console.error(`socketio-echo: ${err.message}`);
  process.exit(1);
});
http.listen(portArg(), '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});
exitOnSignal();

// Bench echo server on lifeline (the compiled dist/, as users get it).
// Listens on 127.0.0.1, port 0 (or --port N), prints `listening <port>`, echoes
// every message as received (text stays text). SIGTERM/SIGINT exit 0 after a
// normal exit, so `node --cpu-prof` gets to write its profile.
import { WebSocketServer } from '../../dist/server/index.js';
import { exitOnSignal, portArg } from './common.mjs';

const wss = new WebSocketServer({ port: portArg(), host: '127.0.0.1', deflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    // send() throws once the socket is closing (ws's send reports that through
    // its callback instead); the check keeps a late message from crashing us.
    if (ws.readyState === 1) ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {}); // peer faults end the connection; the loadgen reports them
});
wss.on('error', (err) => {
  console.error(`lifeline-echo: ${err.message}`);
  process.exit(1);
});
wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});
exitOnSignal();

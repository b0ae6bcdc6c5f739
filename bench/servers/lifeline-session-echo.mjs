// Bench echo server on lifeline's session layer (scenario g): a LifelineServer
// from the compiled dist/, as users get it, heartbeat 'normal'. Peers that
// speak lifeline.v1 (loadgen.mjs --protocol lifeline) get sessions: seq and
// ack on every message, a replay buffer, app pings. Every application message
// is echoed as received (text stays text) through ServerSession.send.
// Listens on 127.0.0.1, port 0 (or --port N), prints `listening <port>`.
// SIGTERM/SIGINT exit 0 after a normal exit, so `node --cpu-prof` gets to
// write its profile.
import { LifelineServer } from '../../dist/server/index.js';
import { exitOnSignal, portArg } from './common.mjs';

// deflate off, as in lifeline-echo.mjs (the plain side of the ratio).
const server = new LifelineServer({ port: portArg(), host: '127.0.0.1', deflate: false, heartbeat: 'normal' });
server.on('connection', (session) => {
  session.on('message', (data, isBinary) => {
    // send() throws once the session is closing; the check keeps a late
    // message (the loadgen closes at the end) from crashing us.
    const st = session.state;
    if (st === 'open' || st === 'detached') session.send(data, { binary: isBinary });
  });
  session.on('error', () => {}); // peer faults end the connection; the loadgen reports them
});
server.on('error', (err) => {
  console.error(`lifeline-session-echo: ${err.message}`);
  process.exit(1);
});
server.on('listening', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
exitOnSignal();

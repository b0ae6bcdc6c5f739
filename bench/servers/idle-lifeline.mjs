// Idle-connection bench server on lifeline (scenario d): a LifelineServer from
// the compiled dist/, as users get it, holding every connection open with
// heartbeats on. Plain WebSocket peers get protocol pings; peers that offer
// lifeline.v1 get app-level pings ({"t":"ping","ts":N}) after their hello.
//
//   node --expose-gc bench/servers/idle-lifeline.mjs [--heartbeat normal|aggressive|off|JSON]
//        [--max-connections N]
//
// --heartbeat JSON passes a config object as is, e.g. '{"preset":"normal","interval":6000}'
// (scenario f shortens the interval so that pings happen within its window).
// --max-connections raises the server's limit (default 100,000) for scenario
// f, which may hold exactly 100,000.
//
// Listens on 127.0.0.1, port 0, prints `listening <port>`, then answers the
// control commands of idle-common.mjs; `stats` reports server.stats() plus
// the connections held and every close seen (the run expects none).
import { LifelineServer } from '../../dist/server/index.js';
import { argValue, controlChannel } from './idle-common.mjs';

const hbArg = argValue('heartbeat', 'normal');
const heartbeat = hbArg.startsWith('{') ? JSON.parse(hbArg) : hbArg;
const maxConnections = argValue('max-connections') === undefined ? undefined : Number(argValue('max-connections'));
const server = new LifelineServer({ port: 0, host: '127.0.0.1', deflate: false, heartbeat, ...(maxConnections ? { maxConnections } : {}) });

let transportConnections = 0;
let transportCloses = 0;
let sessionCloses = 0;
const closeCodes = {};
// Socket closes by code and cause: a lifeline.v1 session outlives its socket
// (it waits sessionTtl for a resume), so session closes alone would miss them.
const socketCloses = {};

// What an application does: listen for its sessions' closes and errors. The
// listeners are shared functions (`this` is the emitter), not closures per
// connection, as in idle-ws.mjs: the figure is the library's, not the app's.
function onSessionError() {}
function onSessionClose(info) {
  sessionCloses++;
  const k = `${info.code} ${info.cause}`;
  closeCodes[k] = (closeCodes[k] ?? 0) + 1;
}
function onSocketClose(code) {
  transportCloses++;
  const k = `${code} ${this.closeCause ?? '?'}`;
  socketCloses[k] = (socketCloses[k] ?? 0) + 1;
}
server.on('connection', (session) => {
  session.on('error', onSessionError);
  session.on('close', onSessionClose);
});
// Counted on the transport too: a lifeline.v1 peer whose hello never arrived
// has no session 'connection' event but still holds a socket.
server.transport.on('connection', (ws) => {
  transportConnections++;
  ws.on('close', onSocketClose);
});
server.on('error', (err) => {
  console.error(`idle-lifeline: ${err.message}`);
  process.exit(1);
});
server.on('listening', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

controlChannel('idle-lifeline', () => {
  const s = server.stats();
  return {
    heartbeat,
    // Connections the server holds now (open sockets).
    connections: transportConnections - transportCloses,
    sessions: s.sessions,
    accepted: s.accepted,
    closes: transportCloses,
    sessionCloses,
    closedByCause: s.closed,
    // Sockets lost under lifeline.v1 sessions (which then wait for a resume), by reason.
    lost: s.lost,
    closeCodes,
    socketCloses,
    pingsSent: s.pingsSent,
    pongsReceived: s.pongsReceived,
    pingsMissed: s.pingsMissed,
    rtt: s.rtt,
    messagesIn: s.messagesIn,
    messagesOut: s.messagesOut,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
  };
});

// Child process for packet-loss.test.ts, run inside a LossyLink namespace:
//
//   node --import tsx netns-peer.ts server '<heartbeat JSON>'
//   node --import tsx netns-peer.ts client ws://127.0.0.1:PORT/
//
// Speaks JSON lines: events on stdout ({"ev": ..., "at": Date.now(), ...}),
// commands on stdin ("stats", "send"). The server reports each session's
// liveness changes, messages and end (close or detached, with the cause); the
// client opens one LifelineClient (reconnect off) and one plain `ws` client and
// reports their events. Exits when stdin closes.

import { createInterface } from 'node:readline';
import { WebSocket as WsClient } from 'ws';

import { LifelineClient } from '../../../src/client/lifeline-client.js';
import { LifelineServer, type ServerSession } from '../../../src/server/lifeline-server.js';

function out(ev: string, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ ev, at: Date.now(), ...data })}\n`);
}

const [role, arg] = process.argv.slice(2);
const commands = createInterface({ input: process.stdin });
commands.on('close', () => process.exit(0));

if (role === 'server') {
  const server = new LifelineServer({ port: 0, host: '127.0.0.1', heartbeat: JSON.parse(arg!) });
  const sessions: Array<{ name: string; s: ServerSession }> = [];
  server.on('listening', () => {
    const a = server.address();
    out('listening', { port: typeof a === 'object' && a ? a.port : null });
  });
  server.on('connection', (s) => {
    const name = s.mode === 'lifeline' ? 'lifeline' : 'ws';
    sessions.push({ name, s });
    out('connection', { name });
    s.on('liveness', (state) => out('liveness', { name, state }));
    s.on('message', () => out('message', { name }));
    s.on('close', (i) => out('end', { name, via: 'close', cause: i.cause }));
    s.on('detached', (cause) => out('end', { name, via: 'detached', cause }));
  });
  commands.on('line', (line) => {
    if (line === 'stats') out('stats', { sessions: sessions.map(({ name, s }) => ({ name, state: s.state, heartbeat: s.stats().heartbeat })) });
  });
} else if (role === 'client') {
  const url = arg!;
  const ll = new LifelineClient(url, { reconnect: false });
  ll.on('error', () => {});
  ll.on('open', () => out('open', { name: 'lifeline' }));
  ll.on('liveness', (state) => out('liveness', { name: 'lifeline', state }));
  ll.on('close', (i) => out('end', { name: 'lifeline', via: 'close', cause: i.cause }));
  const ws = new WsClient(url);
  ws.on('error', () => {});
  ws.on('open', () => out('open', { name: 'ws' }));
  ws.on('close', (code) => out('end', { name: 'ws', via: 'close', cause: `code ${code}` }));
  commands.on('line', (line) => {
    if (line === 'stats') out('stats', { client: ll.stats().heartbeat, state: ll.state });
    if (line === 'send') {
      if (ll.state === 'open') ll.send('x');
      if (ws.readyState === WsClient.OPEN) ws.send('x');
    }
  });
} else {
  process.stderr.write(`usage: netns-peer.ts server HEARTBEAT_JSON | client URL\n`);
  process.exit(2);
}

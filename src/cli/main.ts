/**
 * The `lifeline` command line: `echo` (an echo server for harnesses and
 * demos) and `connect` (an interactive client, wscat-like).
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { ClientWebSocket } from '../transport/node/client.js';
import { LifelineServer } from '../server/lifeline-server.js';
import { parseHeartbeatSpec } from '../session/heartbeat.js';

const USAGE = `Usage:
  lifeline echo [--port N] [--host H] [--path P] [--deflate] [--max-message BYTES]
                [--heartbeat normal|aggressive|off|INTERVAL_MS:TIMEOUT_MS]
                [--tls-cert CERT.pem --tls-key KEY.pem]
      Echo server: every message goes back as received (text stays text), to
      plain WebSocket peers and lifeline.v1 clients alike. Dead peers are closed
      per the heartbeat (default normal: 30-40 s of silence; aggressive: 6-9 s).
      With a certificate and its key it serves wss:// (TLS).
      Prints "listening ws://HOST:PORT" (or wss://) when ready. Defaults: port
      8080, host 127.0.0.1.
  lifeline connect URL [--protocol P]... [--deflate] [--origin O] [--ca CA.pem]
      Interactive client: stdin lines are sent as text, messages are printed.
      For wss://, --ca trusts that certificate (a self-signed server's own).
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'echo':
        return await echo(rest);
      case 'connect':
        return await connectCmd(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        process.stderr.write(`lifeline: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
        return 1;
    }
  } catch (err) {
    process.stderr.write(`lifeline: ${(err as Error).message}\n`);
    return 1;
  }
}

function parseIntArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

async function echo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      path: { type: 'string' },
      deflate: { type: 'boolean' },
      'max-message': { type: 'string' },
      heartbeat: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
  });
  const port = parseIntArg('port', values.port, 8080);
  const host = values.host ?? '127.0.0.1';
  const heartbeat = parseHeartbeatSpec(values.heartbeat ?? 'normal');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
  // wss://: an HTTPS server of our own that the WebSocket server attaches to.
  const tls =
    values['tls-cert'] !== undefined
      ? https.createServer({ cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) })
      : null;
  if (tls) {
    await new Promise<void>((resolve, reject) => {
      tls.once('error', reject);
      tls.listen(port, host, () => {
        tls.off('error', reject);
        resolve();
      });
    });
  }
  const wss = new LifelineServer({
    ...(tls ? { server: tls } : { port, host }),
    path: values.path,
    deflate: values.deflate ?? false,
    maxMessageSize: parseIntArg('max-message', values['max-message'], 64 * 1024 * 1024),
    heartbeat: heartbeat ?? 'off',
  });
  wss.on('connection', (session) => {
    session.on('message', (data, isBinary) => {
      if (session.state === 'open') session.send(data, { binary: isBinary });
    });
  });
  // Signal handlers go in before "listening" is printed: a supervisor may
  // send SIGTERM the moment it reads that line.
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  if (!tls) {
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
  }
  const addr = tls ? tls.address() : wss.address();
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const shownPort = addr && typeof addr === 'object' ? addr.port : port;
  process.stdout.write(`listening ${tls ? 'wss' : 'ws'}://${shownHost}:${shownPort}${values.path ?? ''}\n`);
  await stopped;
  await wss.close({ timeout: 2000 });
  if (tls) {
    tls.closeAllConnections();
    await new Promise<void>((resolve) => tls.close(() => resolve()));
  }
  return 0;
}

async function connectCmd(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      protocol: { type: 'string', multiple: true },
      deflate: { type: 'boolean' },
      origin: { type: 'string' },
      ca: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const url = positionals[0];
  if (!url) throw new Error('connect needs a URL, e.g. lifeline connect ws://127.0.0.1:8080');
  const ws = new ClientWebSocket(url, {
    protocols: values.protocol,
    deflate: values.deflate ?? false,
    origin: values.origin,
    tls: values.ca !== undefined ? { ca: readFileSync(values.ca) } : undefined,
  });
  return await new Promise<number>((resolve) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    ws.on('open', () => {
      process.stderr.write(`connected (${url}${ws.protocol ? `, protocol ${ws.protocol}` : ''})\n`);
      rl.on('line', (line) => {
        if (ws.readyState === ws.OPEN_STATE) ws.send(line);
      });
      rl.on('close', () => ws.close(1000));
    });
    ws.on('message', (data, isBinary) => {
      process.stdout.write(isBinary ? `< [binary ${data.length} bytes] ${data.toString('hex').slice(0, 64)}\n` : `< ${data.toString('utf8')}\n`);
    });
    ws.on('error', (err) => process.stderr.write(`error: ${err.message}\n`));
    ws.on('close', (code, reason) => {
      process.stderr.write(`closed ${code}${reason ? ` ${reason}` : ''}\n`);
      rl.close();
      resolve(code === 1000 || code === 1005 ? 0 : 1);
    });
  });
}

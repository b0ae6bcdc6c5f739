// Node's built-in WebSocket client (undici's WHATWG WebSocket), remote-controlled
// by lifeline's interop tests (test/interop/node-websocket.test.ts).
//
//   node [--experimental-websocket] node-websocket-peer.mjs
//
// On Node 20 the global WebSocket needs --experimental-websocket; from Node 22
// it is always there. Reads one JSON command per line on stdin, writes one
// JSON event per line on stdout; exits when stdin closes. Commands:
//
//   {"op": "connect", "id": N, "url": ..., "protocols": [...]}   (id chosen by the test)
//   {"op": "send", "id": N, "text": ...} | {"op": "send", "id": N, "b64": ...}
//   {"op": "send_random", "id": N, "size": BYTES}   random binary; reports its sha256
//   {"op": "close", "id": N, "code": C, "reason": R}
//
// Events: ready {undici, node}; open {id, protocol, extensions};
// message {id, binary, len, sha256, text|b64 (when short)}; sent {id, len, sha256};
// error {id}; close {id, code, reason, wasClean}; unavailable.

import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const SHORT = 65536;

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function describe(data) {
  const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const d = { binary: typeof data !== 'string', len: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
  if (raw.length <= SHORT) {
    if (typeof data === 'string') d.text = data;
    else d.b64 = raw.toString('base64');
  }
  return d;
}

if (typeof globalThis.WebSocket !== 'function') {
  emit({ event: 'unavailable', node: process.version });
  process.exit(0);
}

const sockets = new Map();
let nextId = 0;

function onCommand(cmd) {
  if (cmd.op === 'connect') {
    const id = cmd.id ?? ++nextId;
    let ws;
    try {
      ws = new WebSocket(cmd.url, cmd.protocols ?? []);
    } catch (err) {
      emit({ event: 'connect_error', id, message: String(err) });
      return;
    }
    ws.binaryType = 'arraybuffer';
    sockets.set(id, ws);
    ws.addEventListener('open', () => emit({ event: 'open', id, protocol: ws.protocol, extensions: ws.extensions }));
    ws.addEventListener('message', (ev) => emit({ event: 'message', id, ...describe(ev.data) }));
    ws.addEventListener('error', (ev) => emit({ event: 'error', id, message: String(ev.message ?? ev.error ?? '') }));
    ws.addEventListener('close', (ev) => {
      sockets.delete(id);
      emit({ event: 'close', id, code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
    });
    return;
  }
  const ws = sockets.get(cmd.id);
  if (!ws) {
    emit({ event: 'error', op: cmd.op, message: `no such connection ${cmd.id}` });
    return;
  }
  if (cmd.op === 'send') {
    const data = 'text' in cmd ? cmd.text : Buffer.from(cmd.b64, 'base64');
    ws.send(data);
    emit({ event: 'sent', id: cmd.id, ...describe(data) });
  } else if (cmd.op === 'send_random') {
    const data = randomBytes(cmd.size);
    ws.send(data);
    emit({ event: 'sent', id: cmd.id, binary: true, len: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  } else if (cmd.op === 'close') {
    if (cmd.code === undefined) ws.close();
    else ws.close(cmd.code, cmd.reason ?? '');
  } else {
    emit({ event: 'error', op: cmd.op, message: 'unknown op' });
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  try {
    onCommand(JSON.parse(line));
  } catch (err) {
    emit({ event: 'error', op: 'command', message: String(err) });
  }
});
rl.on('close', () => {
  for (const ws of sockets.values()) ws.close();
  process.exit(0);
});

emit({ event: 'ready', node: process.version, undici: process.versions.undici ?? null });

// Shared helpers for the limit boundary tests (test/integration/limits/).
//
// - rawUpgrade(): a WebSocket opening handshake over a plain net.Socket, so a
//   test controls every byte (slow readers, trickled or oversized requests)
//   and sees the server's exact HTTP answer (status + headers).
// - FrameReader: parses what a server sends (unmasked frames), recording
//   numbered binary messages and the close frame, and noticing any framing
//   corruption (a truncated frame followed by other bytes shows up as one).
// - echoCheck(): a healthy client connects and gets an echo: the server keeps serving.

import net from 'node:net';
import { randomBytes } from 'node:crypto';

import { connect } from '../../../src/transport/node/client.js';
import type { WebSocketServer } from '../../../src/transport/node/server.js';
import type { WebSocket } from '../../../src/transport/node/websocket.js';
import { maskedClientFrame } from '../../helpers/frames.js';
import { ms, once, withTimeout } from '../../helpers/peers.js';

export interface HttpHead {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  /** Bytes after the head (frames for a 101, the body otherwise). */
  rest: Buffer;
}

/** Parses an HTTP/1.1 response head out of `buf`, or null while it is incomplete. */
export function parseHead(buf: Buffer): HttpHead | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers, rest: buf.subarray(end + 4) };
}

/** The request head of a WebSocket upgrade (RFC 6455 4.1), with optional extra header lines. */
export function upgradeRequest(port: number, opts: { path?: string; protocols?: string[]; extra?: string[] } = {}): string {
  const lines = [
    `GET ${opts.path ?? '/'} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (opts.protocols?.length) lines.push(`Sec-WebSocket-Protocol: ${opts.protocols.join(', ')}`);
  for (const l of opts.extra ?? []) lines.push(l);
  return lines.join('\r\n') + '\r\n\r\n';
}

export interface RawResult {
  socket: net.Socket;
  head: HttpHead;
}

/** Connects to 127.0.0.1:port over TCP (guarded). */
export function tcpConnect(port: number, timeoutMs = ms(5000)): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  return withTimeout(once(s, 'connect', timeoutMs).then(() => s), timeoutMs + 100, 'TCP connect');
}

/**
 * Reads from `socket` until an HTTP response head arrived. The data listener
 * is removed afterwards (the socket is left flowing=false: paused), so the
 * caller decides whether this peer reads any further.
 */
export function readHead(socket: net.Socket, timeoutMs = ms(5000)): Promise<HttpHead> {
  return withTimeout(
    new Promise<HttpHead>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        let head: HttpHead | null;
        try {
          head = parseHead(buf);
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (head) {
          done();
          socket.pause();
          resolve(head);
        }
      };
      const onEnd = () => {
        done();
        reject(new Error(`connection ended before a response head (got ${JSON.stringify(buf.toString('latin1').slice(0, 200))})`));
      };
      const done = () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
      };
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
    }),
    timeoutMs,
    'an HTTP response head',
  );
}

/** Sends an upgrade request over a fresh TCP connection and reads the answer's head. */
export async function rawUpgrade(port: number, opts: { path?: string; protocols?: string[]; extra?: string[] } = {}, timeoutMs = ms(5000)): Promise<RawResult> {
  const socket = await tcpConnect(port, timeoutMs);
  socket.write(upgradeRequest(port, opts));
  try {
    const head = await readHead(socket, timeoutMs);
    return { socket, head };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** Resolves when `socket` is closed (guarded). */
export function socketClosed(socket: net.Socket, timeoutMs = ms(5000)): Promise<void> {
  if (socket.destroyed || socket.closed) return Promise.resolve();
  return withTimeout(once(socket, 'close', timeoutMs).then(() => undefined), timeoutMs + 100, 'socket close');
}

// ------------------------------------------------------------------ frames

export interface ReadFrame {
  opcode: number;
  fin: boolean;
  length: number;
}

/**
 * An incremental parser for the frames a server sends (unmasked, RFC 6455
 * 5.2). Binary messages are numbered by their first 4 bytes (uint32 BE);
 * anything not a well-formed server frame marks the stream `corrupt`.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Sequence numbers of complete binary messages, in arrival order. */
  readonly seqs: number[] = [];
  dataBytes = 0;
  closeCode: number | null = null;
  closeReason = '';
  /** Frames after the close frame (must be none). */
  afterClose = 0;
  corrupt: string | null = null;
  bytesRead = 0;
  private inMessage = false;
  private onChange: (() => void) | null = null;

  push(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    if (this.corrupt) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    for (;;) {
      const b = this.buf;
      if (b.length - off < 2) break;
      const b0 = b[off]!;
      const b1 = b[off + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const rsv = b0 & 0x70;
      const opcode = b0 & 0x0f;
      if (b1 & 0x80) {
        this.corrupt = `masked server frame at stream byte ${this.bytesRead - (b.length - off)}`;
        break;
      }
      if (rsv !== 0 || ![0, 1, 2, 8, 9, 10].includes(opcode)) {
        this.corrupt = `bad frame header 0x${b0.toString(16)} at stream byte ${this.bytesRead - (b.length - off)}`;
        break;
      }
      let len = b1 & 0x7f;
      let hlen = 2;
      if (len === 126) {
        if (b.length - off < 4) break;
        len = b.readUInt16BE(off + 2);
        hlen = 4;
      } else if (len === 127) {
        if (b.length - off < 10) break;
        const big = b.readBigUInt64BE(off + 2);
        if (big > BigInt(1 << 30)) {
          this.corrupt = `implausible frame length ${big} at stream byte ${this.bytesRead - (b.length - off)}`;
          break;
        }
        len = Number(big);
        hlen = 10;
      }
      if (b.length - off < hlen + len) break;
      const payload = b.subarray(off + hlen, off + hlen + len);
      off += hlen + len;
      if (this.closeCode !== null) this.afterClose++;
      if (opcode === 8) {
        this.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.subarray(2).toString('utf8');
      } else if (opcode === 2 || opcode === 0) {
        if (opcode === 2 && this.inMessage) {
          this.corrupt = 'new data frame inside a fragmented message';
          break;
        }
        // This suite sends unfragmented numbered messages.
        if (!fin) this.inMessage = true;
        else this.inMessage = false;
        if (len >= 4) this.seqs.push(payload.readUInt32BE(0));
        this.dataBytes += len;
      }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
    this.onChange?.();
  }

  /** Bytes received but not yet a whole frame. */
  get partial(): number {
    return this.buf.length;
  }

  /** Starts feeding from `socket` (resuming it); resolves when it closes. */
  drain(socket: net.Socket, timeoutMs: number): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        socket.on('data', (c: Buffer) => this.push(c));
        if (socket.destroyed || socket.closed) resolve();
        else socket.once('close', () => resolve());
        socket.resume();
      }),
      timeoutMs,
      'the peer to read to the end of the stream',
    );
  }

  /** Resolves once `check()` holds (checked after each chunk), guarded. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        this.onChange = () => {
          if (check()) {
            this.onChange = null;
            resolve();
          }
        };
      }),
      timeoutMs,
      what,
    ).finally(() => {
      this.onChange = null;
    });
  }
}

/** A masked client close frame (RFC 6455 5.5.1), as the raw peer's answer. */
export function clientCloseFrame(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code, 0);
  return maskedClientFrame(0x8, payload);
}

// ------------------------------------------------------------------ health

/** Makes `wss` echo every message (idempotent per server). */
export function echo(wss: WebSocketServer): void {
  if ((wss as { __echo?: boolean }).__echo) return;
  (wss as { __echo?: boolean }).__echo = true;
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (ws.readyState === 1) ws.send(data, { binary: isBinary });
    });
  });
}

/** A healthy client connects, gets its message echoed, and closes: the server keeps serving. */
export async function echoCheck(port: number, what = 'healthy client'): Promise<void> {
  const ws = await withTimeout(connect(`ws://127.0.0.1:${port}/`, { handshakeTimeout: ms(3000) }), ms(4000), `${what} to connect`);
  ws.on('error', () => {});
  try {
    const token = `ping-${randomBytes(4).toString('hex')}`;
    const got = once<Buffer>(ws, 'message', ms(3000));
    ws.send(token);
    const data = await got;
    if (data.toString() !== token) throw new Error(`${what}: echo mismatch: ${JSON.stringify(data.toString())}`);
  } finally {
    const closed = once(ws, 'close', ms(3000)).catch(() => ws.terminate());
    ws.close(1000);
    await closed;
  }
}

/** Percentile (nearest rank) of an unsorted sample. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

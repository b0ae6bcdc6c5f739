/**
 * Adapts the Node ClientWebSocket to the WHATWG-style SocketLike the session
 * client drives, so one LifelineClient implementation serves Node and
 * browsers. Beyond the browser's API it reports read activity (bytes still
 * arriving count as life) and can terminate a dead connection at once.
 *
 * It also keeps the session's messages out of the transport's slow-consumer
 * policy: past the socket's highWaterMark it writes nothing more until
 * 'drain', and what is sent meanwhile waits here, in order. Every such
 * message is also in the client's outbox (bounded by outboxMaxBytes, which
 * send() enforces), so this queue holds references, not copies, and a
 * resume, which resends the whole unacknowledged outbox at once, cannot pass
 * the socket's maxBufferedBytes and end the connection it resumes on.
 */
import { Buffer } from 'node:buffer';
import { ClientWebSocket, type ClientOptions } from '../transport/node/client.js';
import { sequencedSocketOptions } from '../transport/node/websocket.js';
import type { SocketLike } from '../session/lifeline-client.js';

export class NodeSocket implements SocketLike {
  readonly ws: ClientWebSocket;
  binaryType = 'arraybuffer';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onactivity: ((bytes: number) => void) | null = null;
  /** Messages waiting for the socket's 'drain', oldest first; null when the socket is not congested. */
  private waiting: Array<string | Buffer> | null = null;
  private waitingBytes = 0;

  constructor(url: string, protocols: string[], options: ClientOptions = {}) {
    // lifeline.v1 is sequenced: the transport must not drop its messages one by one.
    const ws = new ClientWebSocket(url, sequencedSocketOptions({ ...options, protocols }));
    this.ws = ws;
    ws.onActivity = (n) => this.onactivity?.(n);
    ws.on('open', () => this.onopen?.({}));
    ws.on('message', (data, isBinary) => {
      // Text as string, binary as a Uint8Array view (no copy), as a browser with binaryType 'arraybuffer' would give.
      this.onmessage?.({ data: isBinary ? data : data.toString('utf8') });
    });
    ws.on('error', (err) => this.onerror?.(err));
    ws.on('drain', () => this.writeWaiting(false));
    ws.on('close', (code, reason) => this.onclose?.({ code, reason, wasClean: code !== 1006 }));
  }

  get readyState(): number {
    return this.ws.readyState;
  }
  get protocol(): string {
    return this.ws.protocol;
  }
  get bufferedAmount(): number {
    return this.ws.bufferedAmount + this.waitingBytes;
  }
  get bytesFlushed(): number {
    return this.ws.bytesFlushed;
  }
  send(data: string | ArrayBufferView | ArrayBuffer): void {
    // Like a browser's WebSocket: once closing, sends are discarded, not thrown.
    // (The session layer keeps unacknowledged messages for replay anyway.)
    if (this.ws.readyState !== 1) return;
    const message = typeof data === 'string' ? data : data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.waiting !== null) {
      this.waiting.push(message);
      this.waitingBytes += byteSize(message);
    } else if (!this.ws.send(message)) {
      this.waiting = [];
    }
  }

  /** Writes what waits, until the socket is over its highWaterMark again (`all`: everything, now). */
  private writeWaiting(all: boolean): void {
    const q = this.waiting;
    if (q === null) return;
    let i = 0;
    while (i < q.length && this.ws.readyState === 1) {
      const message = q[i++]!;
      this.waitingBytes -= byteSize(message);
      if (!this.ws.send(message) && !all) {
        q.splice(0, i);
        return;
      }
    }
    this.waiting = null;
    this.waitingBytes = 0;
  }

  close(code?: number, reason?: string): void {
    // What was sent before close() goes first, as the close frame follows it (the bye among them).
    this.writeWaiting(true);
    this.ws.close(code, reason);
  }
  terminate(): void {
    this.ws.terminate();
  }
}

/** What a waiting message counts for in bufferedAmount: its payload's bytes. */
function byteSize(message: string | Buffer): number {
  return typeof message === 'string' ? Buffer.byteLength(message) : message.length;
}

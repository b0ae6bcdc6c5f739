/**
 * Adapts the Node ClientWebSocket to the WHATWG-style SocketLike the session
 * client drives, so one LifelineClient implementation serves Node and
 * browsers. Beyond the browser's API it reports read activity (bytes still
 * arriving count as life) and can terminate a dead connection at once.
 */
import { Buffer } from 'node:buffer';
import { ClientWebSocket, type ClientOptions } from '../transport/node/client.js';
import type { SocketLike } from '../session/lifeline-client.js';

export class NodeSocket implements SocketLike {
  readonly ws: ClientWebSocket;
  binaryType = 'arraybuffer';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onactivity: ((bytes: number) => void) | null = null;

  constructor(url: string, protocols: string[], options: ClientOptions = {}) {
    const ws = new ClientWebSocket(url, { ...options, protocols });
    this.ws = ws;
    ws.onActivity = (n) => this.onactivity?.(n);
    ws.on('open', () => this.onopen?.({}));
    ws.on('message', (data, isBinary) => {
      // Text as string, binary as a Uint8Array view (no copy), as a browser with binaryType 'arraybuffer' would give.
      this.onmessage?.({ data: isBinary ? data : data.toString('utf8') });
    });
    ws.on('error', (err) => this.onerror?.(err));
    ws.on('close', (code, reason) => this.onclose?.({ code, reason, wasClean: code !== 1006 }));
  }

  get readyState(): number {
    return this.ws.readyState;
  }
  get protocol(): string {
    return this.ws.protocol;
  }
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  get bytesFlushed(): number {
    return this.ws.bytesFlushed;
  }
  send(data: string | ArrayBufferView | ArrayBuffer): void {
    // Like a browser's WebSocket: once closing, sends are discarded, not thrown.
    // (The session layer keeps unacknowledged messages for replay anyway.)
    if (this.ws.readyState !== 1) return;
    if (typeof data === 'string') this.ws.send(data);
    else if (data instanceof ArrayBuffer) this.ws.send(Buffer.from(data));
    else this.ws.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
  terminate(): void {
    this.ws.terminate();
  }
}

/**
 * A ConnectionHandler that records everything, so protocol tests can assert on
 * event lists and written bytes (python-websockets style) without any I/O.
 */
import type { ConnectionHandler } from '../../src/protocol/connection.js';
import type { LifelineError } from '../../src/protocol/errors.js';

export type RecordedEvent =
  | { type: 'message'; data: Buffer; isBinary: boolean }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  | { type: 'close-frame'; code: number; reason: string }
  | { type: 'error'; error: LifelineError }
  | { type: 'close-transport' }
  | { type: 'closed'; code: number; reason: string; wasClean: boolean };

export class RecordingHandler implements ConnectionHandler {
  events: RecordedEvent[] = [];
  writes: Buffer[] = [];

  write(data: Buffer): void {
    this.writes.push(Buffer.from(data));
  }
  onMessage(data: Buffer, isBinary: boolean): void {
    this.events.push({ type: 'message', data: Buffer.from(data), isBinary });
  }
  onPing(data: Buffer): void {
    this.events.push({ type: 'ping', data: Buffer.from(data) });
  }
  onPong(data: Buffer): void {
    this.events.push({ type: 'pong', data: Buffer.from(data) });
  }
  onCloseFrame(code: number, reason: string): void {
    this.events.push({ type: 'close-frame', code, reason });
  }
  onError(error: LifelineError): void {
    this.events.push({ type: 'error', error });
  }
  closeTransport(): void {
    this.events.push({ type: 'close-transport' });
  }
  onClosed(code: number, reason: string, wasClean: boolean): void {
    this.events.push({ type: 'closed', code, reason, wasClean });
  }

  /** All bytes written so far, as one buffer; clears the list. */
  takeWritten(): Buffer {
    const all = Buffer.concat(this.writes);
    this.writes = [];
    return all;
  }
  takeEvents(): RecordedEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }
}

/** Builds a frame as a peer would send it. mask=null for server frames. */
export function frame(
  opcode: number,
  payload: Buffer | string,
  opts: { fin?: boolean; rsv?: number; mask?: Buffer | null } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const fin = opts.fin ?? true;
  const mask = opts.mask === undefined ? Buffer.from([0x37, 0xfa, 0x21, 0x3d]) : opts.mask;
  const len = data.length;
  const ext = len > 65535 ? 8 : len > 125 ? 2 : 0;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 8 ? 127 : ext === 2 ? 126 : len);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const body = Buffer.from(data);
  if (mask) {
    mask.copy(head, 2 + ext);
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

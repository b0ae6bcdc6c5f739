/**
 * The Node WebSocket: pumps bytes between a net/tls socket and the sans-I/O
 * Connection, batches writes per tick, and exposes the familiar API
 * (send/ping/close/terminate, message/ping/pong/close/error/drain events).
 * Used for both ends: the server creates one per accepted upgrade, the client
 * one per `new WebSocket(url)` (see client.ts for the handshake).
 */
import { EventEmitter } from 'node:events';
import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { Connection, type ConnectionHandler, type ConnectionState, type MessageCodec, type Role } from '../../protocol/connection.js';
import { ConnectionLostError, type LifelineError, UsageError } from '../../protocol/errors.js';

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;

/**
 * Why a connection ended, as a code applications can switch on:
 * - 'peer-closed': the peer started the closing handshake;
 * - 'local-closed': we did (close());
 * - 'protocol-error': a side broke the protocol or a limit (see the 'error' event);
 * - 'heartbeat-timeout': the peer went silent beyond the liveness window;
 * - 'terminated': terminate() was called;
 * - 'connection-lost': TCP ended without a closing handshake.
 */
export type CloseCause = 'peer-closed' | 'local-closed' | 'protocol-error' | 'heartbeat-timeout' | 'terminated' | 'connection-lost';

/** Limits and behaviour shared by server- and client-side sockets. */
export interface SocketOptions {
  /** Largest message accepted, bytes after decompression (close 1009 beyond). Default 64 MiB. 0 = no limit. */
  maxMessageSize?: number;
  /** Largest frame accepted (close 1009 beyond). Default: maxMessageSize. */
  maxFrameSize?: number;
  /** Split outgoing messages into frames of at most this many bytes. Default 0 (never). */
  fragmentSize?: number;
  /** send() returns false once bufferedAmount exceeds this. Default 1 MiB. */
  highWaterMark?: number;
  /** How long to wait for the peer to close TCP after the close handshake, ms. Default 5000. */
  closeTimeout?: number;
}

export interface WebSocketEvents {
  open: [];
  message: [data: Buffer, isBinary: boolean];
  ping: [data: Buffer];
  pong: [data: Buffer];
  close: [code: number, reason: string];
  error: [err: Error];
  drain: [];
}

/** Internal wiring handed over by the server or the client handshake. */
export interface AttachInit {
  role: Role;
  socket: Socket;
  head: Buffer;
  protocol: string;
  extensions: string;
  codec: MessageCodec | null;
  options: SocketOptions;
}

const FLUSH_CONCAT_LIMIT = 64 * 1024;

export class WebSocket extends EventEmitter<WebSocketEvents> implements ConnectionHandler {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  /** readyState value of an open socket (instance mirror of WebSocket.OPEN). */
  readonly OPEN_STATE = 1;

  /** The negotiated subprotocol, '' if none. */
  protocol = '';
  /** The negotiated extensions header value, '' if none. */
  extensions = '';
  /** The URL for client sockets; '' on the server side. */
  url = '';

  protected conn: Connection | null = null;
  protected socket: Socket | null = null;
  protected options: SocketOptions = {};
  protected _readyState: number = ReadyState.CONNECTING;
  private closeCode = 1006;
  private closeReason = '';
  private closeTimer: NodeJS.Timeout | null = null;
  private cause: CloseCause | null = null;
  private readonly openedAt = Date.now();

  /**
   * Called with the byte count of every read, before it is parsed: liveness
   * drivers use it, so that a large frame still arriving counts as life.
   */
  onActivity: ((bytes: number) => void) | null = null;

  // Write batching: frames queued during a tick go out in one socket write.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private needDrain = false;
  private readonly flushBound = () => this.flush();

  get readyState(): number {
    return this._readyState;
  }

  /** The connection state as a name. */
  get state(): ConnectionState {
    return (['connecting', 'open', 'closing', 'closed'] as const)[this._readyState]!;
  }

  /** Bytes accepted by send() but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.pendingBytes + (this.socket ? this.socket.writableLength : 0);
  }

  /** The underlying TCP/TLS socket (null before the handshake finished). */
  get rawSocket(): Socket | null {
    return this.socket;
  }

  /** Why the connection ended (null while it is open). */
  get closeCause(): CloseCause | null {
    return this._readyState === ReadyState.CLOSED ? this.cause ?? 'connection-lost' : null;
  }

  /** When this socket was created (ms since the epoch). */
  get connectedSince(): number {
    return this.openedAt;
  }

  /**
   * Bytes handed to the kernel so far. While bufferedAmount > 0 this grows
   * only as the peer's TCP stack acknowledges data: proof that it is alive.
   */
  get bytesFlushed(): number {
    const c = this.conn;
    if (!c) return 0;
    return c.bytesOut - this.pendingBytes - (this.socket ? this.socket.writableLength : 0);
  }

  /** Counters: bytes and messages each way. */
  get counters(): { bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number } {
    const c = this.conn;
    return c
      ? { bytesIn: c.bytesIn, bytesOut: c.bytesOut, messagesIn: c.messagesIn, messagesOut: c.messagesOut }
      : { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
  }

  /** @internal Wires an upgraded socket to a new protocol connection. */
  _attach(init: AttachInit): void {
    const { socket, options } = init;
    this.socket = socket;
    this.options = options;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.conn = new Connection(this, {
      role: init.role,
      maxMessageSize: options.maxMessageSize,
      maxFrameSize: options.maxFrameSize,
      fragmentSize: options.fragmentSize,
      codec: init.codec,
      isUtf8,
      randomFill: (b) => randomFillSync(b),
    });
    this._readyState = ReadyState.OPEN;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => {
      if (this.onActivity !== null) this.onActivity(chunk.length);
      this.conn!.receiveData(chunk);
    });
    socket.on('close', () => this.onSocketClose());
    socket.on('error', () => {
      // ECONNRESET and friends: the 'close' that follows reports 1006.
    });
    // Sockets handed over by http.Server's 'upgrade' have allowHalfOpen = true:
    // a peer's FIN would leave us half-open forever. A WebSocket peer that sends
    // FIN is done (RFC 6455 7.1.5: without a close frame that is 1006), so end
    // our side too, after whatever is queued.
    socket.allowHalfOpen = false;
    socket.on('end', () => {
      this.flush();
      if (!socket.destroyed) socket.end();
    });
    socket.on('drain', () => {
      if (this.needDrain && this.bufferedAmount <= this.highWaterMark) {
        this.needDrain = false;
        this.emit('drain');
      }
    });
    this.emit('open');
    if (init.head.length > 0) this.conn.receiveData(init.head);
  }

  /** @internal Feeds bytes that arrived with the upgrade request (after 'connection' listeners are attached). */
  _receive(data: Buffer): void {
    if (data.length > 0 && this.conn) this.conn.receiveData(data);
  }

  private get highWaterMark(): number {
    return this.options.highWaterMark ?? 1024 * 1024;
  }

  // ----------------------------------------------------------- public API

  /**
   * Sends a message: strings as text, Buffers/typed arrays as binary unless
   * `binary` says otherwise. Returns false when bufferedAmount is above the
   * high-water mark: wait for 'drain' before sending more.
   */
  send(data: string | Buffer | Uint8Array | ArrayBuffer, options?: { binary?: boolean }): boolean {
    const conn = this.requireOpen('send');
    const payload = data instanceof ArrayBuffer ? Buffer.from(data) : data;
    const binary = options?.binary ?? typeof payload !== 'string';
    conn.send(payload, binary);
    if (this.bufferedAmount > this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Sends a message given as fragments, one frame each. */
  sendFragments(fragments: Array<string | Buffer>, options?: { binary?: boolean }): void {
    this.requireOpen('sendFragments').sendFragments(fragments, options?.binary ?? typeof fragments[0] !== 'string');
  }

  ping(data?: string | Buffer): void {
    this.requireOpen('ping').ping(data);
  }

  pong(data?: string | Buffer): void {
    this.requireOpen('pong').pong(data);
  }

  /**
   * Starts the closing handshake. The 'close' event follows once the peer
   * answered and TCP is closed (or closeTimeout passed).
   */
  close(code?: number, reason?: string): void {
    if (this._readyState === ReadyState.CLOSED) return;
    if (this._readyState === ReadyState.CONNECTING) {
      this.abortConnecting();
      return;
    }
    const conn = this.conn!;
    if (conn.isCloseSent) return;
    conn.close(code, reason);
    this.cause ??= 'local-closed';
    this._readyState = ReadyState.CLOSING;
    this.armCloseTimer();
  }

  /**
   * Destroys the connection at once, without a closing handshake. `cause`
   * (default 'terminated') is what closeCause reports.
   */
  terminate(cause: CloseCause = 'terminated'): void {
    if (this._readyState === ReadyState.CLOSED) return;
    this.cause ??= cause;
    if (this._readyState === ReadyState.CONNECTING) {
      this.abortConnecting();
      return;
    }
    this._readyState = ReadyState.CLOSING;
    this.socket?.destroy();
  }

  /** @internal Overridden by the client to abort a handshake in progress. */
  protected abortConnecting(): void {
    this._readyState = ReadyState.CLOSED;
    this.emit('close', 1006, '');
  }

  private requireOpen(what: string): Connection {
    if (this._readyState !== ReadyState.OPEN || this.conn === null) {
      throw new UsageError(
        this._readyState === ReadyState.CONNECTING ? 'WS_ERR_NOT_OPEN' : 'WS_ERR_SEND_AFTER_CLOSE',
        `Cannot ${what}: the WebSocket is ${this.state}`,
      );
    }
    return this.conn;
  }

  // ------------------------------------------------- ConnectionHandler

  write(data: Buffer): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.emit('message', data, isBinary);
  }

  onPing(data: Buffer): void {
    this.emit('ping', data);
  }

  onPong(data: Buffer): void {
    this.emit('pong', data);
  }

  onCloseFrame(code: number, reason: string): void {
    this._readyState = ReadyState.CLOSING;
    this.cause ??= 'peer-closed';
    this.closeCode = code;
    this.closeReason = reason;
    // Client: the server closes TCP first (RFC 6455 7.1.1); give it closeTimeout.
    this.armCloseTimer();
  }

  onError(err: LifelineError): void {
    this._readyState = ReadyState.CLOSING;
    this.cause ??= 'protocol-error';
    // An 'error' without listeners would throw and crash the process on peer
    // input; the 'close' event that follows always reports what happened.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  closeTransport(): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    this.flush();
    s.end();
    this.armCloseTimer();
  }

  onClosed(code: number, reason: string): void {
    this.closeCode = code;
    this.closeReason = reason;
  }

  // ------------------------------------------------------------ internals

  private flush(): void {
    this.flushScheduled = false;
    const n = this.pending.length;
    if (n === 0) return;
    const s = this.socket;
    const list = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (!s || s.destroyed || !s.writable) return;
    if (n === 1) {
      s.write(list[0]!);
    } else if (bytes <= FLUSH_CONCAT_LIMIT) {
      // Many small frames: one copy is cheaper than one write per frame.
      s.write(Buffer.concat(list, bytes));
    } else {
      s.cork();
      for (let i = 0; i < n; i++) s.write(list[i]!);
      s.uncork();
    }
  }

  private armCloseTimer(): void {
    if (this.closeTimer || !this.socket) return;
    const s = this.socket;
    this.closeTimer = setTimeout(() => s.destroy(), this.options.closeTimeout ?? 5000);
    this.closeTimer.unref();
  }

  private onSocketClose(): void {
    if (this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    this.pending = [];
    this.pendingBytes = 0;
    this._readyState = ReadyState.CLOSED;
    this.conn?.transportClosed();
    this.emit('close', this.closeCode, this.closeReason);
  }
}

/** A connection-lost error, for clients whose socket died during the handshake. */
export function connectionLost(message: string): ConnectionLostError {
  return new ConnectionLostError('WS_ERR_CONNECTION_LOST', message);
}

/**
 * The Lifeline server: a WebSocketServer plus the session layer. Every
 * connection gets a heartbeat (driven by one timing wheel per server) and is
 * wrapped in a ServerSession that speaks lifeline.v1 to Lifeline clients
 * (app-level pings, which browsers can see) and plain WebSocket with protocol
 * pings to everyone else. The application sees the same session API for both.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { LifelineError, ProtocolError, UsageError } from '../protocol/errors.js';
import { WebSocketServer, type ServerOptions } from '../transport/node/server.js';
import { WebSocket, type CloseCause } from '../transport/node/websocket.js';
import { systemClock, type Clock } from '../session/clock.js';
import { HeartbeatMonitor, resolveHeartbeat, type HeartbeatConfig, type HeartbeatOption, type HeartbeatStats, type LivenessState } from '../session/heartbeat.js';
import { HeartbeatWheel } from '../session/scheduler.js';
import { DATA_MARK, DATA_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL, classify, encodeControl, type ControlMessage } from '../session/wire.js';

export interface LifelineServerOptions extends ServerOptions {
  /** Liveness: 'normal' (default; dead after 30-40 s of silence), 'aggressive' (6-9 s), 'off', or a config. */
  heartbeat?: HeartbeatOption;
  /** Time source for heartbeats (tests pass a FakeClock). */
  clock?: Clock;
  /** Time a lifeline.v1 client has to send its hello, ms. Default 10000. Exceeded: close 1008. */
  helloTimeout?: number;
}

/** Session lifecycle: 'handshaking' until a lifeline.v1 hello arrives (plain peers start 'open'). */
export type SessionState = 'handshaking' | 'open' | 'closing' | 'closed';

export interface SessionCloseInfo {
  code: number;
  reason: string;
  cause: CloseCause;
}

export interface SessionStats {
  mode: 'lifeline' | 'plain';
  state: SessionState;
  connectedSince: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  heartbeat: HeartbeatStats | null;
}

export interface ServerStats {
  sessions: number;
  accepted: number;
  /** Closed sessions by cause. */
  closed: Partial<Record<CloseCause, number>>;
  pingsSent: number;
  pongsReceived: number;
  pingsMissed: number;
  lossRate: number;
  rtt: { min: number | null; max: number | null; meanSmoothed: number | null };
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

export interface SessionEvents {
  message: [data: Buffer, isBinary: boolean];
  close: [info: SessionCloseInfo];
  /** Liveness changed: 'alive' -> 'probing' (a ping awaits an answer) -> 'alive' | 'dead'. */
  liveness: [state: LivenessState];
  error: [err: Error];
}

export interface LifelineServerEvents {
  connection: [session: ServerSession, req: IncomingMessage];
  listening: [];
  error: [err: Error];
  close: [];
}

const DATA_PREFIX_BUF = Buffer.from([DATA_MARK]);

export class ServerSession extends EventEmitter<SessionEvents> {
  /** 'lifeline' when the peer negotiated lifeline.v1, else 'plain' (protocol-level pings only). */
  readonly mode: 'lifeline' | 'plain';
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  private _state: SessionState;
  private readonly monitor: HeartbeatMonitor | null;
  private readonly server: LifelineServer;
  private helloTimer: NodeJS.Timeout | null = null;
  /** The reason the peer gave in its 'bye', if any. */
  peerByeReason: string | null = null;

  /** @internal */
  constructor(server: LifelineServer, ws: WebSocket, req: IncomingMessage, hb: { config: HeartbeatConfig; wheel: HeartbeatWheel } | null, helloTimeout: number) {
    super();
    this.server = server;
    this.socket = ws;
    this.request = req;
    this.mode = ws.protocol === SUBPROTOCOL ? 'lifeline' : 'plain';
    this._state = this.mode === 'lifeline' ? 'handshaking' : 'open';

    if (hb) {
      const wheel = hb.wheel;
      const monitor = new HeartbeatMonitor(
        hb.config,
        {
          sendPing: (ts) => this.sendPing(ts),
          onDead: (reason) => ws.terminate(reason),
          outbound: () => ({ written: ws.bytesFlushed, backlog: ws.bufferedAmount }),
          onStateChange: (s) => {
            if (this.listenerCount('liveness') > 0) this.emit('liveness', s);
          },
        },
        wheel.refresh(),
      );
      this.monitor = monitor;
      // Per read: one store of a number. The wheel's coarse clock avoids a clock read per chunk.
      ws.onActivity = () => {
        monitor.lastInbound = wheel.now;
      };
      wheel.add(monitor);
    } else {
      this.monitor = null;
    }

    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', (data) => {
      // Plain peers answer our protocol pings; the payload is our timestamp.
      if (this.monitor) this.monitor.onPong(Number(data.toString('latin1')), this.server.now());
    });
    ws.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    ws.on('close', (code, reason) => this.onClose(code, reason));

    if (this.mode === 'lifeline') {
      this.helloTimer = setTimeout(() => {
        if (this._state === 'handshaking') this.fail(new ProtocolError('LL_ERR_HELLO_TIMEOUT', `No hello within ${helloTimeout} ms`, 1008));
      }, helloTimeout);
      this.helloTimer.unref();
    }
  }

  get state(): SessionState {
    return this._state;
  }

  /** Liveness of the peer ('alive' | 'probing' | 'dead'); null with heartbeats off. */
  get liveness(): LivenessState | null {
    return this.monitor ? this.monitor.state : null;
  }

  /** Sends an application message (strings as text, buffers as binary). Returns false above the high-water mark. */
  send(data: string | Buffer | Uint8Array, options?: { binary?: boolean }): boolean {
    if (this._state !== 'open') {
      throw new UsageError(this._state === 'handshaking' ? 'WS_ERR_NOT_OPEN' : 'WS_ERR_SEND_AFTER_CLOSE', `Cannot send: the session is ${this._state}`);
    }
    if (this.mode === 'plain') return this.socket.send(data, options);
    const binary = options?.binary ?? typeof data !== 'string';
    if (typeof data === 'string' && !binary) return this.socket.send(DATA_PREFIX + data);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.socket.send(Buffer.concat([DATA_PREFIX_BUF, bytes]), { binary });
  }

  /** Ends the session: a lifeline.v1 'bye' with the reason, then the closing handshake. */
  close(code = 1000, reason = ''): void {
    if (this._state === 'closing' || this._state === 'closed') return;
    this._state = 'closing';
    if (this.mode === 'lifeline' && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(encodeControl({ t: 'bye', reason: reason || 'normal' }));
    }
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason);
  }

  /** Drops the connection at once. */
  terminate(): void {
    this.socket.terminate();
  }

  /** Probe the peer now (send a ping unless one is outstanding). */
  probe(): void {
    if (this.monitor) this.monitor.probeNow(this.server.now());
  }

  stats(): SessionStats {
    const c = this.socket.counters;
    return {
      mode: this.mode,
      state: this._state,
      connectedSince: this.socket.connectedSince,
      ...c,
      heartbeat: this.monitor ? this.monitor.stats() : null,
    };
  }

  /** @internal */
  get heartbeatMonitor(): HeartbeatMonitor | null {
    return this.monitor;
  }

  private sendPing(ts: number): void {
    const ws = this.socket;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (this.mode === 'lifeline') ws.send(encodeControl({ t: 'ping', ts }));
    else ws.ping(String(ts));
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.mode === 'plain') {
      this.emit('message', data, isBinary);
      return;
    }
    const first = data.length > 0 ? data[0]! : -1;
    if (first === DATA_MARK && this._state === 'open') {
      this.emit('message', data.subarray(1), isBinary);
      return;
    }
    const d = classify(first, !isBinary, () => data.toString('utf8'));
    if (d.kind === 'invalid') {
      this.fail(new ProtocolError('LL_ERR_INVALID_MESSAGE', `Invalid lifeline.v1 message: ${d.why}`));
      return;
    }
    if (d.kind === 'data') {
      // Data before the hello.
      this.fail(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', 'Application message before hello'));
      return;
    }
    this.onControl(d.msg);
  }

  private onControl(msg: ControlMessage): void {
    switch (msg.t) {
      case 'ping':
        if (this.socket.readyState === WebSocket.OPEN) this.socket.send(encodeControl({ t: 'pong', ts: msg.ts }));
        return;
      case 'pong':
        if (this.monitor) this.monitor.onPong(msg.ts, this.server.now());
        return;
      case 'hello': {
        if (this._state !== 'handshaking') {
          this.fail(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', 'Second hello'));
          return;
        }
        if (msg.v !== PROTOCOL_VERSION) {
          this.fail(new ProtocolError('LL_ERR_VERSION', `Unsupported lifeline version ${msg.v}`));
          return;
        }
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.helloTimer = null;
        const c = this.monitor?.config;
        this.socket.send(
          encodeControl({
            t: 'welcome',
            v: PROTOCOL_VERSION,
            hb: c ? { interval: c.interval, timeoutFloor: c.timeoutFloor, timeoutCeiling: c.timeoutCeiling, timeoutInitial: c.timeoutInitial, k: c.k } : null,
          }),
        );
        this._state = 'open';
        this.server._sessionOpened(this);
        return;
      }
      case 'bye':
        this.peerByeReason = msg.reason;
        return;
      case 'welcome':
        this.fail(new ProtocolError('LL_ERR_UNEXPECTED_MESSAGE', 'welcome sent by a client'));
        return;
    }
  }

  private fail(err: LifelineError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    if (this.socket.readyState === WebSocket.OPEN) {
      this._state = 'closing';
      this.socket.close(err.closeCode || 1002, err.message.slice(0, 120));
    }
  }

  private onClose(code: number, reason: string): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    const wasOpen = this._state !== 'handshaking';
    this._state = 'closed';
    if (this.monitor) this.monitor.stop();
    const info: SessionCloseInfo = { code, reason, cause: this.socket.closeCause ?? 'connection-lost' };
    this.server._sessionClosed(this, info, wasOpen);
    this.emit('close', info);
  }
}

export class LifelineServer extends EventEmitter<LifelineServerEvents> {
  readonly transport: WebSocketServer;
  readonly sessions = new Set<ServerSession>();
  readonly heartbeat: HeartbeatConfig | null;
  private readonly clock: Clock;
  private readonly wheel: HeartbeatWheel | null;
  private accepted = 0;
  private readonly closedByCause: Partial<Record<CloseCause, number>> = {};
  /** Totals of sessions that have closed, so stats() covers the server's life. */
  private readonly retired = { pingsSent: 0, pongsReceived: 0, pingsMissed: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };

  constructor(options: LifelineServerOptions = {}, onListening?: () => void) {
    super();
    this.clock = options.clock ?? systemClock;
    this.heartbeat = resolveHeartbeat(options.heartbeat);
    const hb = this.heartbeat;
    // Tick: fine enough to detect within a fraction of the smallest timeout, never finer than 10 ms.
    this.wheel = hb ? new HeartbeatWheel(this.clock, Math.max(10, Math.min(1000, Math.floor(Math.min(hb.interval, hb.timeoutFloor) / 4)))) : null;
    const helloTimeout = options.helloTimeout ?? 10_000;
    const userProtocols = options.subprotocols;
    this.transport = new WebSocketServer(
      {
        ...options,
        // lifeline.v1 first when offered; otherwise the application's own choice.
        subprotocols: (offered, req) => {
          if (offered.includes(SUBPROTOCOL)) return SUBPROTOCOL;
          if (typeof userProtocols === 'function') return userProtocols(offered, req);
          return userProtocols?.find((p) => offered.includes(p));
        },
      },
      onListening,
    );
    this.transport.on('listening', () => this.emit('listening'));
    this.transport.on('error', (err) => this.emit('error', err));
    this.transport.on('connection', (ws, req) => {
      const s = new ServerSession(this, ws, req, this.wheel && hb ? { config: hb, wheel: this.wheel } : null, helloTimeout);
      this.accepted++;
      this.sessions.add(s);
      if (s.mode === 'plain') this.emit('connection', s, req);
    });
  }

  /** @internal Current time as the heartbeat sees it. */
  now(): number {
    return this.clock.now();
  }

  /** @internal */
  _sessionOpened(s: ServerSession): void {
    this.emit('connection', s, s.request);
  }

  /** @internal */
  _sessionClosed(s: ServerSession, info: SessionCloseInfo, _wasOpen: boolean): void {
    this.sessions.delete(s);
    this.closedByCause[info.cause] = (this.closedByCause[info.cause] ?? 0) + 1;
    const st = s.stats();
    const r = this.retired;
    r.bytesIn += st.bytesIn;
    r.bytesOut += st.bytesOut;
    r.messagesIn += st.messagesIn;
    r.messagesOut += st.messagesOut;
    if (st.heartbeat) {
      r.pingsSent += st.heartbeat.pingsSent;
      r.pongsReceived += st.heartbeat.pongsReceived;
      r.pingsMissed += st.heartbeat.pingsMissed;
    }
  }

  address(): ReturnType<WebSocketServer['address']> {
    return this.transport.address();
  }

  /** Aggregated statistics: live sessions plus everything closed so far. */
  stats(): ServerStats {
    const t = { ...this.retired };
    let min = Infinity;
    let max = 0;
    let sum = 0;
    let n = 0;
    for (const s of this.sessions) {
      const st = s.stats();
      t.bytesIn += st.bytesIn;
      t.bytesOut += st.bytesOut;
      t.messagesIn += st.messagesIn;
      t.messagesOut += st.messagesOut;
      const hb = st.heartbeat;
      if (hb) {
        t.pingsSent += hb.pingsSent;
        t.pongsReceived += hb.pongsReceived;
        t.pingsMissed += hb.pingsMissed;
        if (hb.rtt.min !== null && hb.rtt.min < min) min = hb.rtt.min;
        if (hb.rtt.max !== null && hb.rtt.max > max) max = hb.rtt.max;
        if (hb.rtt.smoothed !== null) {
          sum += hb.rtt.smoothed;
          n++;
        }
      }
    }
    return {
      sessions: this.sessions.size,
      accepted: this.accepted,
      closed: { ...this.closedByCause },
      ...t,
      lossRate: t.pingsSent === 0 ? 0 : t.pingsMissed / t.pingsSent,
      rtt: { min: n ? min : null, max: n ? max : null, meanSmoothed: n ? Math.round((sum / n) * 100) / 100 : null },
    };
  }

  /** Stops accepting, closes every session with 1001, resolves when all are gone (or after `timeout`). */
  async close(options: { timeout?: number } = {}): Promise<void> {
    for (const s of this.sessions) if (s.mode === 'lifeline' && s.socket.readyState === WebSocket.OPEN) s.socket.send(encodeControl({ t: 'bye', reason: 'server-shutdown' }));
    await this.transport.close({ timeout: options.timeout, code: 1001, reason: 'server shutting down' });
    this.wheel?.stop();
    this.emit('close');
  }
}

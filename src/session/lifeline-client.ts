/**
 * The Lifeline client session, one implementation for Node and browsers: it
 * drives any WebSocket-like object (the browser's native WebSocket, or the
 * Node adapter), speaks lifeline.v1 (hello/welcome, app-level ping/pong, bye)
 * and detects a dead server on its own, without waiting for TCP.
 *
 * Browser-safe: no Node APIs. Time and timers come from an injected Clock.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { Emitter } from './emitter.js';
import { HeartbeatMonitor, resolveHeartbeat, type HeartbeatConfig, type HeartbeatOption, type HeartbeatStats, type LivenessState } from './heartbeat.js';
import { HeartbeatTimer } from './scheduler.js';
import { DATA_MARK, DATA_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL, classify, encodeControl, type ControlMessage } from './wire.js';

/** The subset of the WHATWG WebSocket the client needs. The browser's WebSocket is one. */
export interface SocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** Node adapter only: called per read with its byte count (a large message still arriving counts as life). */
  onactivity?: ((bytes: number) => void) | null;
  /** Node adapter only: drop the connection at once. */
  terminate?(): void;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

/** Client lifecycle. 'reconnecting' is reserved for the reconnect layer. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the client left 'open' (or never reached it). */
export type ClientCloseCause =
  | 'local-closed'
  | 'peer-closed'
  | 'heartbeat-timeout'
  | 'handshake-failed'
  | 'handshake-timeout'
  | 'protocol-error'
  | 'connection-lost';

export interface ClientCloseInfo {
  code: number;
  reason: string;
  cause: ClientCloseCause;
}

export interface LifelineClientOptions {
  /** Creates the underlying WebSocket (the faces for Node and browsers provide a default). */
  socketFactory: SocketFactory;
  clock?: Clock;
  /**
   * 'server' (default): use the heartbeat the server announces in its welcome.
   * Anything else overrides it locally ('off' disables client-side detection).
   */
  heartbeat?: 'server' | HeartbeatOption;
  /** Time allowed from creating the socket to the server's welcome, ms. Default 15000. */
  handshakeTimeout?: number;
  /**
   * Where to listen for 'online' and 'visibilitychange' (probe at once when the
   * network returns or the tab becomes visible). Default: globalThis when it has
   * addEventListener (browsers). Pass null to disable.
   */
  environment?: EnvironmentLike | null;
}

export interface EnvironmentLike {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
  document?: { visibilityState?: string; addEventListener(type: string, fn: () => void): void; removeEventListener(type: string, fn: () => void): void };
}

export interface ClientStats {
  state: ClientState;
  connectedSince: number | null;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  heartbeat: HeartbeatStats | null;
  closes: Partial<Record<ClientCloseCause, number>>;
  /** Liveness probes triggered by 'online' / visibility. */
  wakeProbes: number;
}

export interface ClientEvents {
  open: [];
  message: [data: string | Uint8Array];
  close: [info: ClientCloseInfo];
  state: [state: ClientState, cause: string];
  liveness: [state: LivenessState];
  error: [err: Error];
}

export class LifelineClient extends Emitter<ClientEvents> {
  readonly url: string;
  private readonly options: LifelineClientOptions;
  private readonly clock: Clock;
  private _state: ClientState = 'connecting';
  private socket: SocketLike | null = null;
  private monitor: HeartbeatMonitor | null = null;
  private timer: HeartbeatTimer | null = null;
  private handshakeTimer: TimerHandle | null = null;
  private connectedAt: number | null = null;
  private counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, wakeProbes: 0 };
  private closes: Partial<Record<ClientCloseCause, number>> = {};
  private readonly env: EnvironmentLike | null;
  private readonly onWake = () => this.wake();
  private readonly onVisibility = () => {
    if (this.env?.document?.visibilityState === 'visible') this.wake();
  };

  constructor(url: string, options: LifelineClientOptions) {
    super();
    this.url = url;
    this.options = options;
    this.clock = options.clock ?? systemClock;
    const g = globalThis as unknown as Partial<EnvironmentLike>;
    this.env = options.environment !== undefined ? options.environment : typeof g.addEventListener === 'function' ? (g as EnvironmentLike) : null;
    if (this.env) {
      this.env.addEventListener('online', this.onWake);
      this.env.document?.addEventListener('visibilitychange', this.onVisibility);
    }
    this.open();
  }

  get state(): ClientState {
    return this._state;
  }

  /** The heartbeat in force (null before the welcome or when off). */
  get heartbeatConfig(): HeartbeatConfig | null {
    return this.monitor ? this.monitor.config : null;
  }

  /** Sends an application message: strings as text, bytes as binary. */
  send(data: string | Uint8Array | ArrayBuffer): void {
    const s = this.socket;
    if (this._state !== 'open' || !s) throw new Error(`Cannot send: the client is ${this._state}`);
    if (typeof data === 'string') {
      s.send(DATA_PREFIX + data);
      this.counters.bytesOut += data.length + 1;
    } else {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      const framed = new Uint8Array(bytes.length + 1);
      framed[0] = DATA_MARK;
      framed.set(bytes, 1);
      s.send(framed);
      this.counters.bytesOut += framed.length;
    }
    this.counters.messagesOut++;
  }

  /** Ends the session: 'bye', then the closing handshake. */
  close(code = 1000, reason = ''): void {
    if (this._state === 'closed') return;
    const s = this.socket;
    if (s && s.readyState === 1 && this._state === 'open') {
      s.send(encodeControl({ t: 'bye', reason: reason || 'normal' }));
    }
    this.finish({ code, reason, cause: 'local-closed' }, true);
  }

  /** Probe the server now (what 'online' and tab visibility do). */
  probe(): void {
    this.timer?.probeNow();
  }

  stats(): ClientStats {
    return {
      state: this._state,
      connectedSince: this.connectedAt,
      ...this.counters,
      heartbeat: this.monitor ? this.monitor.stats() : null,
      closes: { ...this.closes },
    };
  }

  private wake(): void {
    if (this._state !== 'open' || !this.timer) return;
    this.counters.wakeProbes++;
    this.timer.probeNow();
  }

  private transition(to: ClientState, cause: string): void {
    if (this._state === to) return;
    this._state = to;
    this.emit('state', to, cause);
  }

  private open(): void {
    let s: SocketLike;
    try {
      s = this.options.socketFactory(this.url, [SUBPROTOCOL]);
    } catch (err) {
      queueMicrotask(() => {
        this.emitError(err as Error);
        this.finish({ code: 1006, reason: String((err as Error).message ?? err), cause: 'handshake-failed' }, false);
      });
      return;
    }
    this.socket = s;
    s.binaryType = 'arraybuffer';
    const timeout = this.options.handshakeTimeout ?? 15_000;
    this.handshakeTimer = this.clock.setTimeout(() => {
      this.handshakeTimer = null;
      if (this._state === 'connecting') this.finish({ code: 1006, reason: `no welcome within ${timeout} ms`, cause: 'handshake-timeout' }, true);
    }, timeout);
    s.onopen = () => {
      if (s !== this.socket) return;
      if (s.protocol !== SUBPROTOCOL) {
        this.emitError(new Error(`Server did not negotiate ${SUBPROTOCOL} (got ${JSON.stringify(s.protocol)})`));
        this.finish({ code: 1002, reason: 'subprotocol not negotiated', cause: 'handshake-failed' }, true);
        return;
      }
      s.send(encodeControl({ t: 'hello', v: PROTOCOL_VERSION }));
    };
    s.onactivity = () => {
      if (this.monitor) this.monitor.onInbound(this.clock.now());
    };
    s.onmessage = (ev) => {
      if (s !== this.socket) return;
      this.onMessage(ev.data);
    };
    s.onerror = () => {
      // The close event that follows carries what we can know.
    };
    s.onclose = (ev) => {
      if (s !== this.socket) return;
      const cause: ClientCloseCause = this._state === 'connecting' ? 'handshake-failed' : ev.code === 1006 ? 'connection-lost' : 'peer-closed';
      this.finish({ code: ev.code, reason: ev.reason, cause }, false);
    };
  }

  private onMessage(data: unknown): void {
    const now = this.clock.now();
    if (this.monitor) this.monitor.onInbound(now);
    let first: number;
    let isText: boolean;
    if (typeof data === 'string') {
      isText = true;
      first = data.length > 0 ? data.charCodeAt(0) : -1;
      if (first === DATA_MARK && this._state === 'open') {
        this.counters.messagesIn++;
        this.counters.bytesIn += data.length;
        this.emit('message', data.slice(1));
        return;
      }
    } else {
      isText = false;
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
      first = bytes.length > 0 ? bytes[0]! : -1;
      if (first === DATA_MARK && this._state === 'open') {
        this.counters.messagesIn++;
        this.counters.bytesIn += bytes.length;
        this.emit('message', bytes.subarray(1));
        return;
      }
    }
    const d = classify(first, isText, () => data as string);
    if (d.kind === 'invalid') return this.protocolError(`invalid lifeline.v1 message: ${d.why}`);
    if (d.kind === 'data') return this.protocolError('application message before welcome');
    this.onControl(d.msg, now);
  }

  private onControl(msg: ControlMessage, now: number): void {
    const s = this.socket!;
    switch (msg.t) {
      case 'ping':
        s.send(encodeControl({ t: 'pong', ts: msg.ts }));
        return;
      case 'pong':
        this.monitor?.onPong(msg.ts, now);
        return;
      case 'welcome': {
        if (this._state !== 'connecting') return this.protocolError('unexpected welcome');
        if (this.handshakeTimer !== null) this.clock.clearTimeout(this.handshakeTimer);
        this.handshakeTimer = null;
        const local = this.options.heartbeat ?? 'server';
        const config = local === 'server' ? (msg.hb ? resolveHeartbeat({ ...msg.hb, lateSlack: Math.min(2000, msg.hb.timeoutFloor) }) : null) : resolveHeartbeat(local);
        if (config) {
          this.monitor = new HeartbeatMonitor(
            config,
            {
              sendPing: (ts) => {
                if (this.socket && this.socket.readyState === 1) this.socket.send(encodeControl({ t: 'ping', ts }));
              },
              onDead: () => this.finish({ code: 1006, reason: 'heartbeat-timeout', cause: 'heartbeat-timeout' }, true),
              onStateChange: (st) => this.emit('liveness', st),
            },
            now,
          );
          this.timer = new HeartbeatTimer(this.clock, this.monitor);
          this.timer.start();
        }
        this.connectedAt = now;
        this.transition('open', 'welcome');
        this.emit('open');
        return;
      }
      case 'bye':
        return;
      case 'hello':
        return this.protocolError('hello sent by a server');
    }
  }

  private protocolError(why: string): void {
    this.emitError(new Error(why));
    this.finish({ code: 1002, reason: why.slice(0, 120), cause: 'protocol-error' }, true);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /**
   * Leaves the current connection for good: stops timers, detaches the socket
   * (so its late events are ignored), closes it, and reports once.
   */
  private finish(info: ClientCloseInfo, closeSocket: boolean): void {
    if (this._state === 'closed') return;
    if (this.handshakeTimer !== null) this.clock.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.timer?.stop();
    this.monitor?.stop();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onerror = s.onclose = null;
      if (s.onactivity !== undefined) s.onactivity = null;
      if (closeSocket) {
        // A dead peer would never finish a closing handshake: drop it at once where we can.
        if (info.cause === 'heartbeat-timeout' && s.terminate) s.terminate();
        else {
          try {
            s.close(info.cause === 'local-closed' ? info.code : info.cause === 'protocol-error' ? 4002 : 4000, info.reason.slice(0, 120));
          } catch {
            s.close();
          }
        }
      }
    }
    if (this.env) {
      this.env.removeEventListener('online', this.onWake);
      this.env.document?.removeEventListener('visibilitychange', this.onVisibility);
    }
    this.closes[info.cause] = (this.closes[info.cause] ?? 0) + 1;
    this.transition('closed', info.cause);
    this.emit('close', info);
  }
}

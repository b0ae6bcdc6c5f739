/**
 * The Lifeline client, one implementation for Node and browsers: it drives
 * any WebSocket-like object (the browser's native WebSocket or the Node
 * adapter), notices a dead server on its own, reconnects with backoff, and
 * resumes its session so that every message is delivered exactly once, in
 * order, both ways, or the application is told it was lost ('session-lost').
 *
 * State machine (one transition function, every transition with a reason):
 *
 *   connecting --welcome--> open --socket lost--> reconnecting --welcome--> open ...
 *        \                    \                       \
 *         +--fatal/close()-----+----fatal/close()------+--> closed
 *
 * Browser-safe: no Node APIs. Time and timers come from an injected Clock.
 */
import { UsageError } from '../protocol/errors.js';
import { BackoffPolicy, type BackoffOptions } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { Emitter } from './emitter.js';
import { HeartbeatMonitor, resolveHeartbeat, type HeartbeatConfig, type HeartbeatOption, type HeartbeatStats, type LivenessState } from './heartbeat.js';
import { InboundSequencer, ReplayBuffer } from './resume.js';
import { HeartbeatTimer } from './scheduler.js';
import {
  CONTROL_MARK,
  DATA_MARK,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  classify,
  dataHeader,
  encodeControl,
  parseDataHeaderBytes,
  parseDataHeaderString,
  type ControlMessage,
  type DataHeader,
  type SessionLostReason,
} from './wire.js';

/** Options that are counts or ms: each a number in 0..MAX_TIMER_MS (timers take no more). */
const NUMERIC_OPTIONS = ['handshakeTimeout', 'stableAfter', 'outboxMaxMessages', 'outboxMaxBytes', 'ackEvery', 'ackDelay'] as const;
const MAX_TIMER_MS = 2 ** 31 - 1;

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
  /** Node adapter only: bytes handed to the kernel so far. */
  readonly bytesFlushed?: number;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why a connection ended (and, for fatal ones, why the client stopped). */
export type ClientCloseCause =
  | 'local-closed'
  | 'peer-closed'
  | 'heartbeat-timeout'
  | 'handshake-failed'
  | 'handshake-timeout'
  | 'protocol-error'
  | 'connection-lost'
  | 'auth-failed'
  | 'auth-expired'
  | 'forbidden'
  | 'reconnect-failed';

export interface ClientCloseInfo {
  code: number;
  reason: string;
  cause: ClientCloseCause;
}

export interface SessionLostInfo {
  reason: SessionLostReason;
  /** Our messages the server never received (failed: see messageState). */
  lostToServer: number;
  /** Server messages we never received; null when the server did not know (it restarted). */
  lostToClient: number | null;
  /** Whether lostToServer is exact (the server remembered what it had received). */
  exact: boolean;
  /** Message ids (as returned by send) that failed. */
  failed: { from: number; to: number } | null;
}

export type MessageFate = 'queued' | 'sent' | 'acked' | 'failed';

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
  /** Reconnect with backoff after a connection is lost. Default true. */
  reconnect?: boolean;
  /** Backoff: full jitter, base 500 ms, cap 30 s, unlimited attempts by default. */
  backoff?: BackoffOptions;
  /** A connection that stayed open this long resets the backoff, ms. Default 5000. */
  stableAfter?: number;
  /** Outbox (unacknowledged + queued messages) bounds. Beyond them send() throws. Defaults 10000 messages, 8 MiB. */
  outboxMaxMessages?: number;
  outboxMaxBytes?: number;
  /** Send a standalone ack after this many unacknowledged messages. Default 32. */
  ackEvery?: number;
  /** ...or after this long, ms. Default 100. */
  ackDelay?: number;
  /** Token provider: called for each hello (first connect and every resume) and on auth-refresh. */
  token?: () => string | Promise<string>;
  /**
   * Where to listen for 'online' and 'visibilitychange' (reconnect or probe at
   * once when the network returns or the tab becomes visible). Default:
   * globalThis when it has addEventListener (browsers). null disables.
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
  session: string | null;
  connectedSince: number | null;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Connection attempts after the first. */
  reconnects: number;
  resumes: number;
  sessionsLost: number;
  duplicatesDropped: number;
  replayed: number;
  /** Messages in the outbox (queued or awaiting acknowledgement). */
  outbox: number;
  heartbeat: HeartbeatStats | null;
  closes: Partial<Record<ClientCloseCause, number>>;
  /** Probes/reconnects triggered by 'online' / visibility. */
  wakeProbes: number;
}

export interface ClientEvents {
  /** The first session is open. */
  open: [];
  message: [data: string | Uint8Array];
  /** The connection was lost; the next attempt comes after `delay` ms. */
  reconnecting: [info: { attempt: number; delay: number; reason: ClientCloseCause }];
  /** The session was resumed: nothing lost, nothing duplicated. */
  resumed: [info: { replayed: number }];
  /** The session could not be resumed; a new one is open. */
  'session-lost': [info: SessionLostInfo];
  /** The peer acknowledged every message up to this id. */
  acked: [upTo: number];
  /** The client stopped for good. */
  close: [info: ClientCloseInfo];
  state: [state: ClientState, reason: string];
  liveness: [state: LivenessState];
  error: [err: Error];
}

/** Thrown by send() when the outbox is full: nothing was queued. */
export class OutboxFullError extends Error {
  readonly code = 'LL_ERR_OUTBOX_FULL';
  constructor(message: string) {
    super(message);
    this.name = 'OutboxFullError';
  }
}

/** Close codes after which reconnecting cannot help. */
function fatalCause(code: number): ClientCloseCause | null {
  if (code === 4401) return 'auth-failed';
  if (code >= 4400 && code <= 4499) return 'forbidden';
  // Protocol and data errors repeat on the next connection: a bug, not a fault.
  if (code === 1002 || code === 1003 || code === 1007 || code === 1010) return 'protocol-error';
  return null;
}

export class LifelineClient extends Emitter<ClientEvents> {
  readonly url: string;
  private readonly options: LifelineClientOptions;
  private readonly clock: Clock;
  private readonly backoff: BackoffPolicy;
  private _state: ClientState = 'connecting';
  /** Generation of the current connection attempt: stale callbacks compare and return. */
  private gen = 0;
  private socket: SocketLike | null = null;
  private monitor: HeartbeatMonitor | null = null;
  private timer: HeartbeatTimer | null = null;
  private handshakeTimer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private ackTimer: TimerHandle | null = null;
  private welcomed = false;
  private connectedAt: number | null = null;
  private everOpened = false;
  private retryHint = -1;
  private fatal: ClientCloseInfo | null = null;
  private finalBye = false;

  // Session and resume state.
  private sessionId: string | null = null;
  private resumeToken: string | null = null;
  /** Message ids are global across sessions: id = epochBase + seq. */
  private epochBase = 0;
  private lastSent = 0;
  private lastTransmitted = 0;
  private peerAcked = 0;
  private outbox: ReplayBuffer<string | Uint8Array>;
  private inbound: InboundSequencer;
  private readonly header: DataHeader = { seq: 0, ack: -1, offset: 0 };
  private failedRanges: Array<{ from: number; to: number }> = [];

  private counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, wakeProbes: 0, reconnects: 0, resumes: 0, sessionsLost: 0, duplicatesDropped: 0, replayed: 0 };
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
    // Checked once, here: a NaN bound never applies (an unbounded outbox), a
    // NaN or oversized timeout fires at once (every handshake fails).
    for (const k of NUMERIC_OPTIONS) {
      const v = options[k];
      if (v !== undefined && !(v >= 0 && v <= MAX_TIMER_MS)) throw new UsageError('WS_ERR_INVALID_OPTION', `${k} must be a number >= 0 and <= ${MAX_TIMER_MS}, got ${String(v)}`);
    }
    this.backoff = new BackoffPolicy(options.backoff);
    this.outbox = new ReplayBuffer(options.outboxMaxMessages ?? 10_000, options.outboxMaxBytes ?? 8 * 1024 * 1024);
    this.inbound = new InboundSequencer(options.ackEvery ?? 32);
    const g = globalThis as unknown as Partial<EnvironmentLike>;
    this.env = options.environment !== undefined ? options.environment : typeof g.addEventListener === 'function' ? (g as EnvironmentLike) : null;
    if (this.env) {
      this.env.addEventListener('online', this.onWake);
      this.env.document?.addEventListener('visibilitychange', this.onVisibility);
    }
    this.connect();
  }

  get state(): ClientState {
    return this._state;
  }

  /** The current session id (null before the first welcome). */
  get session(): string | null {
    return this.sessionId;
  }

  /** The heartbeat in force (null before the welcome or when off). */
  get heartbeatConfig(): HeartbeatConfig | null {
    return this.monitor ? this.monitor.config : null;
  }

  /**
   * Sends an application message: strings as text, bytes as binary. Works in
   * every state but 'closed': while disconnected the message waits in the
   * outbox. Returns the message id (see messageState). Throws OutboxFullError
   * when the outbox is full (nothing is dropped silently).
   */
  send(data: string | Uint8Array | ArrayBuffer): number {
    if (this._state === 'closed') throw new Error('Cannot send: the client is closed');
    const open = this._state === 'open' && this.welcomed;
    const seq = this.lastSent + 1;
    const body = typeof data === 'string' ? data : data instanceof Uint8Array ? data : new Uint8Array(data);
    // Piggyback the cumulative ack when there is something to acknowledge.
    const ack = open && this.inbound.pending > 0 ? this.inbound.received : -1;
    const head = dataHeader(seq, ack);
    // Check the bound before anything changes (a refused send must not swallow a pending ack).
    if (this.outbox.wouldOverflow(body.length + head.length)) {
      throw new OutboxFullError(`Outbox full (${this.outbox.length} messages, ${this.outbox.bytes} bytes): wait for acknowledgements`);
    }
    if (ack >= 0) this.takeAck();
    let wire: string | Uint8Array;
    let bytes: number;
    if (typeof body === 'string') {
      wire = head + body;
      bytes = wire.length;
    } else {
      const framed = new Uint8Array(head.length + body.length);
      for (let i = 0; i < head.length; i++) framed[i] = head.charCodeAt(i);
      framed.set(body, head.length);
      wire = framed;
      bytes = framed.length;
    }
    this.lastSent = seq;
    this.outbox.push(seq, wire, bytes);
    this.counters.messagesOut++;
    this.counters.bytesOut += bytes;
    if (open) this.transmit(wire, seq);
    return this.epochBase + seq;
  }

  /** What became of a message sent with send(). */
  messageState(id: number): MessageFate {
    for (const r of this.failedRanges) if (id >= r.from && id <= r.to) return 'failed';
    if (id <= this.epochBase) return 'acked';
    const seq = id - this.epochBase;
    if (seq <= this.peerAcked) return 'acked';
    if (seq <= this.lastTransmitted) return 'sent';
    return 'queued';
  }

  /** Ends the session for good: 'bye', then the closing handshake. No reconnect. */
  close(code = 1000, reason = ''): void {
    if (this._state === 'closed') return;
    const s = this.socket;
    if (s && s.readyState === 1 && this.welcomed) s.send(encodeControl({ t: 'bye', reason: reason || 'normal' }));
    this.stop({ code, reason, cause: 'local-closed' }, true);
  }

  /** Probe the server now (what 'online' and tab visibility do). */
  probe(): void {
    this.timer?.probeNow();
  }

  stats(): ClientStats {
    return {
      state: this._state,
      session: this.sessionId,
      connectedSince: this.connectedAt,
      ...this.counters,
      outbox: this.outbox.length,
      heartbeat: this.monitor ? this.monitor.stats() : null,
      closes: { ...this.closes },
    };
  }

  // ------------------------------------------------------------ lifecycle

  private transition(to: ClientState, reason: string): void {
    if (this._state === to) return;
    this._state = to;
    this.emit('state', to, reason);
  }

  private wake(): void {
    if (this._state === 'open' && this.timer) {
      this.counters.wakeProbes++;
      this.timer.probeNow();
    } else if (this._state === 'reconnecting' && this.retryTimer !== null) {
      // The network is back (or the tab is visible): try now instead of waiting out the backoff.
      this.counters.wakeProbes++;
      this.counters.reconnects++;
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.connect();
    }
  }

  private connect(): void {
    const gen = ++this.gen;
    this.welcomed = false;
    this.fatal = null;
    this.finalBye = false;
    let s: SocketLike;
    try {
      s = this.options.socketFactory(this.url, [SUBPROTOCOL]);
    } catch (err) {
      // Deferred: from the constructor, listeners are not attached yet.
      queueMicrotask(() => {
        if (gen !== this.gen) return;
        this.emitError(err as Error);
        this.stop({ code: 1006, reason: String((err as Error).message ?? err), cause: 'handshake-failed' }, false);
      });
      return;
    }
    this.socket = s;
    s.binaryType = 'arraybuffer';
    const timeout = this.options.handshakeTimeout ?? 15_000;
    this.handshakeTimer = this.clock.setTimeout(() => {
      this.handshakeTimer = null;
      if (gen === this.gen && !this.welcomed) this.lost({ code: 1006, reason: `no welcome within ${timeout} ms`, cause: 'handshake-timeout' });
    }, timeout);
    s.onopen = () => {
      if (gen !== this.gen) return;
      if (s.protocol !== SUBPROTOCOL) {
        this.emitError(new Error(`Server did not negotiate ${SUBPROTOCOL} (got ${JSON.stringify(s.protocol)})`));
        this.stop({ code: 1002, reason: 'subprotocol not negotiated', cause: 'handshake-failed' }, true);
        return;
      }
      this.withToken(gen, (auth) => {
        const hello: ControlMessage = { t: 'hello', v: PROTOCOL_VERSION };
        if (this.sessionId !== null) {
          hello.session = this.sessionId;
          hello.token = this.resumeToken!;
          hello.ack = this.inbound.received;
        }
        if (auth !== undefined) hello.auth = auth;
        this.sendRaw(s, encodeControl(hello));
      });
    };
    s.onactivity = () => {
      if (gen === this.gen && this.monitor) this.monitor.onInbound(this.clock.now());
    };
    s.onmessage = (ev) => {
      if (gen === this.gen) this.onMessage(ev.data);
    };
    s.onerror = () => {
      // The close event that follows carries what we can know.
    };
    s.onclose = (ev) => {
      if (gen !== this.gen) return;
      // A fatal 'error' message names the cause; the close frame has the real code.
      const fatal = this.fatal
        ? { code: ev.code, reason: ev.reason || this.fatal.reason, cause: this.fatal.cause }
        : fatalCause(ev.code)
          ? { code: ev.code, reason: ev.reason, cause: fatalCause(ev.code)! }
          : null;
      if (fatal) return this.stop(fatal, false);
      if (this.finalBye) return this.stop({ code: ev.code, reason: ev.reason, cause: 'peer-closed' }, false);
      const cause: ClientCloseCause = !this.welcomed ? 'handshake-failed' : ev.code === 1006 ? 'connection-lost' : 'peer-closed';
      this.lost({ code: ev.code, reason: ev.reason, cause });
    };
  }

  /** Calls `then` with a token from the provider (or undefined), unless the attempt went stale meanwhile. */
  private withToken(gen: number, then: (token: string | undefined) => void): void {
    const provider = this.options.token;
    if (!provider) return then(undefined);
    Promise.resolve()
      .then(provider)
      .then(
        (t) => {
          if (gen === this.gen && this.socket && this.socket.readyState === 1) then(t);
        },
        (err: unknown) => {
          if (gen !== this.gen) return;
          this.emitError(err instanceof Error ? err : new Error(String(err)));
          this.stop({ code: 1006, reason: 'token provider failed', cause: 'auth-failed' }, true);
        },
      );
  }

  /** Leaves the current socket; reconnects unless that is off or exhausted. */
  private lost(info: ClientCloseInfo): void {
    if (this._state === 'closed') return;
    // The server said it is over (fatal error, or bye without a retry hint): however the socket ended, stop.
    if (this.fatal) return this.stop(this.fatal, true);
    if (this.finalBye) return this.stop({ code: info.code, reason: info.reason, cause: 'peer-closed' }, true);
    const wasOpenFor = this.connectedAt !== null && this.welcomed ? this.clock.now() - this.connectedAt : 0;
    this.dropSocket(info.cause === 'heartbeat-timeout' || info.cause === 'handshake-timeout', info.cause === 'protocol-error' ? 4002 : 4000);
    // With reconnect off this loss is the final close: stop() counts it.
    if (this.options.reconnect === false) return this.stop(info, false);
    this.closes[info.cause] = (this.closes[info.cause] ?? 0) + 1;
    if (wasOpenFor >= (this.options.stableAfter ?? 5000)) this.backoff.reset();
    let delay: number;
    if (this.retryHint >= 0) {
      delay = this.retryHint;
      this.retryHint = -1;
    } else {
      delay = this.backoff.next();
      if (delay < 0) return this.stop({ ...info, cause: 'reconnect-failed' }, false);
    }
    this.transition('reconnecting', info.cause);
    this.emit('reconnecting', { attempt: this.backoff.attempts, delay, reason: info.cause });
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (this._state !== 'reconnecting') return;
      this.counters.reconnects++;
      this.connect();
    }, delay);
  }

  /** Detaches and closes the current socket; stops its timers. */
  private dropSocket(terminate: boolean, code = 4000): void {
    this.gen++;
    for (const t of [this.handshakeTimer, this.ackTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.handshakeTimer = this.ackTimer = null;
    this.timer?.stop();
    this.monitor?.stop();
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    this.welcomed = false;
    if (!s) return;
    s.onopen = s.onmessage = s.onerror = s.onclose = null;
    if (s.onactivity !== undefined) s.onactivity = null;
    if (s.readyState === 3) return;
    // A dead peer would never finish a closing handshake: drop it at once where we can.
    if (terminate && s.terminate) s.terminate();
    else {
      try {
        s.close(code, code === 4002 ? 'protocol error' : 'connection abandoned');
      } catch {
        s.close();
      }
    }
  }

  /** Stops for good. */
  private stop(info: ClientCloseInfo, closeSocket: boolean): void {
    if (this._state === 'closed') return;
    if (closeSocket && this.socket) {
      const s = this.socket;
      this.gen++;
      s.onopen = s.onmessage = s.onerror = s.onclose = null;
      if (s.readyState !== 3) {
        try {
          s.close(info.cause === 'local-closed' ? info.code : 4000, info.reason.slice(0, 120));
        } catch {
          s.close();
        }
      }
      this.socket = null;
    }
    this.dropSocket(false);
    if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.env) {
      this.env.removeEventListener('online', this.onWake);
      this.env.document?.removeEventListener('visibilitychange', this.onVisibility);
    }
    // Whatever was never acknowledged has failed: say so, never drop silently.
    if (this.outbox.length > 0) this.failOutbox();
    this.closes[info.cause] = (this.closes[info.cause] ?? 0) + 1;
    this.transition('closed', info.cause);
    this.emit('close', info);
  }

  // -------------------------------------------------------------- messages

  private transmit(wire: string | Uint8Array, seq: number): void {
    this.sendRaw(this.socket!, wire);
    if (seq > this.lastTransmitted) this.lastTransmitted = seq;
  }

  /** Every frame we send goes through here: outbound traffic counts for the heartbeat. */
  private sendRaw(s: SocketLike, data: string | Uint8Array): void {
    s.send(data);
    if (this.monitor) this.monitor.onOutbound(this.clock.now());
  }

  private takeAck(): number {
    if (this.ackTimer !== null) {
      this.clock.clearTimeout(this.ackTimer);
      this.ackTimer = null;
    }
    return this.inbound.takeAck();
  }

  private sendAckNow(): void {
    if (!this.welcomed || !this.socket || this.inbound.pending === 0) return;
    this.sendRaw(this.socket, encodeControl({ t: 'ack', seq: this.takeAck() }));
  }

  private onMessage(data: unknown): void {
    const now = this.clock.now();
    if (this.monitor) this.monitor.onInbound(now);
    const h = this.header;
    if (typeof data === 'string') {
      const first = data.length > 0 ? data.charCodeAt(0) : -1;
      if (first === DATA_MARK) {
        if (!this.welcomed || !parseDataHeaderString(data, h)) return this.protocolError('malformed or early data message');
        if (this.acceptData(h)) {
          this.counters.bytesIn += data.length;
          this.emit('message', data.slice(h.offset));
        }
        return;
      }
      if (first !== CONTROL_MARK) return this.protocolError('invalid lifeline.v1 message');
      const d = classify(first, true, () => data);
      if (d.kind !== 'control') return this.protocolError(`invalid lifeline.v1 message: ${d.kind === 'invalid' ? d.why : ''}`);
      this.onControl(d.msg, now);
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
    if (bytes.length === 0 || bytes[0] !== DATA_MARK || !this.welcomed || !parseDataHeaderBytes(bytes, h)) {
      return this.protocolError('invalid binary lifeline.v1 message');
    }
    if (this.acceptData(h)) {
      this.counters.bytesIn += bytes.length;
      this.emit('message', bytes.subarray(h.offset));
    }
  }

  /** Sequencing for one inbound data message; true to deliver it. */
  private acceptData(h: DataHeader): boolean {
    if (h.ack >= 0) {
      this.onPeerAck(h.ack);
      // A bad ack failed the connection: deliver nothing more from it.
      if (!this.welcomed) return false;
    }
    const verdict = this.inbound.accept(h.seq);
    if (verdict === 'duplicate') {
      this.counters.duplicatesDropped++;
      return false;
    }
    if (verdict === 'gap') {
      // The server skipped messages: resume from what we have (it replays the gap).
      this.lost({ code: 1006, reason: `sequence gap at ${h.seq}`, cause: 'protocol-error' });
      return false;
    }
    this.counters.messagesIn++;
    if (this.inbound.ackDue) this.sendAckNow();
    else if (this.ackTimer === null) {
      this.ackTimer = this.clock.setTimeout(() => {
        this.ackTimer = null;
        this.sendAckNow();
      }, this.options.ackDelay ?? 100);
    }
    return true;
  }

  private onPeerAck(ack: number): void {
    if (ack <= this.peerAcked) return;
    if (ack > this.lastSent) return this.protocolError(`ack ${ack} beyond the last message sent`);
    this.peerAcked = ack;
    this.outbox.ack(ack);
    if (this.listenerCount('acked') > 0) this.emit('acked', this.epochBase + ack);
  }

  private onControl(msg: ControlMessage, now: number): void {
    const s = this.socket!;
    switch (msg.t) {
      case 'ping':
        this.sendRaw(s, encodeControl({ t: 'pong', ts: msg.ts }));
        return;
      case 'pong':
        this.monitor?.onPong(msg.ts, now);
        return;
      case 'ack':
        this.onPeerAck(msg.seq);
        return;
      case 'welcome':
        return this.onWelcome(msg, now);
      case 'bye':
        // With a retry hint the server is restarting: come back after it. Without, the session is over.
        if (msg.retryAfter !== undefined) this.retryHint = msg.retryAfter;
        else this.finalBye = true;
        return;
      case 'auth-refresh': {
        const gen = this.gen;
        this.withToken(gen, (token) => {
          if (token !== undefined && this.socket) this.sendRaw(this.socket, encodeControl({ t: 'auth', token }));
        });
        return;
      }
      case 'error':
        if (msg.fatal) {
          const cause: ClientCloseCause = msg.code === 'auth-failed' ? 'auth-failed' : msg.code === 'auth-expired' ? 'auth-expired' : 'forbidden';
          this.fatal = { code: 4401, reason: msg.message || msg.code, cause };
        }
        this.emitError(new Error(`server error ${msg.code}: ${msg.message}`));
        return;
      default:
        return this.protocolError(`unexpected ${msg.t} from the server`);
    }
  }

  private onWelcome(msg: Extract<ControlMessage, { t: 'welcome' }>, now: number): void {
    if (this.welcomed) return this.protocolError('second welcome');
    if (msg.v !== PROTOCOL_VERSION) {
      // Another version will not change on the next attempt: fatal.
      this.emitError(new Error(`unsupported lifeline version ${msg.v}`));
      return this.stop({ code: 1002, reason: `unsupported lifeline version ${msg.v}`, cause: 'protocol-error' }, true);
    }
    if (msg.session === undefined || msg.token === undefined || msg.ack === undefined) return this.protocolError('welcome without a session');
    const local = this.options.heartbeat ?? 'server';
    let config: HeartbeatConfig | null;
    try {
      config = local === 'server' ? (msg.hb ? resolveHeartbeat({ ...msg.hb, lateSlack: Math.min(2000, msg.hb.timeoutFloor) }) : null) : resolveHeartbeat(local);
    } catch {
      return this.protocolError('welcome with an unusable heartbeat');
    }
    if (this.handshakeTimer !== null) this.clock.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.welcomed = true;
    this.connectedAt = now;
    const hadSession = this.sessionId !== null;
    let lostInfo: SessionLostInfo | null = null;
    let replayed = 0;
    if (hadSession && msg.resumed && msg.session === this.sessionId) {
      if (msg.ack > this.lastSent) {
        this.welcomed = false;
        return this.protocolError(`resume ack ${msg.ack} beyond the last message sent (${this.lastSent})`);
      }
      // Resume: drop what the server has, resend the rest in order.
      this.counters.resumes++;
      this.onPeerAck(msg.ack);
      this.lastTransmitted = this.peerAcked;
      for (const e of this.outbox.from(msg.ack)) {
        this.transmit(e.wire, e.seq);
        replayed++;
      }
      this.counters.replayed += replayed;
    } else {
      if (hadSession || this.lastTransmitted > 0) {
        // The old session is gone: fail what it did not confirm, then start over.
        const rawHad = msg.lost?.ack ?? null;
        const serverHad = rawHad === null ? null : Math.min(rawHad, this.lastSent);
        const unconfirmed = this.lastSent - this.peerAcked;
        // What the old session received was delivered: only the rest fails.
        if (serverHad !== null && serverHad > this.peerAcked) {
          this.peerAcked = serverHad;
          this.outbox.ack(serverHad);
        }
        const failed = this.failOutbox();
        lostInfo = {
          reason: msg.lost?.reason ?? 'unknown-session',
          lostToServer: serverHad !== null ? Math.max(0, this.lastSent - serverHad) : unconfirmed,
          lostToClient: msg.lost ? msg.lost.toClient : null,
          exact: serverHad !== null,
          failed,
        };
        this.counters.sessionsLost++;
      }
      this.sessionId = msg.session;
      this.resumeToken = msg.token;
      if (lostInfo) this.newEpoch();
      // Messages queued before the first welcome go out now, in order.
      for (const e of this.outbox.from(0)) this.transmit(e.wire, e.seq);
    }
    if (config) {
      this.monitor = new HeartbeatMonitor(
        config,
        {
          sendPing: (ts) => {
            if (this.socket && this.socket.readyState === 1) this.socket.send(encodeControl({ t: 'ping', ts }));
            // (the monitor notes its own pings as outbound)
          },
          onDead: () => this.lost({ code: 1006, reason: 'heartbeat-timeout', cause: 'heartbeat-timeout' }),
          // "Our backlog is draining" proves the peer alive only where the
          // socket knows what reached the network (the Node adapter). A
          // browser's bufferedAmount drops as soon as its own network stack
          // takes the data, so there it would keep a dead peer alive.
          outbound: this.socket && typeof this.socket.bytesFlushed === 'number' ? () => this.flushProgress() : undefined,
          onStateChange: (st) => this.emit('liveness', st),
          keepalive: true,
        },
        now,
      );
      this.timer = new HeartbeatTimer(this.clock, this.monitor);
      this.timer.start();
    }
    this.transition('open', hadSession ? (lostInfo ? 'session-lost' : 'resumed') : 'welcome');
    if (lostInfo) this.emit('session-lost', lostInfo);
    else if (hadSession) this.emit('resumed', { replayed });
    if (!this.everOpened) {
      this.everOpened = true;
      this.emit('open');
    }
  }

  private flushProgress(): { written: number; backlog: number } {
    const s = this.socket;
    return s ? { written: s.bytesFlushed ?? 0, backlog: s.bufferedAmount } : { written: 0, backlog: 0 };
  }

  /** Marks every message in the outbox failed; returns their id range. */
  private failOutbox(): { from: number; to: number } | null {
    if (this.outbox.length === 0) return null;
    const range = { from: this.epochBase + this.outbox.firstSeq, to: this.epochBase + this.lastSent };
    this.failedRanges.push(range);
    // Keep the list bounded: old failures fall back to 'acked' lookups only if ever this long.
    if (this.failedRanges.length > 64) this.failedRanges.shift();
    this.outbox.clear();
    return range;
  }

  /** A new session numbers from 1 again; ids stay unique through epochBase. */
  private newEpoch(): void {
    this.epochBase += this.lastSent;
    this.lastSent = 0;
    this.lastTransmitted = 0;
    this.peerAcked = 0;
    this.inbound = new InboundSequencer(this.options.ackEvery ?? 32);
  }

  private protocolError(why: string): void {
    this.emitError(new Error(why));
    this.lost({ code: 1002, reason: why.slice(0, 120), cause: 'protocol-error' });
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

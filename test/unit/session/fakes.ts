// Test doubles shared by the session unit tests: a heartbeat host that records
// what the monitor asked for, a clock wrapper that counts timers, a fake
// WebSocket-like object the test drives by hand, and a fake browser
// environment ('online', document visibilitychange). No real time anywhere.

import type { Clock, FakeClock, TimerHandle } from '../../../src/session/clock.js';
import type { HeartbeatHost, HeartbeatMonitor, LivenessState } from '../../../src/session/heartbeat.js';
import type { EnvironmentLike, SocketLike } from '../../../src/session/lifeline-client.js';

/** Records every ping and death (with the clock's time), and every liveness change. */
export class FakeHost implements HeartbeatHost {
  readonly pings: number[] = [];
  readonly deaths: Array<{ reason: string; at: number }> = [];
  readonly states: LivenessState[] = [];
  outbound?: () => { written: number; backlog: number };
  private readonly clock: Clock | null;

  constructor(clock: Clock | null = null) {
    this.clock = clock;
  }

  sendPing(ts: number): void {
    this.pings.push(ts);
  }

  onDead(reason: 'heartbeat-timeout'): void {
    this.deaths.push({ reason, at: this.clock ? this.clock.now() : NaN });
  }

  onStateChange(state: LivenessState): void {
    this.states.push(state);
  }
}

/**
 * A minimal driver for one monitor over a FakeClock, independent of
 * scheduler.ts, so monitor tests do not depend on the drivers under test
 * elsewhere: it runs check(now, plannedAt) when the timer fires and re-arms
 * at the returned time.
 */
export function driveMonitor(clock: FakeClock, m: HeartbeatMonitor): { probeNow(): void; stop(): void; checks(): number } {
  let handle: TimerHandle | null = null;
  let planned = 0;
  let checks = 0;
  const arm = (at: number): void => {
    if (handle !== null) clock.clearTimeout(handle);
    planned = at;
    handle = clock.setTimeout(fire, at - clock.now());
  };
  const fire = (): void => {
    handle = null;
    checks++;
    const next = m.check(clock.now(), planned);
    if (next >= 0) arm(next);
  };
  arm(m.nextCheck);
  return {
    probeNow() {
      const next = m.probeNow(clock.now());
      if (next >= 0) arm(next);
    },
    stop() {
      if (handle !== null) clock.clearTimeout(handle);
      handle = null;
    },
    checks: () => checks,
  };
}

/** Wraps a clock and counts setTimeout / clearTimeout calls and timer fires. */
export class CountingClock implements Clock {
  setTimeoutCalls = 0;
  clearTimeoutCalls = 0;
  fires = 0;
  readonly inner: Clock;

  constructor(inner: Clock) {
    this.inner = inner;
  }

  now(): number {
    return this.inner.now();
  }

  setTimeout(cb: () => void, ms: number): TimerHandle {
    this.setTimeoutCalls++;
    return this.inner.setTimeout(() => {
      this.fires++;
      cb();
    }, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.clearTimeoutCalls++;
    this.inner.clearTimeout(handle);
  }
}

/** What the fake socket was asked to send, copied at the time of the call. */
export type Sent = string | Uint8Array;

/** One application message the client sent, as FakeSocket.dataSent() parses it. */
export interface SentData {
  seq: number;
  ack: number;
  payload: string | number[];
  binary: boolean;
}

/**
 * A WebSocket-like object the test drives by hand: it records what the client
 * sends and how it closes it; serverOpen/serverSend/serverClose call the
 * client's handlers the way a real socket would.
 */
export class FakeSocket implements SocketLike {
  readyState = 0;
  protocol = '';
  bufferedAmount = 0;
  binaryType = 'blob';
  readonly sent: Sent[] = [];
  readonly closeCalls: Array<{ code: number | undefined; reason: string | undefined }> = [];
  terminateCalls = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onactivity: ((bytes: number) => void) | null = null;
  terminate?: () => void;
  readonly url: string;
  readonly protocols: string[];

  constructor(url: string, protocols: string[], withTerminate: boolean) {
    this.url = url;
    this.protocols = protocols;
    if (withTerminate) {
      this.terminate = () => {
        this.terminateCalls++;
        this.readyState = 3;
      };
    }
  }

  send(data: string | ArrayBufferView | ArrayBuffer): void {
    // WHATWG: send() in CONNECTING throws InvalidStateError.
    if (this.readyState === 0) throw new Error('InvalidStateError: still connecting');
    if (typeof data === 'string') this.sent.push(data);
    else if (data instanceof ArrayBuffer) this.sent.push(new Uint8Array(data.slice(0)));
    else this.sent.push(new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)));
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    if (this.readyState < 2) this.readyState = 2;
  }

  /** The server accepted the upgrade with `protocol`. */
  serverOpen(protocol = 'lifeline.v1'): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }

  serverSend(data: unknown): void {
    this.onmessage?.({ data });
  }

  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }

  /** Text messages sent so far, in order. */
  texts(): string[] {
    return this.sent.filter((x): x is string => typeof x === 'string');
  }

  /**
   * Application messages sent so far, parsed independently of wire.ts:
   * 'd' SEQ [',' ACK] ':' PAYLOAD; ack -1 when absent; text payloads as
   * strings, binary ones as byte arrays.
   */
  dataSent(): SentData[] {
    const out: SentData[] = [];
    for (const x of this.sent) {
      const text = typeof x === 'string' ? x : String.fromCharCode(...x.subarray(0, 40));
      if (!text.startsWith('d')) continue;
      const m = /^d(0|[1-9][0-9]*)(?:,(0|[1-9][0-9]*))?:/.exec(text);
      if (!m) throw new Error(`client sent a malformed data message: ${JSON.stringify(text)}`);
      const seq = Number(m[1]);
      const ack = m[2] === undefined ? -1 : Number(m[2]);
      out.push(typeof x === 'string' ? { seq, ack, payload: x.slice(m[0].length), binary: false } : { seq, ack, payload: [...x.subarray(m[0].length)], binary: true });
    }
    return out;
  }

  /** Control messages of type `t` sent so far, parsed. */
  controls(t: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const s of this.texts()) {
      if (!s.startsWith('{')) continue;
      const o = JSON.parse(s) as Record<string, unknown>;
      if (o.t === t) out.push(o);
    }
    return out;
  }
}

type Fn = () => void;

/** A browser-like environment: window 'online' and document 'visibilitychange'. */
export class FakeEnvironment implements EnvironmentLike {
  private readonly listeners = new Map<string, Fn[]>();
  private readonly docListeners = new Map<string, Fn[]>();
  readonly document: NonNullable<EnvironmentLike['document']> & { visibilityState: string };

  constructor() {
    const docListeners = this.docListeners;
    this.document = {
      visibilityState: 'visible',
      addEventListener(type: string, fn: Fn) {
        docListeners.set(type, [...(docListeners.get(type) ?? []), fn]);
      },
      removeEventListener(type: string, fn: Fn) {
        docListeners.set(type, (docListeners.get(type) ?? []).filter((x) => x !== fn));
      },
    };
  }

  addEventListener(type: string, fn: Fn): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }

  removeEventListener(type: string, fn: Fn): void {
    this.listeners.set(type, (this.listeners.get(type) ?? []).filter((x) => x !== fn));
  }

  listenerCount(): number {
    let n = 0;
    for (const l of this.listeners.values()) n += l.length;
    for (const l of this.docListeners.values()) n += l.length;
    return n;
  }

  fireOnline(): void {
    for (const fn of this.listeners.get('online') ?? []) fn();
  }

  setVisibility(state: 'visible' | 'hidden'): void {
    this.document.visibilityState = state;
    for (const fn of this.docListeners.get('visibilitychange') ?? []) fn();
  }
}

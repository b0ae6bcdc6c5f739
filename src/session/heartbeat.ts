/**
 * Liveness of one connection: decides when to ping and when the peer is dead.
 *
 * Rules (../shared/DESIGN.md, session contract):
 *  - any inbound byte proves the peer alive (the transport calls onInbound for
 *    every read, so a large frame still arriving counts);
 *  - outbound progress while we have a send backlog proves it too (a peer whose
 *    TCP stack keeps acking a big message is alive even though our ping sits
 *    behind that message and cannot be answered yet);
 *  - when nothing came in for `interval`, ping; when nothing arrived for
 *    `timeout` after that, the peer is dead ('heartbeat-timeout');
 *  - when nothing went out for `interval`, ping too: a peer busy sending us
 *    one long message would otherwise hear nothing from us (its own ping
 *    waits behind that message) and give up on us;
 *  - the timeout adapts to the measured RTT: clamp(srtt + k*rttvar, floor, ceiling);
 *  - a check that runs late (throttled timer, frozen page, sleeping laptop)
 *    sends a fresh probe and waits one more timeout before declaring death.
 *
 * The monitor reads no clock and arms no timer: check(now, plannedAt) is called
 * by a driver (HeartbeatWheel on servers, HeartbeatTimer on clients).
 */
import { UsageError } from '../protocol/errors.js';
import { RttEstimator } from './rtt.js';

export interface HeartbeatConfig {
  /** Quiet time before a ping is sent, ms. */
  interval: number;
  /** Smallest wait for an answer to a ping, ms. */
  timeoutFloor: number;
  /** Largest wait for an answer to a ping, ms. */
  timeoutCeiling: number;
  /** Wait used before any RTT sample exists, ms (clamped to floor..ceiling). */
  timeoutInitial: number;
  /** Weight of the RTT variation in the timeout (RFC 6298 uses 4). */
  k: number;
  /** A check running this much later than planned is "late": probe before declaring death, ms. */
  lateSlack: number;
}

export type HeartbeatPreset = 'normal' | 'aggressive';

/**
 * normal: ping after 25 s of quiet (below nginx's 60 s proxy_read_timeout and
 * most NAT idle timers), dead after 30-40 s of silence.
 * aggressive: ping after 5 s, dead after 6-9 s.
 */
export const HEARTBEAT_PRESETS: Readonly<Record<HeartbeatPreset, Readonly<HeartbeatConfig>>> = Object.freeze({
  normal: Object.freeze({ interval: 25_000, timeoutFloor: 5_000, timeoutCeiling: 15_000, timeoutInitial: 15_000, k: 4, lateSlack: 2_000 }),
  aggressive: Object.freeze({ interval: 5_000, timeoutFloor: 1_000, timeoutCeiling: 4_000, timeoutInitial: 4_000, k: 4, lateSlack: 1_000 }),
});

export type HeartbeatOption = HeartbeatPreset | 'off' | false | Partial<HeartbeatConfig> & { preset?: HeartbeatPreset };

/**
 * Validates a heartbeat option. Returns null for 'off'. Partial configs fill
 * in from their preset (default 'normal'); a bare {interval, timeout...} that
 * sets only timeoutFloor/Ceiling keeps the rest.
 */
export function resolveHeartbeat(option: HeartbeatOption | undefined): HeartbeatConfig | null {
  if (option === undefined) return { ...HEARTBEAT_PRESETS.normal };
  if (option === 'off' || option === false) return null;
  if (option === 'normal' || option === 'aggressive') return { ...HEARTBEAT_PRESETS[option] };
  if (typeof option !== 'object' || option === null) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat must be 'normal', 'aggressive', 'off' or a config object, got ${String(option)}`);
  }
  const { preset, ...rest } = option;
  if (preset !== undefined && preset !== 'normal' && preset !== 'aggressive') {
    throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat.preset must be 'normal' or 'aggressive', got ${String(preset)}`);
  }
  const cfg: HeartbeatConfig = { ...HEARTBEAT_PRESETS[preset ?? 'normal'], ...stripUndefined(rest) };
  // A config that only narrows the ceiling below the preset's initial keeps initial in range.
  if (rest.timeoutInitial === undefined) cfg.timeoutInitial = Math.min(Math.max(cfg.timeoutInitial, cfg.timeoutFloor), cfg.timeoutCeiling);
  validate(cfg);
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function validate(c: HeartbeatConfig): void {
  const positive = (name: keyof HeartbeatConfig, min: number) => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat.${name} must be a number >= ${min}, got ${String(v)}`);
    }
  };
  positive('interval', 1);
  positive('timeoutFloor', 1);
  positive('timeoutCeiling', 1);
  positive('timeoutInitial', 1);
  positive('k', 0);
  positive('lateSlack', 1);
  if (c.timeoutCeiling < c.timeoutFloor) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat.timeoutCeiling (${c.timeoutCeiling}) is below timeoutFloor (${c.timeoutFloor})`);
  }
  if (c.timeoutInitial < c.timeoutFloor || c.timeoutInitial > c.timeoutCeiling) {
    throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat.timeoutInitial (${c.timeoutInitial}) must lie between timeoutFloor and timeoutCeiling`);
  }
}

/**
 * Parses the CLI form: 'normal' | 'aggressive' | 'off' | 'INTERVAL_MS:TIMEOUT_MS'
 * (a fixed timeout: floor = ceiling = initial = TIMEOUT_MS).
 */
export function parseHeartbeatSpec(spec: string): HeartbeatConfig | null {
  if (spec === 'off' || spec === 'normal' || spec === 'aggressive') return resolveHeartbeat(spec);
  const m = /^(\d+):(\d+)$/.exec(spec);
  if (!m) throw new UsageError('WS_ERR_INVALID_OPTION', `heartbeat must be normal, aggressive, off or INTERVAL_MS:TIMEOUT_MS, got ${JSON.stringify(spec)}`);
  const interval = Number(m[1]);
  const timeout = Number(m[2]);
  return resolveHeartbeat({ interval, timeoutFloor: timeout, timeoutCeiling: timeout, timeoutInitial: timeout, lateSlack: Math.max(1, Math.min(timeout, 2000)) });
}

/** Liveness states: 'alive' (nothing outstanding), 'probing' (a ping awaits its answer), 'dead'. */
export type LivenessState = 'alive' | 'probing' | 'dead';

export interface HeartbeatHost {
  /** Send a ping carrying `ts` (protocol ping or app-level, the host decides). */
  sendPing(ts: number): void;
  /** The peer is dead: close the connection and free its resources. */
  onDead(reason: 'heartbeat-timeout'): void;
  /**
   * Bytes handed to the network so far, and whether more are waiting to go
   * out. Optional: lets a peer that keeps draining our backlog count as alive.
   */
  outbound?(): { written: number; backlog: number };
  /** Optional: every liveness state change. */
  onStateChange?(state: LivenessState): void;
  /**
   * The driver reports every send through onOutbound(): the monitor then also
   * pings when nothing went out for an interval (a keepalive for a peer busy
   * sending us one long message, whose own pings wait behind it).
   */
  keepalive?: boolean;
}

export interface HeartbeatStats {
  pingsSent: number;
  pongsReceived: number;
  /** Pings whose answer never came (the connection died, or a new probe superseded them). */
  pingsMissed: number;
  lossRate: number;
  rtt: ReturnType<RttEstimator['snapshot']>;
  /** Current answer timeout, ms. */
  timeout: number;
  state: LivenessState;
}

/** HeartbeatMonitor.flags: three booleans in one field (a server holds a monitor per connection, 8 B a field). */
const LATE_PROBE_USED = 1;
const KEEPALIVE_PROBE = 2;
const TRACKS_OUTBOUND = 4;

/** Stands for "no sample yet" in every monitor that has none (frozen: never sampled). */
const NO_RTT = Object.freeze(new RttEstimator()) as RttEstimator;

export class HeartbeatMonitor {
  readonly config: HeartbeatConfig;
  /**
   * The RTT estimate. Internally a shared, never-sampled one stands in until
   * the first answer (an idle connection needs none of its own); asking for
   * it here gives the monitor its own.
   */
  get rtt(): RttEstimator {
    return this._rtt === NO_RTT ? (this._rtt = new RttEstimator()) : this._rtt;
  }
  private _rtt: RttEstimator = NO_RTT;
  private readonly host: HeartbeatHost;
  private _state: LivenessState = 'alive';
  /** Time of the last inbound byte (or outbound progress). */
  lastInbound: number;
  /** Time we last saw our own bytes go out (or sent a ping). */
  private lastOutbound: number;
  /** When the outstanding ping was sent (meaningful in 'probing'). */
  private pingSentAt = 0;
  /**
   * LATE_PROBE_USED: the outstanding ping has already been renewed by a late
   * check. KEEPALIVE_PROBE: the outstanding ping is a keepalive, not a
   * liveness probe. TRACKS_OUTBOUND: the host reports its sends
   * (host.keepalive).
   */
  private flags = 0;
  private lastWritten = -1;
  /** Next time check() wants to run. */
  nextCheck: number;
  pingsSent = 0;
  pongsReceived = 0;
  pingsMissed = 0;
  /** Set by drivers that drop monitors lazily. */
  detached = false;
  /**
   * HeartbeatWheel: the tick of the slot that holds this monitor's live
   * entry. A probe moves the check earlier with a new entry; the old one,
   * at another tick, is then stale and skipped.
   */
  slotTick = -1;

  /**
   * `host` null: the monitor is its own host (a subclass that implements
   * HeartbeatHost: one object per connection instead of two).
   */
  constructor(config: HeartbeatConfig, host: HeartbeatHost | null, now: number) {
    this.config = config;
    this.host = host ?? (this as unknown as HeartbeatHost);
    this.lastInbound = now;
    this.lastOutbound = now;
    if (this.host.keepalive === true) this.flags = TRACKS_OUTBOUND;
    this.nextCheck = now + config.interval;
  }

  get state(): LivenessState {
    return this._state;
  }

  /**
   * The answer timeout in force: clamp(srtt + k*rttvar, floor, ceiling),
   * rounded up to a whole millisecond, so deadlines built from whole-ms times
   * stay whole numbers (kept unboxed in the monitor; timers are in ms anyway).
   */
  get timeout(): number {
    const c = this.config;
    return Math.ceil(this._rtt.timeout(c.k, c.timeoutFloor, c.timeoutCeiling, c.timeoutInitial));
  }

  /** Any inbound data: the peer is alive. Cheap on purpose (called per read). */
  onInbound(now: number): void {
    this.lastInbound = now;
  }

  /** We sent something (drivers with host.keepalive call this for every send). */
  onOutbound(now: number): void {
    this.lastOutbound = now;
  }

  /** A pong (or app-level pong) carrying the timestamp of our ping. */
  onPong(ts: number, now: number): void {
    this.lastInbound = now;
    if (this._state === 'dead') return;
    // Only answers to pings we sent count for RTT (ts within the outstanding window).
    if (ts > 0 && ts <= now && now - ts < this.config.timeoutCeiling + this.config.interval + this.config.lateSlack) {
      this.pongsReceived++;
      (this._rtt === NO_RTT ? (this._rtt = new RttEstimator()) : this._rtt).sample(now - ts);
    }
    if (this._state === 'probing') this.setState('alive');
  }

  /**
   * Runs the liveness rules at `now`. `plannedAt` is when the driver meant to
   * run it; a large gap means timers were throttled or the process was frozen.
   * Returns the next time to check, or -1 when the peer was declared dead.
   */
  check(now: number, plannedAt: number = now): number {
    if (this._state === 'dead') return -1;
    const c = this.config;
    this.noteOutboundProgress(now);
    if (this._state === 'probing') {
      // >=: drivers with a coarse clock stamp a read in the ping's own tick with the ping's time.
      if (this.lastInbound >= this.pingSentAt) {
        // Something arrived after the ping: alive, even if the pong is still on its way.
        this.setState('alive');
      } else {
        // A keepalive (sent because nothing went out) does not shorten the
        // silence the peer is allowed: dead only after interval + timeout of it.
        const silentFrom = (this.flags & KEEPALIVE_PROBE) !== 0 ? this.lastInbound + c.interval : 0;
        const deadline = (this.pingSentAt > silentFrom ? this.pingSentAt : silentFrom) + this.timeout;
        if (now < deadline) return (this.nextCheck = deadline);
        if (now - plannedAt > c.lateSlack && (this.flags & LATE_PROBE_USED) === 0) {
          // We ran late: the silence may be ours, not the peer's. Probe again first.
          this.flags |= LATE_PROBE_USED;
          this.pingsMissed++;
          this.ping(now);
          return (this.nextCheck = now + this.timeout);
        }
        this.pingsMissed++;
        this.setState('dead');
        this.host.onDead('heartbeat-timeout');
        return -1;
      }
    }
    // Ping when nothing came in for an interval (is the peer alive?), and also
    // when nothing went out for one: a peer busy sending us one long message
    // cannot hear from us otherwise, as its own ping waits behind that message.
    const quietIn = this.lastInbound + c.interval;
    // Only hosts that report their outbound traffic can tell "nothing went out".
    const quietOut = (this.flags & TRACKS_OUTBOUND) !== 0 ? this.lastOutbound + c.interval : Infinity;
    if (now < quietIn && now < quietOut) return (this.nextCheck = quietIn < quietOut ? quietIn : quietOut);
    this.flags &= ~LATE_PROBE_USED;
    this.ping(now);
    if (now < quietIn) this.flags |= KEEPALIVE_PROBE;
    // Look again at the deadline, or after an interval if that comes first: a
    // config with interval < timeout must not wait out the whole timeout after
    // a prompt pong before its next ping (pings would come every timeout).
    const t = this.timeout;
    return (this.nextCheck = now + (c.interval < t ? c.interval : t));
  }

  /**
   * Probe now (the network came back online, the tab became visible): send a
   * ping unless one is outstanding, and expect an answer within the timeout.
   * Returns the next time to check.
   */
  probeNow(now: number): number {
    if (this._state === 'dead') return -1;
    if (this._state !== 'probing') {
      this.flags |= LATE_PROBE_USED;
      this.ping(now);
    }
    return (this.nextCheck = Math.min(this.nextCheck, this.pingSentAt + this.timeout));
  }

  /** Stop for good (connection closed). */
  stop(): void {
    this.detached = true;
    if (this._state === 'probing') this.pingsMissed++;
    this._state = 'dead';
  }

  stats(): HeartbeatStats {
    const sent = this.pingsSent;
    return {
      pingsSent: sent,
      pongsReceived: this.pongsReceived,
      pingsMissed: this.pingsMissed,
      lossRate: sent === 0 ? 0 : this.pingsMissed / sent,
      rtt: this._rtt.snapshot(),
      timeout: Math.round(this.timeout),
      state: this._state,
    };
  }

  private ping(now: number): void {
    this.flags &= ~KEEPALIVE_PROBE;
    this.pingSentAt = now;
    this.lastOutbound = now;
    this.pingsSent++;
    this.setState('probing');
    this.host.sendPing(now);
  }

  private noteOutboundProgress(now: number): void {
    const out = this.host.outbound?.();
    if (!out) return;
    if (this.lastWritten >= 0 && out.written > this.lastWritten) {
      // Our backlog is draining: the peer's TCP stack is acknowledging data.
      this.lastInbound = Math.max(this.lastInbound, now);
    }
    this.lastWritten = out.backlog > 0 ? out.written : -1;
  }

  private setState(s: LivenessState): void {
    if (this._state === s) return;
    this._state = s;
    this.host.onStateChange?.(s);
  }
}

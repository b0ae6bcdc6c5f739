// Drivers of HeartbeatMonitor.check(): HeartbeatWheel (servers: one timer for
// all connections, hashed timing wheel, coarse `now`) and HeartbeatTimer
// (clients: one timer per connection, re-armed only when it fires).
// Time is a FakeClock, wrapped in a CountingClock to count timers.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { FakeClock } from '../../../src/session/clock.js';
import { HeartbeatMonitor, type HeartbeatConfig, type HeartbeatHost } from '../../../src/session/heartbeat.js';
import { HeartbeatTimer, HeartbeatWheel } from '../../../src/session/scheduler.js';
import { CountingClock, FakeHost } from './fakes.js';

/** The aggressive preset's numbers; with no RTT sample the answer timeout is `timeoutInitial` (4000 ms, a multiple of the tick). */
const CFG: HeartbeatConfig = { interval: 5000, timeoutFloor: 1000, timeoutCeiling: 4000, timeoutInitial: 4000, k: 4, lateSlack: 1000 };
const TICK = 100;
const SLOTS = 1024; // HeartbeatWheel's default: one lap = 102.4 s at 100 ms ticks

/** N monitors on one wheel, each with its own recording host; lastInbound staggered over one interval. */
function fleet(n: number, opts: { slots?: number; spread?: number; runTick?: (tick: () => void) => void } = {}) {
  const clock = new FakeClock();
  const counting = new CountingClock(clock);
  const wheel = new HeartbeatWheel(counting, TICK, opts.slots ?? SLOTS, opts.runTick);
  const t0 = clock.now();
  const pings: number[][] = Array.from({ length: n }, () => []);
  const deaths: number[][] = Array.from({ length: n }, () => []);
  const checks = new Uint32Array(n);
  const lastInbound0: number[] = [];
  const monitors: HeartbeatMonitor[] = [];
  for (let i = 0; i < n; i++) {
    const host: HeartbeatHost = {
      sendPing: (ts) => pings[i]!.push(ts),
      onDead: () => deaths[i]!.push(clock.now()),
    };
    // Stagger over [0, spread) (default: one interval) at odd millisecond offsets, so rounding to ticks is exercised.
    const spread = opts.spread ?? CFG.interval;
    const off = spread === 0 ? 0 : (i * 7919) % spread;
    const m = new HeartbeatMonitor(CFG, host, t0 - off);
    const check = m.check.bind(m);
    m.check = (now: number, plannedAt?: number) => {
      checks[i]!++;
      return check(now, plannedAt);
    };
    lastInbound0.push(t0 - off);
    monitors.push(m);
    wheel.add(m);
  }
  /** Advances tick by tick, asserting that at most one clock timer is ever armed. */
  const run = (ms: number, each?: (tickIndex: number) => void): void => {
    for (let k = 0; k < ms / TICK; k++) {
      clock.advance(TICK);
      assert.ok(clock.pending <= 1, `${clock.pending} timers armed at ${clock.now() - t0} ms`);
      each?.(k);
    }
  };
  return { clock, counting, wheel, t0, pings, deaths, checks, lastInbound0, monitors, run };
}

const ceilTick = (t: number): number => Math.ceil(t / TICK) * TICK;

/** The normal preset's numbers, on a wheel with the server's 250 ms tick. */
const NORMAL: HeartbeatConfig = { interval: 25_000, timeoutFloor: 5000, timeoutCeiling: 15_000, timeoutInitial: 15_000, k: 4, lateSlack: 2000 };

/** One monitor (its slot: 25 s after t0), probed through the wheel 1 s in; `checks` are the times check() ran, ms after t0. */
function probedOneSecondIn() {
  const clock = new FakeClock();
  const wheel = new HeartbeatWheel(clock, 250);
  const host = new FakeHost(clock);
  const t0 = wheel.refresh();
  const m = new HeartbeatMonitor(NORMAL, host, t0);
  const checks: number[] = [];
  const check = m.check.bind(m);
  m.check = (now: number, plannedAt?: number) => {
    checks.push(now - t0);
    return check(now, plannedAt);
  };
  wheel.add(m);
  clock.advance(1000);
  wheel.probe(m);
  return { clock, wheel, host, t0, m, checks };
}

describe('HeartbeatWheel', () => {
  it('10,000 quiet connections: each pinged at its tick, dead at ping + timeout, with one clock timer', () => {
    const N = 10_000;
    const f = fleet(N);
    assert.equal(f.clock.pending, 1, 'one timer for the whole server');
    // Adding monitors re-arms the one timer only when one is due before the slot it was armed for.
    const atStart = f.counting.setTimeoutCalls;
    assert.equal(atStart - f.counting.clearTimeoutCalls, 1);
    f.run(CFG.interval + CFG.timeoutInitial + 2 * TICK);
    const ticks = (CFG.interval + CFG.timeoutInitial + 2 * TICK) / TICK;
    const calls = f.counting.setTimeoutCalls - atStart;
    assert.ok(calls <= ticks, `${calls} setTimeout calls for ${ticks} ticks`);
    for (let i = 0; i < N; i++) {
      const due = f.lastInbound0[i]! + CFG.interval;
      assert.equal(f.pings[i]!.length, 1, `monitor ${i}: ${f.pings[i]!.length} pings`);
      const ping = f.pings[i]![0]!;
      // Pinged at the first tick at or after lastInbound + interval: never early, less than one tick late.
      assert.equal(ping, ceilTick(due), `monitor ${i}`);
      assert.ok(ping >= due && ping - due < TICK);
      assert.equal(f.deaths[i]!.length, 1, `monitor ${i}: ${f.deaths[i]!.length} deaths`);
      const death = f.deaths[i]![0]!;
      assert.equal(death, ping + CFG.timeoutInitial, `monitor ${i} death`);
      const silent = death - f.lastInbound0[i]!;
      assert.ok(silent >= CFG.interval + CFG.timeoutInitial && silent <= CFG.interval + CFG.timeoutInitial + TICK, `monitor ${i}: dead after ${silent} ms of silence`);
    }
    assert.equal(f.wheel.size, 0, 'dead monitors leave the wheel');
    assert.equal(f.clock.pending, 0, 'no timer once the wheel is empty');
  });

  it('steady state with traffic on every connection: about N*tick/interval checks per tick, not N; zero pings', () => {
    const N = 10_000;
    const f = fleet(N);
    // Every connection receives something once a second (staggered), stamped with the wheel's coarse clock
    // exactly as the server's per-read hook does.
    const traffic = (k: number): void => {
      for (let i = k % 10; i < N; i += 10) f.monitors[i]!.lastInbound = f.wheel.coarseNow();
    };
    f.run(2 * CFG.interval, traffic); // warm up (monitors due before their first traffic are pinged once here)
    f.checks.fill(0);
    for (const p of f.pings) p.length = 0;
    const perTick: number[] = [];
    let before = 0;
    f.run(10 * CFG.interval, (k) => {
      traffic(k);
      let total = 0;
      for (let i = 0; i < N; i++) total += f.checks[i]!;
      perTick.push(total - before);
      before = total;
    });
    const mean = perTick.reduce((a, b) => a + b, 0) / perTick.length;
    const max = Math.max(...perTick);
    // A monitor with traffic is checked once per (interval - age of its last traffic), i.e. every 4-5 s.
    const lo = (N * TICK) / CFG.interval;
    const hi = (N * TICK) / (CFG.interval - 1000);
    assert.ok(mean >= lo * 0.9 && mean <= hi * 1.1, `mean ${mean.toFixed(1)} checks per tick, expected ${lo}..${hi}`);
    assert.ok(max <= 2 * hi, `max ${max} checks in one tick (N = ${N})`);
    assert.equal(f.pings.reduce((a, p) => a + p.length, 0), 0, 'connections with traffic are never pinged');
    assert.equal(f.deaths.reduce((a, d) => a + d.length, 0), 0);
    assert.equal(f.wheel.size, N);
  });

  it('removed (detached) monitors are dropped at their slot: never checked or pinged again', () => {
    const N = 1000;
    const f = fleet(N);
    for (let i = 0; i < N; i += 2) f.wheel.remove(f.monitors[i]!);
    assert.equal(f.wheel.size, N, 'removal is lazy');
    f.run(CFG.interval + TICK);
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        assert.equal(f.checks[i], 0, `removed monitor ${i} was checked`);
        assert.equal(f.pings[i]!.length, 0);
      } else {
        assert.equal(f.pings[i]!.length, 1);
      }
    }
    const deadSoFar = f.deaths.reduce((a, d) => a + d.length, 0);
    assert.equal(f.wheel.size, N / 2 - deadSoFar, 'removed monitors swept (and the dead ones gone)');
    // A connection that closes stops its monitor (detached): the same.
    for (let i = 1; i < N; i += 2) f.monitors[i]!.stop();
    f.run(CFG.timeoutInitial + TICK);
    assert.equal(f.wheel.size, 0);
    assert.equal(f.clock.pending, 0, 'an empty wheel arms no timer');
    assert.equal(f.deaths.reduce((a, d) => a + d.length, 0), deadSoFar, 'stopped monitors are not declared dead');
    const calls = f.counting.setTimeoutCalls;
    f.clock.advance(60_000);
    assert.equal(f.counting.setTimeoutCalls, calls, 'an idle wheel costs nothing');
  });

  it('stop() disarms the timer and forgets every monitor', () => {
    const f = fleet(100);
    f.wheel.stop();
    assert.equal(f.clock.pending, 0);
    assert.equal(f.wheel.size, 0);
    f.clock.advance(60_000);
    assert.equal(f.pings.reduce((a, p) => a + p.length, 0), 0);
  });

  it('a quiet wheel sleeps through empty slots: it wakes for the slots that hold monitors, not every tick', () => {
    const N = 100;
    const f = fleet(N, { spread: 0 }); // every monitor due in the same slot
    const ms = CFG.interval + CFG.timeoutInitial + 2 * TICK;
    f.run(ms);
    for (let i = 0; i < N; i++) {
      assert.deepEqual(f.pings[i], [f.t0 + CFG.interval], `monitor ${i} pings`);
      assert.deepEqual(f.deaths[i], [f.t0 + CFG.interval + CFG.timeoutInitial], `monitor ${i} death`);
    }
    // The ping slot and the deadline slot (of the 92 ticks in this time).
    assert.equal(f.counting.fires, 2, `${f.counting.fires} wakeups`);
    assert.equal(f.clock.pending, 0);
  });

  it('a read while the wheel sleeps gets the clock\'s time; the wheel ticks at the next boundary, so later reads stay within a tick', () => {
    const f = fleet(1, { spread: 0 });
    f.run(CFG.interval);
    const ping = f.pings[0]![0]!;
    assert.equal(ping, f.t0 + CFG.interval);
    const fires = f.counting.fires;
    f.clock.advance(1234); // asleep until the deadline (ping + 4000): nothing fires
    assert.equal(f.counting.fires, fires);
    const read = f.wheel.coarseNow();
    assert.equal(read, ping + 1234, 'the first read after a quiet spell is the clock\'s time');
    f.monitors[0]!.lastInbound = read;
    const boundary = ceilTick(read);
    f.clock.advance(boundary - 1 - f.clock.now());
    assert.equal(f.wheel.coarseNow(), read, 'within the tick: the coarse time, no clock read');
    f.clock.advance(1);
    assert.equal(f.counting.fires, fires + 1, 'the wheel woke at the next boundary');
    // That tick found nothing due: asleep again, so the next read is exact.
    f.clock.advance(7);
    assert.equal(f.wheel.coarseNow(), boundary + 7);
    // The read after the ping counts as an answer: no death at the deadline.
    f.run(CFG.timeoutInitial + TICK);
    assert.equal(f.deaths[0]!.length, 0);
    assert.equal(f.monitors[0]!.state, 'alive');
  });

  it('a monitor added while the wheel sleeps, due before the slot it sleeps until, is checked on time', () => {
    const f = fleet(1, { spread: 0 }); // due at t0 + 5000: the wheel sleeps until then
    f.clock.advance(1000);
    assert.equal(f.counting.fires, 0);
    const host = new FakeHost(f.clock);
    // Quiet since 4500 ms before now: due 500 ms from now, long before the armed slot.
    const m = new HeartbeatMonitor(CFG, host, f.clock.now() - 4500);
    f.wheel.add(m);
    assert.equal(f.clock.pending, 1, 'still one timer');
    f.run(CFG.interval);
    assert.deepEqual(host.pings, [ceilTick(f.t0 + 1000 + 500)], 'pinged at its own tick');
    assert.deepEqual(f.pings[0], [f.t0 + CFG.interval], 'the first monitor too');
  });

  it('probe(): a silent peer is judged at the probe\'s deadline, not at the later slot its monitor sat in', () => {
    const { clock, wheel, host, t0 } = probedOneSecondIn();
    for (let k = 0; k < 200 && host.deaths.length === 0; k++) clock.advance(250);
    assert.deepEqual(host.pings.map((p) => p - t0), [1000], 'the probe pinged at once');
    assert.deepEqual(host.deaths.map((d) => d.at - t0), [1000 + NORMAL.timeoutInitial], 'dead one timeout after the probe');
    assert.equal(wheel.size, 1, 'the entry from before the probe waits for its slot');
    clock.advance(25_000 - (clock.now() - t0));
    assert.equal(wheel.size, 0, 'and goes with it');
    assert.equal(host.pings.length, 1);
    assert.equal(host.deaths.length, 1);
  });

  it('probe() answered: the old entry is skipped, so the monitor is checked once per due time and pinged one interval after the pong', () => {
    const { clock, wheel, host, t0, m, checks } = probedOneSecondIn();
    clock.advance(100);
    m.onPong(host.pings[0]!, wheel.refresh());
    clock.advance(30_000); // to 31.1 s: before the deadline of the ping at 26.25 s
    // At the probe's deadline (16 s) it finds the answer and names the next ping (1.1 s + 25 s);
    // the entry from before the probe (25 s) is not checked.
    assert.deepEqual(checks, [16_000, 26_250]);
    assert.deepEqual(host.pings.map((p) => p - t0), [1000, 26_250]);
    assert.equal(host.deaths.length, 0);
    assert.equal(wheel.size, 1, 'one entry: the stale one was dropped, not carried along');
  });

  it('a read stamped with the coarse `now` in the ping tick counts as an answer', () => {
    const f = fleet(1, { spread: 0 });
    f.run(CFG.interval);
    assert.equal(f.pings[0]!.length, 1);
    assert.equal(f.wheel.coarseNow(), f.pings[0]![0], '`now` is the tick time');
    f.monitors[0]!.lastInbound = f.wheel.coarseNow(); // what the server's per-read hook stores
    f.run(CFG.timeoutInitial + TICK);
    assert.equal(f.deaths[0]!.length, 0);
  });

  it('a freeze shorter than one lap: due slots processed once; monitors probe (late) instead of dying', () => {
    const N = 2000;
    // lastInbound spread over 3 s < timeout: at +5.1 s every monitor has pinged and none is dead yet.
    const f = fleet(N, { spread: 3000 });
    f.run(CFG.interval + TICK);
    for (let i = 0; i < N; i++) assert.equal(f.pings[i]!.length, 1);
    f.checks.fill(0);
    const fires = f.counting.fires;
    f.clock.jump(30_000); // frozen: every deadline passed long ago
    f.clock.advance(1);
    const woke = f.clock.now() - 1;
    assert.equal(f.counting.fires, fires + 1, 'one (late) tick handles the backlog');
    assert.ok(f.clock.pending <= 1);
    for (let i = 0; i < N; i++) {
      assert.equal(f.checks[i], 1, `monitor ${i} checked ${f.checks[i]} times in the catch-up tick`);
      assert.equal(f.deaths[i]!.length, 0, `monitor ${i} declared dead on a late check`);
      assert.deepEqual(f.pings[i]!.slice(1), [woke], `monitor ${i} probed on wake`);
      assert.equal(f.monitors[i]!.pingsMissed, 1);
    }
    // Still silent: dead one timeout (+ at most one tick) after the probe.
    f.run(CFG.timeoutInitial + 2 * TICK);
    for (let i = 0; i < N; i++) {
      assert.equal(f.deaths[i]!.length, 1, `monitor ${i}`);
      const after = f.deaths[i]![0]! - woke;
      assert.ok(after >= CFG.timeoutInitial && after <= CFG.timeoutInitial + TICK, `monitor ${i}: dead ${after} ms after the probe`);
    }
  });

  it('a freeze longer than one lap: monitors probe on wake and the dead ones are found one timeout later', () => {
    // Lap = 1024 * 100 ms = 102.4 s; the lid of a laptop closed for 107.4 s.
    const N = 2000;
    const f = fleet(N, { spread: 3000 });
    f.run(CFG.interval + TICK);
    for (let i = 0; i < N; i++) assert.deepEqual([f.pings[i]!.length, f.deaths[i]!.length], [1, 0]);
    f.clock.jump(107_400);
    f.clock.advance(1);
    const woke = f.clock.now() - 1;
    for (let i = 0; i < N; i++) {
      assert.equal(f.deaths[i]!.length, 0, `monitor ${i} declared dead on a late check`);
      assert.deepEqual(f.pings[i]!.slice(1), [woke], `monitor ${i} probed on wake`);
    }
    // Run up to two laps (bounded) and see when each silent monitor is declared dead.
    for (let k = 0; k < 2 * SLOTS && f.deaths.some((d) => d.length === 0); k++) f.clock.advance(TICK);
    const after = f.deaths.map((d) => (d.length ? d[0]! - woke : Infinity));
    const late = after.filter((a) => a > CFG.timeoutInitial + TICK).length;
    assert.equal(
      late,
      0,
      `${late} of ${N} silent monitors declared dead more than timeout + tick (${CFG.timeoutInitial + TICK} ms) after the wake probe; ` +
        `death came ${Math.min(...after)}..${Math.max(...after)} ms after it`,
    );
  });

  it('a wheel that sat idle for longer than a lap pings a new connection on time', () => {
    // A server whose connections all closed (wheel empty, no timer), then a new one arrives 205.4 s later.
    const clock = new FakeClock();
    const wheel = new HeartbeatWheel(clock, TICK);
    clock.advance(205_400);
    const host = new FakeHost(clock);
    const start = wheel.refresh();
    const m = new HeartbeatMonitor(CFG, host, start);
    wheel.add(m);
    // Run until death (bounded by two laps), checking there is never more than one timer.
    for (let k = 0; k < 2 * SLOTS && host.deaths.length === 0; k++) {
      clock.advance(TICK);
      assert.ok(clock.pending <= 1);
    }
    assert.deepEqual(
      host.pings.map((p) => p - start),
      [CFG.interval],
      'first ping one interval after the connection opened (ms after open)',
    );
    assert.deepEqual(host.deaths.map((d) => d.at - start), [CFG.interval + CFG.timeoutInitial], 'declared dead interval + timeout after open');
  });

  it('a lap exactly as long as the answer timeout: monitors re-placed into the slot being processed are all kept', () => {
    // Pinged at tick T, a monitor's deadline is tick T + 40: with 40 slots that
    // is the slot T itself, which the wheel is processing at that moment.
    const N = 500;
    const f = fleet(N, { slots: CFG.timeoutInitial / TICK });
    f.run(CFG.interval + CFG.timeoutInitial + 2 * TICK);
    for (let i = 0; i < N; i++) {
      const ping = ceilTick(f.lastInbound0[i]! + CFG.interval);
      assert.deepEqual(f.pings[i], [ping], `monitor ${i} pings`);
      assert.deepEqual(f.deaths[i], [ping + CFG.timeoutInitial], `monitor ${i} death`);
    }
    assert.equal(f.wheel.size, 0);
  });

  it('runTick wraps each tick: every ping is sent inside it, one call per tick', () => {
    let calls = 0;
    let pingsInside = 0;
    const total = (): number => f.pings.reduce((a, p) => a + p.length, 0);
    const f = fleet(200, {
      runTick: (tick) => {
        calls++;
        const before = total();
        tick();
        pingsInside += total() - before;
      },
    });
    f.run(CFG.interval + 2 * TICK);
    assert.equal(total(), 200);
    assert.equal(pingsInside, 200, 'pings sent outside runTick');
    assert.equal(calls, f.counting.fires, 'one runTick call per tick the wheel woke for');
  });

  it('a host that throws: the others in its slot are still checked, the wheel stays armed, the error surfaces after the tick', () => {
    const clock = new FakeClock();
    const wheel = new HeartbeatWheel(clock, TICK);
    const t0 = clock.now();
    const hosts = [new FakeHost(clock), new FakeHost(clock), new FakeHost(clock)];
    const boom = new Error('listener failed');
    let thrown = 0;
    const send = hosts[1]!.sendPing.bind(hosts[1]!);
    hosts[1]!.sendPing = (ts) => {
      send(ts);
      if (thrown++ === 0) throw boom;
    };
    for (const h of hosts) wheel.add(new HeartbeatMonitor(CFG, h, t0));
    assert.throws(() => clock.advance(CFG.interval), (err) => err === boom);
    assert.deepEqual(
      hosts.map((h) => h.pings.length),
      [1, 1, 1],
      'every monitor in the slot pinged',
    );
    assert.equal(clock.pending, 1, 'the wheel is armed again');
    assert.equal(wheel.size, 3);
    // The one that threw is still watched: no pong, so it dies one timeout after its ping, like the others.
    clock.advance(CFG.timeoutInitial + TICK);
    assert.deepEqual(
      hosts.map((h) => h.deaths.length),
      [1, 1, 1],
    );
    assert.equal(wheel.size, 0);
  });

  it('add() between ticks never schedules into the past', () => {
    const clock = new FakeClock();
    const wheel = new HeartbeatWheel(clock, TICK);
    const host = new FakeHost(clock);
    // nextCheck already due: checked at the next tick, not lost.
    const m = new HeartbeatMonitor(CFG, host, clock.now() - 10 * CFG.interval);
    wheel.add(m);
    clock.advance(TICK);
    assert.equal(host.pings.length, 1);
  });
});

describe('HeartbeatTimer', () => {
  function one(config: HeartbeatConfig = CFG) {
    const clock = new FakeClock();
    const counting = new CountingClock(clock);
    const host = new FakeHost(clock);
    const t0 = clock.now();
    const m = new HeartbeatMonitor(config, host, t0);
    const timer = new HeartbeatTimer(counting, m);
    return { clock, counting, host, m, timer, t0 };
  }

  it('inbound traffic arms no timer: 1000 onInbound calls, timers only re-armed when one fires', () => {
    const { clock, counting, host, m, timer } = one({ ...CFG, interval: 1000 });
    timer.start();
    assert.equal(counting.setTimeoutCalls, 1);
    for (let i = 0; i < 1000; i++) {
      clock.advance(10);
      m.onInbound(clock.now());
      assert.equal(clock.pending, 1);
    }
    // 10 s of traffic with a 1 s interval: about one fire per interval, each re-arming once.
    assert.equal(counting.setTimeoutCalls, counting.fires + 1);
    assert.ok(counting.fires <= 11, `${counting.fires} fires`);
    assert.equal(counting.clearTimeoutCalls, 0);
    assert.equal(host.pings.length, 0);
  });

  it('quiet line: ping at interval, death at ping + timeout, then no timer', () => {
    const { clock, host, timer, t0 } = one();
    timer.start();
    clock.advance(CFG.interval);
    assert.deepEqual(host.pings, [t0 + CFG.interval]);
    clock.advance(CFG.timeoutInitial - 1);
    assert.equal(host.deaths.length, 0);
    clock.advance(1);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + CFG.interval + CFG.timeoutInitial }]);
    assert.equal(clock.pending, 0);
  });

  it('probeNow pings at once, replaces the armed timer, and judges at probe + timeout', () => {
    const { clock, counting, host, timer, t0 } = one();
    timer.start();
    clock.advance(700);
    timer.probeNow();
    assert.deepEqual(host.pings, [t0 + 700]);
    assert.equal(clock.pending, 1, 'the old timer was replaced, not added to');
    assert.equal(counting.clearTimeoutCalls, 1);
    clock.advance(CFG.timeoutInitial - 1);
    assert.equal(host.deaths.length, 0);
    clock.advance(1);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + 700 + CFG.timeoutInitial }]);
  });

  it('a timer that fires late passes its planned time: the monitor probes instead of dying', () => {
    const { clock, host, timer, t0 } = one();
    timer.start();
    clock.advance(CFG.interval); // ping
    clock.jump(120_000);
    clock.advance(0);
    assert.equal(host.deaths.length, 0);
    assert.deepEqual(host.pings, [t0 + CFG.interval, t0 + CFG.interval + 120_000]);
    clock.advance(CFG.timeoutInitial);
    assert.equal(host.deaths.length, 1);
  });

  it('stop() disarms', () => {
    const { clock, host, timer } = one();
    timer.start();
    timer.stop();
    assert.equal(clock.pending, 0);
    clock.advance(60_000);
    assert.equal(host.pings.length, 0);
  });
});

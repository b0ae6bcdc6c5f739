// HeartbeatMonitor, presets and option parsing. Time is a FakeClock; the
// monitor is driven by a tiny local driver (fakes.ts: driveMonitor) so these
// tests exercise heartbeat.ts alone, not the drivers in scheduler.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { FakeClock } from '../../../src/session/clock.js';
import {
  HEARTBEAT_PRESETS,
  HeartbeatMonitor,
  parseHeartbeatSpec,
  resolveHeartbeat,
  type HeartbeatConfig,
  type HeartbeatOption,
  type HeartbeatPreset,
} from '../../../src/session/heartbeat.js';
import { UsageError } from '../../../src/protocol/errors.js';
import { RttEstimator } from '../../../src/session/rtt.js';
import { FakeHost, driveMonitor } from './fakes.js';

/** A small config whose numbers are easy to follow: ping after 1 s quiet, answer within 500 ms before samples. */
const CFG: HeartbeatConfig = { interval: 1000, timeoutFloor: 200, timeoutCeiling: 800, timeoutInitial: 500, k: 4, lateSlack: 300 };

function setup(config: HeartbeatConfig = CFG) {
  const clock = new FakeClock();
  const host = new FakeHost(clock);
  const t0 = clock.now();
  const m = new HeartbeatMonitor(config, host, t0);
  const driver = driveMonitor(clock, m);
  return { clock, host, m, driver, t0 };
}

const isOptionError = (e: unknown): boolean => e instanceof UsageError && e.code === 'WS_ERR_INVALID_OPTION';

describe('presets', () => {
  it('are frozen and have the documented values', () => {
    assert.ok(Object.isFrozen(HEARTBEAT_PRESETS));
    assert.ok(Object.isFrozen(HEARTBEAT_PRESETS.normal));
    assert.ok(Object.isFrozen(HEARTBEAT_PRESETS.aggressive));
    assert.deepEqual(HEARTBEAT_PRESETS.normal, { interval: 25_000, timeoutFloor: 5_000, timeoutCeiling: 15_000, timeoutInitial: 15_000, k: 4, lateSlack: 2_000 });
    assert.deepEqual(HEARTBEAT_PRESETS.aggressive, { interval: 5_000, timeoutFloor: 1_000, timeoutCeiling: 4_000, timeoutInitial: 4_000, k: 4, lateSlack: 1_000 });
  });

  // DESIGN.md: normal detects in about 30-40 s, aggressive in about 6-9 s.
  const windows: Array<[HeartbeatPreset, number, number]> = [
    ['normal', 30_000, 40_000],
    ['aggressive', 6_000, 9_000],
  ];

  for (const [name, lo, hi] of windows) {
    it(`${name}: interval + timeout lies in ${lo / 1000}-${hi / 1000} s from the fastest to the slowest network`, () => {
      const c = HEARTBEAT_PRESETS[name];
      // Fastest: RTT ~0 -> srtt = rttvar = 0 -> timeout = floor.
      const fast = new RttEstimator();
      for (let i = 0; i < 5; i++) fast.sample(0);
      const fastest = c.interval + fast.timeout(c.k, c.timeoutFloor, c.timeoutCeiling, c.timeoutInitial);
      assert.equal(fastest, c.interval + c.timeoutFloor);
      // Slowest: no sample yet (initial) or a huge variance (ceiling).
      const none = new RttEstimator();
      const slowNoSamples = c.interval + none.timeout(c.k, c.timeoutFloor, c.timeoutCeiling, c.timeoutInitial);
      const wild = new RttEstimator();
      for (let i = 0; i < 10; i++) wild.sample(i % 2 ? 0 : 60_000);
      const slowVariance = c.interval + wild.timeout(c.k, c.timeoutFloor, c.timeoutCeiling, c.timeoutInitial);
      assert.equal(slowVariance, c.interval + c.timeoutCeiling);
      for (const [what, v] of [['fastest', fastest], ['no samples', slowNoSamples], ['huge variance', slowVariance]] as const) {
        assert.ok(v >= lo && v <= hi, `${name} ${what}: ${v} ms outside ${lo}..${hi}`);
      }
    });

    it(`${name}: a simulated dead peer is detected within ${lo / 1000}-${hi / 1000} s of its last byte`, () => {
      // (a) no RTT sample ever: the very first ping goes unanswered.
      {
        const { clock, host, t0 } = setup({ ...HEARTBEAT_PRESETS[name] });
        clock.advance(hi + 10_000);
        assert.equal(host.deaths.length, 1);
        const d = host.deaths[0]!.at - t0;
        assert.ok(d >= lo && d <= hi, `no samples: detected after ${d} ms`);
      }
      // (b) a fast network (pongs at once), then the peer vanishes.
      {
        const { clock, host, m } = setup({ ...HEARTBEAT_PRESETS[name] });
        let answering = true;
        host.sendPing = (ts) => {
          host.pings.push(ts);
          if (answering) m.onPong(ts, clock.now());
        };
        clock.advance(HEARTBEAT_PRESETS[name].interval * 5);
        assert.ok(m.rtt.samples >= 4);
        answering = false;
        const last = m.lastInbound;
        clock.advance(hi + 10_000);
        assert.equal(host.deaths.length, 1);
        const d = host.deaths[0]!.at - last;
        assert.equal(d, HEARTBEAT_PRESETS[name].interval + HEARTBEAT_PRESETS[name].timeoutFloor);
        assert.ok(d >= lo && d <= hi, `fast network: detected after ${d} ms`);
      }
    });
  }
});

describe('resolveHeartbeat', () => {
  it('undefined -> a copy of normal; presets by name -> copies', () => {
    const n = resolveHeartbeat(undefined)!;
    assert.deepEqual(n, HEARTBEAT_PRESETS.normal);
    n.interval = 1; // a copy: the preset is untouched
    assert.equal(HEARTBEAT_PRESETS.normal.interval, 25_000);
    assert.deepEqual(resolveHeartbeat('normal'), HEARTBEAT_PRESETS.normal);
    assert.deepEqual(resolveHeartbeat('aggressive'), HEARTBEAT_PRESETS.aggressive);
  });

  it("'off' and false -> null", () => {
    assert.equal(resolveHeartbeat('off'), null);
    assert.equal(resolveHeartbeat(false), null);
  });

  it('partial configs fill in from their preset', () => {
    assert.deepEqual(resolveHeartbeat({ interval: 10_000 }), { ...HEARTBEAT_PRESETS.normal, interval: 10_000 });
    assert.deepEqual(resolveHeartbeat({ preset: 'aggressive', interval: 3000 }), { ...HEARTBEAT_PRESETS.aggressive, interval: 3000 });
    assert.deepEqual(resolveHeartbeat({ interval: undefined }), HEARTBEAT_PRESETS.normal, 'undefined fields keep the preset value');
    assert.equal(resolveHeartbeat({ k: 0 })!.k, 0, 'k = 0 is allowed (timeout = srtt)');
  });

  it('narrowing the ceiling below the preset initial keeps initial in range', () => {
    const c = resolveHeartbeat({ timeoutCeiling: 8000 })!;
    assert.equal(c.timeoutCeiling, 8000);
    assert.equal(c.timeoutInitial, 8000);
    const d = resolveHeartbeat({ preset: 'aggressive', timeoutFloor: 3000, timeoutCeiling: 3500 })!;
    assert.equal(d.timeoutInitial, 3500);
  });

  const bad: Array<[string, unknown]> = [
    ['negative interval', { interval: -1 }],
    ['zero interval', { interval: 0 }],
    ['NaN interval', { interval: NaN }],
    ['infinite interval', { interval: Infinity }],
    ['string interval', { interval: '5000' }],
    ['zero floor', { timeoutFloor: 0 }],
    ['negative ceiling', { timeoutCeiling: -5 }],
    ['NaN initial', { timeoutInitial: NaN }],
    ['negative k', { k: -1 }],
    ['NaN k', { k: NaN }],
    ['zero lateSlack', { lateSlack: 0 }],
    ['ceiling < floor', { timeoutFloor: 5000, timeoutCeiling: 4000 }],
    ['initial above ceiling', { timeoutInitial: 20_000 }],
    ['initial below floor', { timeoutInitial: 1000 }],
    ['unknown preset name', 'fast'],
    ['unknown preset in object', { preset: 'fast' }],
    ['a number', 5],
    ['true', true],
    ['null', null],
  ];
  for (const [what, option] of bad) {
    it(`rejects ${what} with WS_ERR_INVALID_OPTION`, () => {
      assert.throws(() => resolveHeartbeat(option as HeartbeatOption), isOptionError);
    });
  }

  it('error messages name the offending field', () => {
    assert.throws(() => resolveHeartbeat({ interval: -1 }), /heartbeat\.interval/);
    assert.throws(() => resolveHeartbeat({ timeoutFloor: 5000, timeoutCeiling: 4000 }), /timeoutCeiling \(4000\) is below timeoutFloor \(5000\)/);
    assert.throws(() => resolveHeartbeat({ timeoutInitial: 20_000 }), /timeoutInitial/);
  });
});

describe('parseHeartbeatSpec', () => {
  it("'normal', 'aggressive', 'off'", () => {
    assert.deepEqual(parseHeartbeatSpec('normal'), HEARTBEAT_PRESETS.normal);
    assert.deepEqual(parseHeartbeatSpec('aggressive'), HEARTBEAT_PRESETS.aggressive);
    assert.equal(parseHeartbeatSpec('off'), null);
  });

  it("'INTERVAL:TIMEOUT' is a fixed timeout (floor = ceiling = initial)", () => {
    assert.deepEqual(parseHeartbeatSpec('2000:500'), { interval: 2000, timeoutFloor: 500, timeoutCeiling: 500, timeoutInitial: 500, k: 4, lateSlack: 500 });
    assert.deepEqual(parseHeartbeatSpec('60000:10000'), { interval: 60_000, timeoutFloor: 10_000, timeoutCeiling: 10_000, timeoutInitial: 10_000, k: 4, lateSlack: 2000 });
  });

  for (const spec of ['', 'fast', 'Normal', ' normal', '2000', '2000:', ':500', '2000:500:1', '-2000:500', '2000:-500', '2e3:500', '1.5:500', ' 2000:500', '2000 : 500', '2000:500\n', '0:500', '2000:0', 'ms:ms']) {
    it(`rejects ${JSON.stringify(spec)}`, () => {
      assert.throws(() => parseHeartbeatSpec(spec), isOptionError);
    });
  }
});

describe('HeartbeatMonitor: when to ping', () => {
  it('a quiet line is pinged exactly at lastInbound + interval', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(999);
    assert.deepEqual(host.pings, []);
    assert.equal(m.state, 'alive');
    clock.advance(1);
    assert.deepEqual(host.pings, [t0 + 1000]);
    assert.equal(m.state, 'probing');
  });

  it('inbound traffic moves the ping: traffic at +300 -> ping at +1300', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(300);
    m.onInbound(clock.now());
    clock.advance(999);
    assert.deepEqual(host.pings, []);
    clock.advance(1);
    assert.deepEqual(host.pings, [t0 + 1300]);
  });

  it('interval shorter than the timeout: an answered ping is followed by the next after one interval, not after the timeout', () => {
    const cfg: HeartbeatConfig = { interval: 1000, timeoutFloor: 3000, timeoutCeiling: 3000, timeoutInitial: 3000, k: 4, lateSlack: 300 };
    const { clock, host, m, t0 } = setup(cfg);
    clock.advance(1000);
    // The peer answers every ping 10 ms later; the next ping is due one interval after that answer.
    for (let i = 0; i < 10; i++) {
      assert.equal(host.pings.length, i + 1, `ping ${i + 1} sent`);
      clock.advance(10);
      m.onPong(host.pings[i]!, clock.now());
      clock.advance(1000);
    }
    assert.equal(host.pings.length, 11);
    host.pings.forEach((ts, i) => assert.equal(ts, t0 + 1000 + i * 1010));
    assert.equal(host.deaths.length, 0);
  });

  it('traffic at least every interval: zero pings over 50 intervals', () => {
    const { clock, host, m, driver } = setup();
    for (let i = 0; i < 50; i++) {
      clock.advance(CFG.interval - 1);
      m.onInbound(clock.now());
    }
    assert.equal(host.pings.length, 0);
    assert.equal(m.pingsSent, 0);
    assert.equal(host.deaths.length, 0);
    assert.deepEqual(host.states, [], 'never left alive');
    // The driver ran a bounded number of checks (about one per interval), not one per message.
    assert.ok(driver.checks() <= 50, `${driver.checks()} checks`);
  });
});

describe('HeartbeatMonitor: deciding death', () => {
  it('no answer: dead exactly at ping + timeout, reported once', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(1000); // ping at t0+1000, timeout = initial 500
    clock.advance(499);
    assert.equal(host.deaths.length, 0);
    assert.equal(m.state, 'probing');
    clock.advance(1);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + 1500 }]);
    assert.equal(m.state, 'dead');
    clock.advance(60_000);
    assert.equal(host.deaths.length, 1, 'death is reported once');
    assert.equal(host.pings.length, 1);
    assert.equal(m.check(clock.now()), -1);
    assert.equal(m.probeNow(clock.now()), -1);
    assert.equal(host.pings.length, 1, 'a dead monitor sends nothing');
    assert.equal(clock.pending, 0, 'the driver stopped');
    assert.deepEqual(host.states, ['probing', 'dead']);
  });

  it('a pong: alive again, with an RTT sample', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(1000);
    clock.advance(120);
    m.onPong(host.pings[0]!, clock.now());
    assert.equal(m.state, 'alive');
    assert.equal(m.rtt.samples, 1);
    assert.equal(m.rtt.last, 120);
    assert.equal(m.pongsReceived, 1);
    // Next ping a full interval after the pong.
    clock.advance(999);
    assert.equal(host.pings.length, 1);
    clock.advance(1);
    assert.deepEqual(host.pings, [t0 + 1000, t0 + 2120]);
    assert.equal(host.deaths.length, 0);
    assert.deepEqual(host.states, ['probing', 'alive', 'probing']);
  });

  it('a pong that does not answer one of our pings (ts in the future, zero) proves life but gives no RTT sample', () => {
    const { clock, m } = setup();
    clock.advance(1000);
    m.onPong(clock.now() + 50, clock.now());
    assert.equal(m.state, 'alive');
    assert.equal(m.rtt.samples, 0);
    assert.equal(m.pongsReceived, 0);
    m.onPong(0, clock.now());
    assert.equal(m.rtt.samples, 0);
  });

  it('other inbound data after the ping (no pong): alive, no death, no RTT sample', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(1000);
    clock.advance(300);
    m.onInbound(clock.now()); // t0+1300
    clock.advance(200); // the deadline check at t0+1500
    assert.equal(m.state, 'alive');
    assert.equal(host.deaths.length, 0);
    assert.equal(m.rtt.samples, 0);
    clock.advance(799);
    assert.equal(host.pings.length, 1);
    clock.advance(1);
    assert.deepEqual(host.pings, [t0 + 1000, t0 + 2300], 'next ping one interval after that data');
  });

  it('inbound in the same millisecond as the ping counts (coarse clocks)', () => {
    const { clock, host, m } = setup();
    clock.advance(1000);
    m.onInbound(clock.now());
    clock.advance(500);
    assert.equal(host.deaths.length, 0);
    assert.equal(m.state, 'alive');
  });
});

describe('HeartbeatMonitor: late checks (frozen page, sleeping laptop)', () => {
  it('a check far later than planned sends one fresh probe instead of declaring death', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(1000); // ping #1 at t0+1000, check planned at t0+1500
    clock.jump(60_000); // frozen: the timer could not run
    clock.advance(0); // it runs now, 59.5 s late
    const woke = t0 + 61_000;
    assert.equal(clock.now(), woke);
    assert.equal(host.deaths.length, 0, 'no death on a late check');
    assert.deepEqual(host.pings, [t0 + 1000, woke]);
    assert.equal(m.state, 'probing');
    assert.equal(m.pingsMissed, 1, 'the superseded ping is counted as missed');
    clock.advance(499);
    assert.equal(host.deaths.length, 0);
    clock.advance(1);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: woke + 500 }], 'dead one timeout after the probe');
    assert.equal(m.pingsMissed, 2);
  });

  it('a pong to the late probe keeps the peer alive', () => {
    const { clock, host, m, t0 } = setup();
    clock.advance(1000);
    clock.jump(60_000);
    clock.advance(0);
    clock.advance(80);
    m.onPong(host.pings[1]!, clock.now());
    assert.equal(m.state, 'alive');
    assert.equal(m.rtt.last, 80);
    clock.advance(999);
    assert.equal(host.pings.length, 2);
    clock.advance(1);
    // Regular pings resume one interval after the pong.
    assert.equal(host.pings[2], t0 + 61_080 + 1000);
    assert.equal(host.deaths.length, 0);
    assert.equal(m.state, 'probing');
  });

  it('only one late probe per silence: a second late check declares death', () => {
    const { clock, host } = setup();
    clock.advance(1000);
    clock.jump(60_000);
    clock.advance(0); // late probe
    clock.jump(60_000);
    clock.advance(0); // late again, still silent
    assert.equal(host.pings.length, 2);
    assert.equal(host.deaths.length, 1);
  });

  it('a quiet line checked late is pinged (not judged) at once', () => {
    const { clock, host, t0 } = setup();
    clock.jump(120_000); // the ping check planned at t0+1000 runs at t0+120000
    clock.advance(0);
    assert.deepEqual(host.pings, [t0 + 120_000]);
    assert.equal(host.deaths.length, 0);
    clock.advance(500);
    assert.equal(host.deaths.length, 1);
  });

  it('lateness is judged against lateSlack: exactly lateSlack late -> death, one ms more -> probe', () => {
    {
      const { clock, host } = setup();
      clock.advance(1000); // deadline check planned at +1500
      clock.jump(500 + CFG.lateSlack);
      clock.advance(0);
      assert.equal(host.deaths.length, 1, `${CFG.lateSlack} ms late is on time`);
      assert.equal(host.pings.length, 1);
    }
    {
      const { clock, host } = setup();
      clock.advance(1000);
      clock.jump(500 + CFG.lateSlack + 1);
      clock.advance(0);
      assert.equal(host.deaths.length, 0, `${CFG.lateSlack + 1} ms late is late`);
      assert.equal(host.pings.length, 2);
    }
  });
});

describe('HeartbeatMonitor: probeNow', () => {
  it('sends a ping at once and tightens nextCheck to ping + timeout', () => {
    const { clock, host, m, driver, t0 } = setup();
    clock.advance(200);
    assert.equal(m.nextCheck, t0 + 1000);
    driver.probeNow();
    assert.deepEqual(host.pings, [t0 + 200]);
    assert.equal(m.nextCheck, t0 + 700);
    assert.equal(m.state, 'probing');
    clock.advance(499);
    assert.equal(host.deaths.length, 0);
    clock.advance(1);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + 700 }]);
  });

  it('does not send a second ping while one is outstanding', () => {
    const { clock, host, m, driver, t0 } = setup();
    clock.advance(1000); // ping at t0+1000
    clock.advance(100);
    driver.probeNow();
    assert.equal(host.pings.length, 1);
    assert.equal(m.nextCheck, t0 + 1500, 'still the outstanding ping deadline');
  });

  it('answered probe: alive, RTT sampled, regular schedule afterwards', () => {
    const { clock, host, m, driver, t0 } = setup();
    clock.advance(200);
    driver.probeNow();
    clock.advance(40);
    m.onPong(host.pings[0]!, clock.now());
    assert.equal(m.state, 'alive');
    assert.equal(m.rtt.last, 40);
    clock.advance(1000);
    assert.equal(host.deaths.length, 0);
    assert.deepEqual(host.pings, [t0 + 200, t0 + 240 + 1000]);
  });
});

describe('HeartbeatMonitor: outbound progress', () => {
  it('a draining backlog (written grows, backlog > 0) counts as life: no death over many intervals', () => {
    const { clock, host, m } = setup();
    let written = 0;
    host.outbound = () => ({ written: (written += 1000), backlog: 64_000 });
    clock.advance(30 * CFG.interval);
    assert.equal(host.deaths.length, 0);
    assert.equal(m.state, 'alive');
    // Only the first check (no previous reading to compare) may ping.
    assert.ok(host.pings.length <= 1, `${host.pings.length} pings`);
  });

  it('a stalled backlog (written constant) does not: dead at ping + timeout', () => {
    const { clock, host, t0 } = setup();
    host.outbound = () => ({ written: 5000, backlog: 64_000 });
    clock.advance(10 * CFG.interval);
    assert.deepEqual(host.pings, [t0 + 1000]);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + 1500 }]);
  });

  it('bytes written without a backlog prove nothing (they are just ours)', () => {
    const { clock, host, t0 } = setup();
    let written = 0;
    host.outbound = () => ({ written: (written += 1000), backlog: 0 });
    clock.advance(10 * CFG.interval);
    assert.deepEqual(host.deaths, [{ reason: 'heartbeat-timeout', at: t0 + 1500 }]);
  });
});

describe('HeartbeatMonitor: adaptive timeout', () => {
  /** Answers each ping after rtts[i] ms (until the list runs out). */
  function answering(config: HeartbeatConfig, rtts: number[]) {
    const s = setup(config);
    let i = 0;
    s.host.sendPing = (ts) => {
      s.host.pings.push(ts);
      const rtt = rtts[i++];
      if (rtt !== undefined) s.clock.setTimeout(() => s.m.onPong(ts, s.clock.now()), rtt);
    };
    return s;
  }

  it('pongs with ~0 RTT: timeout == floor, and death comes floor ms after the unanswered ping', () => {
    const cfg = { ...CFG, timeoutFloor: 200, timeoutCeiling: 2000, timeoutInitial: 1000 };
    const { clock, host, m } = answering(cfg, [0, 0, 0, 1, 0]);
    assert.equal(m.timeout, 1000, 'initial before samples');
    clock.advance(5 * 1000 + 100);
    assert.equal(m.rtt.samples, 5);
    assert.equal(m.timeout, 200);
    assert.equal(m.stats().timeout, 200);
    clock.advance(2000);
    assert.equal(host.deaths.length, 1);
    assert.equal(host.deaths[0]!.at, host.pings[5]! + 200);
  });

  it('pongs at 400 ms ± jitter: timeout grows above the floor, tracks srtt + 4*rttvar, never above the ceiling', () => {
    const cfg = { ...CFG, interval: 1000, timeoutFloor: 200, timeoutCeiling: 2000, timeoutInitial: 1000 };
    // Deterministic jitter in [-100, +100].
    const rtts = Array.from({ length: 40 }, (_, i) => 400 + ((i * 37) % 201) - 100);
    const { clock, host, m } = answering(cfg, rtts);
    for (let step = 0; step < 60; step++) {
      clock.advance(500);
      if (m.rtt.samples === 0) continue;
      // Reference computed independently from the samples delivered so far.
      const ref = new RttEstimator();
      for (const r of rtts.slice(0, m.rtt.samples)) ref.sample(r);
      // Rounded up to a whole millisecond (the monitor's deadlines are whole ms).
      const expected = Math.ceil(Math.min(2000, Math.max(200, ref.srtt + 4 * ref.rttvar)));
      assert.equal(m.timeout, expected);
      assert.ok(m.timeout > cfg.timeoutFloor, `timeout ${m.timeout} should exceed the floor with RTT ~400`);
      assert.ok(m.timeout <= cfg.timeoutCeiling);
    }
    assert.ok(m.rtt.samples >= 15, `${m.rtt.samples} samples`);
    assert.equal(host.deaths.length, 0);
    assert.ok(m.rtt.srtt > 350 && m.rtt.srtt < 450, `srtt ${m.rtt.srtt}`);
  });

  it('huge variance is cut to the ceiling', () => {
    const cfg = { ...CFG, interval: 1000, timeoutFloor: 200, timeoutCeiling: 2000, timeoutInitial: 1000 };
    const { clock, m } = setup(cfg);
    for (let i = 0; i < 20; i++) {
      const rtt = i % 2 ? 10 : 1900;
      m.onPong(clock.now(), clock.now() + rtt);
    }
    assert.equal(m.timeout, 2000);
  });

  it('property: for any RTT samples, floor <= timeout <= ceiling', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 30 }), (rtts) => {
        const m = new HeartbeatMonitor(CFG, new FakeHost(), 1_000_000);
        for (const r of rtts) m.rtt.sample(r);
        assert.ok(m.timeout >= CFG.timeoutFloor && m.timeout <= CFG.timeoutCeiling);
      }),
    );
  });
});

describe('HeartbeatMonitor: stats', () => {
  it('counts pings sent, pongs and missed pings; loss rate = missed / sent', () => {
    const { clock, host, m, t0 } = setup();
    assert.deepEqual({ ...m.stats(), rtt: undefined }, { pingsSent: 0, pongsReceived: 0, pingsMissed: 0, lossRate: 0, rtt: undefined, timeout: 500, state: 'alive' });
    clock.advance(1000); // ping 1
    clock.advance(100);
    m.onPong(host.pings[0]!, clock.now()); // answered (RTT 100)
    clock.advance(1000); // ping 2 at t0+2100
    assert.equal(host.pings[1], t0 + 2100);
    clock.jump(30_000);
    clock.advance(0); // late: ping 2 missed, probe = ping 3
    clock.advance(10); // still unanswered
    let s = m.stats();
    assert.equal(s.pingsSent, 3);
    assert.equal(s.pongsReceived, 1);
    assert.equal(s.pingsMissed, 1);
    assert.equal(s.lossRate, 1 / 3);
    assert.equal(s.state, 'probing');
    assert.equal(s.rtt.last, 100);
    assert.equal(s.rtt.samples, 1);
    clock.advance(5000); // ping 3 unanswered: dead
    s = m.stats();
    assert.equal(s.pingsMissed, 2);
    assert.equal(s.lossRate, 2 / 3);
    assert.equal(s.state, 'dead');
  });

  it('stop() while a ping is outstanding counts it as missed and silences the monitor', () => {
    const { clock, host, m, driver } = setup();
    clock.advance(1000);
    m.stop();
    driver.stop();
    assert.equal(m.stats().pingsMissed, 1);
    assert.equal(m.stats().lossRate, 1);
    assert.equal(m.detached, true);
    assert.equal(m.check(clock.now() + 10_000), -1);
    assert.equal(host.deaths.length, 0, 'stop() is not a death');
  });
});

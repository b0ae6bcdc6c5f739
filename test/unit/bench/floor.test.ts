// Node's floor beside the goals (bench/lib/floor.mjs): the same comparison
// with the floor server in lifeline's place, judged by the goal's own op and
// target, for d (net-ping-bare, or net-ping over node:http: RSS over net's,
// idle CPU over uWS's) and e
// (broadcast-net over uWS's publish); and the count of misses the floor
// shares, which the run's summary prints.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { floorOf, floorText, missedByFloor } from '../../../bench/lib/floor.mjs';
// @ts-expect-error: a plain .mjs module without type declarations
import { idleGoals } from '../../../bench/lib/idle.mjs';
// @ts-expect-error: a plain .mjs module without type declarations
import { broadcastGoals } from '../../../bench/lib/broadcast.mjs';

interface Floor {
  server: string;
  value: number;
  pass: boolean;
}
interface Goal {
  id: string;
  text: string;
  pass: boolean | null;
  floor: Floor | null;
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

describe('floorOf', () => {
  it("applies the goal's op and target to the floor's ratio", () => {
    const lower = floorOf('net-ping', 2.4, 2, '<=', 1.15) as Floor;
    assert.equal(lower.server, 'net-ping');
    assert.ok(close(lower.value, 1.2));
    assert.equal(lower.pass, false);
    assert.equal((floorOf('net-ping', 2.2, 2, '<=', 1.15) as Floor).pass, true);
    assert.equal((floorOf('net', 90, 100, '>=', 1) as Floor).pass, false);
    assert.equal((floorOf('net', 100, 100, '>=', 1) as Floor).pass, true, 'the target itself passes');
  });

  it('is null when a figure is missing or not a number', () => {
    assert.equal(floorOf('net', undefined, 100, '>=', 1), null);
    assert.equal(floorOf('net', 100, 0, '>=', 1), null);
    assert.equal(floorOf('net', NaN, 100, '>=', 1), null);
  });
});

describe('floorText and missedByFloor', () => {
  it('names the floor, its ratio and its verdict', () => {
    assert.equal(floorText({ pass: false, floor: { server: 'net-ping', value: 1.284, pass: false } }), "; Node's floor (net-ping) 1.28x: missed too");
    // "too" only beside a goal that was missed.
    assert.equal(floorText({ pass: true, floor: { server: 'net-ping', value: 1.284, pass: false } }), "; Node's floor (net-ping) 1.28x: missed");
    assert.equal(floorText({ pass: null, floor: { server: 'net-ping', value: 1.284, pass: false } }), "; Node's floor (net-ping) 1.28x: missed");
    assert.equal(floorText({ floor: { server: 'net', value: 1.05, pass: true } }), "; Node's floor (net) 1.05x: met");
    assert.equal(floorText({ floor: null }), '');
    assert.equal(floorText({}), '');
  });

  it('counts only the misses the floor missed as well', () => {
    const goals = [
      { pass: false, floor: { server: 'net', value: 0.8, pass: false } },
      { pass: false, floor: { server: 'net', value: 1.1, pass: true } },
      { pass: false, floor: null },
      { pass: true, floor: { server: 'net', value: 0.8, pass: false } },
      { pass: null, floor: { server: 'net', value: 0.8, pass: false } },
    ];
    assert.equal(missedByFloor(goals), 1);
  });
});

describe('goals of d and e carry the floor', () => {
  const row = (rssPerConnKB: number, idleCpuShare: number, pingsSent: number) => ({
    rssPerConnKB,
    idleCpuShare,
    pingsSent,
    cpuUsPerPing: pingsSent > 0 ? (idleCpuShare * 30 * 1e6) / pingsSent : NaN,
  });

  /** d's two goals for a run of lifeline, net and uws-24s beside the given floor servers. */
  const dGoals = (floors: Record<string, ReturnType<typeof row>>) => {
    const goals = idleGoals({ lifeline: row(3.0, 0.011, 20_000), net: row(1.8, 0, 0), 'uws-24s': row(0.9, 0.0075, 20_000), ...floors }) as Goal[];
    return { rss: goals.find((g) => g.id === 'd-rss-vs-net')!, cpu: goals.find((g) => g.id === 'd-idle-cpu-vs-uws')! };
  };

  it('d: net-ping RSS over net, net-ping idle CPU over uWS', () => {
    const { rss, cpu } = dGoals({ 'net-ping': row(2.3, 0.0093, 20_000) });
    assert.equal(rss.floor!.server, 'net-ping');
    assert.ok(close(rss.floor!.value, 2.3 / 1.8));
    assert.equal(rss.floor!.pass, false);
    assert.ok(close(cpu.floor!.value, 0.0093 / 0.0075));
    assert.equal(cpu.floor!.pass, false);
    // A floor that pinged nothing in the window is not compared with zero.
    const idle = idleGoals({ lifeline: row(3.0, 0.011, 20_000), 'net-ping': row(2.3, 0, 0), 'uws-24s': row(0.9, 0.0075, 20_000) }) as Goal[];
    assert.equal(idle.find((g) => g.id === 'd-idle-cpu-vs-uws')!.floor, null);
    // Without net-ping in the run there is no floor.
    const none = idleGoals({ lifeline: row(3.0, 0.011, 20_000), net: row(1.8, 0, 0) }) as Goal[];
    assert.equal(none[0]!.floor, null);
  });

  it('d: net-ping-bare (no node:http) is the floor when it ran, for both goals', () => {
    const { rss, cpu } = dGoals({ 'net-ping': row(2.5, 0.0093, 20_000), 'net-ping-bare': row(2.05, 0.009, 20_000) });
    assert.equal(rss.floor!.server, 'net-ping-bare');
    assert.ok(close(rss.floor!.value, 2.05 / 1.8));
    // 1.14x: the bare floor can meet the memory target where net-ping (1.39x) cannot.
    assert.equal(rss.floor!.pass, true);
    assert.equal(rss.pass, false);
    assert.equal(cpu.floor!.server, 'net-ping-bare');
    assert.ok(close(cpu.floor!.value, 0.009 / 0.0075));
    assert.match(cpu.text, /Node's floor net-ping-bare 13\.5 us per ping/);
  });

  it('e: broadcast-net deliveries per CPU-s over uWS publish', () => {
    const s = (deliveriesPerServerCpuSec: number) => ({ deliveriesPerServerCpuSec });
    const [g] = broadcastGoals({ lifeline: s(105_000), uws: s(130_000), net: s(104_000) }) as Goal[];
    assert.equal(g!.pass, false);
    assert.equal(g!.floor!.server, 'net');
    assert.ok(close(g!.floor!.value, 0.8));
    assert.equal(g!.floor!.pass, false);
    const [h] = broadcastGoals({ lifeline: s(105_000), uws: s(130_000) }) as Goal[];
    assert.equal(h!.floor, null);
  });
});

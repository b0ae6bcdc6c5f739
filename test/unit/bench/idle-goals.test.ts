// Scenario d's goals (bench/lib/idle.mjs idleGoals): the idle-CPU goal is
// judged against uWS at lifeline's ping cadence (uws-24s) when it ran, over
// the steady window when both servers have one, and is n/a, not a comparison
// with zero, when either server sent no ping in the window (a heartbeat's idle
// CPU is its pings').
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { idleGoals } from '../../../bench/lib/idle.mjs';

interface Row {
  rssPerConnKB: number;
  idleCpuShare: number;
  pingsSent: number;
  cpuUsPerPing: number;
  steadyCpuShare?: number;
  steadyPingsSent?: number;
  steadyCpuUsPerPing?: number;
}
interface Goal {
  id: string;
  value: number;
  target: number;
  pass: boolean | null;
  text: string;
}

const row = (idleCpuShare: number, pingsSent: number, rssPerConnKB = 3): Row => ({
  rssPerConnKB,
  idleCpuShare,
  pingsSent,
  cpuUsPerPing: pingsSent > 0 ? (idleCpuShare * 30 * 1e6) / pingsSent : NaN,
});
/** A row with a steady window of 60 s as well. */
const withSteady = (r: Row, steadyCpuShare: number, steadyPingsSent: number): Row => ({
  ...r,
  steadyCpuShare,
  steadyPingsSent,
  steadyCpuUsPerPing: steadyPingsSent > 0 ? (steadyCpuShare * 60 * 1e6) / steadyPingsSent : NaN,
});
const cpuGoal = (summary: Record<string, Row>): Goal | undefined => (idleGoals(summary) as Goal[]).find((g) => g.id === 'd-idle-cpu-vs-uws');

describe('scenario d goals', () => {
  it('idle CPU is judged against uws-24s when it ran, by the ratio of the shares', () => {
    const g = cpuGoal({ lifeline: row(0.015, 10_000), uws: row(0, 0), 'uws-24s': row(0.005, 10_000) })!;
    assert.equal(g.pass, false);
    assert.ok(Math.abs(g.value - 3) < 1e-9);
    assert.equal(g.target, 1);
    assert.match(g.text, /uws-24s/);
    assert.equal(cpuGoal({ lifeline: row(0.004, 10_000), 'uws-24s': row(0.005, 10_000) })!.pass, true);
  });

  it('without uws-24s the default uws is the reference', () => {
    const g = cpuGoal({ lifeline: row(0.015, 10_000), uws: row(0.005, 8_000) })!;
    assert.equal(g.pass, false);
    assert.match(g.text, /uws's/);
  });

  it('n/a when either server sent no ping in the window, whatever the shares', () => {
    for (const [l, u] of [
      [row(0.015, 10_000), row(0, 0)],
      [row(0, 0), row(0.005, 10_000)],
    ] as const) {
      const g = cpuGoal({ lifeline: l, uws: u })!;
      assert.equal(g.pass, null);
      assert.ok(Number.isNaN(g.value));
      assert.match(g.text, /not comparable/);
    }
  });

  it('the steady window decides when both servers have one, and the text names it', () => {
    // First window: lifeline 3x uWS (one-time costs); steady: 0.8x.
    const summary = {
      lifeline: withSteady(row(0.015, 10_000), 0.004, 20_000),
      'uws-24s': withSteady(row(0.005, 10_000), 0.005, 20_000),
    };
    const g = cpuGoal(summary)!;
    assert.equal(g.pass, true);
    assert.ok(Math.abs(g.value - 0.8) < 1e-9);
    assert.match(g.text, /steady window/);
    assert.match(g.text, /12\.0 vs 15\.0 us per ping/);
    // And the other way round: a steady window that misses fails the goal even if the first met it.
    const h = cpuGoal({ lifeline: withSteady(row(0.004, 10_000), 0.006, 20_000), 'uws-24s': withSteady(row(0.005, 10_000), 0.005, 20_000) })!;
    assert.equal(h.pass, false);
    assert.ok(Math.abs(h.value - 1.2) < 1e-9);
  });

  it('falls back to the first window when a server has no steady figures', () => {
    const g = cpuGoal({ lifeline: withSteady(row(0.015, 10_000), 0.004, 20_000), 'uws-24s': row(0.005, 10_000) })!;
    assert.equal(g.pass, false);
    assert.ok(Math.abs(g.value - 3) < 1e-9);
    assert.doesNotMatch(g.text, /steady/);
  });

  it("names Node's floor (net-ping) per ping when it ran", () => {
    const summary = {
      lifeline: withSteady(row(0.015, 10_000), 0.008, 20_000),
      'uws-24s': withSteady(row(0.005, 10_000), 0.005, 20_000),
      'net-ping': withSteady(row(0.01, 10_000), 0.007, 20_000),
    };
    assert.match(cpuGoal(summary)!.text, /Node's floor net-ping 21\.0 us per ping/);
    assert.doesNotMatch(cpuGoal({ lifeline: summary.lifeline, 'uws-24s': summary['uws-24s'] })!.text, /floor/);
  });

  it('the RSS goal is lifeline over net against 1.15', () => {
    const goals = idleGoals({ lifeline: row(0, 0, 2.3), net: row(0, 0, 2) }) as Goal[];
    const g = goals.find((x) => x.id === 'd-rss-vs-net')!;
    assert.ok(Math.abs(g.value - 1.15) < 1e-9);
    assert.equal(g.pass, true);
    assert.equal(goals.length, 1, 'no CPU goal without a uWS row');
  });
});

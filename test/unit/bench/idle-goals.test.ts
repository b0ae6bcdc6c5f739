// Scenario d's goals (bench/lib/idle.mjs idleGoals): the idle-CPU goal is
// judged against uWS at lifeline's ping cadence (uws-24s) when it ran, and is
// n/a, not a comparison with zero, when either server sent no ping in the
// window (a heartbeat's idle CPU is its pings').
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { idleGoals } from '../../../bench/lib/idle.mjs';

interface Row {
  rssPerConnKB: number;
  idleCpuShare: number;
  pingsSent: number;
  cpuUsPerPing: number;
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

  it('the RSS goal is lifeline over net against 1.15', () => {
    const goals = idleGoals({ lifeline: row(0, 0, 2.3), net: row(0, 0, 2) }) as Goal[];
    const g = goals.find((x) => x.id === 'd-rss-vs-net')!;
    assert.ok(Math.abs(g.value - 1.15) < 1e-9);
    assert.equal(g.pass, true);
    assert.equal(goals.length, 1, 'no CPU goal without a uWS row');
  });
});

// The bench chart (bench/lib/chart.mjs) marks Node's floor on the bars of
// goals that have one, on the chart's "higher is better" scale: inverted for
// '<=' goals like the goal itself, and left out where the goal has none.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { chartGroups, renderChart } from '../../../bench/lib/chart.mjs';

interface Bar {
  label: string;
  value: number;
  goal?: { value: number; target: number; pass: boolean | null; floor?: { value: number; server: string; pass: boolean } };
}
interface Group {
  label: string;
  bars: Bar[];
}

const doc = {
  mode: 'full',
  startedAt: '2026-11-23T19:06:26.082Z',
  env: { git: 'abc1234', cpus: 2 },
  scenarios: {
    d: { kind: 'idle', alias: 'idle' },
    e: { kind: 'module', alias: 'broadcast' },
  },
  goals: [
    { id: 'd-rss-vs-net', scenario: 'd', op: '<=', value: 1.6, target: 1.15, pass: false, floor: { server: 'net-ping', value: 1.25, pass: false } },
    { id: 'd-idle-cpu-vs-uws', scenario: 'd', op: '<=', value: 2, target: 1, pass: false, floor: null },
    { id: 'e-per-cpu-vs-uws', scenario: 'e', op: '>=', value: 0.89, target: 1, pass: false, floor: { server: 'net', value: 0.91, pass: false } },
  ],
};

describe('bench chart: Node floor marks', () => {
  const bars = (chartGroups(doc) as Group[]).flatMap((g) => g.bars);
  const bar = (label: string) => bars.find((b) => b.label === label)!;

  it("puts the floor on the goal's scale: inverted for '<=' goals", () => {
    const rss = bar('rss-vs-net');
    assert.ok(Math.abs(rss.value - 1 / 1.6) < 1e-9);
    assert.ok(Math.abs(rss.goal!.floor!.value - 1 / 1.25) < 1e-9);
    assert.equal(rss.goal!.floor!.server, 'net-ping');
    const e = bar('per-cpu-vs-uws');
    assert.ok(Math.abs(e.goal!.floor!.value - 0.91) < 1e-9);
  });

  it('has no floor where the goal has none', () => {
    assert.equal(bar('idle-cpu-vs-uws').goal!.floor, undefined);
  });

  it('draws one diamond per floor, with its tooltip, and the legend entry', () => {
    const svg = renderChart(doc) as string;
    const tips = svg.match(/<title>Node's floor \([a-z-]+\): [0-9.]+, goal (met|missed)<\/title>/g) ?? [];
    assert.equal(tips.length, 2);
    assert.ok(svg.includes("Node's floor (net-ping): 0.80, goal missed"));
    assert.ok(svg.includes("Node's floor, same comparison"));
    const none = renderChart({ ...doc, goals: doc.goals.map((g) => ({ ...g, floor: null })) }) as string;
    assert.ok(!none.includes("Node's floor"));
  });
});

/**
 * Registers the conformance suite for one side: describe per group, test per
 * case id. server.test.ts and client.test.ts are one line each around this.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ms } from '../helpers/peers.js';
import { caseTimeout, runCase, type Group, type Side } from './harness.js';
import { GROUPS } from './cases/index.js';
import { SCALE } from './cases/scale.js';

export function casesFor(group: Group, side: Side) {
  return group.cases.filter((c) => !c.sides || c.sides.includes(side));
}

export function registerSuite(side: Side): void {
  const label = side === 'server' ? 'our WebSocketServer (peer plays the client)' : 'our ClientWebSocket (peer plays the server)';
  const started = Date.now();
  const outcome = new Map<string, { total: number; passed: number }>();

  for (const group of GROUPS) {
    const cases = casesFor(group, side);
    const o = { total: cases.length, passed: 0 };
    outcome.set(group.id, o);
    describe(`${group.id}.x ${group.title} — ${label}`, () => {
      for (const c of cases) {
        test(`${c.id} ${c.description}`, { timeout: caseTimeout(c) + ms(3000) }, async () => {
          await runCase(c, side);
          o.passed++;
        });
      }
    });
  }

  describe(`conformance suite bookkeeping (${side})`, () => {
    test('case ids are unique and every group has cases', () => {
      const ids = GROUPS.flatMap((g) => g.cases.map((c) => c.id));
      const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
      assert.deepEqual(dupes, [], 'duplicate case ids');
      for (const g of GROUPS) {
        assert.ok(casesFor(g, side).length > 0, `group ${g.id} has no case for the ${side} side`);
        for (const c of g.cases) assert.ok(c.id.startsWith(`${g.id}.`), `case ${c.id} filed under group ${g.id}`);
      }
    });

    test('README.md states the case count of every group and the total', () => {
      const readme = fs.readFileSync(fileURLToPath(new URL('./README.md', import.meta.url)), 'utf8');
      let total = 0;
      for (const g of GROUPS) {
        const n = casesFor(g, side).length;
        total += n;
        const row = readme.split('\n').find((l) => l.startsWith(`| ${g.id}.x `));
        assert.ok(row, `README.md has no table row for ${g.id}.x`);
        const cells = row.split('|').map((s) => s.trim());
        const col = side === 'server' ? cells[4] : cells[5];
        assert.equal(Number(col), n, `README.md states ${col} ${side} cases for ${g.id}.x; the table has ${n}`);
      }
      const m = /\*\*(\d+) cases per side\*\*/.exec(readme);
      assert.ok(m, 'README.md states the total as **N cases per side**');
      assert.equal(Number(m[1]), total, `README.md states ${m[1]} cases per side; the table has ${total}`);
    });
  });

  after(() => {
    const rows = GROUPS.map((g) => {
      const o = outcome.get(g.id)!;
      return `  ${`${g.id}.x`.padEnd(5)} ${g.title.padEnd(45)} ${String(o.passed).padStart(4)} / ${String(o.total).padEnd(4)} passed`;
    });
    const total = [...outcome.values()].reduce((a, o) => a + o.total, 0);
    const passed = [...outcome.values()].reduce((a, o) => a + o.passed, 0);
    console.log(
      `\nconformance, ${label}: ${total} cases, ${passed} passed, ${total - passed} failed ` +
        `(LIFELINE_CONFORMANCE_SCALE=${SCALE}, ${((Date.now() - started) / 1000).toFixed(1)} s)\n${rows.join('\n')}\n`,
    );
  });
}

// bench/lib/perf-areas.mjs: `perf report` rows into CPU per message by
// area and by function (bench/socket-profile.mjs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { AREAS, functionDiff, parsePerfReport, perMessage } from '../../../bench/lib/perf-areas.mjs';

type Row = { dso: string; sym: string; samples: number };
type PerMessage = { total: number; areas: Record<string, number>; functions: Map<string, number> };

// The shape `perf report --no-children --sort dso,sym -n -q -t '\t'` prints
// (perf 6.1): overhead, samples, shared object, symbol; padded, with blank lines.
const REPORT = [
  ' 12.63% \t 4279       \t[kernel.kallsyms]  \t[k] pvm_irq_enable',
  ' 3.07%  \t 1042       \tlibc.so.6          \t[.] __GI___libc_write',
  ' 1.98%  \t 670        \t[JIT] tid 8322     \t[.] JS:*parse file:///work/main/dist/protocol/parser.js:93:10',
  ' 1.61%  \t 545        \tnode               \t[.] Builtins_CreateTypedArray',
  ' 0.90%  \t 305        \tnode               \t[.] v8::internal::Scavenger::ScavengePage(v8::internal::MemoryChunk*)',
  ' 0.40%  \t 136        \tnode               \t[.] v8::internal::ArrayBufferSweeper::SweepingJob::SweepYoung()',
  ' 1.15%  \t 390        \tnode               \t[.] uv__try_write',
  ' 0.06%  \t 20         \tlibstdc++.so.6.0.30\t[.] operator new(unsigned long)',
  ' 0.02%  \t 8          \t[vdso]             \t[.] __vdso_clock_gettime',
  '',
  '',
].join('\n');

describe('bench perf-areas: perf report into CPU per message', () => {
  it('reads every row with its samples, and drops the JIT map thread id', () => {
    const rows: Row[] = parsePerfReport(REPORT);
    assert.equal(rows.length, 9);
    assert.deepEqual(rows[0], { dso: '[kernel.kallsyms]', sym: '[k] pvm_irq_enable', samples: 4279 });
    assert.deepEqual(rows[2], { dso: '[JIT]', sym: '[.] JS:*parse file:///work/main/dist/protocol/parser.js:93:10', samples: 670 });
    assert.equal(rows[7]!.dso, 'libstdc++.so.6.0.30');
  });

  it('puts each row in its area and converts samples to ns per message', () => {
    // 1,000 messages, one sample per 1,000 ns of CPU: a sample is 1 ns per message.
    const pm: PerMessage = perMessage(parsePerfReport(REPORT), 1000, 1000);
    assert.deepEqual(pm.areas, {
      kernel: 4279,
      jit: 670,
      gc: 305 + 136,
      builtins: 545,
      native: 390 + 20,
      libc: 1042,
      other: 8,
    });
    assert.equal(pm.total, 4279 + 1042 + 670 + 545 + 305 + 136 + 390 + 20 + 8);
    assert.equal(pm.functions.get('[k] pvm_irq_enable ([kernel.kallsyms])'), 4279);
    // Every area the report has a row for is listed in AREAS, in order.
    assert.deepEqual(
      AREAS.map((a: { id: string }) => a.id),
      Object.keys(pm.areas),
    );
  });

  it('scales by the sampling period and the message count', () => {
    const rows: Row[] = [{ dso: '[JIT]', sym: '[.] JS:*f', samples: 50 }];
    // 50 samples of 1 ms each over 100,000 messages: 500 ns per message.
    assert.equal(perMessage(rows, 1_000_000, 100_000).areas.jit, 500);
  });

  it('ranks functions by the difference of their medians, a missing one counting 0', () => {
    const run = (f: Record<string, number>): PerMessage => ({ total: 0, areas: {}, functions: new Map(Object.entries(f)) });
    const a = [run({ x: 10, y: 5 }), run({ x: 12, y: 5 }), run({ x: 11 })];
    const b = [run({ x: 11, z: 30 }), run({ x: 11, z: 20 }), run({ x: 11, z: 40, y: 1 })];
    assert.deepEqual(functionDiff(a, b, 2), [
      { name: 'z', a: 0, b: 30, diff: 30 },
      // y: medians 5 (5, 5, 0) and 0 (0, 0, 1).
      { name: 'y', a: 5, b: 0, diff: -5 },
    ]);
    assert.equal(functionDiff(a, b, 10).length, 3);
  });
});

// bench/lib/opt-code.mjs: V8's --print-opt-code listing joined with
// callgrind's per-instruction counts (bench/opt-code-instructions.mjs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { annotate, codeRange, instructionCounts, parseOptimizedCode } from '../../../bench/lib/opt-code.mjs';

type Instruction = { addr: number; offset: number; text: string };
type Version = { name: string; kind: string; instructions: Instruction[]; inlined: string[] };
type Row = { offset: number; perEntry: number; callPerEntry: number; text: string };

// The shape node 20's --print-opt-code prints (trimmed): another function's
// code first, then two versions of `drop` (deoptimized once).
const CODE = [
  '--- Raw source ---',
  '(n) { ... }',
  '--- Optimized code ---',
  'optimization_id = 3',
  'name = other',
  'kind = TURBOFAN',
  'Instructions (size = 8)',
  '0x7f0000001000     0  55                   push rbp',
  '--- End code ---',
  '--- Optimized code ---',
  'optimization_id = 7',
  'name = drop',
  'kind = TURBOFAN',
  'compiler = turbofan',
  'Instructions (size = 16)',
  '0x7f0000002000     0  55                   push rbp',
  '0x7f0000002001     1  4889e5               REX.W movq rbp,rsp',
  '0x7f0000002004     4  ffd1                 call rcx',
  '0x7f0000002006     6  c3                   ret',
  '',
  'Inlined functions (count = 2)',
  ' 0x1b6bc9158681 <SharedFunctionInfo release>',
  ' 0x1b6bc91585a1 <SharedFunctionInfo shift>',
  '',
  'Safepoints (entries = 1, byte size = 10)',
  '0x7f0000002006     6  slots (sp->fp): 00000000',
  '--- End code ---',
  '--- Optimized code ---',
  'name = drop',
  'kind = TURBOFAN',
  'Instructions (size = 4)',
  '0x7f0000003000     0  55                   push rbp',
  '0x7f0000003001     1  c3                   ret',
  '--- End code ---',
].join('\n');

// callgrind --dump-instr=yes --compress-pos=no: `0xADDR LINE COUNT` cost
// lines; the line after `calls=` is the inclusive cost of those calls.
const CALLGRIND = [
  'positions: instr line',
  'events: Ir',
  'fn=0x7f0000002000',
  '0x7f0000002000 0 100',
  '0x7f0000002001 0 100',
  '0x7f0000002004 0 100',
  'cfn=(12)',
  'calls=100 0x7f00000a0000 0',
  '0x7f0000002004 0 5000',
  '0x7f0000002006 0 100',
  '0x7f0000003000 0 2',
  'fn=elsewhere',
  '0x7f0000001000 0 999',
  '0x7f0000002000 0 50',
].join('\n');

describe('bench opt-code: instructions of one optimized function', () => {
  it("finds every version of the named function, with its instructions and what was inlined, and nothing of another's", () => {
    const versions: Version[] = parseOptimizedCode(CODE, 'drop');
    assert.equal(versions.length, 2);
    assert.deepEqual(
      versions[0]!.instructions.map((i) => [i.addr, i.offset, i.text]),
      [
        [0x7f0000002000, 0, 'push rbp'],
        [0x7f0000002001, 1, 'REX.W movq rbp,rsp'],
        [0x7f0000002004, 4, 'call rcx'],
        [0x7f0000002006, 6, 'ret'],
      ],
      'the safepoint table after the code is not read as instructions',
    );
    assert.deepEqual(versions[0]!.inlined, ['release', 'shift']);
    assert.equal(versions[0]!.kind, 'TURBOFAN');
    assert.equal(versions[1]!.instructions.length, 2);
    assert.deepEqual(parseOptimizedCode(CODE, 'dro'), [], 'names match whole');
  });

  it("sums callgrind's counts in the code's range, a call's cost apart from the call instruction's own", () => {
    const [v] = parseOptimizedCode(CODE, 'drop') as Version[];
    const { lo, hi } = codeRange(v);
    assert.deepEqual([lo, hi], [0x7f0000002000, 0x7f0000002006 + 16]);
    const counts = instructionCounts(CALLGRIND, lo, hi);
    assert.deepEqual(
      [...counts.self].sort((a, b) => a[0] - b[0]),
      [
        [0x7f0000002000, 150],
        [0x7f0000002001, 100],
        [0x7f0000002004, 100],
        [0x7f0000002006, 100],
      ],
      'the same address under two functions adds up; the other version and function are out of range',
    );
    assert.deepEqual([...counts.calls], [[0x7f0000002004, 5000]]);
  });

  it('gives counts per entry into the function (its first instruction), rows only for what ran', () => {
    const versions = parseOptimizedCode(CODE, 'drop') as Version[];
    const v = versions[0]!;
    const { lo, hi } = codeRange(v);
    const a = annotate(v, instructionCounts(CALLGRIND, lo, hi)) as { entries: number; selfPerEntry: number; callsPerEntry: number; rows: Row[] };
    assert.equal(a.entries, 150);
    assert.equal(a.selfPerEntry, 450 / 150);
    assert.equal(a.callsPerEntry, 5000 / 150);
    assert.deepEqual(
      a.rows.map((r) => [r.offset, r.perEntry, r.callPerEntry]),
      [
        [0, 1, 0],
        [1, 100 / 150, 0],
        [4, 100 / 150, 5000 / 150],
        [6, 100 / 150, 0],
      ],
    );
    // The second version ran twice and called nothing.
    const w = versions[1]!;
    const r2 = codeRange(w);
    const b = annotate(w, instructionCounts(CALLGRIND, r2.lo, r2.hi)) as { entries: number; rows: Row[] };
    assert.equal(b.entries, 2);
    assert.deepEqual(
      b.rows.map((r) => r.offset),
      [0],
      'an instruction that never ran has no row',
    );
  });
});

// Instruction counts inside one optimized function: V8's listing of the
// machine code it generated for the function (`node --print-opt-code
// --print-opt-code-filter=NAME`) joined with callgrind's count for each
// instruction address (`--dump-instr=yes --compress-pos=no`). Used by
// bench/opt-code-instructions.mjs to show where in a hot function the
// instructions go: a loop, a check repeated per iteration, an inline cache
// miss, an out-of-line call and what it costs.

/**
 * The versions of function `name` in `--print-opt-code` output, in the order
 * V8 printed them (a function deoptimized and optimized again appears once
 * per version): each with its instructions ({ addr, offset, text }, addr a
 * Number: user-space addresses fit in 2^53) and the names of what was
 * inlined into it.
 */
export function parseOptimizedCode(text, name) {
  const versions = [];
  let cur = null;
  let inCode = false;
  let inInlined = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('--- Optimized code ---')) {
      cur = { name: null, kind: null, instructions: [], inlined: [] };
      inCode = inInlined = false;
      continue;
    }
    if (cur === null) continue;
    if (line.startsWith('--- End code ---')) {
      if (cur.name === name && cur.instructions.length > 0) versions.push(cur);
      cur = null;
      continue;
    }
    let m;
    if ((m = /^name = (.*)$/.exec(line))) cur.name = m[1].trim();
    else if ((m = /^kind = (.*)$/.exec(line))) cur.kind = m[1].trim();
    else if (line.startsWith('Instructions (size')) inCode = true;
    else if (line.startsWith('Inlined functions')) {
      inCode = false;
      inInlined = true;
    } else if (inInlined && (m = /<SharedFunctionInfo (.*)>/.exec(line))) cur.inlined.push(m[1].trim());
    else if (inInlined && line.trim() === '') inInlined = false;
    else if (inCode && (m = /^0x([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+(.*)$/.exec(line))) {
      cur.instructions.push({ addr: parseInt(m[1], 16), offset: parseInt(m[2], 16), text: m[3].trimEnd() });
    } else if (inCode && /^(Safepoints|Source positions|Deoptimization|RelocInfo)/.test(line)) inCode = false;
  }
  return versions;
}

/**
 * Callgrind's counts for the instruction addresses in [lo, hi), from an
 * output file written with --dump-instr=yes --compress-pos=no (each cost
 * line `0xADDR LINE COUNT`). `self`: what each instruction executed; `calls`:
 * at a call instruction, what the calls from it cost in all (callgrind
 * writes that on the line after a `calls=` line).
 */
export function instructionCounts(text, lo, hi) {
  const self = new Map();
  const calls = new Map();
  let afterCalls = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('calls=')) {
      afterCalls = true;
      continue;
    }
    const m = /^0x([0-9a-f]+) \d+ (\d+)/.exec(line);
    if (m) {
      const a = parseInt(m[1], 16);
      if (a >= lo && a < hi) {
        const into = afterCalls ? calls : self;
        into.set(a, (into.get(a) ?? 0) + Number(m[2]));
      }
    }
    afterCalls = false;
  }
  return { self, calls };
}

/**
 * One version's instructions with their counts per entry into the function
 * (the count of its first instruction): `{ entries, selfPerEntry,
 * callsPerEntry, rows }`, rows only for instructions that ran, each
 * `{ offset, perEntry, callPerEntry, text }`.
 */
export function annotate(version, counts) {
  const first = version.instructions[0].addr;
  const entries = counts.self.get(first) ?? 0;
  const per = (n) => (entries > 0 ? n / entries : 0);
  let self = 0;
  let calls = 0;
  const rows = [];
  for (const ins of version.instructions) {
    const s = counts.self.get(ins.addr) ?? 0;
    const c = counts.calls.get(ins.addr) ?? 0;
    self += s;
    calls += c;
    if (s > 0 || c > 0) rows.push({ offset: ins.offset, perEntry: per(s), callPerEntry: per(c), text: ins.text });
  }
  return { entries, selfPerEntry: per(self), callsPerEntry: per(calls), rows };
}

/** The address range [lo, hi) of a version's code (its last instruction counted as up to 16 bytes). */
export function codeRange(version) {
  const addrs = version.instructions.map((i) => i.addr);
  return { lo: Math.min(...addrs), hi: Math.max(...addrs) + 16 };
}

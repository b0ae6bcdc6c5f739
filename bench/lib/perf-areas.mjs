// Reads `perf report` output of a sampled server (bench/socket-profile.mjs)
// into CPU per message by area and by function. Sampling on sockets counts
// what instruction counts in process cannot: the kernel's share, cache and
// branch misses, V8's code as it runs under real reads and writes.
import { median } from './stats.mjs';

/**
 * Areas of a Node server's CPU, in report order. `match` takes a row's
 * shared object and symbol; the first area that matches takes the row.
 */
export const AREAS = [
  { id: 'kernel', label: 'kernel (system calls, TCP, interrupts)', match: (dso, sym) => dso === '[kernel.kallsyms]' || sym.startsWith('[k] ') },
  { id: 'jit', label: "V8's generated code (JavaScript)", match: (dso) => dso.startsWith('[JIT]') },
  {
    id: 'gc',
    label: "V8's heap (allocation slow paths, collectors)",
    // C++ of V8's heap, on the main thread or its helper threads.
    match: (dso, sym) => isNode(dso) && /v8::internal::(Heap|Scavenger|Scavenging|MarkCompact|MinorMarkCompact|Marking|ConcurrentMarking|Sweeper|ArrayBufferSweeper|Evacuat|MemoryAllocator|PagedSpace|NewSpace|SemiSpace|GCTracer|LocalHeap|MemoryReducer|IncrementalMarking)|\bHeap::|Scavenger|ArrayBufferSweeper/.test(sym),
  },
  { id: 'builtins', label: "V8's built-ins (inline caches, typed arrays, calls)", match: (dso, sym) => isNode(dso) && sym.startsWith('[.] Builtins_') },
  { id: 'native', label: 'Node, libuv and V8 runtime (C++)', match: (dso) => isNode(dso) || dso.startsWith('libstdc++') },
  { id: 'libc', label: 'libc (malloc, read/write wrappers)', match: (dso) => dso.startsWith('libc.so') || dso.startsWith('libc-') },
  { id: 'other', label: 'other', match: () => true },
];

function isNode(dso) {
  return dso === 'node' || dso.endsWith('/node');
}

/**
 * Rows of `perf report --no-children --sort dso,sym -n -q -t '\t'`:
 * `<overhead>\t<samples>\t<dso>\t<symbol>`. The thread id in a JIT map's
 * name ('[JIT] tid 8359') is dropped so runs of different processes compare.
 * @returns {Array<{ dso: string, sym: string, samples: number }>}
 */
export function parsePerfReport(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length < 4) continue;
    const samples = Number(f[1].trim());
    if (!Number.isFinite(samples)) continue;
    const dso = f[2].trim().replace(/^\[JIT\] tid \d+$/, '[JIT]');
    rows.push({ dso, sym: f.slice(3).join('\t').trim(), samples });
  }
  return rows;
}

/**
 * Nanoseconds of server CPU per message, by area and by function:
 * each sample stands for `periodNs` of CPU (perf's -c with cpu-clock).
 * @returns {{ total: number, areas: Record<string, number>, functions: Map<string, number> }}
 */
export function perMessage(rows, periodNs, messages) {
  const k = periodNs / messages;
  const areas = Object.fromEntries(AREAS.map((a) => [a.id, 0]));
  const functions = new Map();
  let total = 0;
  for (const r of rows) {
    const ns = r.samples * k;
    total += ns;
    const area = AREAS.find((a) => a.match(r.dso, r.sym));
    areas[area.id] += ns;
    const key = `${r.sym} (${r.dso})`;
    functions.set(key, (functions.get(key) ?? 0) + ns);
  }
  return { total, areas, functions };
}

/**
 * The functions whose median CPU per message differs most between server
 * `a`'s runs and server `b`'s (each a list of perMessage() results, one per
 * repetition; a function missing from a run counts 0 there), largest
 * difference first in absolute value.
 * @returns {Array<{ name: string, a: number, b: number, diff: number }>}
 */
export function functionDiff(aRuns, bRuns, top) {
  const names = new Set();
  for (const r of [...aRuns, ...bRuns]) for (const n of r.functions.keys()) names.add(n);
  const out = [];
  for (const name of names) {
    const a = median(aRuns.map((r) => r.functions.get(name) ?? 0));
    const b = median(bRuns.map((r) => r.functions.get(name) ?? 0));
    out.push({ name, a, b, diff: b - a });
  }
  out.sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff) || x.name.localeCompare(y.name));
  return out.slice(0, top);
}

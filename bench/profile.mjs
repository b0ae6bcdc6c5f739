#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): the functions with the
// most self time, idle excluded.
//
//   node bench/profile.mjs file.cpuprofile [--top 10]
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/**
 * @returns {{ totalMs: number, busyMs: number, rows: Array<{ name: string, where: string, selfMs: number, pct: number }> }}
 *   pct is of busy (non-idle) time.
 */
export function summarizeProfile(file, top = 10) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples, timeDeltas } = prof;
  // timeDeltas[i] is the time before sample i; attribute it to sample i's node
  // (the same convention Chrome DevTools uses, near enough at 1 ms sampling).
  for (let i = 0; i < samples.length; i++) {
    const d = timeDeltas[i] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, d));
  }
  const agg = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = location(cf);
    const key = `${cf.functionName || '(anonymous)'}\0${where}`;
    agg.set(key, (agg.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  // Where busy time goes, coarsely: our code, Node's JS, native calls, GC, V8/libuv.
  const areas = new Map();
  for (const [key, us] of agg) {
    const [name, where] = key.split('\0');
    const area =
      name === '(garbage collector)' ? 'garbage collector'
      : name === '(program)' ? 'program (V8, libuv, kernel I/O outside JS calls)'
      : where.startsWith('src/') ? `lifeline ${where.slice(0, where.lastIndexOf(':'))}`
      : where.startsWith('node:') ? 'node internals (JS)'
      : where === '' ? 'native calls (socket writes, isUtf8, ...)'
      : where.slice(0, where.lastIndexOf(':'));
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const byArea = [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, selfMs: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 }));
  const rows = [...agg]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => {
      const [name, where] = key.split('\0');
      return { name, where, selfMs: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 };
    });
  return { totalMs: total / 1000, busyMs: busy / 1000, rows, byArea };
}

const maps = new Map();

/** The source map next to a compiled file (dist/x.js -> dist/x.js.map), or null. */
function sourceMapFor(file) {
  if (!maps.has(file)) {
    let map = null;
    try {
      map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')));
    } catch {
      // no map: report the compiled location
    }
    maps.set(file, map);
  }
  return maps.get(file);
}

function rel(p) {
  return p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p;
}

/** `file:line` of a call frame, mapped back to src/*.ts through dist/'s source maps. */
function location(cf) {
  if (!cf.url) return '';
  const file = cf.url.startsWith('file://') ? new URL(cf.url).pathname : cf.url;
  const map = file.startsWith('/') ? sourceMapFor(file) : null;
  const entry = map ? map.findEntry(cf.lineNumber, cf.columnNumber) : null;
  if (entry && entry.originalSource) {
    const src = entry.originalSource.startsWith('file://')
      ? new URL(entry.originalSource).pathname
      : path.resolve(path.dirname(file), entry.originalSource);
    return `${rel(src)}:${entry.originalLine + 1}`;
  }
  return `${rel(file)}:${cf.lineNumber + 1}`;
}

export function formatProfile(summary) {
  const lines = [`busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms sampled; top self time:`];
  summary.rows.forEach((r, i) => {
    lines.push(`  ${String(i + 1).padStart(2)}. ${r.pct.toFixed(1).padStart(5)}%  ${r.selfMs.toFixed(0).padStart(6)} ms  ${r.name}${r.where ? `  ${r.where}` : ''}`);
  });
  lines.push('by area:');
  for (const a of summary.byArea.slice(0, 10)) lines.push(`      ${a.pct.toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(6)} ms  ${a.area}`);
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--top');
  const top = ti === -1 ? 10 : Number(args.splice(ti, 2)[1]);
  if (args.length === 0) {
    console.error('usage: node bench/profile.mjs file.cpuprofile [--top N]');
    process.exit(2);
  }
  for (const f of args) {
    console.log(`${f}\n${formatProfile(summarizeProfile(f, top))}\n`);
  }
}

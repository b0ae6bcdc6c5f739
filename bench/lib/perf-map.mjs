// Names for V8's generated code in callgrind's output: V8's perf map
// (`node --perf-basic-prof` writes /tmp/perf-<pid>.map: start, size, name per
// line), and a lookup of the function whose code holds an address. Used by
// the instruction-counting tools, which see generated code only as
// `???:0x<address>`.
import fs from 'node:fs';

/** The perf map's rows sorted by start address, or null when the file is missing. */
export function readPerfMap(file) {
  if (!fs.existsSync(file)) return null;
  const rows = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) rows.push({ start: parseInt(m[1], 16), size: parseInt(m[2], 16), name: m[3].replace(/^(JS|LazyCompile|Function):/, '') });
  }
  return rows.sort((a, b) => a.start - b.start);
}

/** The name of the function whose code holds `addr`, or null. */
function symbolAt(rows, addr) {
  let lo = 0;
  let hi = rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].start <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  const r = rows[hi];
  return r && addr < r.start + r.size ? r.name : null;
}

/**
 * The function of a callgrind_annotate entry for generated code
 * ('???:0x<address>'), named through the perf map `rows` (null: no map).
 */
export function generatedCodeName(rows, entry) {
  return (rows && symbolAt(rows, parseInt(entry.slice(4), 16))) ?? '(code V8 did not name)';
}

/** A callgrind_annotate entry's function name: '???:Builtins_LoadIC [/usr/bin/node]' -> 'Builtins_LoadIC'; libc's 'path:function [lib]' -> 'function'. */
export function nativeFunctionName(entry) {
  return entry.replace(/\s+\[[^\]]*\]$/, '').replace(/^[^:]*:/, '');
}

/** A perf-map name shortened for a table: file URLs under dist/ or bench/ lose their directory. */
export function shortName(name) {
  return name.replace(/file:\/\/\S*?\/(dist|bench)\//, '$1/');
}

// The full garbage collection taken before every memory figure: the bench's
// idle servers (servers/idle-common.mjs, `mem` and `spaces`) and the leak
// test's server (test/hardening/load/leak-server.ts). The process must run
// with --expose-gc.

const V8_MAJOR = Number(process.versions.v8.split('.')[0]);
const LAST_RESORT = { type: 'major', execution: 'sync', flavor: 'last-resort' };

/**
 * From V8 12 (Node 22) a plain gc() leaves the pages it frees in V8's page
 * pool, resident until a memory-reducing collection empties it (after
 * 10,000 handshakes on Node 24: 60 MB for lifeline and ws, 12 MB for raw
 * `net`, still held 40 s later; the leak test's RSS grew 45-58 % over ten
 * rounds with the heap flat), so there the figure is taken after a
 * last-resort collection, which empties it and repeats until nothing more is
 * freed. V8 11 (Node 20, the only Node the uWS package has binaries for, so
 * every full bench run's) has no pool, and collects less when gc() is given
 * options (the leak test's heap stayed at 33-97 MB instead of 8): two plain
 * collections, the second for what finalizers of the first freed.
 */
export function fullGc() {
  if (V8_MAJOR >= 12) {
    globalThis.gc(LAST_RESORT);
  } else {
    globalThis.gc();
    globalThis.gc();
  }
}

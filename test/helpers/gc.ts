/**
 * A full garbage collection from inside a test run: bench/lib/full-gc.mjs's
 * fullGc() (the collection the bench takes before every memory figure),
 * with gc() exposed at run time when the process did not start with
 * --expose-gc (the flag, set at run time, exposes gc() to new contexts).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
// @ts-expect-error: a plain .mjs module without type declarations
import { fullGc as benchFullGc } from '../../bench/lib/full-gc.mjs';

export function fullGc(): void {
  const g = globalThis as { gc?: unknown };
  if (typeof g.gc !== 'function') {
    v8.setFlagsFromString('--expose-gc');
    g.gc = vm.runInNewContext('gc');
  }
  (benchFullGc as () => void)();
}

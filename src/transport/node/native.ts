/**
 * Optional native acceleration for the Node transport: bufferutil's unmask,
 * when the application has it installed (as ws users often do). Lifeline has
 * no dependency on it; without it, or with LIFELINE_NO_NATIVE=1, the
 * protocol core's own JavaScript unmask runs. Its pure-JS fallback is never
 * used (ours is faster), so only a loaded native build counts.
 */
import { createRequire } from 'node:module';

type Unmask = (buf: Buffer, mask: Buffer) => void;

function load(): Unmask | null {
  if (process.env.LIFELINE_NO_NATIVE === '1') return null;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('bufferutil') as { unmask?: Unmask };
    let fallback: { unmask?: Unmask } | null = null;
    try {
      fallback = require('bufferutil/fallback') as { unmask?: Unmask };
    } catch {
      // Older layouts without a fallback file: the module is native.
    }
    if (typeof mod.unmask !== 'function' || (fallback !== null && mod.unmask === fallback.unmask)) return null;
    return mod.unmask;
  } catch {
    return null;
  }
}

/** bufferutil's native unmask, or null. */
export const nativeUnmask: Unmask | null = load();

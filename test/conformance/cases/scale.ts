/**
 * LIFELINE_CONFORMANCE_SCALE (default 1) scales the heavy groups; the number
 * of cases never changes with it.
 *
 *   9.x   sizes and counts are Autobahn's times min(scale, 1): at the default,
 *         Autobahn's own 64 KiB..16 MiB messages, 4 MiB in 64-byte frames and
 *         1000 round trips (a few seconds per side); 0.25 for slow machines.
 *   12/13 Autobahn sends 1000 compressed messages per case; we send
 *         100 x scale (at most 1000) and at most scale MiB per case, at least 2.
 *         LIFELINE_CONFORMANCE_SCALE=10 gives Autobahn's counts for small sizes.
 */
const raw = process.env.LIFELINE_CONFORMANCE_SCALE;
export const SCALE = raw === undefined || raw === '' ? 1 : Number(raw);
if (!Number.isFinite(SCALE) || SCALE <= 0 || SCALE > 100) {
  throw new Error(`LIFELINE_CONFORMANCE_SCALE must be a number in (0, 100], got ${JSON.stringify(raw)}`);
}

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** An Autobahn quantity, shrunk when SCALE < 1 (never grown), never below `floor`. */
export function autobahn(full: number, floor = 1): number {
  return Math.max(floor, Math.round(full * Math.min(SCALE, 1)));
}

/** Messages per permessage-deflate case for a payload size. */
export function deflateCount(size: number): number {
  return Math.max(2, Math.min(1000, Math.round(100 * SCALE), Math.floor((SCALE * MiB) / Math.max(size, 1))));
}

/** Payload of `size` bytes filled with `pattern`, cached: the big ones are shared between cases. */
const cache = new Map<string, Buffer>();
export function filled(size: number, pattern: string | number): Buffer {
  const key = `${size}:${pattern}`;
  let b = cache.get(key);
  if (!b) {
    b = Buffer.alloc(size, pattern as string);
    cache.set(key, b);
  }
  return b;
}

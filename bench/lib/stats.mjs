// Small statistics for repetitions.

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function min(xs) {
  return Math.min(...xs.filter((x) => Number.isFinite(x)));
}

export function max(xs) {
  return Math.max(...xs.filter((x) => Number.isFinite(x)));
}

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

/**
 * A goal's ratio taken within each repetition: `figure(of's run) /
 * figure(vs's run)` for every repetition where both servers have a good
 * run (`ok`; the kept attempt, as in the medians), in repetition order.
 * Servers run next to each other within a repetition, so a slow phase of
 * the machine that spans a repetition moves both figures of its pair: the
 * spread of these ratios is how far one run's verdict could go either
 * way, which the ratio of two medians alone does not show.
 * @param {Array<{server: string, rep: number, ok: boolean}>} runs
 * @param {(run: object) => number} figure
 * @returns {number[]}
 */
export function perRepRatios(runs, of, vs, figure) {
  const byRep = new Map();
  for (const r of runs) {
    if (!r.ok || (r.server !== of && r.server !== vs)) continue;
    const pair = byRep.get(r.rep) ?? {};
    pair[r.server === of ? 'of' : 'vs'] = r;
    byRep.set(r.rep, pair);
  }
  const out = [];
  for (const rep of [...byRep.keys()].sort((a, b) => a - b)) {
    const { of: a, vs: b } = byRep.get(rep);
    if (!a || !b) continue;
    const x = figure(a) / figure(b);
    if (Number.isFinite(x)) out.push(x);
  }
  return out;
}

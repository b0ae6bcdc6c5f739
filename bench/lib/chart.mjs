// The bench chart: one hand-written SVG per run (no dependency), written next
// to the JSON by run.mjs. Grouped bars of lifeline's ratios to its peers per
// scenario, all "higher is better":
//
//   a, b, c   lifeline's msgs per server-CPU-s / ws's, uws's, net-batched's
//   c latency the peer's latency / lifeline's for the latency goals (p50 vs
//             net-batched, p99 vs uws), so that here too above 1 means better
//   g         session / plain (msgs per server-CPU-s)
//   d, e, f   the goals their code reports that are ratios (a value and a
//             target near 1: broadcast lifeline/uws, idle RSS vs net),
//             inverted where lower is better
//
// A dashed line marks 1.0 (parity), a short bar across a bar marks its goal
// (green met, red missed), a hollow diamond at a bar's edge Node's floor in
// the same comparison (goals that have one). Bars taller than the axis are
// cut off and keep their value as a label.

const COLORS = { ws: '#4e79a7', uws: '#f28e2b', 'net-batched': '#59a14f', other: '#b07aa1' };
/** Ratios above this are cut off (labelled with their value): keeps the bars near 1 readable. */
const AXIS_MAX_CAP = 2.5;
/** Short bar labels; the legend says what the colours are. */
const SHORT = { 'net-batched': 'net' };

/** XML-escapes text for SVG. */
function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

const num = (x) => typeof x === 'number' && Number.isFinite(x);

/** The peer a goal id compares against, from its name ('...-vs-uws' -> 'uws'), for the bar's colour. */
function peerOf(id) {
  const m = /-vs-([a-z-]+)$/.exec(String(id));
  return !m ? undefined : m[1] === 'net' ? 'net-batched' : m[1];
}

/**
 * Turns a goal ('<=' goals inverted) into { value, target, pass, floor? }
 * where higher is better; `floor` is Node's floor's value on the same scale
 * (lib/floor.mjs), when the goal has one.
 */
function higherIsBetter(g) {
  const inv = g.op === '<=';
  const scale = (x) => (num(x) && x > 0 ? (inv ? 1 / x : x) : NaN);
  const floorValue = g.floor ? scale(g.floor.value) : NaN;
  const floor = num(floorValue) ? { value: floorValue, server: g.floor.server, pass: g.floor.pass } : null;
  return { value: scale(g.value), target: scale(g.target), pass: g.pass, ...(floor ? { floor } : {}) };
}

/**
 * The groups of bars from a bench result document (run.mjs's JSON):
 * [{ label, sub, bars: [{ label, color, value, goal?: { target, pass } }] }].
 */
export function chartGroups(doc) {
  const groups = [];
  const goals = doc.goals ?? [];
  for (const [id, sc] of Object.entries(doc.scenarios ?? {})) {
    const life = sc.summary?.lifeline;
    if (life && life.vs && Array.isArray(sc.references) && sc.references.length) {
      const bars = sc.references.map((ref) => {
        const g = goals.find((x) => x.scenario === id && x.of === 'lifeline' && x.vs === ref && x.metric === 'perCpu');
        return {
          label: SHORT[ref] ?? ref,
          color: COLORS[ref] ?? COLORS.other,
          value: life.vs[ref]?.perCpuSec ?? NaN,
          ...(g ? { goal: higherIsBetter(g) } : {}),
        };
      });
      const lg = sc.loadgen ?? {};
      const size = lg.size >= 1024 && lg.size % 1024 === 0 ? `${lg.size / 1024} KiB` : `${lg.size} B`;
      groups.push({ label: `${id}: per server-CPU-s`, sub: `${lg.connections} x ${size}, window ${lg.window}`, bars });
      // Latency goals (lower is better), shown inverted: the peer's latency / lifeline's.
      const lat = goals.filter((x) => x.scenario === id && x.of === 'lifeline' && /^p\d+$/.test(x.metric ?? ''));
      if (lat.length) {
        groups.push({
          label: `${id}: latency`,
          sub: 'their us / lifeline us',
          bars: lat.map((g) => ({ label: `${g.metric === 'p999' ? 'p99.9' : g.metric}/${SHORT[g.vs] ?? g.vs}`, color: COLORS[g.vs] ?? COLORS.other, goal: higherIsBetter(g), value: higherIsBetter(g).value })),
        });
      }
    } else if (id === 'g') {
      const g = goals.find((x) => x.scenario === 'g' && x.id === 'g-session');
      const v = sc.summary?.session?.vsBaselinePerCpuSec;
      if (num(v)) groups.push({ label: 'g: session layer', sub: 'session / plain', bars: [{ label: 'session/plain', color: COLORS.other, value: v, ...(g ? { goal: higherIsBetter(g) } : {}) }] });
    } else if (sc.kind === 'module' || sc.kind === 'idle') {
      // Only goals that are ratios: a numeric value and a target near 1 (so
      // not "RSS < 500 MB" or "0 missed heartbeats", nor a target that is
      // another server's absolute figure, like an idle CPU share).
      const own = goals.filter((x) => x.scenario === id && num(x.value) && num(x.target) && x.target >= 0.05 && x.target <= 20);
      if (own.length) {
        groups.push({
          label: `${id}${sc.alias ? ` (${sc.alias})` : ''}`,
          sub: own.some((g) => g.op === '<=') ? 'goal, "<=" inverted' : 'its goal',
          bars: own.map((g) => ({ label: String(g.id).replace(`${id}-`, ''), color: COLORS[g.vs ?? peerOf(g.id)] ?? COLORS.other, value: higherIsBetter(g).value, goal: higherIsBetter(g) })),
        });
      }
    }
  }
  return groups;
}

/** A hollow diamond at (x, y): Node's floor on a goal's bar (with a tooltip when `title` is given). */
function floorMark(x, y, title) {
  const p = [`${x},${(y - 6).toFixed(1)}`, `${x + 6},${y.toFixed(1)}`, `${x},${(y + 6).toFixed(1)}`, `${x - 6},${y.toFixed(1)}`].join(' ');
  return `<polygon points="${p}" fill="#ffffff" stroke="#222" stroke-width="1.5">${title ? `<title>${esc(title)}</title>` : ''}</polygon>`;
}

/** The SVG (a string) for a bench result document. */
export function renderChart(doc) {
  const groups = chartGroups(doc);
  const BAR = 48;
  const BAR_GAP = 8;
  const GROUP_GAP = 40;
  const left = 64;
  const right = 80; // room for the parity label
  const top = 92;
  const plotH = 360;
  const bottom = 86;
  // A group is at least MIN_GROUP wide, so that the labels under a lone bar fit.
  const MIN_GROUP = 124;
  const barsOf = (g) => g.bars.length * BAR + (g.bars.length - 1) * BAR_GAP;
  const groupW = (g) => Math.max(MIN_GROUP, barsOf(g));
  const barsW = groups.reduce((a, g) => a + groupW(g), 0) + Math.max(0, groups.length - 1) * GROUP_GAP;
  const plotW = Math.max(600, barsW + 40);
  const width = left + plotW + right;
  const height = top + plotH + bottom;

  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.goal?.target, b.goal?.floor?.value]).filter(num));
  const rawMax = Math.max(1.2, ...values) * 1.08;
  const yMax = Math.min(AXIS_MAX_CAP, Math.ceil(rawMax / 0.25) * 0.25);
  const step = yMax > 2 ? 0.5 : 0.25;
  const y = (v) => top + plotH - (Math.min(v, yMax) / yMax) * plotH;

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  const env = doc.env ?? {};
  out.push(`<text x="${left}" y="26" font-size="17" font-weight="bold" fill="#222">lifeline against its peers: ratios, higher is better</text>`);
  out.push(
    `<text x="${left}" y="44" font-size="12" fill="#555">${esc(`${doc.mode ?? ''}${doc.custom ? ' (custom)' : ''} run ${(doc.startedAt ?? '').slice(0, 16).replace('T', ' ')}, git ${env.git ?? '?'}, ${env.cpus ?? '?'} CPUs; medians; throughput = msgs per server-CPU-s`)}</text>`,
  );
  // Legend (only the colours in use).
  const used = new Set(groups.flatMap((g) => g.bars.map((b) => b.color)));
  let lx = left;
  for (const [name, color] of [['vs ws', COLORS.ws], ['vs uws', COLORS.uws], ['vs net-batched (raw TCP)', COLORS['net-batched']], ['other ratio', COLORS.other]].filter(([, c]) => used.has(c))) {
    out.push(`<rect x="${lx}" y="60" width="12" height="12" fill="${color}"/><text x="${lx + 17}" y="70.5" font-size="12" fill="#333">${esc(name)}</text>`);
    lx += 30 + name.length * 6.6;
  }
  out.push(`<rect x="${lx}" y="64" width="22" height="4" fill="#2e7d32"/><rect x="${lx + 24}" y="64" width="22" height="4" fill="#c62828"/><text x="${lx + 52}" y="70.5" font-size="12" fill="#333">goal met / missed</text>`);
  if (groups.some((g) => g.bars.some((b) => b.goal?.floor))) {
    lx += 52 + 'goal met / missed'.length * 6.6 + 14;
    out.push(`${floorMark(lx + 6, 66)}<text x="${lx + 17}" y="70.5" font-size="12" fill="#333">Node's floor, same comparison</text>`);
  }

  // Grid and axis.
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" font-size="11" fill="#555" text-anchor="end">${v.toFixed(2)}x</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#888"/>`);
  out.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#888"/>`);

  if (groups.length === 0) {
    out.push(`<text x="${left + plotW / 2}" y="${top + plotH / 2}" font-size="14" fill="#777" text-anchor="middle">no ratios in this run (lifeline or its peers did not run)</text>`);
  }

  let gx = left + 20;
  for (const g of groups) {
    const gw = groupW(g);
    let x = gx + (gw - barsOf(g)) / 2;
    for (const b of g.bars) {
      const cx = x + BAR / 2;
      if (num(b.value)) {
        const yy = y(b.value);
        out.push(`<rect x="${x}" y="${yy.toFixed(1)}" width="${BAR}" height="${(top + plotH - yy).toFixed(1)}" fill="${b.color}"/>`);
        const clipped = b.value > yMax;
        out.push(`<text x="${cx}" y="${(yy - 5).toFixed(1)}" font-size="11" fill="#222" text-anchor="middle">${clipped ? '&#x25B2;' : ''}${b.value.toFixed(2)}</text>`);
      } else {
        out.push(`<text x="${cx}" y="${top + plotH - 6}" font-size="11" fill="#999" text-anchor="middle">n/a</text>`);
      }
      if (b.goal && num(b.goal.target)) {
        const gy = y(b.goal.target).toFixed(1);
        const color = b.goal.pass === true ? '#2e7d32' : b.goal.pass === false ? '#c62828' : '#777';
        out.push(`<rect x="${x - 5}" y="${(gy - 2).toFixed(1)}" width="${BAR + 10}" height="4" fill="${color}"><title>goal ${b.goal.target.toFixed(2)}</title></rect>`);
      }
      const f = b.goal?.floor;
      if (f && f.value <= yMax) {
        // At the bar's right edge, so that it shows beside the bar's top, not hidden in it.
        out.push(`${floorMark(x + BAR, y(f.value), `Node's floor (${f.server}): ${f.value.toFixed(2)}, goal ${f.pass ? 'met' : 'missed'}`)}`);
      }
      out.push(`<text x="${cx}" y="${top + plotH + 15}" font-size="11" fill="#333" text-anchor="middle">${esc(b.label)}</text>`);
      if (b.goal && num(b.goal.target)) {
        const color = b.goal.pass === true ? '#2e7d32' : b.goal.pass === false ? '#c62828' : '#777';
        out.push(`<text x="${cx}" y="${top + plotH + 28}" font-size="9.5" fill="${color}" text-anchor="middle">goal ${b.goal.target.toFixed(2)}</text>`);
      }
      x += BAR + BAR_GAP;
    }
    const mid = gx + gw / 2;
    out.push(`<text x="${mid}" y="${top + plotH + 48}" font-size="12" font-weight="bold" fill="#222" text-anchor="middle">${esc(g.label)}</text>`);
    out.push(`<text x="${mid}" y="${top + plotH + 64}" font-size="11" fill="#555" text-anchor="middle">${esc(g.sub)}</text>`);
    gx += gw + GROUP_GAP;
  }

  // Parity line last, so that it shows over the bars.
  out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#222" stroke-width="1.2" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${left + plotW + 6}" y="${(y(1) + 4).toFixed(1)}" font-size="11" fill="#222">1.0 = parity</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

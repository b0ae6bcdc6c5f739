// Node's floor beside a goal: the same comparison with lifeline's figure
// replaced by the figure of the bench's least-possible Node server for that
// scenario (raw `net` echo for a-c, net-ping-bare or net-ping for d,
// broadcast-net for e), measured in the same run. A goal the floor misses
// too was, in that run, out of reach of a server on Node's sockets that does
// no more than the floor does: that separates a miss of ours from one of the
// platform, run by run.

/**
 * The floor entry of a goal: `{ server, value, pass }`, where `value` is the
 * floor's figure over the goal's reference (the goal's own ratio with the
 * floor in lifeline's place) and `pass` applies the goal's `op` and
 * `target` to it; null when either figure is missing or not a number.
 */
export function floorOf(server, floorFigure, referenceFigure, op, target) {
  const value = floorFigure / referenceFigure;
  if (!Number.isFinite(value)) return null;
  return { server, value, pass: op === '<=' ? value <= target : value >= target };
}

/**
 * "; Node's floor (net-ping) 1.24x: missed too" to end a goal line ("missed"
 * when the goal itself was met or not judged); '' without a floor.
 */
export function floorText(goal) {
  const f = goal.floor;
  if (!f) return '';
  return `; Node's floor (${f.server}) ${f.value.toFixed(2)}x: ${f.pass ? 'met' : goal.pass === false ? 'missed too' : 'missed'}`;
}

/** How many missed goals the floor missed too (pass === false on both). */
export function missedByFloor(goals) {
  return goals.filter((g) => g.pass === false && g.floor && g.floor.pass === false).length;
}

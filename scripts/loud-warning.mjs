// A warning that cannot be missed in a long log: a framed block on stderr.
// Shared by scripts/bootstrap.mjs (missing peers) and scripts/run-tests.mjs (a
// Node version it cannot fetch). Plain syntax only: bootstrap imports it
// before its Node version check.

/** Prints `lines` inside a frame of asterisks on stderr. */
export function loudWarning(lines) {
  const bar = '*'.repeat(78);
  console.warn('');
  console.warn(bar);
  for (const l of lines) console.warn('*** ' + l);
  console.warn(bar);
  console.warn('');
}

// Shared by the bench echo servers.

/** `--port N` from argv, default 0 (any free port). */
export function portArg() {
  const i = process.argv.indexOf('--port');
  if (i === -1) return 0;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`bad --port ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return n;
}

/**
 * SIGTERM/SIGINT: exit 0 at once. A normal exit (not death by signal) lets
 * `node --cpu-prof` write its profile. Connections are not closed
 * gracefully: the run is over when the orchestrator sends the signal.
 */
export function exitOnSignal() {
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

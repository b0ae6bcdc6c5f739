// Shared by the bench servers.
import fs from 'node:fs';
import path from 'node:path';

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

const UWS_PACKAGE = '@trufflesuite/uws-js-unofficial';
/** The native binary for this platform and Node's module ABI, as a package path. */
export const UWS_BINARY = `${UWS_PACKAGE}/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
// Node majors by module ABI (process.versions.modules), for the message below.
const NODE_OF_ABI = { 93: 16, 108: 18, 115: 20, 127: 22, 137: 24, 147: 26 };

/**
 * What to do when uWS's native binary did not load. A package that ships the
 * platform's binaries for other ABIs only (20.30.0 stops at Node 20's) cannot
 * be fixed by reinstalling: say which Node versions it has binaries for.
 */
function uwsFix(require) {
  const abi = Number(process.versions.modules);
  let dir = null;
  try {
    dir = path.join(path.dirname(require.resolve(`${UWS_PACKAGE}/package.json`)), 'binaries');
  } catch {
    return `Fix: npm ci (${UWS_PACKAGE} is a dev dependency; its binaries ship inside the npm package).`;
  }
  const prefix = `uws_${process.platform}_${process.arch}_`;
  const abis = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    .filter((f) => f.startsWith(prefix) && f.endsWith('.node'))
    .map((f) => Number(f.slice(prefix.length, -'.node'.length)))
    .filter(Number.isInteger)
    .sort((a, b) => a - b);
  if (abis.length > 0 && !abis.includes(abi)) {
    const named = abis.map((a) => (NODE_OF_ABI[a] ? `${a} (Node ${NODE_OF_ABI[a]})` : String(a))).join(', ');
    return (
      `The installed package has ${process.platform}-${process.arch} binaries for ABIs ${named} only, and Node ${process.version} is ABI ${abi}:\n` +
      `reinstalling will not help. Run the bench on one of those Node versions, or leave uWS out (--servers without it).`
    );
  }
  return `Fix: npm ci (the binary ships inside the npm package; Node ${process.version}, ABI ${abi}).`;
}

/**
 * uWebSockets.js's NATIVE addon (@trufflesuite/uws-js-unofficial), loaded by its file name,
 * never through the package's main: that one silently falls back to a
 * pure-JS implementation when the binary does not load, and a bench against
 * the fallback would measure something else under uWS's name. If the binary
 * does not load, prints a loud error and exits 1 (the run fails). `require`
 * is the caller's (createRequire(import.meta.url)).
 */
export function loadUwsNative(name, require) {
  const file = UWS_BINARY;
  try {
    return require(file);
  } catch (err) {
    const bar = '!'.repeat(78);
    console.error(
      `${bar}\n${name}: the uWebSockets.js NATIVE binary did not load:\n  ${file}\n  ${String(err.message).split('\n')[0]}\n` +
        "Refusing to run: the package's JS fallback is not uWebSockets.js and would make a meaningless baseline.\n" +
        `${uwsFix(require)}\n${bar}`,
    );
    process.exit(1);
  }
}

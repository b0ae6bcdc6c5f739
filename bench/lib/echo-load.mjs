// How an echo scenario (a, b, c, g) drives a server: the environment its
// server and loadgen processes run in, and the loadgen's arguments. Shared
// by run.mjs and socket-profile.mjs, so that a profile is taken under the
// same load the bench's ratios are.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The environment of the echo scenarios' servers and loadgens. glibc's
 * malloc gives the top of its heap back to the kernel once more than
 * M_TRIM_THRESHOLD (128 KiB, then adjusted) is free there, and whether a
 * process's freed 64 KiB read buffers end up at that top depends on its
 * heap's layout: the processes where they do fault the memory in again on
 * each read (0.3-0.6 minor faults per message in scenario b's raw `net`
 * echo against 0.04-0.11 in the others, with 1.3-3x the system time), so
 * a server's figure depended on which kind of process a run drew. A trim
 * threshold above anything these processes free keeps every process in the
 * same (faultless) state; all servers and loadgens get it, and an
 * MALLOC_TRIM_THRESHOLD_ already set is kept. Not for scenarios d-f, which
 * measure memory: there the trim is part of what a server holds.
 */
export const ECHO_ENV = { MALLOC_TRIM_THRESHOLD_: String(256 * 1024 * 1024), ...process.env };

/**
 * node arguments of bench/loadgen.mjs driving `serverDef` (an entry of
 * scenarios.mjs's server tables) on `port` with the scenario's `load`
 * (its `loadgen`: connections, size, window, binary, latency), in --control
 * mode (`ready`, then `go` on stdin starts the measured run).
 */
export function echoLoadgenArgs(port, load, serverDef, messages, warmup) {
  return [
    path.join(BENCH, 'loadgen.mjs'),
    '--port', String(port),
    '--connections', String(load.connections),
    '--size', String(load.size),
    '--window', String(load.window),
    '--messages', String(messages),
    '--warmup', String(warmup),
    '--control',
    ...(serverDef.protocol ? ['--protocol', serverDef.protocol] : []),
    ...(load.binary ? ['--binary'] : []),
    ...(load.latency ? ['--latency'] : []),
    ...(serverDef.loadgenArgs ?? []),
  ];
}

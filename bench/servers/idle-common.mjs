// Shared by the idle-connection bench servers (scenarios d and f) and the
// broadcast servers (scenario e): a control channel
// on stdin, one command per line, one answer line per command on stdout:
//
//   mem ID    ->  mem ID {"rss":..,"heapUsed":..,"heapTotal":..,"external":..,"arrayBuffers":..}
//                 (after a full garbage collection, lib/full-gc.mjs: the process runs
//                 with --expose-gc)
//   stats ID  ->  stats ID {...}   (server-specific counters: connections, closes, pings)
//   spaces ID ->  spaces ID {"new_space":{"size":..,"used":..},...}   (after a full GC, like
//                 `mem`: V8's heap by space, to tell live data from committed room)
//   heapsnapshot ID  ->  heapsnapshot ID {"file":"..."}   (v8.writeHeapSnapshot into
//                 the working directory; for finding out where the memory goes)
//   profstart ID  ->  profstart ID {}   (starts V8's CPU profiler, 100 us sampling)
//   profstop ID   ->  profstop ID {"file":"..."}   (stops it, writes ID.cpuprofile into
//                 the working directory: a profile of just the idle window, which a
//                 --cpu-prof of the whole process would bury under connection setup)
//   allocstart ID ->  allocstart ID {}   (starts V8's sampling heap profiler, every 4 KB
//                 allocated, objects that die young included)
//   allocstop ID  ->  allocstop ID {"file":"..."}   (stops it, writes ID.heapprofile: what
//                 the idle window allocated, by stack; DevTools opens it)
//   <extra> ID  ->  <extra> ID {...}   (server-specific commands, e.g. the broadcast
//                 servers' `broadcast SEQ`: there the ID is the broadcast's number)
//
// The orchestrator (bench/lib/idle.mjs) reads CPU time from /proc itself, so
// nothing here runs during the measured idle window unless asked. When stdin
// ends (the orchestrator is gone) the server exits, so no server outlives a run.
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import inspector from 'node:inspector';
import v8 from 'node:v8';

import { fullGc } from '../lib/full-gc.mjs';

/** `--name value` from argv, or `fallback`. */
export function argValue(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

/**
 * Starts the stdin control channel. `stats` is a function returning the
 * server's counters (a plain object); `commands` maps further command names
 * to functions of the ID that return the answer (a plain object).
 */
export function controlChannel(name, stats, commands = {}) {
  if (typeof globalThis.gc !== 'function') {
    console.error(`${name}: run with node --expose-gc (memory is measured after a full GC)`);
    process.exit(2);
  }
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, id] = line.trim().split(/\s+/);
    if (cmd === 'mem') {
      fullGc();
      const m = process.memoryUsage();
      reply(cmd, id, { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers });
    } else if (cmd === 'spaces') {
      fullGc();
      const out = {};
      for (const sp of v8.getHeapSpaceStatistics()) out[sp.space_name] = { size: sp.space_size, used: sp.space_used_size };
      reply(cmd, id, out);
    } else if (cmd === 'heapsnapshot') {
      reply(cmd, id, { file: v8.writeHeapSnapshot() });
    } else if (cmd === 'profstart' || cmd === 'profstop' || cmd === 'allocstart' || cmd === 'allocstop') {
      profilerCommand(cmd, id);
    } else if (cmd === 'stats') {
      reply(cmd, id, stats());
    } else if (Object.hasOwn(commands, cmd)) {
      reply(cmd, id, commands[cmd](id));
    } else if (cmd) {
      reply('error', id, { error: `unknown command ${JSON.stringify(cmd)}` });
    }
  });
  rl.on('close', () => process.exit(0));
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

let profiler = null;

// The profiler session's domain, start command and stop command per command pair.
const PROFILERS = {
  prof: { domain: 'Profiler', setup: ['Profiler.setSamplingInterval', { interval: 100 }], start: ['Profiler.start', {}], stop: 'Profiler.stop', ext: 'cpuprofile' },
  alloc: {
    domain: 'HeapProfiler',
    setup: null,
    start: ['HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }],
    stop: 'HeapProfiler.stopSampling',
    ext: 'heapprofile',
  },
};

function profilerCommand(cmd, id) {
  const fail = (err) => reply('error', id, { error: String(err?.message ?? err) });
  const starting = cmd.endsWith('start');
  const kind = PROFILERS[cmd.slice(0, starting ? -5 : -4)];
  if (starting) {
    if (profiler !== null) return fail('a profiler is already running');
    const session = new inspector.Session();
    session.connect();
    profiler = { session, kind };
    const start = () => session.post(kind.start[0], kind.start[1], (err) => (err ? fail(err) : reply(cmd, id, {})));
    session.post(`${kind.domain}.enable`, () => (kind.setup ? session.post(kind.setup[0], kind.setup[1], start) : start()));
    return;
  }
  if (profiler === null || profiler.kind !== kind) return fail('that profiler is not running');
  const { session } = profiler;
  profiler = null;
  session.post(kind.stop, (err, res) => {
    session.disconnect();
    if (err) return fail(err);
    const file = `${String(id).replace(/[^\w.-]/g, '_')}.${kind.ext}`;
    fs.writeFileSync(file, JSON.stringify(res.profile));
    reply(cmd, id, { file });
  });
}

function reply(cmd, id, obj) {
  process.stdout.write(`${cmd} ${id ?? '-'} ${JSON.stringify(obj)}\n`);
}


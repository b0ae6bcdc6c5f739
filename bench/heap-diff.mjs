#!/usr/bin/env node
// Where an idle connection's heap goes: the idle bench server (scenario d's,
// from dist/) with N and then 2N idle peers, a heap snapshot after each (the
// servers' `heapsnapshot` command, after their `mem` full GC), and the
// difference by object type and constructor name, divided by N. The rows of
// per-connection objects are exact (the same objects give the same bytes);
// the total moves by up to 35 B between runs (shared arrays, code), `mem`'s
// heapUsed (also printed) by up to 100 B.
//
//   node bench/heap-diff.mjs [--server idle-lifeline] [--mode ws] [--connections 2000]
//                            [--heartbeat normal] [--owners] [--min 4] [--pinged]
//
// --server: a bench/servers/idle-*.mjs name; --mode: the loadgen's (ws, lifeline,
// raw for idle-net); --owners: also the plain objects and out-of-object
// property arrays a connection adds, by the object and property holding them
// (each object counted once, however many point at it); --min: rows under
// this many bytes per connection are left out; --pinged: each snapshot waits
// until every connection has answered a ping, so that what a connection keeps once pings are
// answered (an RTT estimate) is counted too: the state scenario d measures
// in its steady window. It waits two heartbeat intervals, so give it one
// that pings soon, e.g. --heartbeat '{"preset":"normal","interval":2000}'
// (its interval also goes to idle-net-ping and idle-ws, the servers of
// ours that ping on a set interval; --pinged takes no other). Needs a
// built dist/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Child } from './lib/child.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'idle-lifeline' },
    mode: { type: 'string', default: 'ws' },
    connections: { type: 'string', default: '2000' },
    heartbeat: { type: 'string', default: 'normal' },
    owners: { type: 'boolean', default: false },
    min: { type: 'string', default: '4' },
    pinged: { type: 'boolean', default: false },
  },
});
const N = Number(values.connections);
const MIN = Number(values.min);
if (!(N > 0) || !/^idle-[a-z-]+$/.test(values.server)) {
  console.error('usage: node bench/heap-diff.mjs [--server idle-lifeline] [--mode ws] [--connections 2000] [--heartbeat normal] [--owners] [--min 4] [--pinged]');
  process.exit(2);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'heap-diff-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.proc.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

/**
 * --pinged: how each server that pings is told the interval (lifeline takes
 * --heartbeat itself); the others do not ping, or not on a knob of ours.
 */
const PING_INTERVAL_ARGS = {
  'idle-lifeline': () => [],
  'idle-net-ping': (ms) => ['--interval-ms', String(ms)],
  'idle-ws': (ms) => ['--interval', String(ms)],
};
if (values.pinged && !(values.server in PING_INTERVAL_ARGS)) {
  console.error(`--pinged needs a server that pings on a set interval: ${Object.keys(PING_INTERVAL_ARGS).join(', ')}`);
  process.exit(2);
}
/** --pinged: the heartbeat's interval, ms, read from --heartbeat the way lifeline reads it (its resolveHeartbeat, from dist/). */
let pingInterval = 0;
if (values.pinged) {
  const { resolveHeartbeat } = await import('../dist/session/heartbeat.js');
  const config = resolveHeartbeat(values.heartbeat.startsWith('{') ? JSON.parse(values.heartbeat) : values.heartbeat);
  if (config === null) {
    console.error('--pinged needs a heartbeat that pings, not --heartbeat off');
    process.exit(2);
  }
  pingInterval = config.interval;
}
const serverArgs = ['--heartbeat', values.heartbeat, ...(values.pinged ? PING_INTERVAL_ARGS[values.server](pingInterval) : [])];
const server = new Child(process.execPath, ['--expose-gc', path.join(HERE, 'servers', `${values.server}.mjs`), ...serverArgs], { cwd: work, stdin: true, name: values.server });
children.push(server);
const port = await server.listeningPort(30_000);

async function addPeers(n) {
  const gen = new Child(process.execPath, [path.join(HERE, 'idle-loadgen.mjs'), '--port', String(port), '--connections', String(n), '--mode', values.mode], { stdin: true, name: 'idle-loadgen' });
  children.push(gen);
  await gen.ready(120_000);
}

/**
 * --pinged: every monitor pings after one interval of quiet (the wheel's
 * tick late at most), so two intervals and a second after the peers came,
 * each of them has answered one; the pong count must say so too.
 */
async function awaitPongs(since, count) {
  await new Promise((r) => setTimeout(r, 2 * pingInterval + 1000));
  const st = await server.request('stats');
  let why = null;
  if (typeof st.pongsReceived !== 'number') why = `${values.server} does not count pongs in its stats`;
  else if (st.pongsReceived - since < count) why = `${st.pongsReceived - since} pongs from ${count} connections in two intervals`;
  if (why !== null) {
    console.error(`--pinged: ${why}`);
    process.exit(1);
  }
}

let held = 0;
async function measure() {
  const pongsBefore = values.pinged ? (await server.request('stats')).pongsReceived : 0;
  await addPeers(N);
  held += N;
  if (values.pinged) await awaitPongs(pongsBefore, held);
  const mem = await server.request('mem');
  const { file } = await server.request('heapsnapshot', 120_000);
  return { mem, snapshot: JSON.parse(fs.readFileSync(path.resolve(work, file), 'utf8')) };
}

const a = await measure();
const b = await measure();
await Promise.all(children.map((c) => c.stop()));

/** Self size and count by "type:name" (names cut to 70 characters). */
function byKind(s) {
  const nf = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const iType = nf.indexOf('type');
  const iName = nf.indexOf('name');
  const iSize = nf.indexOf('self_size');
  const out = new Map();
  for (let i = 0; i < s.nodes.length; i += nf.length) {
    const key = `${types[s.nodes[i + iType]]}:${s.strings[s.nodes[i + iName]]}`.slice(0, 70);
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += s.nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

/** Plain objects and property arrays by the object and property that hold them, each counted once. */
function byOwner(s) {
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const types = s.snapshot.meta.node_types[0];
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const iType = nf.indexOf('type');
  const iName = nf.indexOf('name');
  const iSize = nf.indexOf('self_size');
  const iEdges = nf.indexOf('edge_count');
  const eType = ef.indexOf('type');
  const eName = ef.indexOf('name_or_index');
  const eTo = ef.indexOf('to_node');
  const out = new Map();
  let e = 0;
  for (let i = 0; i < s.nodes.length; i += nf.length) {
    const holder = `${types[s.nodes[i + iType]]}:${s.strings[s.nodes[i + iName]]}`.slice(0, 40);
    for (let k = 0; k < s.nodes[i + iEdges]; k++, e += ef.length) {
      const et = edgeTypes[s.edges[e + eType]];
      if (et === 'weak' || et === 'element' || et === 'hidden') continue;
      const to = s.edges[e + eTo];
      const name = s.strings[s.nodes[to + iName]];
      const isObject = types[s.nodes[to + iType]] === 'object' && name === 'Object';
      const isProps = name === 'system / PropertyArray';
      if (!isObject && !isProps) continue;
      const prop = s.strings[s.edges[e + eName]];
      if (prop === '__proto__') continue;
      const key = `${isObject ? 'Object' : 'PropertyArray'} held by ${holder}.${prop}`;
      const entry = out.get(key) ?? { count: 0, size: 0, seen: new Set() };
      if (!entry.seen.has(to)) {
        entry.seen.add(to);
        entry.count++;
        entry.size += s.nodes[to + iSize];
      }
      out.set(key, entry);
    }
  }
  return out;
}

function printDiff(title, before, after) {
  const rows = [];
  let total = 0;
  for (const [key, v] of after) {
    const u = before.get(key) ?? { count: 0, size: 0 };
    const bytes = (v.size - u.size) / N;
    total += bytes;
    if (Math.abs(bytes) >= MIN) rows.push({ key, bytes, count: (v.count - u.count) / N });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  console.log(`\n${title}`);
  console.log(`${'B/conn'.padStart(8)} ${'n/conn'.padStart(7)}  what`);
  for (const r of rows) console.log(`${r.bytes.toFixed(1).padStart(8)} ${r.count.toFixed(2).padStart(7)}  ${r.key}`);
  return total;
}

const total = printDiff(`${values.server}, ${values.mode} peers: heap per connection (${N} -> ${2 * N} connections), by type:name`, byKind(a.snapshot), byKind(b.snapshot));
if (values.owners) printDiff('plain objects and property arrays per connection, by holder', byOwner(a.snapshot), byOwner(b.snapshot));
console.log(`\nsnapshot difference: ${total.toFixed(1)} B per connection; heapUsed (after a full GC): ${((b.mem.heapUsed - a.mem.heapUsed) / N).toFixed(1)} B per connection`);

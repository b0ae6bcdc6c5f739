#!/usr/bin/env node
// Runs the test suite: every test/**/*.test.ts through node:test with tsx.
//
//   npm test                          everything
//   npm test -- test/unit             only files under a path (prefix or substring)
//   npm test -- test/unit/protocol frame
//   npm test -- --test-name-pattern=close test/unit
//
// Arguments starting with '-' go to `node --test` unchanged; the others select
// files. LIFELINE_TEST_UNIT (default 1) scales every real-socket timeout; raise
// it on a slow machine: LIFELINE_TEST_UNIT=3 npm test. Every test, suite and
// file fails after 300 s x LIFELINE_TEST_UNIT instead of hanging the run.
//
// Two Node versions. The suite runs on the machine's Node, then again on
// SECOND_NODE (below: the newest LTS release), fetched once from the npm registry
// into .cache/node/ (scripts/fetch-node.mjs): package.json promises Node >= 20,
// and a Node 20 run alone missed what changed after it (Node 22's 64 KiB
// socket write mark, V8 12's page pool under the leak test). The second run
// is part of the whole suite only: a run filtered to some files stays on the
// machine's Node. LIFELINE_TEST_NODES overrides: a comma-separated list of
// exact versions, or empty for none. Where the binary cannot be fetched, the
// second run is skipped with a loud message, and with CI=true it fails.

import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { ensureNode } from './fetch-node.mjs';
import { loudWarning } from './loud-warning.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIR = 'test';
const TEST_SUFFIX = '.test.ts';

function collect(dirRel, out) {
  let entries;
  try {
    entries = fs.readdirSync(path.join(ROOT, dirRel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const rel = `${dirRel}/${e.name}`;
    if (e.isDirectory()) collect(rel, out);
    else if (e.isFile() && e.name.endsWith(TEST_SUFFIX)) out.push(rel);
  }
  return out;
}

/** 'test/unit/', './test/unit' and '/abs/repo/test/unit' all mean 'test/unit'. */
function normalizeFilter(arg) {
  let f = arg;
  if (path.isAbsolute(f)) f = path.relative(ROOT, f);
  f = f.split(path.sep).join('/').replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return f;
}

/** A filter selects a file when it is a prefix of its path or any part of it. */
function matches(file, filter) {
  return file.includes(filter);
}

const nodeArgs = [];
const filters = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith('-')) nodeArgs.push(arg);
  else filters.push(normalizeFilter(arg));
}

const all = collect(TEST_DIR, []).sort();
const files = filters.length === 0 ? all : all.filter((f) => filters.some((flt) => matches(f, flt)));

if (files.length === 0) {
  const where = filters.length ? ` matching ${filters.map((f) => JSON.stringify(f)).join(', ')}` : '';
  console.error(`[run-tests] no test files (${TEST_DIR}/**/*${TEST_SUFFIX})${where} found; nothing was run.`);
  process.exit(1);
}

const env = { ...process.env };
if (!env.LIFELINE_TEST_UNIT) env.LIFELINE_TEST_UNIT = '1';

console.log(
  `[run-tests] ${files.length} test file${files.length === 1 ? '' : 's'}` +
    `${filters.length ? ` (filter: ${filters.join(' ')})` : ''}, LIFELINE_TEST_UNIT=${env.LIFELINE_TEST_UNIT}`,
);

// Load tests (test/**/load/) measure memory and timing spreads, the browser
// liveness suite asserts that a healthy line sees no heartbeat timeout with
// deadlines of 300-600 ms, and the slow-consumer suite compares a healthy
// client's p99 round trip with and without a slow neighbour (within 2x + 2
// ms): they run after the rest, one file at a time, so other suites' CPU does
// not skew them (a CI run with a conformance suite alongside once stalled
// Chromium past 300 ms; a full local run once put the slow-consumer p99 at
// 4.5 ms against 0.4 ms unloaded, while alone it passed 3 of 3). The
// packet-loss suite asserts detection within 2.2 s in child processes and
// heartbeat deadlines of 1 s under loss.
const SERIAL_FILES = new Set([
  'test/browser/liveness.test.ts',
  'test/integration/limits/slow-consumer.test.ts',
  'test/integration/liveness/packet-loss.test.ts',
]);
const isSerial = (f) => f.includes('/load/') || SERIAL_FILES.has(f);
const serial = files.filter(isSerial);
const parallel = files.filter((f) => !isSerial(f));

let current = null;
// Once interrupted, no further batch or Node version starts.
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    interrupted = true;
    current?.kill(sig);
  });
}

// node:test has no default timeout: a test stuck on an event that never
// comes (a teardown waiting on a corrupted stream did) would hang the run.
// Every test, suite and file gets TEST_TIMEOUT_MS, scaled like every
// real-socket timeout; the longest file today, the browser liveness suite,
// takes about 2 minutes.
const TEST_TIMEOUT_MS = 300_000 * Number(env.LIFELINE_TEST_UNIT);

function runBatch(batch, concurrency, nodeBin, runEnv) {
  return new Promise((resolve) => {
    const child = spawn(
      nodeBin,
      ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...nodeArgs, ...batch],
      { cwd: ROOT, env: runEnv, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    current = child;
    child.on('error', (err) => {
      console.error(`[run-tests] could not start node: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (signal) {
        console.error(`[run-tests] test runner killed by ${signal}`);
        resolve(1);
        return;
      }
      resolve(code ?? 1);
    });
  });
}

/** Runs every selected file on one Node binary; resolves to the exit code. */
async function runAll(nodeBin, runEnv) {
  let code = 0;
  if (parallel.length > 0) code = await runBatch(parallel, 2, nodeBin, runEnv);
  if (serial.length > 0 && !interrupted) {
    console.log(`[run-tests] timing-sensitive tests, one file at a time: ${serial.join(' ')}`);
    const c = await runBatch(serial, 1, nodeBin, runEnv);
    if (code === 0) code = c;
  }
  return code;
}

// The newest LTS release the npm registry has (process.release.lts
// 'Krypton'; its newest 26.x, 26.10.0, is still a Current release there): the
// second run (header). Raise it with each LTS release; its first run fetches
// about 30 MB once.
const SECOND_NODE = '24.21.0';
const secondNodes =
  env.LIFELINE_TEST_NODES !== undefined
    ? env.LIFELINE_TEST_NODES.split(',').map((v) => v.trim()).filter(Boolean)
    : filters.length === 0
      ? [SECOND_NODE]
      : [];

const results = [];
let exitCode = 0;

// The other binaries are fetched before anything runs, so that a registry
// that cannot be reached shows at the start, not after the first run.
const legs = [];
for (const version of secondNodes) {
  if (`v${version}` === process.version) continue;
  try {
    legs.push({ version, bin: ensureNode(version) });
  } catch (err) {
    const ci = env.CI === 'true';
    loudWarning([
      `the run on Node ${version} ${ci ? 'FAILS' : 'is SKIPPED'}: its binary could not be had.`,
      err.message,
      ci ? 'CI=true: nothing may be skipped.' : 'LIFELINE_TEST_NODES= (empty) runs the machine\'s Node only.',
    ]);
    results.push(`node v${version}: ${ci ? 'FAILED' : 'SKIPPED'} (no binary)`);
    if (ci) exitCode = 1;
  }
}

const first = await runAll(process.execPath, env);
results.unshift(`node ${process.version}: ${first === 0 ? 'passed' : `FAILED (exit ${first})`}`);
if (exitCode === 0) exitCode = first;

for (const { version, bin } of legs) {
  if (interrupted) break;
  console.log(`[run-tests] the same ${files.length} file${files.length === 1 ? '' : 's'} on Node v${version} (${bin})`);
  // Its directory first on PATH, so that tests starting `node` by name get it too.
  const runEnv = { ...env, PATH: `${path.dirname(bin)}${path.delimiter}${env.PATH ?? ''}` };
  const code = await runAll(bin, runEnv);
  results.push(`node v${version}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`}`);
  if (exitCode === 0) exitCode = code;
}

if (results.length > 1) console.log(`[run-tests] ${results.join('; ')}`);
process.exit(exitCode);

#!/usr/bin/env node
// Makes a checkout ready to run: dependencies, build, and (with --system) the
// real peers the interop suites talk to. Runs before `npm start`, `npm test` and
// `npm run bench` (package.json pre* hooks), so it must be cheap when nothing
// changed: two stats and a hash in the common case.
//
//   node scripts/bootstrap.mjs            npm ci if needed, build dist/ if stale
//   node scripts/bootstrap.mjs --system   ... and ensure the Debian peer packages
//
// Plain Node ESM, no dependencies. The Node version check comes first and the
// rest avoids newer syntax (??, ?.) so an old Node prints a clear error instead
// of a SyntaxError.

import fs from 'fs';
import path from 'path';
import crypto from 'crypto';
import os from 'os';
import { spawnSync } from 'child_process';
import { fileURLToPath } from 'url';

import { loudWarning } from './loud-warning.mjs';

const MIN_NODE_MAJOR = 20;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE_MODULES = path.join(ROOT, 'node_modules');
const LOCKFILE = path.join(ROOT, 'package-lock.json');
const LOCK_HASH_FILE = path.join(NODE_MODULES, '.lifeline-lock-hash');
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');
const BUILD_STAMP = path.join(DIST, '.lifeline-build-stamp.json');
const BUILD_CONFIGS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];
const MUTEX_DIR = path.join(ROOT, '.cache', 'bootstrap.lock');

// Debian packages that provide the interop peers (see test/helpers/peers.ts).
const SYSTEM_PACKAGES = [
  { name: 'chromium', why: 'headless browser tests (test/browser)' },
  { name: 'python3-websockets', why: 'interop with python-websockets' },
  { name: 'libwebsockets-test-server', why: 'interop with libwebsockets' },
  { name: 'nftables', why: 'network fault injection (chaos tests)' },
];

const IS_CI = process.env.CI === 'true';

function log(msg) {
  console.log('[bootstrap] ' + msg);
}

function fail(msg) {
  console.error('[bootstrap] ERROR: ' + msg);
  process.exit(1);
}

function checkNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (!(major >= MIN_NODE_MAJOR)) {
    fail(
      'Node.js >= ' + MIN_NODE_MAJOR + ' is required, this is ' + process.version +
        ' (' + process.execPath + '). Install a newer Node.js and run again.',
    );
  }
}

// ---------------------------------------------------------------------------
// Helpers

/** Runs a command with our stdout/stderr; never reads stdin (CI has none). */
function run(cmd, args, opts) {
  const res = spawnSync(cmd, args, Object.assign({ cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] }, opts || {}));
  if (res.error) return { ok: false, status: null, error: res.error };
  return { ok: res.status === 0, status: res.status, signal: res.signal };
}

function capture(cmd, args, timeoutMs) {
  const res = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: timeoutMs || 30000,
  });
  if (res.error) return { ok: false, stdout: '', stderr: String(res.error.message) };
  return { ok: res.status === 0, stdout: res.stdout || '', stderr: res.stderr || '' };
}

function which(cmd) {
  const dirs = (process.env.PATH || '').split(path.delimiter);
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (dirs.indexOf(d) < 0) dirs.push(d);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function npmCommand() {
  // Prefer the npm that is running us (npm_execpath) so npm and node match.
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.js$/.test(execpath) && fs.existsSync(execpath)) {
    return { cmd: process.execPath, pre: [execpath] };
  }
  return { cmd: process.platform === 'win32' ? 'npm.cmd' : 'npm', pre: [] };
}

// ---------------------------------------------------------------------------
// A cross-process mutex, so two `npm test` runs started together in the same
// checkout do not run `npm ci` or tsc over each other. mkdir is atomic.

let mutexHeld = false;

function acquireMutex() {
  fs.mkdirSync(path.dirname(MUTEX_DIR), { recursive: true });
  const deadline = Date.now() + 15 * 60 * 1000;
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(MUTEX_DIR);
      fs.writeFileSync(path.join(MUTEX_DIR, 'pid'), String(process.pid));
      mutexHeld = true;
      process.on('exit', releaseMutex);
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    if (mutexIsStale()) {
      fs.rmSync(MUTEX_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) fail('timed out waiting for another bootstrap (' + MUTEX_DIR + ')');
    if (!announced) {
      log('another bootstrap is running in this checkout; waiting for it');
      announced = true;
    }
    sleepMs(250);
  }
}

function mutexIsStale() {
  let pid = NaN;
  try {
    pid = Number(fs.readFileSync(path.join(MUTEX_DIR, 'pid'), 'utf8'));
  } catch {
    // pid not written yet, or lock just released: judge by age
  }
  if (pid > 0) {
    try {
      process.kill(pid, 0);
      return false; // owner alive
    } catch (err) {
      return err.code === 'ESRCH';
    }
  }
  try {
    return Date.now() - fs.statSync(MUTEX_DIR).mtimeMs > 10000;
  } catch {
    return true;
  }
}

function releaseMutex() {
  if (!mutexHeld) return;
  mutexHeld = false;
  fs.rmSync(MUTEX_DIR, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Dependencies

/** Why `npm ci` is needed, or null when node_modules matches package-lock.json. */
function depsStaleReason() {
  if (!fs.existsSync(LOCKFILE)) fail('package-lock.json is missing; it is part of the repository');
  if (!fs.existsSync(NODE_MODULES)) return 'node_modules is missing';
  const hash = sha256File(LOCKFILE);
  let stored = null;
  try {
    stored = fs.readFileSync(LOCK_HASH_FILE, 'utf8').trim();
  } catch {
    // not installed by us: fall back to npm's own record below
  }
  if (stored !== null) return stored === hash ? null : 'package-lock.json changed since the last install';

  // node_modules was installed by hand (npm install / npm ci). npm records what
  // it installed in node_modules/.package-lock.json; compare the two.
  const wanted = readJson(LOCKFILE);
  const have = readJson(path.join(NODE_MODULES, '.package-lock.json'));
  if (!wanted || !wanted.packages || !have || !have.packages) return 'no record of the installed packages';
  for (const key of Object.keys(wanted.packages)) {
    if (key === '') continue;
    const w = wanted.packages[key];
    const h = have.packages[key];
    if (!h) {
      if (w.optional) continue; // platform-specific optional deps are skipped
      return 'missing ' + key;
    }
    if (w.version !== h.version) return key + ' is ' + h.version + ', lockfile wants ' + w.version;
  }
  for (const key of Object.keys(have.packages)) {
    if (!wanted.packages[key]) return 'extraneous ' + key;
  }
  fs.writeFileSync(LOCK_HASH_FILE, hash + '\n');
  return null;
}

function ensureDeps() {
  const reason = depsStaleReason();
  if (!reason) {
    log('dependencies up to date');
    return;
  }
  log('installing dependencies (' + reason + '): npm ci');
  const npm = npmCommand();
  // --include=dev: everything we need is a devDependency, even under NODE_ENV=production.
  const res = run(npm.cmd, npm.pre.concat(['ci', '--no-audit', '--no-fund', '--include=dev']));
  if (!res.ok) fail('npm ci failed' + (res.error ? ': ' + res.error.message : ' (exit ' + res.status + ')'));
  fs.writeFileSync(LOCK_HASH_FILE, sha256File(LOCKFILE) + '\n');
  log('dependencies installed');
}

// ---------------------------------------------------------------------------
// Build (src/ -> dist/)

function listFiles(dir, out, base) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    const rel = base ? base + '/' + e.name : e.name;
    if (e.isDirectory()) listFiles(full, out, rel);
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

function sourceState() {
  const files = listFiles(SRC, [], '').sort();
  let newest = 0;
  for (const f of files) newest = Math.max(newest, fs.statSync(path.join(SRC, f)).mtimeMs);
  for (const c of BUILD_CONFIGS) {
    try {
      newest = Math.max(newest, fs.statSync(path.join(ROOT, c)).mtimeMs);
    } catch {
      // optional
    }
  }
  return { files, newest };
}

/** Why dist/ must be rebuilt, or null when it is up to date. */
function buildStaleReason(state) {
  if (!fs.existsSync(DIST)) return 'dist is missing';
  const stamp = readJson(BUILD_STAMP);
  if (!stamp || typeof stamp.startedAt !== 'number' || !Array.isArray(stamp.files)) return 'no record of the last build';
  if (stamp.files.join('\n') !== state.files.join('\n')) return 'source files were added or removed';
  if (state.newest > stamp.startedAt) return 'sources changed since the last build';
  return null;
}

/** Removes dist outputs whose source file is gone (renamed or deleted modules). */
function removeOrphans(files) {
  const sources = new Set(files);
  const suffixes = ['.d.ts.map', '.d.ts', '.js.map', '.js'];
  for (const rel of listFiles(DIST, [], '')) {
    const suffix = suffixes.find((s) => rel.endsWith(s));
    if (!suffix) continue;
    const base = rel.slice(0, -suffix.length);
    if (!sources.has(base + '.ts') && !sources.has(base + '.tsx')) {
      fs.rmSync(path.join(DIST, rel), { force: true });
    }
  }
}

function ensureBuild() {
  let state = sourceState();
  const reason = buildStaleReason(state);
  if (!reason) {
    log('build up to date (dist/)');
    return;
  }
  log('building dist/ (' + reason + '): tsc -p tsconfig.build.json');
  const startedAt = Date.now();
  state = sourceState(); // what we are about to compile
  const tsc = path.join(NODE_MODULES, 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) fail('TypeScript is not installed (' + tsc + '); delete node_modules and run again');
  const res = run(process.execPath, [tsc, '-p', 'tsconfig.build.json']);
  if (!res.ok) {
    // A failed build leaves no stamp, so the next run tries again.
    fs.rmSync(BUILD_STAMP, { force: true });
    fail('the TypeScript build failed (errors above); fix them and run again');
  }
  removeOrphans(state.files);
  const bundle = run(process.execPath, [path.join(ROOT, 'scripts', 'build-browser.mjs')]);
  if (!bundle.ok) {
    fs.rmSync(BUILD_STAMP, { force: true });
    fail('the browser bundle failed to build (errors above)');
  }
  fs.writeFileSync(BUILD_STAMP, JSON.stringify({ startedAt, files: state.files }) + '\n');
  log('build done in ' + ((Date.now() - startedAt) / 1000).toFixed(1) + ' s');
}

// ---------------------------------------------------------------------------
// System packages (the real peers for interop tests)

function isInstalled(pkg) {
  const res = capture('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return res.ok && /\binstall ok installed\b/.test(res.stdout);
}

function missingPackages() {
  return SYSTEM_PACKAGES.filter((p) => !isInstalled(p.name));
}

function aptGet(args) {
  return run('apt-get', ['-o', 'DPkg::Lock::Timeout=600'].concat(args), {
    env: Object.assign({}, process.env, { DEBIAN_FRONTEND: 'noninteractive' }),
  });
}

function chromiumLaunches() {
  // A throwaway profile, as playwright uses: HOME may be unwritable (CI users).
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-chromium-'));
  try {
    const res = capture(
      '/usr/bin/chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--user-data-dir=' + profile,
        '--dump-dom',
        'about:blank',
      ],
      60000,
    );
    return res.ok && res.stdout.indexOf('<body') >= 0;
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function ensureSystem() {
  const hasDpkg = which('dpkg-query') !== null;
  let missing = hasDpkg ? missingPackages() : SYSTEM_PACKAGES.slice();
  if (missing.length === 0) {
    log('system packages present: ' + SYSTEM_PACKAGES.map((p) => p.name).join(', '));
  } else {
    const names = missing.map((p) => p.name);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const hasApt = which('apt-get') !== null;
    if (hasDpkg && isRoot && hasApt) {
      log('installing system packages: ' + names.join(' '));
      log('apt-get update');
      const upd = aptGet(['update']);
      if (!upd.ok) log('apt-get update failed (exit ' + upd.status + '); trying the install anyway');
      const inst = aptGet(['install', '-y', '--no-install-recommends'].concat(names));
      if (!inst.ok) log('apt-get install failed (exit ' + inst.status + ')');
      missing = missingPackages();
    }
    if (missing.length > 0) {
      const why = !hasDpkg
        ? 'this is not a Debian-like system (no dpkg-query)'
        : !isRoot
          ? 'not running as root, so apt-get cannot install them'
          : !hasApt
            ? 'apt-get is not available'
            : 'apt-get could not install them (see the output above)';
      loudWarning(
        [
          'WARNING: system packages needed by some test suites are missing:',
        ]
          .concat(missing.map((p) => '    ' + p.name + '  -- ' + p.why))
          .concat([
            'Reason: ' + why + '.',
            'Install them with:  sudo apt-get install ' + missing.map((p) => p.name).join(' '),
            IS_CI
              ? 'CI=true: nothing may be skipped, so this run fails.'
              : 'The suites that need them will be SKIPPED (each says so loudly).',
          ]),
      );
      if (IS_CI) process.exit(1);
    } else {
      log('system packages installed');
    }
  }

  if (fs.existsSync('/usr/bin/chromium')) {
    if (chromiumLaunches()) {
      log('chromium starts headless');
    } else if (typeof process.getuid === 'function' && process.getuid() === 0 && which('apt-get')) {
      // --no-install-recommends can leave out fonts and libraries a headless
      // start needs on a minimal image; take the recommended set and retry.
      log('chromium does not start headless; installing it with recommended packages');
      aptGet(['install', '-y', 'chromium']);
      if (!chromiumLaunches()) {
        loudWarning(['WARNING: /usr/bin/chromium is installed but does not start headless;', 'browser tests will fail.']);
      } else {
        log('chromium starts headless');
      }
    } else {
      loudWarning(['WARNING: /usr/bin/chromium is installed but does not start headless;', 'browser tests will fail.']);
    }
  }
}

// ---------------------------------------------------------------------------

function main() {
  checkNode();
  const args = process.argv.slice(2);
  const system = args.indexOf('--system') >= 0;
  for (const a of args) if (a !== '--system') fail('unknown argument ' + a + ' (usage: bootstrap.mjs [--system])');

  const depsReason = depsStaleReason();
  const buildReason = depsReason ? 'dependencies changed' : buildStaleReason(sourceState());
  if (depsReason || buildReason) {
    acquireMutex(); // re-checked inside: another process may have done the work
    try {
      ensureDeps();
      ensureBuild();
    } finally {
      releaseMutex();
    }
  } else {
    log('dependencies and build up to date');
  }
  if (system) ensureSystem();
}

main();

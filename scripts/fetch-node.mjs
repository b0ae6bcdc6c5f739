#!/usr/bin/env node
// Fetches one exact Node.js release for the test run's second Node leg
// (scripts/run-tests.mjs) and caches it in .cache/node/v<version>/.
//
//   node scripts/fetch-node.mjs 26.10.0     prints the path of its `node` binary
//
// The binary comes from the npm registry, the one registry every machine that
// runs `npm ci` already reaches: the package node-<platform>-<arch> carries the
// official release's bin/node (the packages `npx node@<version>` installs).
// It is checked by running it: `node --version` must print v<version>.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache', 'node');

/** The npm package holding Node's binary for this machine, or null where none is published. */
function packageName() {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  if (!['linux', 'darwin', 'win'].includes(platform)) return null;
  if (!['x64', 'arm64'].includes(process.arch)) return null;
  return `node-${platform}-${process.arch}`;
}

function binaryIn(dir) {
  return path.join(dir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
}

/** Whether `bin` runs and reports exactly `version`. */
function runsAs(bin, version) {
  if (!fs.existsSync(bin)) return false;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === `v${version}`;
}

/**
 * The path of Node `version`'s binary, fetched into the cache if it is not
 * there yet. Throws an Error that says what failed.
 */
export function ensureNode(version) {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`not an exact Node version: ${JSON.stringify(version)}`);
  const dir = path.join(CACHE, `v${version}`);
  const bin = binaryIn(dir);
  if (runsAs(bin, version)) return bin;
  const pkg = packageName();
  if (pkg === null) throw new Error(`no npm package with Node's binary for ${process.platform}-${process.arch}`);

  // Fetched beside the cache (same file system), then moved into place by a
  // rename, so a cut-short fetch never leaves a half-copied binary in it.
  fs.mkdirSync(CACHE, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE, '.fetch-'));
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const pack = spawnSync(npm, ['pack', `${pkg}@${version}`, '--loglevel=error', '--pack-destination', work], { cwd: work, encoding: 'utf8' });
    if (pack.status !== 0) {
      throw new Error(`npm pack ${pkg}@${version} failed (exit ${pack.status}): ${(pack.stderr || pack.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
    }
    const tgz = fs.readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${pkg}@${version} wrote no tarball`);
    const untar = spawnSync('tar', ['-xzf', tgz], { cwd: work, encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`tar -xzf ${tgz} failed: ${(untar.stderr || '').trim()}`);
    const fetched = binaryIn(path.join(work, 'package'));
    if (!runsAs(fetched, version)) throw new Error(`${pkg}@${version}: its bin/node does not run or is not v${version}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(work, 'package'), dir);
    return bin;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const version = process.argv[2];
  if (!version) {
    console.error('usage: node scripts/fetch-node.mjs <exact version, e.g. 26.10.0>');
    process.exit(2);
  }
  try {
    console.log(ensureNode(version));
  } catch (err) {
    console.error(`fetch-node: ${err.message}`);
    process.exit(1);
  }
}

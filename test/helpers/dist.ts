/**
 * The compiled dist/ for tests that run what users run (the CLI, the bench's
 * servers and load generator) in child processes: built when missing or
 * older than src/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Newest mtime of the files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ when it is missing or older than src/. scripts/bootstrap.mjs
 * does that with the local tsc under a cross-process lock, so parallel test
 * files don't compile over each other, and is cheap when nothing changed.
 */
export function ensureDistBuilt(): void {
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (fs.existsSync(main) && fs.statSync(main).mtimeMs >= newestMtime(path.join(ROOT, 'src'))) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bootstrap.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 5 * 60_000 });
  assert.equal(r.status, 0, `building dist/ failed:\n${r.stdout}\n${r.stderr}`);
  assert.ok(fs.existsSync(main), 'dist/cli/main.js still missing after the build');
}

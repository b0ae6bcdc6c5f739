// Every plain-JavaScript module of the bench suite and the scripts parses
// (`node --check`). Most of them run only inside `npm run bench`, not in the
// test suite, so a syntax error in one (a quote inside a string literal, say)
// would otherwise surface only in the next full run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIRS = ['bench', 'bench/lib', 'bench/servers', 'scripts'];

const files = DIRS.flatMap((d) =>
  fs
    .readdirSync(path.join(ROOT, d))
    .filter((f) => f.endsWith('.mjs'))
    .map((f) => path.join(d, f)),
);

describe('bench and scripts: every .mjs module parses', () => {
  it('finds the modules', () => {
    assert.ok(files.length >= 40, `${files.length} modules`);
    assert.ok(files.includes(path.join('bench', 'run.mjs')));
  });

  for (const f of files) {
    it(f, () => {
      const r = spawnSync(process.execPath, ['--check', path.join(ROOT, f)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });
  }
});

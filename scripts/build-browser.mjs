#!/usr/bin/env node
// Bundles the browser client (src/client/browser.ts) into one dependency-free
// ES module, dist/browser/lifeline.bundle.mjs, and reports its size
// minified and gzipped (the figure the reconnect issue budgets: 6,144 B).
//
//   node scripts/build-browser.mjs                  build, print the sizes
//   node scripts/build-browser.mjs --json           ... as {file, bytes, gzipBytes} on one line
//   node scripts/build-browser.mjs --outfile PATH   build to PATH instead (tests: no race with a
//                                                   browser suite reading dist/ at the same time)
//   node scripts/build-browser.mjs --analyze        also print what each module adds (to stderr)
import { analyzeMetafile, build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const outArg = argv.indexOf('--outfile');
const entry = path.join(root, 'src/client/browser.ts');
const outfile = outArg >= 0 ? path.resolve(argv[outArg + 1]) : path.join(root, 'dist/browser/lifeline.bundle.mjs');

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  // es2020 has no class fields, and with useDefineForClassFields (the
  // default for target ES2022 in tsconfig.json) esbuild lowers every field
  // to a defineProperty helper call, `r(this,"field",value)`. Assignments in
  // the constructor are shorter and behave the same here: no class in the
  // bundle has a field that shadows an inherited accessor, and none reads a
  // field's existence before the constructor sets it. (Targeting es2022
  // instead would keep the helper out too, but raise the browsers needed.)
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
  metafile: true,
  logLevel: 'warning',
});
const code = readFileSync(outfile);
const gz = gzipSync(code, { level: 9 }).length;
const out = { file: path.relative(root, outfile), bytes: code.length, gzipBytes: gz };
if (flag('--analyze')) console.error(await analyzeMetafile(result.metafile));
if (flag('--json')) console.log(JSON.stringify(out));
else console.log(`[build-browser] ${out.file}: ${out.bytes} B minified, ${out.gzipBytes} B min+gzip`);

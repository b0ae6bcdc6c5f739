#!/usr/bin/env node
// Bundles the browser client (src/client/browser.ts) into one dependency-free
// ES module, dist/browser/lifeline.bundle.mjs, and reports its size
// minified and gzipped (the figure the reconnect issue budgets).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.join(root, 'dist/browser/lifeline.bundle.mjs');
await build({
  entryPoints: [path.join(root, 'src/client/browser.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
const code = readFileSync(outfile);
const gz = gzipSync(code, { level: 9 }).length;
const out = { file: path.relative(root, outfile), bytes: code.length, gzipBytes: gz };
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else console.log(`[build-browser] ${out.file}: ${out.bytes} B minified, ${out.gzipBytes} B min+gzip`);

// Production build into dist/ (package.json `main` = dist/functions/*.js); options in tools/buildOptions.ts.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { PRODUCTION_BUILD_OPTIONS } from './buildOptions.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const entryPoints = readdirSync(join(root, 'functions'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(root, 'functions', f));

rmSync(join(root, 'dist'), { recursive: true, force: true });
const result = await build({
  ...PRODUCTION_BUILD_OPTIONS,
  entryPoints,
  outdir: join(root, 'dist'),
  outbase: root,
  metafile: true,
  define: { 'process.env.BROKER_BUILD_VERSION': JSON.stringify(pkg.version) },
});
// The admin console's browser bundle, served by functions/console.ts from dist/console/ (flat names: the asset
// route accepts no path). MSAL Browser sits in its own chunk, loaded only in Entra mode.
const client = join(root, 'shared', 'console', 'client');
await build({
  entryPoints: ['app.ts', 'redirect.ts', 'app.css'].map((f) => join(client, f)),
  outdir: join(root, 'dist', 'console'),
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome120', 'firefox120', 'safari17'],
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) console.log(`built ${entryPoints.length} functions, ${bytes} bytes`);

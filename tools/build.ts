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
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) console.log(`built ${entryPoints.length} functions, ${bytes} bytes`);

// Production build: one esbuild pass with code splitting, so every function file under dist/functions shares
// the same chunks (one config, one token cache, one lock per process) exactly as the unbundled modules would.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const entryPoints = readdirSync(join(root, 'functions'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(root, 'functions', f));

rmSync(join(root, 'dist'), { recursive: true, force: true });
const result = await build({
  entryPoints,
  outdir: join(root, 'dist'),
  outbase: root,
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  // Supplied by the Functions worker at run time, like a built-in module (azure-functions-nodejs-library#201).
  external: ['@azure/functions-core'],
  // CJS dependencies call require(); route it through Module.prototype.require so the worker's
  // @azure/functions-core interception still applies inside the ESM bundle.
  banner: {
    js: "import { createRequire as __brokerCreateRequire } from 'node:module'; const require = __brokerCreateRequire(import.meta.url);",
  },
  define: { 'process.env.BROKER_BUILD_VERSION': JSON.stringify(pkg.version) },
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) console.log(`built ${entryPoints.length} functions, ${bytes} bytes`);

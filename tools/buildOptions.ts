// The esbuild options of the production bundle, shared by tools/build.ts and the benchmarks (whose
// hello-world baseline must be built exactly like the app it is compared with).
import type { BuildOptions } from 'esbuild';

/** Everything but entry points, output paths and `define`. */
export const PRODUCTION_BUILD_OPTIONS: Readonly<BuildOptions> = Object.freeze({
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  // One pass with code splitting: every function file shares the same chunks (one config, one token cache,
  // one lock per process) exactly as the unbundled modules would.
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Supplied by the Functions worker at run time, like a built-in module (azure-functions-nodejs-library#201).
  external: ['@azure/functions-core'],
  // CJS dependencies call require(); route it through Module.prototype.require so the worker's
  // @azure/functions-core interception still applies inside the ESM bundle. They may also read __filename
  // (write-file-atomic names its temp files with it), which ESM does not define.
  banner: {
    js: "import { createRequire as __brokerCreateRequire } from 'node:module'; import { fileURLToPath as __brokerFileURLToPath } from 'node:url'; const require = __brokerCreateRequire(import.meta.url); const __filename = __brokerFileURLToPath(import.meta.url);",
  },
});

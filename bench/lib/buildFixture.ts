/**
 * Builds the hello-world fixture app (bench/fixtures/hello-app) with the same esbuild options as the production
 * build (tools/build.ts: ESM, split chunks, node22, linked source maps, the `require` banner, `@azure/functions-core`
 * external) into a temporary app folder the dev host can serve.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import { PRODUCTION_BUILD_OPTIONS } from '../../tools/buildOptions.ts';
import { REPO_ROOT } from './proc.ts';

const execFileAsync = promisify(execFile);

const PRODUCTION_OPTIONS: BuildOptions = PRODUCTION_BUILD_OPTIONS;

const FIXTURE = join(REPO_ROOT, 'bench', 'fixtures', 'hello-app');

export async function buildHelloApp(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  cpSync(join(FIXTURE, 'package.json'), join(outDir, 'package.json'));
  cpSync(join(FIXTURE, 'host.json'), join(outDir, 'host.json'));
  const functionsDir = join(FIXTURE, 'functions');
  await build({
    ...PRODUCTION_OPTIONS,
    entryPoints: readdirSync(functionsDir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(functionsDir, f)),
    outdir: join(outDir, 'dist'),
    outbase: FIXTURE,
  });
}

/** Bytes of JavaScript an app loads (every .js under dist/, source maps excluded) and the file count. */
export function bundleSize(distDir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.js')) {
        bytes += statSync(path).size;
        files++;
      }
    }
  };
  walk(distDir);
  return { bytes, files };
}

/** Bytes each npm package (or first-party folder) contributes to the production bundle, largest first. */
export interface BundleComposition {
  /** Largest contributors first. */
  packages: { name: string; bytes: number }[];
  /** JavaScript the entry points load at start (static imports only; lazy `import()` chunks excluded). */
  loadedAtStartBytes: number;
}

export async function bundleComposition(): Promise<BundleComposition> {
  const functionsDir = join(REPO_ROOT, 'functions');
  const entryPoints = readdirSync(functionsDir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `functions/${f}`);
  const result = await build({
    ...PRODUCTION_OPTIONS,
    entryPoints: entryPoints.map((f) => join(REPO_ROOT, f)),
    outdir: join(REPO_ROOT, 'dist'),
    outbase: REPO_ROOT,
    write: false,
    metafile: true,
  });
  const bytes = new Map<string, number>();
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    if (file.endsWith('.map')) continue;
    for (const [input, part] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split('/')[0] ?? input;
      bytes.set(pkg, (bytes.get(pkg) ?? 0) + part.bytesInOutput);
    }
  }
  const outputs = result.metafile.outputs;
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !outputs[file]) return;
    seen.add(file);
    for (const imp of outputs[file].imports) if (imp.kind === 'import-statement') visit(imp.path);
  };
  // esbuild also marks the targets of dynamic import() as entry points; start only from the app's own entries.
  for (const [file, output] of Object.entries(outputs)) {
    if (output.entryPoint && entryPoints.some((e) => e.endsWith(output.entryPoint as string))) visit(file);
  }
  return {
    packages: [...bytes].map(([name, n]) => ({ name, bytes: n })).sort((a, b) => b.bytes - a.bytes),
    loadedAtStartBytes: [...seen].reduce((n, f) => n + (outputs[f]?.bytes ?? 0), 0),
  };
}

/**
 * What importing one dependency costs on its own: bundle `export * from '<pkg>'` with the production settings and
 * time `import()` of it in a fresh process (median of `runs`). Overlapping dependencies are counted in each.
 */
export async function importCost(pkg: string, dir: string, runs: number): Promise<number> {
  const file = join(dir, `${pkg.replace(/[@/]/g, '_')}.mjs`);
  await build({
    ...PRODUCTION_OPTIONS,
    stdin: { contents: `export * as m from '${pkg}';`, resolveDir: REPO_ROOT, loader: 'js' },
    outfile: file,
    splitting: false,
    sourcemap: false,
  });
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await execFileAsync(process.execPath, [
      '--input-type=module',
      '-e',
      `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`,
    ]);
    samples.push(Number(stdout));
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

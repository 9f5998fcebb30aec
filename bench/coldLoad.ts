/**
 * Cold load: spawn the dev host on the production bundle (dist/, built by `npm run bench`) and time until the
 * first `GET /api/health` answers, against the same for a hello-world function app built with the same esbuild
 * settings. Both pay the same dev-host start-up, so the difference is what loading the app costs. Rounds
 * alternate between the two apps; medians are reported. Also reports the size of the JavaScript each app loads.
 *
 *   node bench/coldLoad.ts --out result.json [--rounds 7]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnDevHost } from '../test/support/devhost.ts';
import { buildHelloApp, bundleComposition, bundleSize, importCost } from './lib/buildFixture.ts';
import { machineInfo } from './lib/machine.ts';
import { isMain, REPO_ROOT } from './lib/proc.ts';
import { median, round } from './lib/stats.ts';

export interface ColdSample {
  /** Spawn → ready line (entry points loaded, functions indexed). */
  readyMs: number;
  /** Spawn → first /api/health answered. */
  firstResponseMs: number;
}

export interface ColdLoadResult {
  rounds: number;
  app: {
    samples: ColdSample[];
    medianMs: number;
    medianReadyMs: number;
    bundle: { bytes: number; files: number };
  };
  hello: {
    samples: ColdSample[];
    medianMs: number;
    medianReadyMs: number;
    bundle: { bytes: number; files: number };
  };
  ratio: number;
  /** Where the bundle's bytes come from (top contributors). */
  composition: { name: string; bytes: number }[];
  loadedAtStartBytes: number;
  /** Median ms to import each dependency alone, bundled with the production settings. */
  importCostMs: Record<string, number>;
}

const MEASURED_DEPENDENCIES = [
  '@azure/storage-blob',
  '@azure/identity',
  'undici',
  '@azure/keyvault-secrets',
  'zod',
  '@azure/functions',
  'jose',
  'oauth4webapi',
];

async function measure(appDir: string): Promise<ColdSample> {
  const started = performance.now();
  const host = await spawnDevHost({ appDir, env: { DEVHOST_TIMERS: 'off' } });
  const ready = performance.now();
  try {
    const res = await fetch(`${host.baseUrl}/api/health`);
    await res.text();
    if (res.status !== 200) throw new Error(`health answered ${res.status}`);
    return { readyMs: round(ready - started, 1), firstResponseMs: round(performance.now() - started, 1) };
  } finally {
    await host.stop();
  }
}

export async function runColdLoadBenchmark(rounds = 7): Promise<ColdLoadResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'bench-cold-'));
  try {
    const helloDir = join(tmp, 'hello-app');
    await buildHelloApp(helloDir);
    // One unmeasured start of each warms the OS file cache, as on a warm Functions worker image.
    await measure(REPO_ROOT);
    await measure(helloDir);
    const app: ColdSample[] = [];
    const hello: ColdSample[] = [];
    for (let i = 0; i < rounds; i++) {
      app.push(await measure(REPO_ROOT));
      hello.push(await measure(helloDir));
    }
    const composition = await bundleComposition();
    const importCostMs: Record<string, number> = {};
    for (const pkg of MEASURED_DEPENDENCIES) importCostMs[pkg] = round(await importCost(pkg, tmp, 5), 1);
    const appMedian = median(app.map((s) => s.firstResponseMs));
    const helloMedian = median(hello.map((s) => s.firstResponseMs));
    return {
      rounds,
      app: {
        samples: app,
        medianMs: appMedian,
        medianReadyMs: median(app.map((s) => s.readyMs)),
        bundle: bundleSize(join(REPO_ROOT, 'dist')),
      },
      hello: {
        samples: hello,
        medianMs: helloMedian,
        medianReadyMs: median(hello.map((s) => s.readyMs)),
        bundle: bundleSize(join(helloDir, 'dist')),
      },
      ratio: round(appMedian / helloMedian, 2),
      composition: composition.packages.slice(0, 10),
      loadedAtStartBytes: composition.loadedAtStartBytes,
      importCostMs,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, rounds: { type: 'string', default: '7' } },
  });
  const result = await runColdLoadBenchmark(Number(values.rounds));
  const text = JSON.stringify({ machine: machineInfo(), result }, null, 2);
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(`${text}\n`);
}

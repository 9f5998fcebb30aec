/**
 * `npm run bench` (after `node tools/build.ts`): runs every benchmark, each in its own process, and writes the
 * results to docs/perf.md (and the raw JSON to bench/results/latest.json, git-ignored).
 *
 *   node bench/run.ts [--only coldLoad,cacheHit,tokenPath,stampede,sweep] [--no-write]
 *   node bench/run.ts --render-only    (docs/perf.md again from bench/results/latest.json)
 *
 * `--only` runs a subset and, unless `--write` is given too, leaves docs/perf.md alone (a partial run must not
 * replace the committed full report).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CacheHitResult } from './cacheHit.ts';
import type { ColdLoadResult } from './coldLoad.ts';
import { machineInfo, type MachineInfo } from './lib/machine.ts';
import { REPO_ROOT, runWorker } from './lib/proc.ts';
import { renderReport, type BenchResults, type ReportInput } from './report.ts';
import type { StampedeResult } from './stampede.ts';
import type { SweepResult } from './sweep.ts';
import type { TokenPathResult } from './tokenPath.ts';

const ORDER = ['coldLoad', 'cacheHit', 'tokenPath', 'stampede', 'sweep'] as const;
type Name = (typeof ORDER)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    write: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'render-only': { type: 'boolean', default: false },
  },
});
const LATEST = join(REPO_ROOT, 'bench', 'results', 'latest.json');

if (values['render-only']) {
  // Re-renders docs/perf.md from the raw results of the last full run (after a change to the report's wording).
  await writeFile(
    join(REPO_ROOT, 'docs', 'perf.md'),
    renderReport(JSON.parse(await readFile(LATEST, 'utf8')) as ReportInput),
  );
  process.stderr.write('bench: re-rendered docs/perf.md from bench/results/latest.json\n');
  process.exit(0);
}
const selected = values.only ? (values.only.split(',') as Name[]) : [...ORDER];
for (const name of selected) if (!ORDER.includes(name)) throw new Error(`unknown benchmark ${name}`);
const write = !values['no-write'] && (values.only === undefined || values.write);

const tmp = await mkdtemp(join(tmpdir(), 'bench-run-'));
const startedAt = machineInfo();
const started = Date.now();
const results: Partial<BenchResults> = {};
const durations: Partial<Record<Name, number>> = {};
try {
  for (const name of ORDER) {
    if (!selected.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    const t = Date.now();
    const out = join(tmp, `${name}.json`);
    await runWorker(join(REPO_ROOT, 'bench', `${name}.ts`), ['--out', out]);
    const { result } = JSON.parse(await readFile(out, 'utf8')) as { machine: MachineInfo; result: unknown };
    durations[name] = Math.round((Date.now() - t) / 1000);
    switch (name) {
      case 'coldLoad':
        results.coldLoad = result as ColdLoadResult;
        break;
      case 'cacheHit':
        results.cacheHit = result as CacheHitResult;
        break;
      case 'tokenPath':
        results.tokenPath = result as TokenPathResult;
        break;
      case 'stampede':
        results.stampede = result as StampedeResult;
        break;
      case 'sweep':
        results.sweep = result as SweepResult;
        break;
    }
    process.stderr.write(`bench: ${name} done in ${durations[name]} s\n`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
const finished = machineInfo();
const totalSeconds = Math.round((Date.now() - started) / 1000);
const input: ReportInput = {
  machine: startedAt,
  loadAtEnd: finished.loadAverage,
  totalSeconds,
  durations,
  results,
};
const report = renderReport(input);
await mkdir(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
await writeFile(LATEST, JSON.stringify(input, null, 2));
if (write) {
  await writeFile(join(REPO_ROOT, 'docs', 'perf.md'), report);
  process.stderr.write(`bench: wrote docs/perf.md (${totalSeconds} s in total)\n`);
} else {
  process.stdout.write(report);
}

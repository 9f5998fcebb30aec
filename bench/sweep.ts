/**
 * Sweep scale: `Broker.refreshDue()` over 10,000 due connections (`--sizes` for others) held in the Key Vault double (own
 * process, 20-40 ms latency, 429 without Retry-After), refreshing against the demo IdP (own process, Microsoft
 * rotation semantics, fixed latency). Every refresh is one secret write, and Key Vault allows 300 writes per 10 s
 * per vault (beside 4,000 other transactions), so 10,000 refreshes take at least 333 s on a real vault. To keep
 * `npm run bench` practical the run SCALES BOTH BUDGETS BY {@link BUDGET_SCALE} — in the double and in the
 * broker's pacer alike — and compares wall time with the scaled write-budget floor: accepted secret writes ÷
 * (scaled writes per second). The ratio wall ÷ floor is what carries over to the real budgets; the wall time on
 * a real vault is the ratio × 333 s.
 *
 * Each configuration runs in a fresh worker process (clean peak RSS). Records are seeded once per size with
 * throttling and latency off, and the throttle window is reset before every sweep, so seeding never counts
 * against the measured budget. Later runs on the same records use a broker clock moved forward by whole hours,
 * which makes every connection due again without reseeding.
 *
 *   node bench/sweep.ts --out result.json [--sizes 10000] [--configs single,default] [--no-idle]
 * (`--sizes ''` runs only the idle scenario of bench/idle.ts)
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SweepResult as SweepResultCounts } from '../shared/broker/broker.ts';
import { createTokenStore } from '../shared/store/index.ts';
import { DEFAULT_PACER, type VaultPacerOptions } from '../shared/store/vaultPacer.ts';
import type { ConnectionRecord, TokenStore } from '../shared/store/types.ts';
import { type IdleResult, runIdleScenario, runIdleWorker } from './idle.ts';
import { benchBroker, BENCH_CLIENT_ID } from './lib/benchBroker.ts';
import { kvControl, startKvProcess } from './lib/kvProcess.ts';
import { machineInfo } from './lib/machine.ts';
import { isMain, REPO_ROOT, runWorker, spawnReady } from './lib/proc.ts';
import { round } from './lib/stats.ts';

export const KV_LATENCY = { fixedMs: 20, randomMs: 20 };
export const IDP_LATENCY_MS = 30;
/** Both Key Vault budgets and the pacer's share of them are multiplied by this in the run (see above). */
export const BUDGET_SCALE = 4;
/** The real per-vault budgets per 10 s (docs/keyvault-double.md has the sources). */
export const REAL_BUDGET = { limit: 4000, writeLimit: 300, windowMs: 10_000 };
export const KV_BUDGET = {
  limit: REAL_BUDGET.limit * BUDGET_SCALE,
  writeLimit: REAL_BUDGET.writeLimit * BUDGET_SCALE,
  windowMs: REAL_BUDGET.windowMs,
  scale: BUDGET_SCALE,
};
const SCOPE = 'https://graph.microsoft.com/Mail.Send';
const CLIENT_ID = BENCH_CLIENT_ID;

export interface SweepConfig {
  id: string;
  label: string;
  concurrency: number;
  /** 'product': the pacer's own budgets (writes apart); 'single': the previous release's rule, one budget of
   * 3,600 per 10 s for every request, writes included. */
  pacer: 'product' | 'single';
}

export const CONFIGS: Record<string, SweepConfig> = {
  single: {
    id: 'single',
    label: 'previous pacer: one 3,600/10 s budget for all requests (writes not paced on their own)',
    concurrency: 32,
    pacer: 'single',
  },
  default: {
    id: 'default',
    label: 'product: refreshDue() defaults (concurrency 32, pacer with the 285/10 s write budget)',
    concurrency: 32,
    pacer: 'product',
  },
};

export const DEFAULT_CONFIGS = ['single', 'default'];

/** The pacer options of a configuration, scaled like the double's budgets. */
export function pacerFor(config: SweepConfig): VaultPacerOptions {
  const limit = DEFAULT_PACER.limit * BUDGET_SCALE;
  return config.pacer === 'single'
    ? { limit, writeLimit: limit }
    : { limit, writeLimit: DEFAULT_PACER.writeLimit * BUDGET_SCALE };
}

export interface SweepRun {
  size: number;
  config: SweepConfig;
  wallMs: number;
  listMs: number;
  /** Transactions the vault accepted (throttled ones do not count against either budget). */
  kvAccepted: number;
  /** Secret writes the vault accepted (what the write budget counts). */
  kvWrites: number;
  kvThrottled: number;
  kvThrottledWrites: number;
  kvByOp: { list: number; get: number; set: number; recover: number };
  floorMs: number;
  ratio: number;
  listed: number;
  due: number;
  refreshed: number;
  failed: number;
  skipped: number;
  storeRetries: number;
  idpRefreshGrants: number;
  idpFailed: number;
  peakRssMiB: number;
  baseRssMiB: number;
}

export interface SweepResult {
  kvLatency: typeof KV_LATENCY;
  idpLatencyMs: number;
  /** The budgets the run used (scaled) and the real ones. */
  budget: typeof KV_BUDGET;
  realBudget: typeof REAL_BUDGET;
  idpCalibration: { refreshesPerSecond: number; note: string };
  runs: SweepRun[];
  seedingMs: Record<string, number>;
  /** Key Vault writes and provider refreshes per hour with and without idle connections (bench/idle.ts). */
  idle?: IdleResult;
  /** 1-minute load average when the sweeps started and ended: wall times are CPU-bound on a busy machine. */
  load?: { start: number; end: number; cores: number };
}

interface WorkerInput {
  size: number;
  config: SweepConfig;
  clockOffsetMs: number;
  vaultUrl: string;
  kvToken: string;
  caFile: string;
  authorityHost: string;
  idpControl: string;
  clientSecret: string;
}

// ------------------------------------------------------------------ orchestrator

export async function runSweepBenchmark(
  sizes: number[] = [10_000],
  configIds: string[] = DEFAULT_CONFIGS,
  idle = true,
): Promise<SweepResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'bench-sweep-'));
  const caFile = join(tmp, 'kv-ca.pem');
  const clientSecret = randomBytes(24).toString('base64url');
  const kv = await startKvProcess(caFile);
  const idp = await spawnReady<{ authorityHost: string; control: string }>(
    join(REPO_ROOT, 'bench', 'fixtures', 'idpProcess.ts'),
    ['--client-id', CLIENT_ID, '--client-secret', clientSecret],
  );
  const runs: SweepRun[] = [];
  const seedingMs: Record<string, number> = {};
  const loadAtStart = loadavg()[0] ?? 0;
  try {
    const calibration = await calibrateIdp(idp.info.control);
    const store = createTokenStore(
      {
        kind: 'keyvault',
        vaultUrl: kv.vaultUrl,
        staticBearerToken: kv.token,
        disableChallengeResourceVerification: true,
      },
      // Seeding runs with throttling off in the double, so its store need not pace either.
      { secretClientOptions: { tlsOptions: { ca: kv.ca } }, pacer: { limit: 1e9, writeLimit: 1e9 } },
    );
    for (const size of sizes) {
      const started = Date.now();
      await kv.reset();
      await kv.knobs({ throttle: false, latency: {}, clearFaults: true });
      await post(`${idp.info.control}/latency?ms=0`);
      const tokens = await mint(idp.info.control, size);
      await seed(store, tokens);
      seedingMs[String(size)] = Date.now() - started;
      log(`sweep: seeded ${size} connections in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      let offset = 0;
      for (const id of configIds) {
        const config = CONFIGS[id];
        if (!config) throw new Error(`unknown sweep config ${id}`);
        const out = join(tmp, `run-${size}-${id}.json`);
        const input: WorkerInput = {
          size,
          config,
          clockOffsetMs: offset,
          vaultUrl: kv.vaultUrl,
          kvToken: kv.token,
          caFile,
          authorityHost: idp.info.authorityHost,
          idpControl: idp.info.control,
          clientSecret,
        };
        await runWorker(join(REPO_ROOT, 'bench', 'sweep.ts'), [
          '--worker',
          JSON.stringify(input),
          '--out',
          out,
        ]);
        const run = JSON.parse(await readFile(out, 'utf8')) as SweepRun;
        runs.push(run);
        log(
          `sweep: ${size} × ${config.id}: ${(run.wallMs / 1000).toFixed(1)} s, floor ${(run.floorMs / 1000).toFixed(1)} s ` +
            `(${run.ratio}×), refreshed ${run.refreshed}/${run.due}, failed ${run.failed}, 429s ${run.kvThrottled}`,
        );
        // Every access token now expires an hour after this run's clock; two hours later all are due again.
        offset += 2 * 3600_000;
      }
    }
    const idleResult = idle
      ? await runIdleScenario({
          kv,
          store,
          vaultUrl: kv.vaultUrl,
          kvToken: kv.token,
          caFile,
          authorityHost: idp.info.authorityHost,
          idpControl: idp.info.control,
          clientSecret,
          tmp,
          mint: (count) => mint(idp.info.control, count),
          log,
        })
      : undefined;
    return {
      ...(idleResult ? { idle: idleResult } : {}),
      load: { start: round(loadAtStart, 2), end: round(loadavg()[0] ?? 0, 2), cores: cpus().length },
      kvLatency: KV_LATENCY,
      idpLatencyMs: IDP_LATENCY_MS,
      budget: KV_BUDGET,
      realBudget: REAL_BUDGET,
      idpCalibration: calibration,
      runs,
      seedingMs,
    };
  } finally {
    await idp.stop();
    await kv.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** How many refreshes per second the demo IdP sustains here (decides whether it can be the sweep's peer). */
async function calibrateIdp(control: string): Promise<SweepResult['idpCalibration']> {
  await post(`${control}/latency?ms=0`);
  const started = performance.now();
  const n = 1000;
  await mint(control, n);
  const perSecond = Math.round(n / ((performance.now() - started) / 1000));
  return {
    refreshesPerSecond: perSecond,
    note:
      'refresh grants per second with no added latency, 16 concurrent, measured while minting; the sweep at the ' +
      `scaled write budget needs ${KV_BUDGET.writeLimit / (KV_BUDGET.windowMs / 1000)}/s`,
  };
}

async function mint(control: string, count: number): Promise<string[]> {
  const res = await fetch(`${control}/mint?count=${count}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`mint: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { tokens: string[] }).tokens;
}

async function post(url: string): Promise<void> {
  const res = await fetch(url, { method: 'POST' });
  await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
}

export function connectionName(i: number): string {
  return `conn-${String(i).padStart(5, '0')}`;
}

/** Active connections whose access token expired a minute ago: every one is due. */
async function seed(store: TokenStore, tokens: readonly string[]): Promise<void> {
  const now = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < tokens.length) {
      const i = next++;
      const record: ConnectionRecord = {
        v: 1,
        connection: connectionName(i),
        settings: { provider: 'microsoft', scopes: [SCOPE] },
        status: 'active',
        tokens: {
          refreshToken: tokens[i] as string,
          primary: {
            accessToken: `seed.${randomBytes(1100).toString('base64url')}`,
            tokenType: 'Bearer',
            expiresAt: now - 60_000,
            scope: SCOPE,
          },
          grantedScopes: [SCOPE],
        },
        identity: { tenantId: '0d5e6f70-1a2b-4c3d-8e9f-a0b1c2d3e4f5', username: 'adele@demo.example' },
        createdAt: now - 86_400_000,
        updatedAt: now - 3_660_000,
        connectedAt: now - 86_400_000,
        refreshedAt: now - 3_660_000,
        failures: 0,
        revision: 2,
      };
      await store.put(record);
    }
  };
  await Promise.all(Array.from({ length: 48 }, worker));
}

// ------------------------------------------------------------------ worker

async function runWorkerCase(input: WorkerInput): Promise<SweepRun> {
  const ca = await readFile(input.caFile, 'utf8');
  const kv = kvControl(input.vaultUrl, ca);
  const { broker, store, storeRetries, close } = benchBroker({
    ...input,
    ca,
    settings: {
      BROKER_SWEEP_CONCURRENCY: String(input.config.concurrency),
      // Every seeded connection counts as used: this run measures the sweep, not idleness (bench/idle.ts).
      BROKER_IDLE_AFTER_HOURS: '0',
    },
    pacer: pacerFor(input.config),
    now: () => Date.now() + input.clockOffsetMs,
  });

  await post(`${input.idpControl}/latency?ms=${IDP_LATENCY_MS}`);
  await post(`${input.idpControl}/reset-stats`);
  const { limit, writeLimit, windowMs } = KV_BUDGET;
  await kv.knobs({
    latency: KV_LATENCY,
    throttle: { limit, writeLimit, windowMs, retryAfter: false },
    clearFaults: true,
  });
  await kv.resetCounters();

  const baseRss = process.memoryUsage().rss;
  let peakRss = baseRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  // Listing duration: from the sweep's start to the last page the store hands over.
  let listMs = 0;
  const started = performance.now();
  const pages = store.listMetadataPages?.bind(store);
  if (!pages) throw new Error('the Key Vault store lists page by page');
  store.listMetadataPages = async function* timedPages() {
    yield* pages();
    listMs = performance.now() - started;
  };
  const result: SweepResultCounts = await broker.refreshDue();
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);

  const counters = await kv.counters();
  const idpStats = (await (await fetch(`${input.idpControl}/stats`)).json()) as {
    refreshGrants: number;
    failed: number;
  };
  await close();
  const kvAccepted = counters.total - counters.throttled - counters.faulted;
  const kvWrites = counters.set - counters.throttledWrites;
  // The binding budget decides the floor: writes at writeLimit per window, everything else at limit.
  const perSecond = (n: number) => n / (KV_BUDGET.windowMs / 1000);
  const floorMs =
    Math.max(
      kvWrites / perSecond(KV_BUDGET.writeLimit),
      (kvAccepted - kvWrites) / perSecond(KV_BUDGET.limit),
    ) * 1000;
  const kvByOp = { list: counters.list, get: counters.get, set: counters.set, recover: counters.recover };
  const run: SweepRun = {
    size: input.size,
    config: input.config,
    wallMs: Math.round(wallMs),
    listMs: Math.round(listMs),
    kvAccepted,
    kvWrites,
    kvThrottled: counters.throttled,
    kvThrottledWrites: counters.throttledWrites,
    kvByOp,
    floorMs: Math.round(floorMs),
    ratio: round(wallMs / floorMs, 2),
    listed: result.listed,
    due: result.due,
    refreshed: result.refreshed,
    failed: result.failed,
    skipped: result.skipped,
    storeRetries: storeRetries(),
    idpRefreshGrants: idpStats.refreshGrants,
    idpFailed: idpStats.failed,
    peakRssMiB: Math.round(peakRss / 1024 / 1024),
    baseRssMiB: Math.round(baseRss / 1024 / 1024),
  };
  return run;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// ------------------------------------------------------------------ CLI

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      worker: { type: 'string' },
      'idle-worker': { type: 'string' },
      'no-idle': { type: 'boolean', default: false },
      sizes: { type: 'string', default: '10000' },
      configs: { type: 'string', default: DEFAULT_CONFIGS.join(',') },
    },
  });
  if (!values.out) throw new Error('--out is required');
  if (values['idle-worker']) {
    const run = await runIdleWorker(JSON.parse(values['idle-worker']) as Parameters<typeof runIdleWorker>[0]);
    await writeFile(values.out, JSON.stringify(run));
  } else if (values.worker) {
    const run = await runWorkerCase(JSON.parse(values.worker) as WorkerInput);
    await writeFile(values.out, JSON.stringify(run));
  } else {
    const sizes = values.sizes.split(',').filter(Boolean).map(Number);
    const result = await runSweepBenchmark(sizes, values.configs.split(','), !values['no-idle']);
    await writeFile(values.out, JSON.stringify({ machine: machineInfo(), result }, null, 2));
  }
}

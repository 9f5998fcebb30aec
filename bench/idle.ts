/**
 * Writes grow with use, not with the number of connections: one simulated hour of timer sweeps (every 5
 * minutes, the default schedule) over 10,000 connections of which 10 % were read in the last day, counted twice
 * in the same run — with `BROKER_IDLE_AFTER_HOURS=0` (every connection refreshed ahead: the behaviour before)
 * and with the default 24 (connections nobody read for a day are only kept alive). Counts Key Vault secret
 * writes and provider refresh grants. The broker clock is simulated (sweeps run back to back); the Key Vault
 * double runs without throttling and the pacer without a budget, because this run counts, it does not time.
 * Run by bench/sweep.ts, which owns the Key Vault double and demo IdP processes.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SweepResult as SweepCounts } from '../shared/broker/broker.ts';
import type { ConnectionRecord, TokenStore } from '../shared/store/types.ts';
import { benchBroker } from './lib/benchBroker.ts';
import { type KvControl, kvControl } from './lib/kvProcess.ts';
import { REPO_ROOT, runWorker } from './lib/proc.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const SWEEP_EVERY_MS = 5 * 60_000;
const SCOPE = 'https://graph.microsoft.com/Mail.Send';

export interface IdleCase {
  id: 'before' | 'after';
  label: string;
  idleAfterHours: number;
}

export const IDLE_CASES: readonly IdleCase[] = [
  {
    id: 'before',
    label: 'refresh every connection ahead (`BROKER_IDLE_AFTER_HOURS=0`, the previous behaviour)',
    idleAfterHours: 0,
  },
  { id: 'after', label: 'product default (`BROKER_IDLE_AFTER_HOURS=24`)', idleAfterHours: 24 },
];

export interface IdleRun {
  case: IdleCase;
  connections: number;
  readLastDay: number;
  sweeps: number;
  kvWrites: number;
  kvReads: number;
  providerRefreshes: number;
  due: number;
  failed: number;
  wallMs: number;
}

export interface IdleResult {
  connections: number;
  readShare: number;
  simulatedMinutes: number;
  runs: IdleRun[];
}

export interface IdleEnv {
  kv: KvControl;
  store: TokenStore;
  vaultUrl: string;
  kvToken: string;
  caFile: string;
  authorityHost: string;
  idpControl: string;
  clientSecret: string;
  tmp: string;
  mint(count: number): Promise<string[]>;
  log(line: string): void;
}

export interface IdleWorkerInput {
  case: IdleCase;
  t0: number;
  connections: number;
  readLastDay: number;
  vaultUrl: string;
  kvToken: string;
  caFile: string;
  authorityHost: string;
  idpControl: string;
  clientSecret: string;
}

/** Both cases on freshly seeded, identical data (seeded again before each case). */
export async function runIdleScenario(
  env: IdleEnv,
  connections = 10_000,
  readShare = 0.1,
): Promise<IdleResult> {
  const runs: IdleRun[] = [];
  for (const c of IDLE_CASES) {
    await env.kv.reset();
    await env.kv.knobs({ throttle: false, latency: {}, clearFaults: true });
    const t0 = Date.now();
    const readLastDay = await seedIdle(env.store, await env.mint(connections), t0, readShare);
    const out = join(env.tmp, `idle-${c.id}.json`);
    const input: IdleWorkerInput = {
      case: c,
      t0,
      connections,
      readLastDay,
      vaultUrl: env.vaultUrl,
      kvToken: env.kvToken,
      caFile: env.caFile,
      authorityHost: env.authorityHost,
      idpControl: env.idpControl,
      clientSecret: env.clientSecret,
    };
    await runWorker(join(REPO_ROOT, 'bench', 'sweep.ts'), [
      '--idle-worker',
      JSON.stringify(input),
      '--out',
      out,
    ]);
    const run = JSON.parse(await readFile(out, 'utf8')) as IdleRun;
    runs.push(run);
    env.log(
      `idle: ${c.id}: ${run.kvWrites} Key Vault writes, ${run.providerRefreshes} provider refreshes in one simulated ` +
        `hour (${run.sweeps} sweeps, ${(run.wallMs / 1000).toFixed(1)} s)`,
    );
  }
  return { connections, readShare, simulatedMinutes: 60, runs };
}

/**
 * Steady state at `t0`: access tokens expire evenly over the next hour (each issued an hour before it expires);
 * every tenth connection was read within the last day, the others 2-30 days ago. Returns how many were read.
 */
async function seedIdle(
  store: TokenStore,
  tokens: readonly string[],
  t0: number,
  readShare: number,
): Promise<number> {
  const n = tokens.length;
  const every = Math.round(1 / readShare);
  let next = 0;
  let read = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const expiresAt = t0 + Math.floor(((i + 0.5) / n) * HOUR);
      const recent = i % every === 0;
      if (recent) read++;
      const readAt = recent
        ? t0 - ((i * 7919) % (DAY - 60_000))
        : t0 - 2 * DAY - ((i * 104_729) % (28 * DAY));
      const record: ConnectionRecord = {
        v: 1,
        connection: `idle-${String(i).padStart(5, '0')}`,
        settings: { provider: 'microsoft', scopes: [SCOPE] },
        status: 'active',
        tokens: {
          refreshToken: tokens[i] as string,
          primary: {
            accessToken: `seed.${randomBytes(1100).toString('base64url')}`,
            tokenType: 'Bearer',
            expiresAt,
            scope: SCOPE,
          },
          grantedScopes: [SCOPE],
        },
        createdAt: t0 - 60 * DAY,
        updatedAt: expiresAt - HOUR,
        connectedAt: t0 - 60 * DAY,
        refreshedAt: expiresAt - HOUR,
        readAt,
        failures: 0,
        revision: 2,
      };
      await store.put(record);
    }
  };
  await Promise.all(Array.from({ length: 48 }, worker));
  return read;
}

/** Worker: one simulated hour of sweeps with the case's idle setting. */
export async function runIdleWorker(input: IdleWorkerInput): Promise<IdleRun> {
  const ca = await readFile(input.caFile, 'utf8');
  const kv = kvControl(input.vaultUrl, ca);
  let simNow = input.t0;
  const { broker, close } = benchBroker({
    ...input,
    ca,
    settings: { BROKER_IDLE_AFTER_HOURS: String(input.case.idleAfterHours) },
    pacer: { limit: 1e9, writeLimit: 1e9 },
    now: () => simNow,
  });
  await fetch(`${input.idpControl}/latency?ms=0`, { method: 'POST' }).then((r) => r.text());
  await fetch(`${input.idpControl}/reset-stats`, { method: 'POST' }).then((r) => r.text());
  await kv.resetCounters();
  const started = performance.now();
  const total: SweepCounts = { listed: 0, due: 0, refreshed: 0, failed: 0, skipped: 0 };
  let sweeps = 0;
  for (let at = input.t0; at < input.t0 + HOUR; at += SWEEP_EVERY_MS) {
    simNow = at;
    const r = await broker.refreshDue();
    sweeps++;
    total.due += r.due;
    total.failed += r.failed;
  }
  const wallMs = performance.now() - started;
  const counters = await kv.counters();
  const stats = (await (await fetch(`${input.idpControl}/stats`)).json()) as { refreshGrants: number };
  await close();
  return {
    case: input.case,
    connections: input.connections,
    readLastDay: input.readLastDay,
    sweeps,
    kvWrites: counters.set,
    kvReads: counters.get,
    providerRefreshes: stats.refreshGrants,
    due: total.due,
    failed: total.failed,
    wallMs: Math.round(wallMs),
  };
}

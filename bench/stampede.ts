/**
 * Stampede: 500 concurrent token requests for one stale connection, split across two dev-host processes that
 * share the Key Vault double (via the real SDK) and Azurite (blob leases) — the setup of
 * test/e2e/multiInstance.test.ts. Counts refresh grants at the demo IdP (must be exactly 1 per round) and the time
 * to serve all 500. The access token lives 302 s against a 300 s margin, so it turns stale 2 s after each refresh;
 * each round waits for that, then fires.
 *
 *   node bench/stampede.ts --out result.json [--rounds 3]
 */
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { REFRESH_MARGIN_MS, renewAt } from '../shared/broker/refreshPolicy.ts';
import { startTwoInstances } from '../test/support/twoInstances.ts';
import { machineInfo } from './lib/machine.ts';
import { isMain } from './lib/proc.ts';
import { median, percentile, round } from './lib/stats.ts';

export const REQUESTS = 500;
// Due at half its lifetime (the refresh margin is capped there: shared/broker/refreshPolicy.ts), so each round
// waits about 8 s for the token to become stale.
const TOKEN_TTL_SECONDS = 16;

export interface StampedeRound {
  refreshGrants: number;
  statuses: Record<string, number>;
  distinctTokens: number;
  wallMs: number;
  p50Ms: number;
  p99Ms: number;
  keyVaultWrites: number;
  keyVaultCalls: number;
}

export interface StampedeResult {
  requests: number;
  instances: number;
  rounds: StampedeRound[];
  medianWallMs: number;
  exactlyOneRefreshEveryRound: boolean;
}

export async function runStampedeBenchmark(roundCount = 3): Promise<StampedeResult> {
  const instances = await startTwoInstances({
    accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
    rotatedRefreshTokenReuse: 'allow',
  });
  const { kv, idp, store, a, b } = instances;
  // One connection per request, like 500 independent callers (round 1 pays the TCP set-up, later rounds reuse them).
  const agent = new Agent({ connections: REQUESTS, pipelining: 1 });
  try {
    await a.createConnection('mailbox');
    const out = await a.connect('mailbox');
    if (out.callback.status !== 200) throw new Error(`connect: ${out.callback.status}`);
    const rounds: StampedeRound[] = [];
    for (let r = 0; r < roundCount; r++) {
      // Stale = past the broker's own renewal point for this token (still valid: 500 readers, one refresh).
      const primary = (await store.get('mailbox'))?.tokens?.primary;
      const due = primary ? renewAt(primary, REFRESH_MARGIN_MS) : 0;
      await sleep(Math.max(0, due - Date.now()) + 300);
      idp.stats.reset();
      kv.resetCounters();
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: REQUESTS }, async (_, i) => {
          const host = i % 2 === 0 ? a : b;
          const t = performance.now();
          const res = await undiciFetch(`${host.apiUrl}/connections/mailbox/token`, {
            headers: { 'x-functions-key': host.functionKey },
            dispatcher: agent,
          });
          const body = (await res.json()) as { access_token?: string };
          return { status: res.status, token: body.access_token, ms: performance.now() - t };
        }),
      );
      const wallMs = performance.now() - started;
      const statuses: Record<string, number> = {};
      for (const x of results) statuses[x.status] = (statuses[x.status] ?? 0) + 1;
      const counters = kv.counters();
      rounds.push({
        refreshGrants: idp.stats.refreshGrants,
        statuses,
        distinctTokens: new Set(results.map((x) => x.token)).size,
        wallMs: round(wallMs, 0),
        p50Ms: round(
          percentile(
            results.map((x) => x.ms),
            50,
          ),
          0,
        ),
        p99Ms: round(
          percentile(
            results.map((x) => x.ms),
            99,
          ),
          0,
        ),
        keyVaultWrites: counters.set,
        keyVaultCalls: counters.total,
      });
      process.stderr.write(
        `stampede: round ${r + 1}: ${idp.stats.refreshGrants} refresh(es), ${round(wallMs, 0)} ms, ${JSON.stringify(statuses)}\n`,
      );
    }
    await a.assertNoSecretsInLogs();
    await b.assertNoSecretsInLogs();
    return {
      requests: REQUESTS,
      instances: 2,
      rounds,
      medianWallMs: median(rounds.map((x) => x.wallMs)),
      exactlyOneRefreshEveryRound: rounds.every(
        (x) => x.refreshGrants === 1 && x.statuses['200'] === REQUESTS && x.distinctTokens === 1,
      ),
    };
  } finally {
    await agent.close();
    await instances.close();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, rounds: { type: 'string', default: '3' } },
  });
  const result = await runStampedeBenchmark(Number(values.rounds));
  const text = JSON.stringify({ machine: machineInfo(), result }, null, 2);
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(`${text}\n`);
}

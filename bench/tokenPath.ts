/**
 * Token hot path over HTTP: autocannon (50 connections, 10 s after a warm-up) against
 * `GET /api/connections/{c}/token` on the dev host serving the production bundle with the Key Vault store (the
 * double, counted: the hot path makes at most one store read per connection per coherence bound), versus
 * - a bare `node:http` server returning a JSON body of the same size (own process, bench/fixtures/bareServer.ts);
 * - the hello-world function app on the same dev host returning the same body size (what the Functions
 *   programming model and the host cost before the broker does anything);
 * - the same broker built with HTTP streams off (test/support/rpcModeApp.ts): the request and answer travel in
 *   the RPC message instead of through the worker's proxy — the two modes of the same code, same run.
 *
 *   node bench/tokenPath.ts --out result.json [--duration 10] [--warmup 3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createTokenStore } from '../shared/store/index.ts';
import { startBrokerHost } from '../test/support/brokerHost.ts';
import { spawnDevHost } from '../test/support/devhost.ts';
import { startKeyVaultDouble } from '../test/support/keyVaultDouble.ts';
import { buildRpcModeApp } from '../test/support/rpcModeApp.ts';
import { buildHelloApp } from './lib/buildFixture.ts';
import { machineInfo } from './lib/machine.ts';
import { isMain, REPO_ROOT, spawnReady } from './lib/proc.ts';
import { round } from './lib/stats.ts';

export const CONNECTIONS = 50;

export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  total: number;
  non2xx: number;
  errors: number;
}

export interface TokenPathResult {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  bodyBytes: number;
  bare: LoadFigures;
  hello: LoadFigures;
  broker: LoadFigures;
  /** The broker with one connection (no queueing): the latency of the path itself. */
  brokerOneConnection: LoadFigures;
  /** The same broker with HTTP streams off (RPC mode), same store, same connection. */
  brokerRpcMode: LoadFigures;
  brokerRpcModeOneConnection: LoadFigures;
  /** requests/s with streams (the shipped mode) ÷ requests/s in RPC mode. */
  ratioStreamsToRpc: number;
  keyVaultCallsDuringRun: number;
  ratioToBare: number;
  ratioToHello: number;
}

async function load(
  url: string,
  headers: Record<string, string>,
  durationSeconds: number,
  warmupSeconds: number,
  connections = CONNECTIONS,
): Promise<LoadFigures> {
  await autocannon({ url, headers, connections, duration: warmupSeconds });
  const r = await autocannon({ url, headers, connections, duration: durationSeconds });
  return {
    requestsPerSecond: round(r.requests.average, 0),
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    total: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

export async function runTokenPathBenchmark(
  durationSeconds = 10,
  warmupSeconds = 3,
): Promise<TokenPathResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'bench-token-'));
  const kv = await startKeyVaultDouble();
  const caFile = join(tmp, 'kv-ca.pem');
  await writeFile(caFile, kv.ca);
  const store = createTokenStore(
    { kind: 'keyvault', vaultUrl: kv.vaultUrl },
    { credential: kv.credential, secretClientOptions: kv.secretClientOptions() },
  );
  const broker = await startBrokerHost({
    idp: { rotatedRefreshTokenReuse: 'allow' },
    store,
    env: {
      KEY_VAULT_URL: kv.vaultUrl,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      KEY_VAULT_TEST_BEARER_TOKEN: kv.token,
      NODE_EXTRA_CA_CERTS: caFile,
      BROKER_LOCK: 'memory',
    },
  });
  try {
    await broker.createConnection('mailbox');
    const connected = await broker.connect('mailbox');
    if (connected.callback.status !== 200) throw new Error(`connect: ${connected.callback.status}`);
    const first = await broker.api('GET', 'connections/mailbox/token');
    const bodyBytes = Buffer.byteLength(await first.text());
    if (first.status !== 200) throw new Error(`token: ${first.status}`);

    const bare = await spawnReady<{ url: string; bytes: number }>(
      join(REPO_ROOT, 'bench', 'fixtures', 'bareServer.ts'),
      ['--body-bytes', String(bodyBytes)],
    );
    let bareFigures: LoadFigures;
    try {
      bareFigures = await load(bare.info.url, {}, durationSeconds, warmupSeconds);
    } finally {
      await bare.stop();
    }

    const helloDir = join(tmp, 'hello-app');
    await buildHelloApp(helloDir);
    const hello = await spawnDevHost({
      appDir: helloDir,
      env: { DEVHOST_TIMERS: 'off', HELLO_BODY_BYTES: String(bodyBytes) },
    });
    let helloFigures: LoadFigures;
    try {
      const probe = await fetch(`${hello.baseUrl}/api/health`);
      if (Buffer.byteLength(await probe.text()) !== bodyBytes) throw new Error('hello body size differs');
      helloFigures = await load(`${hello.baseUrl}/api/health`, {}, durationSeconds, warmupSeconds);
    } finally {
      await hello.stop();
    }

    kv.resetCounters();
    const brokerFigures = await load(
      `${broker.apiUrl}/connections/mailbox/token`,
      { 'x-functions-key': broker.functionKey },
      durationSeconds,
      warmupSeconds,
    );
    const brokerOneConnection = await load(
      `${broker.apiUrl}/connections/mailbox/token`,
      { 'x-functions-key': broker.functionKey },
      3,
      1,
      1,
    );
    const keyVaultCalls = kv.counters().total;
    await broker.assertNoSecretsInLogs();

    const rpcDir = join(tmp, 'rpc-mode-app');
    await buildRpcModeApp(rpcDir);
    const rpc = await startBrokerHost({
      appDir: rpcDir,
      store,
      sharedIdp: { idp: broker.idp, clientSecret: broker.clientSecret },
      brokerKey: broker.brokerKey,
      env: {
        KEY_VAULT_URL: kv.vaultUrl,
        KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
        KEY_VAULT_TEST_BEARER_TOKEN: kv.token,
        NODE_EXTRA_CA_CERTS: caFile,
        BROKER_LOCK: 'memory',
      },
    });
    let rpcFigures: LoadFigures;
    let rpcOne: LoadFigures;
    try {
      if (!/HTTP streams off/.test(rpc.host.logs()))
        throw new Error('the RPC-mode build still enables streams');
      const probe = await rpc.api('GET', 'connections/mailbox/token');
      if (probe.status !== 200) throw new Error(`rpc-mode token: ${probe.status}`);
      const url = `${rpc.apiUrl}/connections/mailbox/token`;
      const headers = { 'x-functions-key': rpc.functionKey };
      rpcFigures = await load(url, headers, durationSeconds, warmupSeconds);
      rpcOne = await load(url, headers, 3, 1, 1);
    } finally {
      await rpc.close();
    }
    return {
      connections: CONNECTIONS,
      durationSeconds,
      warmupSeconds,
      bodyBytes,
      bare: bareFigures,
      hello: helloFigures,
      broker: brokerFigures,
      brokerOneConnection,
      brokerRpcMode: rpcFigures,
      brokerRpcModeOneConnection: rpcOne,
      ratioStreamsToRpc: round(brokerFigures.requestsPerSecond / rpcFigures.requestsPerSecond, 3),
      keyVaultCallsDuringRun: keyVaultCalls,
      ratioToBare: round(brokerFigures.requestsPerSecond / bareFigures.requestsPerSecond, 3),
      ratioToHello: round(brokerFigures.requestsPerSecond / helloFigures.requestsPerSecond, 3),
    };
  } finally {
    await broker.close();
    await kv.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
    },
  });
  const result = await runTokenPathBenchmark(Number(values.duration), Number(values.warmup));
  const text = JSON.stringify({ machine: machineInfo(), result }, null, 2);
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(`${text}\n`);
}

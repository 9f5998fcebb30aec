/**
 * The broker as the benchmarks run it: the same adapters as shared/runtime.ts buildRuntime() (Key Vault store
 * with its retry policy and pacer, in-process lock, the Microsoft provider client against the demo IdP), built
 * from settings like the app; only the clock, the log sinks and the pacer's share are the benchmark's.
 */
import { randomBytes } from 'node:crypto';
import { Broker } from '../../shared/broker/broker.ts';
import { parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { createConnectionLock } from '../../shared/lock/index.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createTokenStore } from '../../shared/store/index.ts';
import { brokerSettings } from '../../shared/runtime.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import type { VaultPacerOptions } from '../../shared/store/vaultPacer.ts';

export const BENCH_CLIENT_ID = 'bench-sweep-client';

export interface BenchBrokerInput {
  vaultUrl: string;
  kvToken: string;
  ca: string;
  authorityHost: string;
  clientSecret: string;
  /** More app settings (BROKER_SWEEP_CONCURRENCY, BROKER_IDLE_AFTER_HOURS, …). */
  settings?: Record<string, string>;
  pacer?: VaultPacerOptions;
  now: () => number;
}

export interface BenchBroker {
  broker: Broker;
  store: TokenStore;
  /** `store.retry` log lines so far. */
  storeRetries: () => number;
  close: () => Promise<void>;
}

export function benchBroker(input: BenchBrokerInput): BenchBroker {
  const config = parseConfig({
    KEY_VAULT_URL: input.vaultUrl,
    KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
    KEY_VAULT_TEST_BEARER_TOKEN: input.kvToken,
    BROKER_LOCK: 'memory',
    BROKER_KEYS: randomBytes(32).toString('base64url'),
    BROKER_PUBLIC_BASE_URL: 'https://broker.bench',
    MICROSOFT_CLIENT_ID: BENCH_CLIENT_ID,
    MICROSOFT_CLIENT_SECRET: input.clientSecret,
    MICROSOFT_AUTHORITY_HOST: input.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    ...input.settings,
  });
  let retries = 0;
  const storeLog = createLogger({ store: 'keyvault' }, (_level, line) => {
    if (line.startsWith('store.retry ')) retries++;
  });
  const store = createTokenStore(config.store, {
    logger: storeLog,
    secretClientOptions: { tlsOptions: { ca: input.ca } },
    ...(input.pacer ? { pacer: input.pacer } : {}),
  });
  const transport = createTransport({ timeoutMs: config.httpTimeoutMs });
  const providerConfig = config.providers.microsoft;
  if (!providerConfig || !config.keys) throw new Error('bench config incomplete');
  const provider = createProviderClient(providerConfig, {
    fetch: transport.fetch,
    redirectUri: config.redirectUri,
    allowInsecureHttp: true,
    timeoutMs: config.httpTimeoutMs,
  });
  const broker = new Broker({
    store,
    lock: createConnectionLock(config.lock),
    providers: new Map([['microsoft', provider]]),
    keyring: new Keyring(config.keys),
    log: createLogger({}, () => {}),
    ...brokerSettings(config),
    now: input.now,
  });
  return { broker, store, storeRetries: () => retries, close: () => transport.close() };
}

/**
 * @module runtime
 * The composition root: builds the broker once per process from the frozen configuration. Functions call
 * {@link getRuntime}; tests build their own {@link Broker} with the same adapters.
 */
import { join } from 'node:path';
import { createAuthenticator, type Authenticator } from './auth/callers.ts';
import { Broker } from './broker/broker.ts';
import { type Config, getConfig, keyIdOf } from './config.ts';
import { Keyring } from './crypto.ts';
import { loadOrCreateKeyFile } from './keyFile.ts';
import { createConnectionLock } from './lock/index.ts';
import { createLogger, type Logger } from './log.ts';
import { createProviderClient, type ProviderClient } from './oauth/provider.ts';
import { createTransport } from './oauth/transport.ts';
import { createTokenStore } from './store/index.ts';

export interface Runtime {
  config: Readonly<Config>;
  broker: Broker;
  auth: Authenticator;
  log: Logger;
}

let runtime: Promise<Runtime> | undefined;

export function getRuntime(): Promise<Runtime> {
  runtime ??= buildRuntime(getConfig()).catch((err: unknown) => {
    // Let the next invocation retry (e.g. a transient Key Vault outage at start-up) instead of caching failure.
    runtime = undefined;
    throw err;
  });
  return runtime;
}

export async function buildRuntime(config: Readonly<Config>, log: Logger = createLogger()): Promise<Runtime> {
  const transport = createTransport({ timeoutMs: config.httpTimeoutMs });
  const providers = new Map<string, ProviderClient>();
  for (const provider of Object.values(config.providers)) {
    providers.set(
      provider.name,
      createProviderClient(provider, {
        fetch: transport.fetch,
        redirectUri: config.redirectUri,
        allowInsecureHttp: config.allowInsecureHttp,
        timeoutMs: config.httpTimeoutMs,
      }),
    );
  }
  const keys =
    config.keys ??
    (config.store.kind === 'file' ? [await localKey(join(config.store.dataDir, 'broker.keys'))] : undefined);
  if (!keys) throw new Error('BROKER_KEYS is required outside the embedded default');
  if (config.allowInsecureHttp)
    log.warn('config.warning', {
      detail: 'BROKER_ALLOW_INSECURE_HTTP is on: provider calls may use plain http. Never in production.',
    });
  const broker = new Broker({
    store: createTokenStore(config.store),
    lock: createConnectionLock(config.lock),
    providers,
    keyring: new Keyring(keys),
    log,
    publicBaseUrl: config.publicBaseUrl,
    linkTtlSeconds: config.linkTtlSeconds,
    policy: { marginMs: config.refreshMarginMs, keepAliveMs: config.keepAliveMs },
    sweepConcurrency: config.sweepConcurrency,
  });
  return {
    config,
    broker,
    auth: createAuthenticator(config.auth, transport.fetch, config.httpTimeoutMs),
    log,
  };
}

async function localKey(path: string) {
  const key = await loadOrCreateKeyFile(path);
  return { kid: keyIdOf(key), key };
}

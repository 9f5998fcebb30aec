/**
 * @module runtime
 * The composition root: builds the broker once per process from the frozen configuration. Functions call
 * {@link getRuntime}; tests build their own {@link Broker} with the same adapters.
 *
 * Everything heavy (Azure SDKs, undici, jose, oauth4webapi) is imported here with `import()`, so the bundle's
 * start-up chunk stays small: the host indexes the functions and answers `health` without loading them, and
 * the first broker call pays the load once (measured in docs/perf.md, "Cold load").
 */
import { join } from 'node:path';
import type { Authenticator } from './auth/callers.ts';
import type { Broker, BrokerDeps } from './broker/broker.ts';
import { type Config, getConfig, keyIdOf } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import type { Notifier } from './notify/notifier.ts';
import type { ProviderClient } from './oauth/provider.ts';

export interface Runtime {
  config: Readonly<Config>;
  broker: Broker;
  auth: Authenticator;
  log: Logger;
  /** Webhooks and owner mails, when configured; the sweep drains its outbox. */
  notifier?: Notifier;
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
  const [
    { createAuthenticator },
    { Broker },
    { Keyring },
    { loadOrCreateKeyFile },
    { createConnectionLock },
    { createProviderClient },
    { createTransport },
    { createTokenStore },
  ] = await Promise.all([
    import('./auth/callers.ts'),
    import('./broker/broker.ts'),
    import('./crypto.ts'),
    import('./keyFile.ts'),
    import('./lock/index.ts'),
    import('./oauth/provider.ts'),
    import('./oauth/transport.ts'),
    import('./store/index.ts'),
  ]);
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
    (config.store.kind === 'file'
      ? [await localKey(loadOrCreateKeyFile, join(config.store.dataDir, 'broker.keys'))]
      : undefined);
  if (!keys) throw new Error('BROKER_KEYS is required outside the embedded default');
  if (config.allowInsecureHttp)
    log.warn('config.warning', {
      detail: 'BROKER_ALLOW_INSECURE_HTTP is on: provider calls may use plain http. Never in production.',
    });
  // The mail to an owner needs the broker (a link, the sending connection's token); the broker needs the
  // listener at construction: the listener reaches the broker through this late-bound reference.
  const late: { broker?: Broker } = {};
  const notifications = config.notify
    ? await (
        await import('./notify/index.ts')
      ).createNotifications(config.notify, {
        fetch: transport.fetch,
        log,
        broker: () => {
          const b = late.broker;
          if (!b) throw new Error('broker not built yet');
          return {
            record: (name) => b.store.get(name),
            link: (name, ttlSeconds) => b.createLink(name, ttlSeconds),
            accessToken: async (name) => (await b.getAccessToken(name, { kind: 'broker' })).access_token,
          };
        },
      })
    : undefined;
  const broker = new Broker({
    ...(notifications ? { onChange: notifications.onChange } : {}),
    store: createTokenStore(config.store),
    lock: createConnectionLock(config.lock),
    providers,
    keyring: new Keyring(keys),
    log,
    ...brokerSettings(config),
  });
  late.broker = broker;
  return {
    ...(notifications ? { notifier: notifications.notifier } : {}),
    config,
    broker,
    auth: createAuthenticator(config.auth, transport.fetch, config.httpTimeoutMs),
    log,
  };
}

async function localKey(load: (path: string) => Promise<Buffer>, path: string) {
  const key = await load(path);
  return { kid: keyIdOf(key), key };
}

/** The broker's tunables from the configuration (the benchmarks build their brokers with the same). */
export function brokerSettings(
  config: Readonly<Config>,
): Pick<BrokerDeps, 'publicBaseUrl' | 'linkTtlSeconds' | 'policy' | 'sweepConcurrency' | 'cacheCoherenceMs'> {
  return {
    publicBaseUrl: config.publicBaseUrl,
    linkTtlSeconds: config.linkTtlSeconds,
    policy: {
      marginMs: config.refreshMarginMs,
      keepAliveMs: config.keepAliveMs,
      idleAfterMs: config.idleAfterMs,
    },
    sweepConcurrency: config.sweepConcurrency,
    cacheCoherenceMs: config.cacheCoherenceMs,
  };
}

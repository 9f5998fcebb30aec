/**
 * In-process harness for generic (`oauth2`) providers: the demo IdP in the shape a test asks for (Keycloak-style
 * realm, token quirks, rotation), BROKER_PROVIDERS parsed by the real config code, the real provider client over
 * undici, a file store and one lock shared by any number of Broker instances, and one controllable clock.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient, type ProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createFileStore } from '../../shared/store/fileStore.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, type StartDemoIdpOptions, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { SecretScanner } from '../support/secrets.ts';

export const PUBLIC_BASE_URL = 'https://broker.test';
export const CLIENT_ID = 'generic-it-client';
export const caller = { kind: 'function_key' as const };

export interface GenericHarness {
  idp: DemoIdp;
  store: TokenStore;
  logs: string[];
  secrets: SecretScanner;
  clock: { now: number };
  provider: ProviderClient;
  /** Another broker instance: own token cache, same store, lock, keys and clock. */
  newBroker(): Broker;
  broker: Broker;
  /** Creates the connection, signs in through the demo IdP pages and completes the callback. */
  connect(broker: Broker, name: string): Promise<{ callback: URLSearchParams; authorize: URL }>;
  close(): Promise<void>;
}

export interface GenericHarnessOptions {
  idp?: Partial<Omit<StartDemoIdpOptions, 'clients'>>;
  /** The BROKER_PROVIDERS entry for provider `acme`, built from the running IdP (clientId and secret are added). */
  provider(idp: DemoIdp): Record<string, unknown>;
  marginSeconds?: number;
  extraEnv?: Record<string, string>;
}

export async function startGenericHarness(opts: GenericHarnessOptions): Promise<GenericHarness> {
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    ...opts.idp,
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${PUBLIC_BASE_URL}/api/callback`] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'generic-it-'));
  const store = createFileStore({ dataDir: dir });
  const logs: string[] = [];
  const secrets = new SecretScanner();
  secrets.add('client secret', clientSecret);
  secrets.watch(() => idp.issued());
  const config = parseConfig({
    BROKER_DATA_DIR: dir,
    BROKER_PUBLIC_BASE_URL: PUBLIC_BASE_URL,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    ACME_CLIENT_SECRET: clientSecret,
    BROKER_PROVIDERS: JSON.stringify({
      acme: {
        kind: 'oauth2',
        clientId: CLIENT_ID,
        clientSecretSetting: 'ACME_CLIENT_SECRET',
        ...opts.provider(idp),
      },
    }),
    ...opts.extraEnv,
  });
  const providerConfig = config.providers.acme;
  if (!providerConfig) throw new Error('no provider');
  const transport = createTransport({ timeoutMs: 5000 });
  const provider = createProviderClient(providerConfig, {
    fetch: transport.fetch,
    redirectUri: config.redirectUri,
    allowInsecureHttp: true,
    timeoutMs: 5000,
  });
  const key = randomBytes(32);
  const keyring = new Keyring([{ kid: keyIdOf(key), key }]);
  const clock = { now: Date.now() };
  const lock = createMemoryLock();
  const newBroker = () =>
    new Broker({
      store,
      lock,
      providers: new Map([['acme', provider]]),
      keyring,
      log: createLogger({}, (_l, line) => logs.push(line)),
      publicBaseUrl: PUBLIC_BASE_URL,
      linkTtlSeconds: 900,
      policy: { marginMs: (opts.marginSeconds ?? 300) * 1000, keepAliveMs: 7 * 24 * 3600_000 },
      sweepConcurrency: 4,
      now: () => clock.now,
    });
  const broker = newBroker();

  async function connect(b: Broker, name: string) {
    await b.upsertConnection(name, { provider: 'acme', scopes: [] });
    const { url } = await b.createLink(name);
    const link = new URL(url).searchParams.get('link') ?? '';
    secrets.add('connect link', link);
    const start = await b.beginConnect(name, link);
    secrets.add('state cookie', start.cookie.value);
    const result = await driveAuthorization(start.redirectUrl, {
      username: 'adele@demo.example',
      password: 'demo',
    });
    await b.completeCallback(result.params, start.cookie.value);
    return { callback: result.params, authorize: new URL(start.redirectUrl) };
  }

  return {
    idp,
    store,
    logs,
    secrets,
    clock,
    provider,
    newBroker,
    broker,
    connect,
    async close() {
      await transport.close();
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

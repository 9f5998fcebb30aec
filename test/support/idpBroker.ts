/**
 * In-process harness: the demo IdP on loopback plus a Broker wired exactly like production (real provider
 * client over undici, real file store, in-process lock), with a controllable clock for our own decisions.
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
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createFileStore } from '../../shared/store/fileStore.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { driveAuthorization, type DriveOptions } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { SecretScanner } from './secrets.ts';

export const PUBLIC_BASE_URL = 'https://broker.test';
export const CLIENT_ID = 'broker-it-client';

export interface IdpBrokerHarness {
  idp: DemoIdp;
  store: TokenStore;
  logs: string[];
  secrets: SecretScanner;
  clock: { now: number };
  /** A broker instance; call again for a "second instance" sharing store and keys. */
  newBroker(): Broker;
  broker: Broker;
  connect(
    broker: Broker,
    name: string,
    drive?: DriveOptions,
  ): Promise<{ params: URLSearchParams; cookie: string }>;
  close(): Promise<void>;
  /**
   * Teardown for suites: adds every stored refresh and access token to the scanner, closes (always), then
   * asserts the broker logs hold no piece of any secret — close first, assert after.
   */
  closeAndScanLogs(): Promise<void>;
}

export async function startIdpBroker(
  opts: { tenant?: string; accessTokenTtlSeconds?: number } = {},
): Promise<IdpBrokerHarness> {
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret,
        redirectUris: [`${PUBLIC_BASE_URL}/api/callback`],
        name: 'Broker IT',
      },
    ],
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 3600,
    quiet: true,
  });
  const dir = await mkdtemp(join(tmpdir(), 'idp-broker-'));
  const store = createFileStore({ dataDir: dir });
  const logs: string[] = [];
  const secrets = new SecretScanner();
  secrets.add('client secret', clientSecret);
  // Every token and code the IdP ever issued, superseded refresh tokens included.
  secrets.watch(() => idp.issued());
  const config = parseConfig({
    MICROSOFT_CLIENT_ID: CLIENT_ID,
    MICROSOFT_CLIENT_SECRET: clientSecret,
    MICROSOFT_TENANT: opts.tenant ?? 'common',
    MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: PUBLIC_BASE_URL,
  });
  const transport = createTransport({ timeoutMs: 5000 });
  const providerConfig = config.providers.microsoft;
  if (!providerConfig) throw new Error('no provider');
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
      providers: new Map([['microsoft', provider]]),
      keyring,
      log: createLogger({}, (_l, line) => logs.push(line)),
      publicBaseUrl: PUBLIC_BASE_URL,
      linkTtlSeconds: 900,
      policy: { marginMs: 5 * 60_000, keepAliveMs: 7 * 24 * 3600_000 },
      sweepConcurrency: 4,
      now: () => clock.now,
    });
  const broker = newBroker();

  async function connect(b: Broker, name: string, drive: DriveOptions = {}) {
    const { url } = await b.createLink(name);
    const link = new URL(url).searchParams.get('link') ?? '';
    secrets.add('connect link', link);
    const start = await b.beginConnect(name, link);
    secrets.add('state cookie', start.cookie.value);
    const result = await driveAuthorization(start.redirectUrl, {
      username: 'adele@demo.example',
      password: 'demo',
      ...drive,
    });
    secrets.add('authorization code', result.params.get('code'));
    return { params: result.params, cookie: start.cookie.value };
  }

  async function close() {
    await transport.close();
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  }

  return {
    idp,
    store,
    logs,
    secrets,
    clock,
    newBroker,
    broker,
    connect,
    close,
    async closeAndScanLogs() {
      try {
        for (const meta of await store.listMetadata()) {
          const r = await store.get(meta.connection);
          secrets.add(`${meta.connection} refresh token`, r?.tokens?.refreshToken);
          secrets.add(`${meta.connection} access token`, r?.tokens?.primary?.accessToken);
        }
      } finally {
        await close();
      }
      secrets.assertAbsent(logs.join('\n'), 'broker logs');
    },
  };
}

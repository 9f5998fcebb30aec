/**
 * End-to-end harness: the demo IdP on loopback (in this process) and the real, built app served by the dev
 * host in a child process, configured like `npm start` but with a temporary data dir and a known function key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore } from '../../shared/store/fileStore.ts';
import type { ConnectionRecord, TokenStore } from '../../shared/store/types.ts';
import { driveAuthorization, type DriveOptions, type DriveResult } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, type StartDemoIdpOptions, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { type DevHostHandle, spawnDevHost } from './devhost.ts';
import { startConnect } from './connectPage.ts';
import { SecretScanner } from './secrets.ts';
import { freePort } from '../../tools/net.ts';

export const CLIENT_ID = 'broker-e2e-client';

export { freePort };

export interface BrokerHostOptions {
  idp?: Partial<Omit<StartDemoIdpOptions, 'clients'>>;
  /** Extra broker environment (wins over the defaults). */
  env?: Record<string, string>;
  /** Reuse an IdP (e.g. shared by two hosts); its client must already allow this host's redirect URI. */
  sharedIdp?: { idp: DemoIdp; clientSecret: string };
  dataDir?: string;
  port?: number;
  /** Where `record()` and the secret scan read from (default: the file store in the data dir). */
  store?: TokenStore;
  /** Public base URL (default: this host's own URL); instances behind one hostname share it. */
  publicBaseUrl?: string;
  /** BROKER_KEYS key (default: a random one); instances of one deployment share it. */
  brokerKey?: Buffer;
  /** App folder the dev host serves (default: the repository, i.e. the app built into dist/). */
  appDir?: string;
}

export interface ConnectOutcome {
  /** The broker's answer to the callback (HTML page). */
  callback: Response;
  callbackBody: string;
  drive: DriveResult;
  /** Set-Cookie headers of the connect answer. */
  connectCookies: string[];
  authorizeUrl: string;
}

export interface BrokerHost {
  idp: DemoIdp;
  host: DevHostHandle;
  baseUrl: string;
  apiUrl: string;
  functionKey: string;
  /** The BROKER_KEYS key, so tests can mint links and cookies the broker accepts (expired ones, say). */
  brokerKey: Buffer;
  clientSecret: string;
  dataDir: string;
  store: TokenStore;
  secrets: SecretScanner;
  /** Calls the API with the function key (unless `key: null`). */
  api(
    method: string,
    path: string,
    init?: { body?: unknown; key?: string | null; headers?: Record<string, string> },
  ): Promise<Response>;
  createConnection(name: string, body?: Record<string, unknown>): Promise<void>;
  newLink(name: string): Promise<string>;
  connect(name: string, drive?: DriveOptions): Promise<ConnectOutcome>;
  record(name: string): Promise<ConnectionRecord | undefined>;
  /** Adds every token in the store and every link/code seen to the scanner, then scans the host's logs. */
  assertNoSecretsInLogs(extraText?: string): Promise<void>;
  /** The first half of that, for teardown that closes before it asserts: adds the stored tokens to the scanner
   * and returns the host's logs so far. */
  collectSecrets(): Promise<string>;
  close(): Promise<void>;
}

export async function startBrokerHost(opts: BrokerHostOptions = {}): Promise<BrokerHost> {
  const port = opts.port ?? (await freePort());
  const baseUrl = `http://localhost:${port}`;
  const redirectUri = `${opts.publicBaseUrl ?? baseUrl}/api/callback`;
  const functionKey = randomBytes(24).toString('base64url');
  const brokerKey = opts.brokerKey ?? randomBytes(32);
  const secrets = new SecretScanner();
  secrets.add('broker key', brokerKey.toString('base64url'));
  let idp: DemoIdp;
  let clientSecret: string;
  let ownIdp = false;
  if (opts.sharedIdp) {
    ({ idp, clientSecret } = opts.sharedIdp);
  } else {
    clientSecret = randomBytes(24).toString('base64url');
    idp = await startDemoIdp({
      quiet: true,
      ...opts.idp,
      clients: [
        { clientId: CLIENT_ID, clientSecret, redirectUris: [redirectUri], name: 'Token broker (e2e)' },
      ],
    });
    ownIdp = true;
  }
  secrets.add('function key', functionKey);
  secrets.add('client secret', clientSecret);
  // Every token and code the IdP ever issued, superseded refresh tokens included.
  secrets.watch(() => idp.issued());
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'broker-e2e-')));
  const host = await spawnDevHost({
    port,
    appDir: opts.appDir,
    env: {
      DEVHOST_FUNCTION_KEY: functionKey,
      DEVHOST_TIMERS: 'off',
      // an instance of the Flex `http` group: every HTTP function, no timer listener
      FUNCTIONS_TARGET_GROUP: 'http',
      BROKER_DATA_DIR: dataDir,
      BROKER_KEYS: brokerKey.toString('base64url'),
      BROKER_PUBLIC_BASE_URL: opts.publicBaseUrl ?? baseUrl,
      MICROSOFT_CLIENT_ID: CLIENT_ID,
      MICROSOFT_CLIENT_SECRET: clientSecret,
      MICROSOFT_TENANT: 'common',
      MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
      BROKER_ALLOW_INSECURE_HTTP: 'true',
      ...opts.env,
    },
  });
  const apiUrl = `${baseUrl}/api`;
  const store = opts.store ?? createFileStore({ dataDir });

  const api: BrokerHost['api'] = (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.key !== null) headers['x-functions-key'] = init.key ?? functionKey;
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    }
    return fetch(`${apiUrl}/${path}`, { method, headers, body, redirect: 'manual' });
  };

  const newLink = async (name: string) => {
    const res = await api('POST', `manage/connections/${name}/link`);
    if (res.status !== 201) throw new Error(`link: ${res.status} ${await res.text()}`);
    const { url } = (await res.json()) as { url: string };
    secrets.add('connect link', new URL(url).searchParams.get('link'));
    return url;
  };

  const collectSecrets = async (): Promise<string> => {
    for (const meta of await store.listMetadata()) {
      const r = await store.get(meta.connection);
      secrets.add(`${meta.connection} refresh token`, r?.tokens?.refreshToken);
      secrets.add(`${meta.connection} access token`, r?.tokens?.primary?.accessToken);
      for (const [k, e] of Object.entries(r?.tokens?.extra ?? {}))
        secrets.add(`${meta.connection} ${k} token`, e.accessToken);
    }
    return host.logs();
  };

  return {
    idp,
    host,
    baseUrl,
    apiUrl,
    functionKey,
    brokerKey,
    clientSecret,
    dataDir,
    store,
    secrets,
    api,
    newLink,
    async createConnection(
      name,
      body = { provider: 'microsoft', scopes: ['https://graph.microsoft.com/Mail.Send'] },
    ) {
      const res = await api('PUT', `manage/connections/${name}`, { body });
      if (res.status !== 201 && res.status !== 200) throw new Error(`PUT: ${res.status} ${await res.text()}`);
    },
    async connect(name, drive = {}) {
      const link = await newLink(name);
      // The consent page, then its Continue button (test/support/connectPage.ts).
      const start = await startConnect(link);
      const authorizeUrl = start.headers.get('location') ?? '';
      const connectCookies = start.headers.getSetCookie();
      if (start.status !== 303) throw new Error(`connect: ${start.status} ${await start.text()}`);
      const cookie = connectCookies[0]?.split(';')[0] ?? '';
      secrets.add('state cookie', cookie.split('=').slice(1).join('='));
      const result = await driveAuthorization(authorizeUrl, {
        username: 'adele@demo.example',
        password: 'demo',
        ...drive,
      });
      secrets.add('authorization code', result.params.get('code'));
      const callback = await fetch(result.url, {
        headers: { cookie, accept: 'text/html' },
        redirect: 'manual',
      });
      return { callback, callbackBody: await callback.text(), drive: result, connectCookies, authorizeUrl };
    },
    record: (name) => store.get(name),
    async assertNoSecretsInLogs(extraText = '') {
      secrets.assertAbsent((await collectSecrets()) + extraText, 'dev host logs');
    },
    collectSecrets,
    async close() {
      await host.stop();
      if (ownIdp) await idp.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

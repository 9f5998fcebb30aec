/**
 * Cache hit, in process: `Broker.getAccessToken()` with a fresh cached token versus MSAL Node's
 * `acquireTokenSilent()` with a warm in-memory cache, for the same account and the same access token.
 *
 * - Broker: wired like production (file store, in-process lock, real provider client), connected through the demo
 *   IdP's sign-in and code redemption; the first read fills the cache.
 * - MSAL: a `ConfidentialClientApplication` whose `networkClient` answers the token endpoint from memory with the
 *   broker's own tokens, an id_token for the same user and `client_info`; `acquireTokenByRefreshToken({forceCache})`
 *   warms its cache once. (MSAL refuses plain-http authorities, so the loopback demo IdP cannot be its authority.)
 *
 * Each round times N sequential awaited calls with `process.hrtime.bigint()` after a warm-up; the order of the
 * two alternates per round; the median ns/op over the rounds is reported. The store and the network module count
 * calls during measurement (both must stay 0).
 *
 *   node bench/cacheHit.ts --out result.json [--rounds 7]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AccountInfo,
  ConfidentialClientApplication,
  type INetworkModule,
  LogLevel,
  type NetworkResponse,
} from '@azure/msal-node';
import { Broker } from '../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../shared/config.ts';
import { Keyring } from '../shared/crypto.ts';
import { createMemoryLock } from '../shared/lock/memoryLock.ts';
import { createLogger } from '../shared/log.ts';
import { createProviderClient } from '../shared/oauth/provider.ts';
import { createTransport } from '../shared/oauth/transport.ts';
import { createFileStore } from '../shared/store/fileStore.ts';
import type { TokenStore } from '../shared/store/types.ts';
import { driveAuthorization } from '../tools/demo-idp/driver.ts';
import { startDemoIdp } from '../tools/demo-idp/server.ts';
import { machineInfo } from './lib/machine.ts';
import { isMain } from './lib/proc.ts';
import { median, round } from './lib/stats.ts';

const SCOPE = 'https://graph.microsoft.com/Mail.Send';
const PUBLIC_BASE_URL = 'https://broker.bench';
const CLIENT_ID = 'bench-cache-client';
const AUTHORITY_HOST = 'login.microsoftonline.com';
const BROKER_OPS = 200_000;
const MSAL_OPS = 10_000;

export interface CacheHitResult {
  rounds: number;
  broker: { nsPerOp: number[]; medianNsPerOp: number; opsPerRound: number; storeCallsDuringRun: number };
  msal: { nsPerOp: number[]; medianNsPerOp: number; opsPerRound: number; networkCallsDuringRun: number };
  ratio: number;
  msalWarmUp: string;
  accessTokenBytes: number;
}

async function timeOps(n: number, op: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await op();
  return Number(process.hrtime.bigint() - started) / n;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export async function runCacheHitBenchmark(rounds = 7): Promise<CacheHitResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-cache-'));
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${PUBLIC_BASE_URL}/api/callback`] }],
  });
  const transport = createTransport({ timeoutMs: 5000 });
  try {
    // ---- broker, wired like shared/runtime.ts and connected through the demo IdP
    const config = parseConfig({
      MICROSOFT_CLIENT_ID: CLIENT_ID,
      MICROSOFT_CLIENT_SECRET: clientSecret,
      MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
      BROKER_ALLOW_INSECURE_HTTP: 'true',
      BROKER_PUBLIC_BASE_URL: PUBLIC_BASE_URL,
    });
    const providerConfig = config.providers.microsoft;
    if (!providerConfig) throw new Error('no provider');
    const fileStore = createFileStore({ dataDir: dir });
    let storeCalls = 0;
    const store: TokenStore = {
      kind: fileStore.kind,
      get: (c) => (storeCalls++, fileStore.get(c)),
      put: (r) => (storeCalls++, fileStore.put(r)),
      listMetadata: () => (storeCalls++, fileStore.listMetadata()),
      delete: (c) => (storeCalls++, fileStore.delete(c)),
    };
    const key = randomBytes(32);
    const broker = new Broker({
      store,
      lock: createMemoryLock(),
      providers: new Map([
        [
          'microsoft',
          createProviderClient(providerConfig, {
            fetch: transport.fetch,
            redirectUri: config.redirectUri,
            allowInsecureHttp: true,
            timeoutMs: 5000,
          }),
        ],
      ]),
      keyring: new Keyring([{ kid: keyIdOf(key), key }]),
      log: createLogger({}, () => {}),
      publicBaseUrl: PUBLIC_BASE_URL,
      linkTtlSeconds: 900,
      policy: { marginMs: config.refreshMarginMs, keepAliveMs: config.keepAliveMs },
      sweepConcurrency: config.sweepConcurrency,
    });
    await broker.upsertConnection('mailbox', { provider: 'microsoft', scopes: [SCOPE] });
    const { url } = await broker.createLink('mailbox');
    const start = await broker.beginConnect('mailbox', new URL(url).searchParams.get('link') ?? '');
    const drive = await driveAuthorization(start.redirectUrl, {
      username: 'adele@demo.example',
      password: 'demo',
    });
    await broker.completeCallback(drive.params, start.cookie.value);
    const caller = { kind: 'function_key' as const };
    const first = await broker.getAccessToken('mailbox', caller);
    const record = await fileStore.get('mailbox');
    const identity = record?.identity;
    if (!identity?.tenantId || !identity.objectId) throw new Error('connect did not pin an identity');

    // ---- MSAL, its cache warmed for the same account with the same tokens, without network
    let networkCalls = 0;
    const authority = `https://${AUTHORITY_HOST}/${identity.tenantId}`;
    const networkClient: INetworkModule = {
      sendGetRequestAsync<T>(): Promise<NetworkResponse<T>> {
        networkCalls++;
        return Promise.reject(new Error('unexpected GET: discovery metadata is configured'));
      },
      sendPostRequestAsync<T>(): Promise<NetworkResponse<T>> {
        networkCalls++;
        const now = Math.floor(Date.now() / 1000);
        const idToken = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({
          aud: CLIENT_ID,
          iss: `${authority}/v2.0`,
          tid: identity.tenantId,
          oid: identity.objectId,
          sub: identity.subject ?? identity.objectId,
          preferred_username: identity.username,
          name: 'Adele Vance',
          iat: now,
          nbf: now,
          exp: now + 3600,
          ver: '2.0',
        })}.c2ln`;
        const body = {
          token_type: 'Bearer',
          scope: SCOPE,
          expires_in: 3600,
          ext_expires_in: 3600,
          access_token: first.access_token,
          refresh_token: record?.tokens?.refreshToken,
          id_token: idToken,
          client_info: b64({ uid: identity.objectId, utid: identity.tenantId }),
        };
        return Promise.resolve({
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: body as T,
        });
      },
    };
    const tenant = identity.tenantId;
    const msal = new ConfidentialClientApplication({
      auth: {
        clientId: CLIENT_ID,
        clientSecret,
        authority,
        authorityMetadata: JSON.stringify({
          token_endpoint: `${authority}/oauth2/v2.0/token`,
          authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
          issuer: `https://${AUTHORITY_HOST}/${tenant}/v2.0`,
          jwks_uri: `${authority}/discovery/v2.0/keys`,
          end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
        }),
        cloudDiscoveryMetadata: JSON.stringify({
          tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [
            { preferred_network: AUTHORITY_HOST, preferred_cache: AUTHORITY_HOST, aliases: [AUTHORITY_HOST] },
          ],
        }),
      },
      system: { networkClient, loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false } },
    });
    await msal.acquireTokenByRefreshToken({
      refreshToken: record?.tokens?.refreshToken ?? '',
      scopes: [SCOPE],
      forceCache: true,
    });
    const account: AccountInfo | undefined = (await msal.getTokenCache().getAllAccounts())[0];
    if (!account) throw new Error('MSAL cache holds no account');
    const silent = () => msal.acquireTokenSilent({ account, scopes: [SCOPE] });
    const hit = await silent();
    if (!hit.fromCache || hit.accessToken !== first.access_token)
      throw new Error('MSAL did not answer from cache');
    const brokerHit = () => broker.getAccessToken('mailbox', caller);

    // ---- measure
    await timeOps(50_000, brokerHit);
    await timeOps(2_000, silent);
    storeCalls = 0;
    networkCalls = 0;
    const brokerNs: number[] = [];
    const msalNs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        brokerNs.push(await timeOps(BROKER_OPS, brokerHit));
        msalNs.push(await timeOps(MSAL_OPS, silent));
      } else {
        msalNs.push(await timeOps(MSAL_OPS, silent));
        brokerNs.push(await timeOps(BROKER_OPS, brokerHit));
      }
    }
    const brokerMedian = median(brokerNs);
    const msalMedian = median(msalNs);
    return {
      rounds,
      broker: {
        nsPerOp: brokerNs.map((n) => round(n, 0)),
        medianNsPerOp: round(brokerMedian, 0),
        opsPerRound: BROKER_OPS,
        storeCallsDuringRun: storeCalls,
      },
      msal: {
        nsPerOp: msalNs.map((n) => round(n, 0)),
        medianNsPerOp: round(msalMedian, 0),
        opsPerRound: MSAL_OPS,
        networkCallsDuringRun: networkCalls,
      },
      ratio: round(msalMedian / brokerMedian, 1),
      msalWarmUp:
        'ConfidentialClientApplication with an in-memory networkClient (token endpoint answered from memory with the ' +
        "broker's tokens), authority/cloud discovery metadata configured, cache warmed by " +
        'acquireTokenByRefreshToken({ forceCache: true })',
      accessTokenBytes: first.access_token.length,
    };
  } finally {
    await transport.close();
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, rounds: { type: 'string', default: '7' } },
  });
  const result = await runCacheHitBenchmark(Number(values.rounds));
  const text = JSON.stringify({ machine: machineInfo(), result }, null, 2);
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(`${text}\n`);
}

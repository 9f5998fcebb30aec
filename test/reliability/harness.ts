/**
 * In-process harness for the fault matrix: the demo IdP on loopback and a Broker wired like shared/runtime.ts —
 * real provider client over undici, the REAL Key Vault store against the HTTPS Key Vault double (real SDK), the
 * in-process lock — with a controllable clock for the broker's own decisions. The store's retry delays and
 * per-attempt timeout are shortened so a retried fault costs milliseconds; the retry rule itself is the
 * product's. Errors are turned into the HTTP answer a caller would get with the product's own `problemResponse`.
 */
import { randomBytes } from 'node:crypto';
import type { HttpResponseInit } from '@azure/functions';
import { Broker } from '../../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { problemResponse } from '../../shared/http.ts';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import type { ConnectionLock } from '../../shared/lock/types.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createTokenStore } from '../../shared/store/index.ts';
import type { ConnectionRecord, TokenStore } from '../../shared/store/types.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, type RotatedRefreshTokenReuse, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { type KeyVaultDouble, startKeyVaultDouble } from '../support/keyVaultDouble.ts';
import { SecretScanner } from '../support/secrets.ts';

export const PUBLIC_BASE_URL = 'https://broker.test';
export const CLIENT_ID = 'broker-reliability-client';
export const GRAPH = 'https://graph.microsoft.com/Mail.Send';
/** Store attempts per operation (the product default, DEFAULT_STORE_RETRY.maxAttempts). */
export const STORE_ATTEMPTS = 4;
/** Per-attempt Key Vault timeout used here (product default 10 s). */
export const STORE_TIMEOUT_MS = 250;
/** The lowest BROKER_HTTP_TIMEOUT_MS the configuration accepts. */
export const HTTP_TIMEOUT_MS = 1000;
export const HOUR = 3600_000;

export interface Answer {
  status: number;
  code: string;
  retryAfter: number | undefined;
}

export interface ReliabilityHarness {
  idp: DemoIdp;
  kv: KeyVaultDouble;
  store: TokenStore;
  broker: Broker;
  clock: { now: number };
  logs: string[];
  secrets: SecretScanner;
  /** Creates (or re-creates) and connects `name` through the demo IdP. */
  connect(name: string): Promise<ConnectionRecord>;
  /** Starts a connect flow up to the point where the callback would arrive. */
  beginConnect(name: string): Promise<{ params: URLSearchParams; cookie: string }>;
  record(name: string): Promise<ConnectionRecord>;
  /** Moves the broker clock so the connection's access token is due (`expired`: past its expiry). */
  makeDue(name: string, expired: boolean): Promise<void>;
  /** Clears every injected fault and counter. */
  calm(): void;
  close(): Promise<void>;
}

/** The answer a caller would get for `err` (status, problem `code`, `Retry-After`). */
export function answerFor(err: unknown): Answer {
  const res: HttpResponseInit = problemResponse(
    err,
    createLogger({}, () => {}),
  );
  const headers = (res.headers ?? {}) as Record<string, string>;
  // problemResponse always answers with a JSON string body.
  const body = JSON.parse(res.body as string) as { code: string };
  const retryAfter = headers['retry-after'];
  return {
    status: res.status ?? 0,
    code: body.code,
    retryAfter: retryAfter ? Number(retryAfter) : undefined,
  };
}

/** Runs `fn`, expecting it to fail; returns the caller's answer. */
export async function failure(fn: () => Promise<unknown>): Promise<Answer> {
  try {
    await fn();
  } catch (err) {
    return answerFor(err);
  }
  throw new Error('expected a failure');
}

export async function startReliabilityHarness(
  opts: { reuse?: RotatedRefreshTokenReuse; lock?: ConnectionLock } = {},
): Promise<ReliabilityHarness> {
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    rotatedRefreshTokenReuse: opts.reuse ?? 'revoke-family',
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${PUBLIC_BASE_URL}/api/callback`] }],
  });
  const kv = await startKeyVaultDouble({ throttle: false });
  const logs: string[] = [];
  const sink = (_level: string, line: string) => void logs.push(line);
  const store = createTokenStore(
    { kind: 'keyvault', vaultUrl: kv.vaultUrl },
    {
      credential: kv.credential,
      secretClientOptions: kv.secretClientOptions(),
      retry: { baseDelayMs: 10, maxDelayMs: 40 },
      timeoutMs: STORE_TIMEOUT_MS,
      pollIntervalMs: 20,
      logger: createLogger({ store: 'keyvault' }, sink),
    },
  );
  const config = parseConfig({
    MICROSOFT_CLIENT_ID: CLIENT_ID,
    MICROSOFT_CLIENT_SECRET: clientSecret,
    MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: PUBLIC_BASE_URL,
    BROKER_HTTP_TIMEOUT_MS: String(HTTP_TIMEOUT_MS),
  });
  const providerConfig = config.providers.microsoft;
  if (!providerConfig) throw new Error('no provider');
  const transport = createTransport({ timeoutMs: config.httpTimeoutMs });
  const provider = createProviderClient(providerConfig, {
    fetch: transport.fetch,
    redirectUri: config.redirectUri,
    allowInsecureHttp: true,
    timeoutMs: config.httpTimeoutMs,
  });
  const key = randomBytes(32);
  const clock = { now: Date.now() };
  const secrets = new SecretScanner();
  secrets.add('client secret', clientSecret);
  // Every token and code the IdP ever issued, superseded refresh tokens included.
  secrets.watch(() => idp.issued());
  const broker = new Broker({
    store,
    lock: opts.lock ?? createMemoryLock(),
    providers: new Map([['microsoft', provider]]),
    keyring: new Keyring([{ kid: keyIdOf(key), key }]),
    log: createLogger({}, sink),
    publicBaseUrl: PUBLIC_BASE_URL,
    linkTtlSeconds: 900,
    policy: { marginMs: config.refreshMarginMs, keepAliveMs: config.keepAliveMs },
    sweepConcurrency: config.sweepConcurrency,
    now: () => clock.now,
  });

  const record = async (name: string) => {
    const r = await store.get(name);
    if (!r) throw new Error(`no record for ${name}`);
    secrets.add(`${name} refresh token`, r.tokens?.refreshToken);
    secrets.add(`${name} access token`, r.tokens?.primary?.accessToken);
    return r;
  };

  const beginConnect = async (name: string) => {
    const { url } = await broker.createLink(name);
    const start = await broker.beginConnect(name, new URL(url).searchParams.get('link') ?? '');
    const drive = await driveAuthorization(start.redirectUrl, {
      username: 'adele@demo.example',
      password: 'demo',
    });
    secrets.add('authorization code', drive.params.get('code'));
    return { params: drive.params, cookie: start.cookie.value };
  };

  return {
    idp,
    kv,
    store,
    broker,
    clock,
    logs,
    secrets,
    beginConnect,
    record,
    async connect(name) {
      await broker.upsertConnection(name, { provider: 'microsoft', scopes: [GRAPH] });
      const { params, cookie } = await beginConnect(name);
      await broker.completeCallback(params, cookie);
      return record(name);
    },
    async makeDue(name, expired) {
      const r = await record(name);
      const expiresAt = r.tokens?.primary?.expiresAt ?? 0;
      // Inside the 5 min margin but still valid, or just past expiry.
      clock.now = expired ? expiresAt + 1000 : expiresAt - 60_000;
    },
    calm() {
      idp.clearFaults();
      idp.setLatency(0);
      idp.stats.reset();
      kv.clearFaults();
      kv.resetCounters();
    },
    async close() {
      await transport.close();
      await idp.close();
      await kv.close();
    },
  };
}

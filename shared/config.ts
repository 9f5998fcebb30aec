/**
 * @module config
 * Reads the environment once with zod and freezes the result. A bad value fails start-up with a message that
 * names the variable and why; the value itself is never echoed (it may be a secret).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NOTIFY_ENV, type NotifyConfig, parseNotify } from './notify/settings.ts';
import { ncrontabProblem } from './schedule.ts';
import {
  bool,
  type Env,
  httpsOrLocalUrl,
  intFrom,
  isLoopback,
  isUnresolvedKeyVaultReference,
  KEY_VAULT_REFERENCE_UNRESOLVED,
  nonEmpty,
  type Problems,
  splitScopes,
} from './configKit.ts';
import { microsoftCredential, parseGenericProviders, type ProviderConfig } from './providerConfig.ts';

export { isUnresolvedKeyVaultReference, splitScopes } from './configKit.ts';
export type {
  ClientCredential,
  GenericProviderConfig,
  MicrosoftProviderConfig,
  ProviderConfig,
} from './providerConfig.ts';

/** Every setting the broker reads. `requiredInAzure` ones must be set by infra (checked by the parity test). */
export const SETTINGS = {
  BROKER_PUBLIC_BASE_URL: { requiredInAzure: true, secret: false },
  BROKER_KEYS: { requiredInAzure: true, secret: true },
  KEY_VAULT_URL: { requiredInAzure: true, secret: false },
  AZURE_CLIENT_ID: { requiredInAzure: true, secret: false },
  BROKER_DATA_DIR: { requiredInAzure: false, secret: false },
  BROKER_LOCK: { requiredInAzure: false, secret: false },
  AzureWebJobsStorage: { requiredInAzure: false, secret: true },
  AzureWebJobsStorage__blobServiceUri: { requiredInAzure: true, secret: false },
  AzureWebJobsStorage__clientId: { requiredInAzure: true, secret: false },
  MICROSOFT_CLIENT_ID: { requiredInAzure: true, secret: false },
  MICROSOFT_TENANT: { requiredInAzure: true, secret: false },
  MICROSOFT_AUTHORITY_HOST: { requiredInAzure: false, secret: false },
  MICROSOFT_CREDENTIAL: { requiredInAzure: true, secret: false },
  MICROSOFT_CLIENT_SECRET: { requiredInAzure: false, secret: true },
  MICROSOFT_CLIENT_CERTIFICATE: { requiredInAzure: false, secret: true },
  MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: { requiredInAzure: false, secret: false },
  MICROSOFT_DEFAULT_SCOPES: { requiredInAzure: false, secret: false },
  BROKER_PROVIDERS: { requiredInAzure: false, secret: false },
  BROKER_LINK_TTL_SECONDS: { requiredInAzure: false, secret: false },
  BROKER_REFRESH_MARGIN_SECONDS: { requiredInAzure: false, secret: false },
  BROKER_KEEPALIVE_DAYS: { requiredInAzure: false, secret: false },
  BROKER_IDLE_AFTER_HOURS: { requiredInAzure: false, secret: false },
  BROKER_SWEEP_CONCURRENCY: { requiredInAzure: false, secret: false },
  BROKER_CACHE_COHERENCE_SECONDS: { requiredInAzure: false, secret: false },
  BROKER_REFRESH_SCHEDULE: { requiredInAzure: true, secret: false },
  BROKER_HTTP_TIMEOUT_MS: { requiredInAzure: false, secret: false },
  BROKER_AUTH_MODE: { requiredInAzure: true, secret: false },
  BROKER_AUTH_TENANT_ID: { requiredInAzure: false, secret: false },
  BROKER_AUTH_AUDIENCE: { requiredInAzure: false, secret: false },
  BROKER_AUTH_ISSUER: { requiredInAzure: false, secret: false },
  BROKER_AUTH_JWKS_URL: { requiredInAzure: false, secret: false },
  BROKER_AUTH_CALLER_ROLE: { requiredInAzure: false, secret: false },
  BROKER_AUTH_ADMIN_ROLE: { requiredInAzure: false, secret: false },
  BROKER_CONSOLE_CLIENT_ID: { requiredInAzure: false, secret: false },
  BROKER_CONSOLE_SCOPE: { requiredInAzure: false, secret: false },
  BROKER_ALLOW_INSECURE_HTTP: { requiredInAzure: false, secret: false },
  BROKER_WEBHOOK_URL: { requiredInAzure: false, secret: false },
  BROKER_WEBHOOK_SECRET: { requiredInAzure: false, secret: true },
  BROKER_NOTIFY_CONNECTION: { requiredInAzure: false, secret: false },
  BROKER_NOTIFY_TO: { requiredInAzure: false, secret: false },
  BROKER_GRAPH_URL: { requiredInAzure: false, secret: false },
  BROKER_NOTIFY_QUEUE: { requiredInAzure: false, secret: false },
  AzureWebJobsStorage__queueServiceUri: { requiredInAzure: false, secret: false },
  /** TEST-ONLY (refused unless the vault URL is loopback): reach the local Key Vault double from another process. */
  KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: { requiredInAzure: false, secret: false },
  KEY_VAULT_TEST_BEARER_TOKEN: { requiredInAzure: false, secret: true },
} as const;

export type SettingName = keyof typeof SETTINGS;

const envSchema = z.object({
  BROKER_PUBLIC_BASE_URL: httpsOrLocalUrl.default('http://localhost:7071'),
  BROKER_KEYS: z.string().optional(),
  KEY_VAULT_URL: z.url({ protocol: /^https$/ }).optional(),
  AZURE_CLIENT_ID: z.string().optional(),
  BROKER_DATA_DIR: z.string().min(1).default('.data'),
  BROKER_LOCK: z.enum(['memory', 'blob']).optional(),
  AzureWebJobsStorage: z.string().optional(),
  AzureWebJobsStorage__blobServiceUri: z.url().optional(),
  AzureWebJobsStorage__clientId: z.string().optional(),
  MICROSOFT_CLIENT_ID: z.string().trim().optional(),
  MICROSOFT_TENANT: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9.-]{1,253}$/, 'must be common, organizations, consumers, a tenant GUID or a domain')
    .default('common'),
  MICROSOFT_AUTHORITY_HOST: httpsOrLocalUrl.default('https://login.microsoftonline.com'),
  MICROSOFT_CREDENTIAL: z.enum(['auto', 'secret', 'certificate', 'managed_identity', 'none']).default('auto'),
  MICROSOFT_CLIENT_SECRET: z.string().optional(),
  MICROSOFT_CLIENT_CERTIFICATE: z.string().optional(),
  MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: z.string().optional(),
  MICROSOFT_DEFAULT_SCOPES: z.string().default('https://graph.microsoft.com/Mail.Send'),
  BROKER_PROVIDERS: z.string().optional(),
  BROKER_LINK_TTL_SECONDS: intFrom(60, 7 * 24 * 3600).default(900),
  BROKER_REFRESH_MARGIN_SECONDS: intFrom(30, 3600).default(300),
  BROKER_KEEPALIVE_DAYS: intFrom(1, 80).default(7),
  /** Connections nobody read for this long are kept alive but not refreshed ahead; 0 = always refresh ahead. */
  BROKER_IDLE_AFTER_HOURS: intFrom(0, 24 * 80).default(24),
  BROKER_SWEEP_CONCURRENCY: intFrom(1, 64).default(32),
  /** How long an instance serves a cached token before re-reading the store (changes made by other instances). */
  BROKER_CACHE_COHERENCE_SECONDS: intFrom(0, 60).default(30),
  BROKER_REFRESH_SCHEDULE: z
    .string()
    .trim()
    .superRefine((value, ctx) => {
      const problem = ncrontabProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('0 */5 * * * *'),
  BROKER_HTTP_TIMEOUT_MS: intFrom(1000, 120_000).default(15_000),
  BROKER_AUTH_MODE: z.enum(['function_key', 'entra']).default('function_key'),
  BROKER_AUTH_TENANT_ID: z.guid('must be the directory (tenant) ID, a GUID').optional(),
  BROKER_AUTH_AUDIENCE: z.string().optional(),
  BROKER_AUTH_ISSUER: z.string().optional(),
  BROKER_AUTH_JWKS_URL: z.url().optional(),
  BROKER_AUTH_CALLER_ROLE: nonEmpty.default('Tokens.Read'),
  BROKER_AUTH_ADMIN_ROLE: nonEmpty.default('Connections.Manage'),
  BROKER_CONSOLE_CLIENT_ID: z
    .string()
    .trim()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a GUID')
    .optional(),
  BROKER_CONSOLE_SCOPE: nonEmpty.optional(),
  BROKER_ALLOW_INSECURE_HTTP: bool,
  KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: bool,
  KEY_VAULT_TEST_BEARER_TOKEN: z.string().optional(),
  ...NOTIFY_ENV,
});

export interface SecretKey {
  /** Short non-secret id derived from the key, written into links and cookies for rotation. */
  kid: string;
  key: Buffer;
}

export interface CallerAuthConfig {
  mode: 'function_key' | 'entra';
  issuers: string[];
  audience?: string;
  jwksUrl?: string;
  callerRole: string;
  adminRole: string;
}

export interface Config {
  publicBaseUrl: string;
  redirectUri: string;
  /** First key signs/seals; the rest are still accepted (rotation grace). Absent = generated locally. */
  keys: SecretKey[] | undefined;
  store:
    | {
        kind: 'keyvault';
        vaultUrl: string;
        clientId?: string;
        /** Test-only, loopback vaults only (enforced by the store factory). */
        disableChallengeResourceVerification?: boolean;
        staticBearerToken?: string;
      }
    | { kind: 'file'; dataDir: string };
  lock:
    | { kind: 'memory' }
    | { kind: 'blob'; connectionString?: string; blobServiceUri?: string; clientId?: string };
  providers: Readonly<Record<string, ProviderConfig>>;
  linkTtlSeconds: number;
  refreshMarginMs: number;
  keepAliveMs: number;
  idleAfterMs: number;
  sweepConcurrency: number;
  cacheCoherenceMs: number;
  httpTimeoutMs: number;
  auth: CallerAuthConfig;
  allowInsecureHttp: boolean;
  /** Entra mode with BROKER_CONSOLE_CLIENT_ID: how the admin console signs admins in (public values only). */
  console?: { clientId: string; authority: string; scope: string };
  /** Webhooks and owner mails (absent when neither is configured). */
  notify?: NotifyConfig;
}

export class ConfigError extends Error {
  readonly variables: string[];
  constructor(problems: Problems) {
    super(`Invalid configuration: ${problems.map((p) => `${p.variable} (${p.reason})`).join('; ')}`);
    this.name = 'ConfigError';
    this.variables = problems.map((p) => p.variable);
  }
}

/** Parses `env` into a frozen {@link Config}. Pure: tests call it with their own maps. */
export function parseConfig(env: Env): Readonly<Config> {
  const cleaned: Env = {};
  const unresolved: Problems = [];
  for (const name of Object.keys(SETTINGS)) {
    const value = env[name];
    // Functions app settings cannot be unset once created; an empty string means "not configured".
    if (value === undefined || value === '') continue;
    if (isUnresolvedKeyVaultReference(value)) {
      unresolved.push({ variable: name, reason: KEY_VAULT_REFERENCE_UNRESOLVED });
      continue;
    }
    cleaned[name] = value;
  }
  if (unresolved.length > 0) throw new ConfigError(unresolved);
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({ variable: String(issue.path[0] ?? '?'), reason: issue.message })),
    );
  }
  const e = parsed.data;
  const problems: Problems = [];

  const keys = e.BROKER_KEYS === undefined ? undefined : parseKeys(e.BROKER_KEYS, problems);
  if (e.KEY_VAULT_URL && !keys)
    problems.push({ variable: 'BROKER_KEYS', reason: 'required when KEY_VAULT_URL is set' });

  const insecure = e.BROKER_ALLOW_INSECURE_HTTP;
  const base = new URL(e.BROKER_PUBLIC_BASE_URL);
  // Links and the redirect URI are built as `${base}/api/...`: a path, query, fragment or user part would
  // end up inside them (and in the redirect URI registered at the provider).
  if (base.pathname !== '/' || base.search || base.hash || base.username || base.password) {
    problems.push({
      variable: 'BROKER_PUBLIC_BASE_URL',
      reason: 'must be scheme://host[:port] only, without path, query, fragment or user',
    });
  }
  if (e.BROKER_AUTH_JWKS_URL && !e.BROKER_AUTH_JWKS_URL.startsWith('https:') && !insecure) {
    problems.push({
      variable: 'BROKER_AUTH_JWKS_URL',
      reason: 'must be https unless BROKER_ALLOW_INSECURE_HTTP',
    });
  }
  if (base.protocol !== 'https:' && !insecure && !isLoopback(base.hostname)) {
    problems.push({ variable: 'BROKER_PUBLIC_BASE_URL', reason: 'must be https (http only for localhost)' });
  }
  const authority = new URL(e.MICROSOFT_AUTHORITY_HOST);
  if (authority.protocol !== 'https:' && !insecure) {
    problems.push({
      variable: 'MICROSOFT_AUTHORITY_HOST',
      reason: 'must be https unless BROKER_ALLOW_INSECURE_HTTP',
    });
  }

  const providers: Record<string, ProviderConfig> = {};
  if (e.MICROSOFT_CLIENT_ID) {
    providers.microsoft = {
      kind: 'microsoft',
      name: 'microsoft',
      clientId: e.MICROSOFT_CLIENT_ID,
      tenant: e.MICROSOFT_TENANT,
      authorityHost: e.MICROSOFT_AUTHORITY_HOST,
      credential: microsoftCredential(e, problems),
      defaultScopes: splitScopes(e.MICROSOFT_DEFAULT_SCOPES),
    };
  }
  if (e.BROKER_PROVIDERS) {
    Object.assign(providers, parseGenericProviders(e.BROKER_PROVIDERS, env, insecure, problems));
  }

  let lock: Config['lock'];
  const lockKind = e.BROKER_LOCK ?? (e.KEY_VAULT_URL ? 'blob' : 'memory');
  if (lockKind === 'blob') {
    const connectionString =
      e.AzureWebJobsStorage === 'UseDevelopmentStorage=true' ? undefined : e.AzureWebJobsStorage;
    if (!connectionString && !e.AzureWebJobsStorage__blobServiceUri) {
      problems.push({
        variable: 'AzureWebJobsStorage__blobServiceUri',
        reason: 'blob lease lock needs AzureWebJobsStorage or AzureWebJobsStorage__blobServiceUri',
      });
    }
    lock = { kind: 'blob' };
    if (connectionString) lock.connectionString = connectionString;
    if (e.AzureWebJobsStorage__blobServiceUri) lock.blobServiceUri = e.AzureWebJobsStorage__blobServiceUri;
    if (e.AzureWebJobsStorage__clientId) lock.clientId = e.AzureWebJobsStorage__clientId;
  } else {
    lock = { kind: 'memory' };
  }

  const auth: CallerAuthConfig = {
    mode: e.BROKER_AUTH_MODE,
    issuers: [],
    callerRole: e.BROKER_AUTH_CALLER_ROLE,
    adminRole: e.BROKER_AUTH_ADMIN_ROLE,
  };
  if (e.BROKER_AUTH_MODE === 'entra') {
    if (!e.BROKER_AUTH_AUDIENCE)
      problems.push({ variable: 'BROKER_AUTH_AUDIENCE', reason: 'required for entra auth' });
    else auth.audience = e.BROKER_AUTH_AUDIENCE;
    if (e.BROKER_AUTH_ISSUER) {
      auth.issuers = [e.BROKER_AUTH_ISSUER];
    } else if (e.BROKER_AUTH_TENANT_ID) {
      // Entra issues v1 (sts.windows.net) or v2 tokens depending on the API app's accessTokenAcceptedVersion.
      const host = e.MICROSOFT_AUTHORITY_HOST;
      auth.issuers = [
        `${host}/${e.BROKER_AUTH_TENANT_ID}/v2.0`,
        `https://sts.windows.net/${e.BROKER_AUTH_TENANT_ID}/`,
      ];
    } else {
      problems.push({
        variable: 'BROKER_AUTH_TENANT_ID',
        reason: 'required for entra auth (or BROKER_AUTH_ISSUER)',
      });
    }
    auth.jwksUrl =
      e.BROKER_AUTH_JWKS_URL ??
      (e.BROKER_AUTH_TENANT_ID
        ? `${e.MICROSOFT_AUTHORITY_HOST}/${e.BROKER_AUTH_TENANT_ID}/discovery/v2.0/keys`
        : undefined);
    if (!auth.jwksUrl)
      problems.push({ variable: 'BROKER_AUTH_JWKS_URL', reason: 'required with BROKER_AUTH_ISSUER' });
  }

  const notify = parseNotify(
    e,
    e.KEY_VAULT_URL ? { kind: 'keyvault' } : { kind: 'file', dataDir: e.BROKER_DATA_DIR },
    insecure,
    problems,
  );

  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    publicBaseUrl: e.BROKER_PUBLIC_BASE_URL,
    redirectUri: `${e.BROKER_PUBLIC_BASE_URL}/api/callback`,
    keys,
    store: e.KEY_VAULT_URL
      ? {
          kind: 'keyvault',
          vaultUrl: e.KEY_VAULT_URL,
          ...(e.AZURE_CLIENT_ID ? { clientId: e.AZURE_CLIENT_ID } : {}),
          ...(e.KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION
            ? { disableChallengeResourceVerification: true }
            : {}),
          ...(e.KEY_VAULT_TEST_BEARER_TOKEN ? { staticBearerToken: e.KEY_VAULT_TEST_BEARER_TOKEN } : {}),
        }
      : { kind: 'file', dataDir: e.BROKER_DATA_DIR },
    lock,
    providers: Object.freeze(providers),
    linkTtlSeconds: e.BROKER_LINK_TTL_SECONDS,
    refreshMarginMs: e.BROKER_REFRESH_MARGIN_SECONDS * 1000,
    keepAliveMs: e.BROKER_KEEPALIVE_DAYS * 24 * 3600 * 1000,
    idleAfterMs: e.BROKER_IDLE_AFTER_HOURS * 3600 * 1000,
    sweepConcurrency: e.BROKER_SWEEP_CONCURRENCY,
    cacheCoherenceMs: e.BROKER_CACHE_COHERENCE_SECONDS * 1000,
    httpTimeoutMs: e.BROKER_HTTP_TIMEOUT_MS,
    auth,
    allowInsecureHttp: insecure,
    ...(notify ? { notify } : {}),
  };
  if (auth.mode === 'entra' && e.BROKER_CONSOLE_CLIENT_ID && e.BROKER_AUTH_TENANT_ID && auth.audience) {
    config.console = {
      clientId: e.BROKER_CONSOLE_CLIENT_ID,
      authority: `${e.MICROSOFT_AUTHORITY_HOST}/${e.BROKER_AUTH_TENANT_ID}`,
      scope: e.BROKER_CONSOLE_SCOPE ?? `${auth.audience.split(',')[0]?.trim() ?? ''}/.default`,
    };
  }
  return deepFreeze(config);
}

let cached: Readonly<Config> | undefined;

/** The process-wide configuration, parsed on first use from `process.env`. */
export function getConfig(): Readonly<Config> {
  cached ??= parseConfig(process.env);
  return cached;
}

/** Test seam: forget the cached configuration. */
export function resetConfigForTests(): void {
  cached = undefined;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 8);
}

function parseKeys(value: string, problems: Problems): SecretKey[] | undefined {
  const keys: SecretKey[] = [];
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const key = Buffer.from(part, 'base64url');
    if (key.length < 32 || !/^[A-Za-z0-9_-]+={0,2}$/.test(part)) {
      problems.push({
        variable: 'BROKER_KEYS',
        reason: 'each key must be base64url of at least 32 random bytes',
      });
      return undefined;
    }
    keys.push({ kid: keyIdOf(key), key });
  }
  if (keys.length === 0) {
    problems.push({ variable: 'BROKER_KEYS', reason: 'must list at least one key' });
    return undefined;
  }
  return keys;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

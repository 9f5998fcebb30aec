/**
 * @module config
 * Reads the environment once with zod and freezes the result. A bad value fails start-up with a message that
 * names the variable and why; the value itself is never echoed (it may be a secret).
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { PRESET_NAMES, type PresetName, presetFor } from './oauth/presets.ts';
import { NOTIFY_ENV, type NotifyConfig, parseNotify } from './notify/settings.ts';
import { ncrontabProblem } from './schedule.ts';

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

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const httpsOrLocalUrl = z.url({ protocol: /^https?$/ }).transform((s) => s.replace(/\/+$/, ''));
const nonEmpty = z.string().trim().min(1);
const bool = z
  .enum(['true', 'false', '1', '0', ''])
  .transform((v) => v === 'true' || v === '1')
  .default(false);

const genericProviderSchema = z
  .object({
    kind: z.literal('oauth2'),
    /** Documented defaults for a known provider (shared/oauth/presets.ts); settings given here win. */
    preset: z.enum(PRESET_NAMES).optional(),
    /** Optional with `issuer` (taken from its discovery document); explicit values win over the document. */
    authorizationUrl: z.url().optional(),
    tokenUrl: z.url().optional(),
    issuer: z.url().optional(),
    jwksUrl: z.url().optional(),
    clientId: nonEmpty,
    /** Name of the environment variable that holds the client secret (keeps this JSON non-secret). */
    clientSecretSetting: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    clientAuthMethod: z
      .enum(['client_secret_post', 'client_secret_basic', 'none'])
      .default('client_secret_post'),
    defaultScopes: z.array(nonEmpty).optional(),
    extraAuthorizeParams: z.record(z.string(), z.string()).optional(),
    extraTokenParams: z.record(z.string(), z.string()).default({}),
    usePkce: z.boolean().default(true),
    /** Access-token lifetime assumed when a token response has no `expires_in` (default 600 s). */
    defaultExpiresInSeconds: z.number().int().min(30).max(86_400).optional(),
    /** ID-token algorithms to accept instead of what discovery advertises. */
    idTokenSigningAlgs: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .optional(),
  })
  .strict();

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

export type ClientCredential =
  | { kind: 'secret'; secret: string; method: 'client_secret_post' | 'client_secret_basic' }
  | { kind: 'certificate'; privateKeyPem: string; certificatePem: string }
  | { kind: 'managed_identity'; clientId: string; audience: string }
  | { kind: 'none' };

export interface MicrosoftProviderConfig {
  kind: 'microsoft';
  name: 'microsoft';
  clientId: string;
  tenant: string;
  authorityHost: string;
  credential: ClientCredential;
  defaultScopes: string[];
}

export interface GenericProviderConfig {
  kind: 'oauth2';
  name: string;
  preset?: PresetName;
  /** Absent only when `issuer` is set: then they come from its discovery document. */
  authorizationUrl?: string;
  tokenUrl?: string;
  defaultExpiresInSeconds?: number;
  idTokenSigningAlgs?: string[];
  issuer?: string;
  jwksUrl?: string;
  clientId: string;
  credential: ClientCredential;
  defaultScopes: string[];
  extraAuthorizeParams: Record<string, string>;
  extraTokenParams: Record<string, string>;
  usePkce: boolean;
}

export type ProviderConfig = MicrosoftProviderConfig | GenericProviderConfig;

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
  constructor(problems: { variable: string; reason: string }[]) {
    super(`Invalid configuration: ${problems.map((p) => `${p.variable} (${p.reason})`).join('; ')}`);
    this.name = 'ConfigError';
    this.variables = problems.map((p) => p.variable);
  }
}

type Env = Record<string, string | undefined>;

const KEY_VAULT_REFERENCE_UNRESOLVED =
  'Key Vault reference not resolved: check the identity has Key Vault Secrets User/Officer and the secret exists';

/**
 * App Service leaves a Key Vault reference (`@Microsoft.KeyVault(SecretUri=…)` or `(VaultName=…;SecretName=…)`)
 * as literal text when it cannot resolve it; any setting can hold one, so every secret-bearing value is checked,
 * including the settings named by generic providers' `clientSecretSetting`.
 */
export function isUnresolvedKeyVaultReference(value: string): boolean {
  return /^\s*@Microsoft\.KeyVault\s*\(/i.test(value);
}

/** Parses `env` into a frozen {@link Config}. Pure: tests call it with their own maps. */
export function parseConfig(env: Env): Readonly<Config> {
  const cleaned: Env = {};
  const unresolved: { variable: string; reason: string }[] = [];
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
  const problems: { variable: string; reason: string }[] = [];

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

export function splitScopes(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s.length > 0);
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 8);
}

function parseKeys(value: string, problems: { variable: string; reason: string }[]): SecretKey[] | undefined {
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

function microsoftCredential(
  e: z.infer<typeof envSchema>,
  problems: { variable: string; reason: string }[],
): ClientCredential {
  const kind =
    e.MICROSOFT_CREDENTIAL !== 'auto'
      ? e.MICROSOFT_CREDENTIAL
      : e.MICROSOFT_CLIENT_CERTIFICATE
        ? 'certificate'
        : e.MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID
          ? 'managed_identity'
          : e.MICROSOFT_CLIENT_SECRET
            ? 'secret'
            : 'none';
  switch (kind) {
    case 'secret':
      if (!e.MICROSOFT_CLIENT_SECRET) {
        problems.push({
          variable: 'MICROSOFT_CLIENT_SECRET',
          reason: 'required when MICROSOFT_CREDENTIAL=secret',
        });
        return { kind: 'none' };
      }
      return { kind: 'secret', secret: e.MICROSOFT_CLIENT_SECRET, method: 'client_secret_post' };
    case 'certificate': {
      const pem = e.MICROSOFT_CLIENT_CERTIFICATE ?? '';
      const keyMatch =
        /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(pem);
      const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
      if (!keyMatch || !certMatch) {
        problems.push({
          variable: 'MICROSOFT_CLIENT_CERTIFICATE',
          reason: 'must be a PEM bundle with a private key and its certificate',
        });
        return { kind: 'none' };
      }
      const mismatch = certificateProblem(keyMatch[0], certMatch[0]);
      if (mismatch) {
        problems.push({ variable: 'MICROSOFT_CLIENT_CERTIFICATE', reason: mismatch });
        return { kind: 'none' };
      }
      return { kind: 'certificate', privateKeyPem: keyMatch[0], certificatePem: certMatch[0] };
    }
    case 'managed_identity': {
      const clientId = e.MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID ?? e.AZURE_CLIENT_ID;
      if (!clientId) {
        problems.push({
          variable: 'MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID',
          reason: 'required when MICROSOFT_CREDENTIAL=managed_identity',
        });
        return { kind: 'none' };
      }
      return { kind: 'managed_identity', clientId, audience: fedAudience(e.MICROSOFT_AUTHORITY_HOST) };
    }
    default:
      return { kind: 'none' };
  }
}

function fedAudience(authorityHost: string): string {
  if (authorityHost.endsWith('.us')) return 'api://AzureADTokenExchangeUSGov';
  if (authorityHost.endsWith('.cn')) return 'api://AzureADTokenExchangeChina';
  return 'api://AzureADTokenExchange';
}

function parseGenericProviders(
  json: string,
  env: Env,
  insecure: boolean,
  problems: { variable: string; reason: string }[],
): Record<string, GenericProviderConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    problems.push({ variable: 'BROKER_PROVIDERS', reason: 'must be a JSON object' });
    return {};
  }
  const parsed = z.record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), genericProviderSchema).safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ variable: 'BROKER_PROVIDERS', reason: `${issue.path.join('.')}: ${issue.message}` });
    }
    return {};
  }
  const out: Record<string, GenericProviderConfig> = {};
  for (const [name, p] of Object.entries(parsed.data)) {
    if (name === 'microsoft') {
      problems.push({ variable: 'BROKER_PROVIDERS', reason: 'the name microsoft is reserved' });
      continue;
    }
    const preset = p.preset ? presetFor(p.preset) : undefined;
    const issuer = p.issuer ?? preset?.issuer;
    const authorizationUrl = p.authorizationUrl ?? preset?.authorizationUrl;
    const tokenUrl = p.tokenUrl ?? preset?.tokenUrl;
    if (!issuer && (!authorizationUrl || !tokenUrl)) {
      problems.push({
        variable: 'BROKER_PROVIDERS',
        reason: preset?.requiresIssuer
          ? `${name}.issuer: the ${p.preset} preset needs your tenant's issuer URL`
          : `${name}: set issuer (endpoints then come from its discovery document) or both authorizationUrl and tokenUrl`,
      });
      continue;
    }
    for (const url of [authorizationUrl, tokenUrl, p.jwksUrl, issuer]) {
      if (url !== undefined && !url.startsWith('https:') && !insecure) {
        problems.push({
          variable: 'BROKER_PROVIDERS',
          reason: `${name}: endpoints, issuer and jwksUrl must be https`,
        });
        break;
      }
    }
    let credential: ClientCredential = { kind: 'none' };
    if (p.clientAuthMethod !== 'none') {
      const secret = p.clientSecretSetting ? env[p.clientSecretSetting] : undefined;
      if (secret && isUnresolvedKeyVaultReference(secret)) {
        problems.push({
          variable: p.clientSecretSetting ?? 'BROKER_PROVIDERS',
          reason: `${name}: ${KEY_VAULT_REFERENCE_UNRESOLVED}`,
        });
      } else if (!secret) {
        problems.push({
          variable: p.clientSecretSetting ?? 'BROKER_PROVIDERS',
          reason: `${name}: client secret missing`,
        });
      } else {
        credential = { kind: 'secret', secret, method: p.clientAuthMethod };
      }
    }
    const provider: GenericProviderConfig = {
      kind: 'oauth2',
      name,
      clientId: p.clientId,
      credential,
      defaultScopes: p.defaultScopes ?? [...(preset?.defaultScopes ?? [])],
      extraAuthorizeParams: p.extraAuthorizeParams ?? { ...preset?.extraAuthorizeParams },
      extraTokenParams: p.extraTokenParams,
      usePkce: p.usePkce,
    };
    if (p.preset) provider.preset = p.preset;
    if (authorizationUrl) provider.authorizationUrl = authorizationUrl;
    if (tokenUrl) provider.tokenUrl = tokenUrl;
    const defaultExpiresIn = p.defaultExpiresInSeconds ?? preset?.defaultExpiresInSeconds;
    if (defaultExpiresIn !== undefined) provider.defaultExpiresInSeconds = defaultExpiresIn;
    if (p.idTokenSigningAlgs) provider.idTokenSigningAlgs = p.idTokenSigningAlgs;
    if (issuer) provider.issuer = issuer;
    if (p.jwksUrl) provider.jwksUrl = p.jwksUrl;
    out[name] = provider;
  }
  return out;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Microsoft accepts client assertions signed with RSA only (PS256/RS256), and the assertion names the
 * certificate by its thumbprint: an EC key, or a key of another certificate, would fail every token request.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
 */
function certificateProblem(keyPem: string, certificatePem: string): string | undefined {
  try {
    const key = createPrivateKey(keyPem);
    if (key.asymmetricKeyType !== 'rsa')
      return `the private key must be RSA (Microsoft signs client assertions with RSA), not ${key.asymmetricKeyType ?? 'unknown'}`;
    if (!new X509Certificate(certificatePem).checkPrivateKey(key))
      return 'the private key does not belong to the certificate in the bundle';
    return undefined;
  } catch {
    return 'the PEM key or certificate cannot be read';
  }
}

/**
 * @module oauth/metadata
 * Where a provider's endpoints, issuer, key set and ID-token algorithms come from: OpenID Connect discovery
 * through oauth4webapi (Microsoft always; generic providers that name an `issuer`), explicit settings otherwise.
 * A document that cannot be used is a configuration mistake and is reported as one, naming the setting.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc
 */
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../config.ts';
import { BrokerError } from '../errors.ts';
import type { FetchLike } from './transport.ts';

/** ID-token algorithms accepted when the provider advertises none (jose and oauth4webapi verify all of them). */
export const DEFAULT_ID_TOKEN_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
/** Asymmetric JWS algorithms the broker can verify; anything else a provider advertises (HS*, none) is ignored. */
const VERIFIABLE_ALGS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

const MS_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Microsoft publishes the `{tenantid}` issuer template for these tenant values only. */
const MS_TEMPLATE_TENANTS = new Set(['common', 'organizations']);

export interface ProviderMetadata {
  /** The authorization server as oauth4webapi sees it. `issuer` may hold Microsoft's `{tenantid}` template. */
  as: oauth.AuthorizationServer;
  /** Whether an issuer is known at all (plain OAuth 2.0 providers have none; `as.issuer` is then a placeholder). */
  hasIssuer: boolean;
  /** ID-token algorithms to accept: what the provider advertises, verifiable ones only. */
  idTokenAlgs: string[];
}

export interface MetadataDeps {
  fetch: FetchLike;
  allowInsecureHttp: boolean;
  timeoutMs: number;
}

/** The setting a metadata problem is reported against. */
export function issuerSetting(config: ProviderConfig): string {
  // Microsoft's document is found from both settings: a wrong host or a wrong tenant both end up here.
  return config.kind === 'microsoft'
    ? 'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST'
    : `BROKER_PROVIDERS.${config.name}.issuer`;
}

function misconfigured(config: ProviderConfig, what: string, detail: string, cause?: unknown): BrokerError {
  const setting = issuerSetting(config);
  return new BrokerError('provider_misconfigured', `Provider ${config.name}: ${what} Check ${setting}.`, {
    detail: `${setting}: ${detail}`.slice(0, 300),
    fields: { provider: config.name },
    cause,
  });
}

/** Resolves (and caches) a provider's metadata; a failed attempt is not cached, so the next call tries again. */
export function metadataSource(config: ProviderConfig, deps: MetadataDeps): () => Promise<ProviderMetadata> {
  const needsDiscovery = config.kind === 'microsoft' || config.issuer !== undefined;
  if (!needsDiscovery) {
    const known = Promise.resolve(explicitMetadata(config));
    return () => known;
  }
  let cached: Promise<ProviderMetadata> | undefined;
  return () => {
    cached ??= discover(config, deps).catch((err: unknown) => {
      cached = undefined;
      throw err;
    });
    return cached;
  };
}

function hasExplicitEndpoints(config: ProviderConfig & { kind: 'oauth2' }): boolean {
  return Boolean(config.authorizationUrl && config.tokenUrl && config.jwksUrl);
}

function explicitMetadata(config: ProviderConfig): ProviderMetadata {
  if (config.kind === 'microsoft' || !config.authorizationUrl || !config.tokenUrl) {
    throw new Error('explicit metadata needs both endpoint URLs (config parsing guarantees them)');
  }
  return {
    // oauth4webapi needs some issuer; a provider without one gets its authorization endpoint as a placeholder.
    as: {
      issuer: config.authorizationUrl,
      authorization_endpoint: config.authorizationUrl,
      token_endpoint: config.tokenUrl,
      ...(config.jwksUrl ? { jwks_uri: config.jwksUrl } : {}),
      id_token_signing_alg_values_supported: [...(config.idTokenSigningAlgs ?? DEFAULT_ID_TOKEN_ALGS)],
    },
    hasIssuer: false,
    idTokenAlgs: [...(config.idTokenSigningAlgs ?? DEFAULT_ID_TOKEN_ALGS)],
  };
}

async function discover(config: ProviderConfig, deps: MetadataDeps): Promise<ProviderMetadata> {
  const microsoft = config.kind === 'microsoft';
  // Microsoft: the v2 document lives under `/{tenant}/v2.0`; its issuer is the tenant's (or the template), not
  // that URL, so oauth4webapi's issuer-equals-URL check is replaced by the Microsoft rules below.
  const issuerUrl = microsoft
    ? new URL(`${config.authorityHost}/${encodeURIComponent(config.tenant)}/v2.0`)
    : new URL(config.issuer ?? '');
  let discovered: oauth.AuthorizationServer;
  try {
    const response = await oauth.discoveryRequest(issuerUrl, {
      [oauth.customFetch]: deps.fetch,
      [oauth.allowInsecureRequests]: deps.allowInsecureHttp,
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
    if (response.status === 404 && config.kind === 'oauth2' && hasExplicitEndpoints(config)) {
      // No discovery document, but every endpoint is configured: the issuer is then only checked, not read.
      const explicit = explicitMetadata(config);
      return { ...explicit, as: { ...explicit.as, issuer: config.issuer ?? '' }, hasIssuer: true };
    }
    if (response.status >= 500 || response.status === 429) {
      throw new BrokerError(
        'provider_unavailable',
        `Provider ${config.name}: its discovery document is unavailable right now; try again shortly.`,
        {
          retryAfterSeconds: 5,
          detail: `discovery HTTP ${response.status}`,
          fields: { provider: config.name },
        },
      );
    }
    // Microsoft's issuer is not the document's URL (template for common/organizations, the tenant GUID for a
    // domain): oauth4webapi checks the document against its own issuer here, the Microsoft rules below do the rest.
    const expected = microsoft ? await documentIssuer(response) : issuerUrl;
    discovered = await oauth.processDiscoveryResponse(expected, response);
  } catch (err) {
    if (err instanceof BrokerError) throw err;
    if (isNetworkError(err)) {
      throw new BrokerError(
        'provider_unavailable',
        `Provider ${config.name}: its discovery document could not be fetched; try again shortly.`,
        {
          retryAfterSeconds: 5,
          detail: 'discovery request failed',
          fields: { provider: config.name },
          cause: err,
        },
      );
    }
    const message = err instanceof Error ? err.message : 'unusable document';
    throw misconfigured(
      config,
      `its OpenID configuration at ${issuerUrl.href}/.well-known/openid-configuration could not be used (${message}).`,
      message,
      err,
    );
  }
  if (microsoft) checkMicrosoftIssuer(config, discovered.issuer);
  const as: Mutable<oauth.AuthorizationServer> = { ...discovered };
  if (config.kind === 'oauth2') {
    // Explicit endpoint settings win over the document (some servers publish internal host names).
    if (config.authorizationUrl) as.authorization_endpoint = config.authorizationUrl;
    if (config.tokenUrl) as.token_endpoint = config.tokenUrl;
    if (config.jwksUrl) as.jwks_uri = config.jwksUrl;
  }
  for (const [field, value] of [
    ['authorization_endpoint', as.authorization_endpoint],
    ['token_endpoint', as.token_endpoint],
    ['jwks_uri', as.jwks_uri],
  ] as const) {
    if (typeof value !== 'string' || !URL.canParse(value)) {
      throw misconfigured(config, `its OpenID configuration has no usable ${field}.`, `${field} missing`);
    }
    if (!value.startsWith('https:') && !deps.allowInsecureHttp) {
      throw misconfigured(config, `its ${field} is not https.`, `${field} not https`);
    }
  }
  const advertised = discovered.id_token_signing_alg_values_supported;
  const configured = config.kind === 'oauth2' ? config.idTokenSigningAlgs : undefined;
  const idTokenAlgs = (configured ?? advertised ?? DEFAULT_ID_TOKEN_ALGS).filter((a) =>
    VERIFIABLE_ALGS.has(a),
  );
  if (idTokenAlgs.length === 0) {
    throw misconfigured(
      config,
      'it signs ID tokens only with algorithms the broker does not verify (symmetric or none).',
      `id_token_signing_alg_values_supported: ${(advertised ?? []).join(',')}`,
    );
  }
  // The library's own option: oauth4webapi checks each ID token's `alg` against this list.
  as.id_token_signing_alg_values_supported = idTokenAlgs;
  return { as, hasIssuer: true, idTokenAlgs };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

async function documentIssuer(response: Response): Promise<URL> {
  const body: unknown = await response
    .clone()
    .json()
    .catch(() => undefined);
  const issuer = (body as { issuer?: unknown } | undefined)?.issuer;
  if (typeof issuer !== 'string' || !URL.canParse(issuer))
    throw new Error('discovery document has no issuer');
  return new URL(issuer);
}

/** Microsoft's issuers as its discovery publishes them: the `{tenantid}` template for `common` and
 * `organizations`, a concrete tenant issuer otherwise (`consumers` → the MSA tenant 9188040d-…). */
function checkMicrosoftIssuer(config: ProviderConfig & { kind: 'microsoft' }, issuer: string): void {
  const match = /^https?:\/\/[^/]+\/([^/]+)\/v2\.0$/.exec(issuer);
  const tenantPart = match?.[1];
  const templated = tenantPart === '{tenantid}';
  if (!tenantPart || (!templated && !MS_GUID.test(tenantPart))) {
    throw misconfigured(
      config,
      'its discovery document names an issuer the broker does not recognise.',
      'issuer shape',
    );
  }
  const tenant = config.tenant.toLowerCase();
  if (templated && !MS_TEMPLATE_TENANTS.has(tenant)) {
    throw misconfigured(
      config,
      'its discovery document publishes a multi-tenant issuer for a single tenant.',
      'template issuer for a named tenant',
    );
  }
  if (MS_GUID.test(tenant) && tenantPart.toLowerCase() !== tenant) {
    throw misconfigured(config, 'its discovery document is for another tenant.', 'issuer tenant differs');
  }
}

/** Fills Microsoft's `{tenantid}` issuer template from the token's `tid`, which must be a GUID. */
export function resolveIssuer(template: string, tid: unknown): string | undefined {
  if (!template.includes('{tenantid}')) return template;
  if (typeof tid !== 'string' || !MS_GUID.test(tid)) return undefined;
  return template.replace('{tenantid}', tid);
}

/** For a templated issuer, the tenant id the given issuer claims to be; undefined when it doesn't fit. */
export function tenantFromIssuer(iss: string, template: string): string | undefined {
  const [prefix, suffix] = template.split('{tenantid}');
  if (suffix === undefined || prefix === undefined) return undefined;
  if (!iss.startsWith(prefix) || !iss.endsWith(suffix)) return undefined;
  return iss.slice(prefix.length, iss.length - suffix.length);
}

export function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  if (err instanceof TypeError && /fetch failed|terminated/i.test(err.message)) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(ECONN|ETIMEDOUT|EPIPE|UND_ERR|ENOTFOUND|EAI_AGAIN)/.test(code);
}

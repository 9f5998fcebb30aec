/**
 * @module oauth/provider
 * The only module that speaks OAuth. Protocol steps go through oauth4webapi (PKCE, authorization response
 * checks, token response parsing, id_token claim checks); id_token signatures are verified with jose against
 * the provider's JWKS. Microsoft specifics (tenant paths, `{tenantid}` issuer template, one resource per token
 * request, `refresh_in`) live here too, in small named functions.
 */
import {
  createRemoteJWKSet,
  customFetch as joseCustomFetch,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../config.ts';
import { constantTimeEqual } from '../crypto.ts';
import { BrokerError, type ErrorCode } from '../errors.ts';
import type { ConnectedIdentity } from '../store/types.ts';
import { type AssertionSource, buildClientAuth } from './clientAuth.ts';
import { classifyFailure, type FailureClass, type FailureInput } from './classify.ts';
import { OIDC_SCOPES, primaryResourceScopes } from './scopes.ts';
import type { FetchLike } from './transport.ts';

export interface TokenResult {
  accessToken: string;
  tokenType: string;
  /** Lifetime as the provider stated it; the broker turns it into absolute times with its own clock. */
  expiresInSeconds: number;
  /** Microsoft `refresh_in`: renew after this many seconds even though the token is still valid. */
  refreshInSeconds?: number;
  /** Scopes the provider says the access token carries. */
  scope: string;
  refreshToken?: string;
  identity?: ConnectedIdentity;
}

export interface AuthorizationParams {
  scopes: readonly string[];
  state: string;
  nonce: string;
  codeChallenge: string;
  loginHint?: string;
}

export interface RedeemParams {
  callbackParams: URLSearchParams;
  expectedState: string;
  nonce: string;
  codeVerifier: string;
  scopes: readonly string[];
}

export interface ProviderClient {
  readonly name: string;
  readonly kind: 'microsoft' | 'oauth2';
  /** Scopes a connection gets when the admin names none. */
  readonly defaultScopes: readonly string[];
  /** Scopes to ask for at sign-in: the connection's scopes plus what refresh and identity checks need. */
  loginScopes(scopes: readonly string[]): string[];
  authorizationUrl(params: AuthorizationParams): URL;
  redeemCode(params: RedeemParams): Promise<TokenResult>;
  /** `scopes` undefined → the connection's primary token; otherwise a token for exactly those scopes. */
  refresh(refreshToken: string, scopes: readonly string[]): Promise<TokenResult>;
}

/** What a caller is told for each kind of provider failure. A refused sign-in code is not a broken connection. */
const FAILURE_ANSWERS: Record<
  'reauth_code' | 'reauth_refresh' | 'config' | 'transient' | 'protocol',
  { code: ErrorCode; message: string }
> = {
  reauth_code: {
    code: 'provider_error',
    message: 'The provider refused the sign-in code; start the connect flow again.',
  },
  reauth_refresh: {
    code: 'connection_needs_reauth',
    message: 'The account must sign in again: the provider rejected the refresh token.',
  },
  config: {
    code: 'provider_misconfigured',
    message: 'The provider rejected the broker configuration (client id, credential or scopes).',
  },
  transient: {
    code: 'provider_unavailable',
    message: 'The provider is unavailable right now; try again shortly.',
  },
  protocol: {
    code: 'provider_error',
    message: 'The provider answered with something the broker could not use.',
  },
};

/** A provider call failed; `failure` says whether the user, the admin or time can fix it. */
export class ProviderFailure extends BrokerError {
  readonly failure: FailureClass;
  constructor(failure: FailureClass, stage: 'code' | 'refresh', cause?: unknown) {
    const { code, message } =
      FAILURE_ANSWERS[failure.kind === 'reauth' ? (`reauth_${stage}` as const) : failure.kind];
    const options: ConstructorParameters<typeof BrokerError>[2] = {
      detail: `${stage} ${failure.kind}`,
      fields: {
        providerError: failure.providerError,
        providerCodes: failure.codes?.join(','),
        traceId: failure.traceId,
        correlationId: failure.correlationId,
        httpStatus: failure.httpStatus,
      },
      cause,
    };
    if (failure.kind === 'transient') options.retryAfterSeconds = failure.retryAfterSeconds ?? 5;
    super(code, message, options);
    this.name = 'ProviderFailure';
    this.failure = failure;
  }
}

export interface ProviderDeps {
  fetch: FetchLike;
  redirectUri: string;
  allowInsecureHttp: boolean;
  timeoutMs: number;
  assertionSource?: AssertionSource;
}

interface Endpoints {
  authorize: string;
  token: string;
  jwks?: string;
  /** Exact issuer, or a template containing `{tenantid}` (Microsoft multi-tenant). */
  issuer?: string;
}

const MS_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Microsoft identity platform v2 endpoints for a tenant value and authority host (national clouds). */
export function microsoftEndpoints(authorityHost: string, tenant: string): Endpoints {
  const base = `${authorityHost}/${encodeURIComponent(tenant)}`;
  return {
    authorize: `${base}/oauth2/v2.0/authorize`,
    token: `${base}/oauth2/v2.0/token`,
    jwks: `${base}/discovery/v2.0/keys`,
    // GUID tenants have a fixed issuer; names (`common`, a domain) resolve to a GUID only in the token.
    issuer: MS_GUID.test(tenant)
      ? `${authorityHost}/${tenant.toLowerCase()}/v2.0`
      : `${authorityHost}/{tenantid}/v2.0`,
  };
}

/** Fills Microsoft's `{tenantid}` issuer template from the token's `tid`, which must be a GUID. */
export function resolveIssuer(template: string, tid: unknown): string | undefined {
  if (!template.includes('{tenantid}')) return template;
  if (typeof tid !== 'string' || !MS_GUID.test(tid)) return undefined;
  return template.replace('{tenantid}', tid);
}

export function createProviderClient(config: ProviderConfig, deps: ProviderDeps): ProviderClient {
  const endpoints: Endpoints =
    config.kind === 'microsoft'
      ? microsoftEndpoints(config.authorityHost, config.tenant)
      : {
          authorize: config.authorizationUrl,
          token: config.tokenUrl,
          ...(config.jwksUrl ? { jwks: config.jwksUrl } : {}),
          ...(config.issuer ? { issuer: config.issuer } : {}),
        };
  const client: oauth.Client = { client_id: config.clientId, [oauth.clockTolerance]: 120 };
  const clientAuth = buildClientAuth(config.credential, deps.assertionSource);
  const requestOptions = {
    [oauth.customFetch]: deps.fetch,
    [oauth.allowInsecureRequests]: deps.allowInsecureHttp,
    signal: () => AbortSignal.timeout(deps.timeoutMs),
  };
  const jwks = endpoints.jwks
    ? createRemoteJWKSet(new URL(endpoints.jwks), {
        [joseCustomFetch]: deps.fetch,
        timeoutDuration: deps.timeoutMs,
        cooldownDuration: 30_000,
        cacheMaxAge: 24 * 3600_000,
      })
    : undefined;
  const microsoft = config.kind === 'microsoft';
  const extraAuthorize = config.kind === 'oauth2' ? config.extraAuthorizeParams : {};
  const extraToken = config.kind === 'oauth2' ? config.extraTokenParams : {};
  const usePkce = config.kind === 'oauth2' ? config.usePkce : true;

  const as = (issuer: string | undefined): oauth.AuthorizationServer => ({
    issuer: issuer ?? endpoints.authorize,
    authorization_endpoint: endpoints.authorize,
    token_endpoint: endpoints.token,
    ...(endpoints.jwks ? { jwks_uri: endpoints.jwks } : {}),
  });

  /** Issuer to check an id_token against; undefined when this provider has no issuer to check. */
  async function issuerFor(response: Response): Promise<string | undefined> {
    if (!endpoints.issuer) return undefined;
    let body: unknown;
    try {
      body = await response.clone().json();
    } catch {
      return endpoints.issuer;
    }
    const idToken = (body as { id_token?: unknown }).id_token;
    if (typeof idToken !== 'string') return endpoints.issuer;
    let tid: unknown;
    try {
      tid = decodeJwt(idToken).tid;
    } catch {
      return endpoints.issuer;
    }
    // An unresolvable template makes the claim check fail below, which is what we want.
    return resolveIssuer(endpoints.issuer, tid) ?? endpoints.issuer;
  }

  async function verifyIdToken(
    idToken: string,
    issuer: string,
    nonce: string | undefined,
  ): Promise<JWTPayload> {
    if (!jwks)
      throw new BrokerError('provider_error', 'The provider sent an id_token the broker cannot verify.');
    const { payload } = await jwtVerify(idToken, jwks, {
      issuer,
      audience: config.clientId,
      clockTolerance: 120,
      algorithms: ['RS256', 'PS256', 'ES256'],
    });
    if (
      nonce !== undefined &&
      (typeof payload.nonce !== 'string' || !constantTimeEqual(payload.nonce, nonce))
    ) {
      throw new BrokerError('invalid_state', 'The sign-in response did not match this browser session.', {
        detail: 'id_token nonce mismatch',
      });
    }
    return payload;
  }

  function toResult(
    res: oauth.TokenEndpointResponse,
    claims: JWTPayload | undefined,
    requested: readonly string[],
  ): TokenResult {
    const expiresIn = typeof res.expires_in === 'number' && res.expires_in > 0 ? res.expires_in : 3600;
    const result: TokenResult = {
      accessToken: res.access_token,
      tokenType: res.token_type === 'bearer' ? 'Bearer' : res.token_type,
      expiresInSeconds: expiresIn,
      scope: typeof res.scope === 'string' && res.scope.length > 0 ? res.scope : requested.join(' '),
    };
    const refreshIn = (res as unknown as { refresh_in?: unknown }).refresh_in;
    const refreshInSeconds = typeof refreshIn === 'string' ? Number(refreshIn) : refreshIn;
    if (typeof refreshInSeconds === 'number' && refreshInSeconds > 0 && refreshInSeconds < expiresIn) {
      result.refreshInSeconds = refreshInSeconds;
    }
    if (typeof res.refresh_token === 'string' && res.refresh_token.length > 0)
      result.refreshToken = res.refresh_token;
    if (claims) result.identity = identityFrom(claims);
    return result;
  }

  async function callToken<T>(stage: 'code' | 'refresh', fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toProviderFailure(err, stage);
    }
  }

  function tokenScopes(scopes: readonly string[]): string {
    // Microsoft: one resource per token request, plus offline_access so a (rotated) refresh token comes back.
    const resourceScopes = microsoft
      ? primaryResourceScopes(scopes)
      : scopes.filter((s) => !OIDC_SCOPES.has(s));
    return [...resourceScopes, ...(microsoft ? ['offline_access'] : [])].join(' ');
  }

  return {
    name: config.name,
    kind: config.kind,
    defaultScopes: [...config.defaultScopes],

    loginScopes(scopes) {
      const extra = microsoft
        ? ['openid', 'profile', 'offline_access']
        : config.kind === 'oauth2' && endpoints.issuer
          ? ['openid']
          : [];
      const base = scopes.length > 0 ? scopes : config.defaultScopes;
      return [...new Set([...extra, ...base])];
    },

    authorizationUrl(params) {
      const url = new URL(endpoints.authorize);
      const q = url.searchParams;
      for (const [k, v] of Object.entries(extraAuthorize)) q.set(k, v);
      q.set('client_id', config.clientId);
      q.set('response_type', 'code');
      q.set('redirect_uri', deps.redirectUri);
      q.set('scope', params.scopes.join(' '));
      q.set('state', params.state);
      if (params.scopes.includes('openid')) q.set('nonce', params.nonce);
      if (usePkce) {
        q.set('code_challenge', params.codeChallenge);
        q.set('code_challenge_method', 'S256');
      }
      if (microsoft) q.set('response_mode', 'query');
      if (params.loginHint) q.set('login_hint', params.loginHint);
      return url;
    },

    async redeemCode(params) {
      // RFC 9207 mix-up defence: when the provider names itself in the response, it must be our provider.
      const iss = params.callbackParams.get('iss');
      const expectedIss =
        iss && endpoints.issuer
          ? resolveIssuer(endpoints.issuer, tenantFromIssuer(iss, endpoints.issuer))
          : undefined;
      if (iss && endpoints.issuer && iss !== expectedIss) {
        throw new BrokerError('invalid_state', 'The sign-in response came from an unexpected issuer.', {
          detail: 'authorization response iss mismatch',
        });
      }
      let validated: URLSearchParams;
      try {
        validated = oauth.validateAuthResponse(
          as(expectedIss ?? endpoints.issuer),
          client,
          stripIss(params.callbackParams, iss !== null && expectedIss === iss),
          params.expectedState,
        );
      } catch (err) {
        if (err instanceof oauth.AuthorizationResponseError) {
          throw new BrokerError('provider_denied', 'The provider did not grant access.', {
            detail: 'authorization response error',
            fields: { providerError: err.error.slice(0, 64) },
          });
        }
        throw new BrokerError('invalid_state', 'The sign-in response did not match this browser session.', {
          detail: 'authorization response validation failed',
        });
      }
      const wantsIdToken = params.scopes.includes('openid') && endpoints.issuer !== undefined;
      return callToken('code', async () => {
        const additionalParameters = new URLSearchParams(extraToken);
        if (microsoft) additionalParameters.set('scope', tokenScopes(params.scopes));
        const response = await oauth.authorizationCodeGrantRequest(
          as(endpoints.issuer),
          client,
          clientAuth,
          validated,
          deps.redirectUri,
          usePkce ? params.codeVerifier : oauth.nopkce,
          { ...requestOptions, additionalParameters },
        );
        const issuer = await issuerFor(response);
        const result = await oauth.processAuthorizationCodeResponse(as(issuer), client, response, {
          expectedNonce: wantsIdToken ? params.nonce : oauth.expectNoNonce,
          requireIdToken: wantsIdToken,
        });
        const claims =
          wantsIdToken && result.id_token && issuer
            ? await verifyIdToken(result.id_token, issuer, params.nonce)
            : undefined;
        return toResult(result, claims, params.scopes);
      });
    },

    async refresh(refreshToken, scopes) {
      return callToken('refresh', async () => {
        const additionalParameters = new URLSearchParams(extraToken);
        const scope = tokenScopes(scopes);
        if (scope.length > 0) additionalParameters.set('scope', scope);
        const response = await oauth.refreshTokenGrantRequest(
          as(endpoints.issuer),
          client,
          clientAuth,
          refreshToken,
          {
            ...requestOptions,
            additionalParameters,
          },
        );
        const issuer = await issuerFor(response);
        const result = await oauth.processRefreshTokenResponse(as(issuer), client, response);
        return toResult(result, undefined, scopes);
      });
    },
  };
}

/** For a templated issuer, the tenant id the given issuer claims to be; undefined when it doesn't fit. */
function tenantFromIssuer(iss: string, template: string): string | undefined {
  const [prefix, suffix] = template.split('{tenantid}');
  if (suffix === undefined || prefix === undefined) return undefined;
  if (!iss.startsWith(prefix) || !iss.endsWith(suffix)) return undefined;
  return iss.slice(prefix.length, iss.length - suffix.length);
}

function stripIss(params: URLSearchParams, checked: boolean): URLSearchParams {
  if (!checked) return params;
  // Already compared against the resolved issuer above; oauth4webapi would compare it to the template.
  const copy = new URLSearchParams(params);
  copy.delete('iss');
  return copy;
}

function identityFrom(claims: JWTPayload): ConnectedIdentity {
  const identity: ConnectedIdentity = {};
  if (typeof claims.tid === 'string') identity.tenantId = claims.tid;
  if (typeof claims.oid === 'string') identity.objectId = claims.oid;
  if (typeof claims.sub === 'string') identity.subject = claims.sub;
  if (typeof claims.iss === 'string') identity.issuer = claims.iss;
  const username = claims.preferred_username ?? claims.email ?? claims.upn;
  if (typeof username === 'string') identity.username = username;
  return identity;
}

/** Turns whatever a provider call threw into a classified {@link ProviderFailure} (or passes ours through). */
export function toProviderFailure(err: unknown, stage: 'code' | 'refresh'): BrokerError {
  if (err instanceof BrokerError) return err;
  const input: FailureInput = {};
  if (err instanceof oauth.ResponseBodyError) {
    input.httpStatus = err.status;
    input.body = err.cause;
    input.retryAfterHeader = err.response.headers.get('retry-after');
  } else if (err instanceof oauth.WWWAuthenticateChallengeError) {
    input.httpStatus = err.status;
    input.body = { error: err.cause[0]?.parameters.error ?? 'invalid_client' };
  } else if (err instanceof oauth.OperationProcessingError) {
    const cause = err.cause;
    if (cause instanceof Response || isResponseLike(cause)) {
      input.httpStatus = cause.status;
      input.retryAfterHeader = cause.headers.get('retry-after');
    }
  } else if (isNetworkError(err)) {
    input.network = true;
  }
  const failure = classifyFailure(input);
  // A conforming-but-wrong 2xx (bad JSON, failed claim checks) is a protocol error, not a transient one.
  if (
    err instanceof oauth.OperationProcessingError &&
    input.httpStatus !== undefined &&
    input.httpStatus < 300
  ) {
    failure.kind = 'protocol';
  }
  if (err instanceof oauth.OperationProcessingError && input.httpStatus === undefined)
    failure.kind = 'protocol';
  // A forged or broken id_token (signature, unknown kid, claims) is not fixed by retrying; only a key set that
  // could not be fetched (timeout, non-200: ERR_JOSE_GENERIC) is.
  if (
    err instanceof joseErrors.JOSEError &&
    !(err instanceof joseErrors.JWKSTimeout) &&
    err.code !== 'ERR_JOSE_GENERIC'
  ) {
    failure.kind = 'protocol';
  }
  return new ProviderFailure(failure, stage, err);
}

function isResponseLike(v: unknown): v is Response {
  return (
    typeof v === 'object' &&
    v !== null &&
    'status' in v &&
    'headers' in v &&
    typeof (v as Response).headers.get === 'function'
  );
}

function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  if (err instanceof TypeError && /fetch failed|terminated/i.test(err.message)) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(ECONN|ETIMEDOUT|EPIPE|UND_ERR|ENOTFOUND|EAI_AGAIN)/.test(code);
}

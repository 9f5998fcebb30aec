/**
 * @module oauth/provider
 * The only module that speaks OAuth. Protocol steps go through oauth4webapi (discovery, PKCE, authorization
 * response checks including RFC 9207 `iss`, token response parsing, ID-token claim and `alg` checks); ID-token
 * signatures are verified with jose against the provider's JWKS. Endpoints, issuer and algorithms come from
 * `./metadata.ts`; token-response quirks are handled in `./tokenResponse.ts`, failures classified in
 * `./providerFailure.ts`. Microsoft specifics (the
 * `{tenantid}` issuer template, one resource per token request, `refresh_in`) live in small named functions.
 */
import {
  createRemoteJWKSet,
  customFetch as joseCustomFetch,
  decodeJwt,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../config.ts';
import { constantTimeEqual } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import { type AssertionSource, buildClientAuth } from './clientAuth.ts';
import {
  issuerSetting,
  metadataSource,
  type ProviderMetadata,
  resolveIssuer,
  tenantFromIssuer,
} from './metadata.ts';
import { toProviderFailure } from './providerFailure.ts';
import { OIDC_SCOPES, primaryResourceScopes } from './scopes.ts';
import { toTokenResult, type TokenResult } from './tokenResponse.ts';
import type { FetchLike } from './transport.ts';

export { resolveIssuer } from './metadata.ts';
export { ProviderFailure, toProviderFailure } from './providerFailure.ts';
export type { TokenResult } from './tokenResponse.ts';

export interface AuthorizationParams {
  scopes: readonly string[];
  state: string;
  nonce: string;
  codeChallenge: string;
  loginHint?: string;
  /** OpenID `prompt` (e.g. `select_account`); a provider's own extraAuthorizeParams.prompt wins. */
  prompt?: string;
  /** Claims challenge from an earlier `interaction_required` answer (JSON text), sent on as MSAL does. */
  claims?: string;
}

export interface RedeemParams {
  callbackParams: URLSearchParams;
  expectedState: string;
  nonce: string;
  codeVerifier: string;
  scopes: readonly string[];
  claims?: string;
}

export interface ProviderClient {
  readonly name: string;
  readonly kind: 'microsoft' | 'oauth2';
  /** Scopes a connection gets when the admin names none. */
  readonly defaultScopes: readonly string[];
  /** Scopes to ask for at sign-in: the connection's scopes plus what refresh and identity checks need. */
  loginScopes(scopes: readonly string[]): string[];
  /** Async: the endpoint may first have to be discovered. */
  authorizationUrl(params: AuthorizationParams): URL | Promise<URL>;
  redeemCode(params: RedeemParams): Promise<TokenResult>;
  /** `scopes` undefined → the connection's primary token; otherwise a token for exactly those scopes. */
  refresh(
    refreshToken: string,
    scopes: readonly string[],
    opts?: {
      /** Also ask for and verify an id_token (OpenID providers), so `identity` says whose grant this is. */
      identity?: boolean;
    },
  ): Promise<TokenResult>;
}

export interface ProviderDeps {
  fetch: FetchLike;
  redirectUri: string;
  allowInsecureHttp: boolean;
  timeoutMs: number;
  assertionSource?: AssertionSource;
}

/** Lifetime assumed when a provider sends no `expires_in` and its settings name none (a shorter guess only costs
 * an earlier refresh; a longer one would serve expired tokens). Microsoft always sends it. */
export const DEFAULT_EXPIRES_IN_SECONDS = { microsoft: 3600, oauth2: 600 } as const;

export function createProviderClient(config: ProviderConfig, deps: ProviderDeps): ProviderClient {
  const metadata = metadataSource(config, deps);
  const client: oauth.Client = { client_id: config.clientId, [oauth.clockTolerance]: 120 };
  const clientAuth = buildClientAuth(config.credential, deps.assertionSource);
  const requestOptions = {
    [oauth.customFetch]: deps.fetch,
    [oauth.allowInsecureRequests]: deps.allowInsecureHttp,
    signal: () => AbortSignal.timeout(deps.timeoutMs),
  };
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  const jwksFor = (md: ProviderMetadata) => {
    if (!md.as.jwks_uri) return undefined;
    jwks ??= createRemoteJWKSet(new URL(md.as.jwks_uri), {
      [joseCustomFetch]: deps.fetch,
      timeoutDuration: deps.timeoutMs,
      cooldownDuration: 30_000,
      cacheMaxAge: 24 * 3600_000,
    });
    return jwks;
  };
  const microsoft = config.kind === 'microsoft';
  const extraAuthorize = config.kind === 'oauth2' ? config.extraAuthorizeParams : {};
  const extraToken = config.kind === 'oauth2' ? config.extraTokenParams : {};
  const usePkce = config.kind === 'oauth2' ? config.usePkce : true;
  const defaultExpiresIn =
    config.kind === 'oauth2'
      ? (config.defaultExpiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS.oauth2)
      : DEFAULT_EXPIRES_IN_SECONDS.microsoft;
  // Whether sign-in asks for an ID token. Known before discovery: Microsoft always, generic ones with an issuer.
  const oidc = microsoft || (config.kind === 'oauth2' && config.issuer !== undefined);

  const withIssuer = (md: ProviderMetadata, issuer: string | undefined): oauth.AuthorizationServer =>
    issuer === undefined || issuer === md.as.issuer ? md.as : { ...md.as, issuer };

  /** Issuer to check an id_token against; undefined when this provider has no issuer to check. */
  async function issuerFor(md: ProviderMetadata, response: Response): Promise<string | undefined> {
    if (!md.hasIssuer) return undefined;
    const template = md.as.issuer;
    if (!template.includes('{tenantid}')) return template;
    let body: unknown;
    try {
      body = await response.clone().json();
    } catch {
      return template;
    }
    const idToken = (body as { id_token?: unknown }).id_token;
    if (typeof idToken !== 'string') return template;
    let tid: unknown;
    try {
      tid = decodeJwt(idToken).tid;
    } catch {
      return template;
    }
    // An unresolvable template makes the claim check fail below, which is what we want.
    return resolveIssuer(template, tid) ?? template;
  }

  async function verifyIdToken(
    md: ProviderMetadata,
    idToken: string,
    issuer: string,
    nonce: string | undefined,
  ): Promise<JWTPayload> {
    const keySet = jwksFor(md);
    if (!keySet)
      throw new BrokerError('provider_error', 'The provider sent an id_token the broker cannot verify.');
    const { payload, protectedHeader } = await jwtVerify(idToken, keySet, {
      issuer,
      audience: config.clientId,
      clockTolerance: 120,
      algorithms: md.idTokenAlgs,
    });
    // Microsoft lists the issuer each key may sign for (templated keys: any tenant after substitution).
    const key = keySet.jwks()?.keys.find((k) => k.kid === protectedHeader.kid);
    const keyIssuer = (key as { issuer?: unknown } | undefined)?.issuer;
    if (typeof keyIssuer === 'string' && resolveIssuer(keyIssuer, payload.tid) !== payload.iss) {
      throw new BrokerError(
        'provider_error',
        'The provider sent an id_token signed by a key of another issuer.',
        {
          detail: 'signing key issuer mismatch',
        },
      );
    }
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

  async function callToken<T>(stage: 'code' | 'refresh', fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toProviderFailure(err, stage, config.credential.kind === 'managed_identity');
    }
  }

  function tokenScopes(scopes: readonly string[]): string {
    // Microsoft: one resource per token request, plus offline_access so a (rotated) refresh token comes back.
    const resourceScopes = microsoft
      ? primaryResourceScopes(scopes)
      : scopes.filter((s) => !OIDC_SCOPES.has(s));
    return [...resourceScopes, ...(microsoft ? ['offline_access'] : [])].join(' ');
  }

  /** RFC 9207: the `iss` a provider puts in its authorization response must be the issuer we know it by. */
  function checkResponseIssuer(md: ProviderMetadata, params: URLSearchParams): URLSearchParams {
    const iss = params.get('iss');
    if (iss === null) return params;
    if (!md.hasIssuer) {
      // Not an attack we can tell apart: the provider names itself and we were never told its name.
      throw new BrokerError(
        'provider_misconfigured',
        `Provider ${config.name} identifies itself with an issuer (RFC 9207 iss), but ${issuerSetting(config)} is not set. Set it to the provider's issuer.`,
        { detail: `authorization response iss without configured issuer: ${iss.slice(0, 120)}` },
      );
    }
    const template = md.as.issuer;
    const expected = resolveIssuer(template, tenantFromIssuer(iss, template));
    if (iss !== expected) {
      throw new BrokerError(
        'invalid_state',
        `The sign-in response came from an unexpected issuer. If the provider is yours, check ${issuerSetting(config)}.`,
        { detail: `authorization response iss mismatch: ${iss.slice(0, 120)}` },
      );
    }
    return params;
  }

  return {
    name: config.name,
    kind: config.kind,
    defaultScopes: [...config.defaultScopes],

    loginScopes(scopes) {
      const extra = microsoft ? ['openid', 'profile', 'offline_access'] : oidc ? ['openid'] : [];
      const base = scopes.length > 0 ? scopes : config.defaultScopes;
      return [...new Set([...extra, ...base])];
    },

    async authorizationUrl(params) {
      const md = await metadata();
      const url = new URL(md.as.authorization_endpoint ?? '');
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
      if (params.prompt && !q.has('prompt')) q.set('prompt', params.prompt);
      if (params.claims) q.set('claims', params.claims);
      return url;
    },

    async redeemCode(params) {
      const md = await metadata();
      const checked = checkResponseIssuer(md, params.callbackParams);
      const iss = params.callbackParams.get('iss');
      // oauth4webapi compares `iss` with the issuer it is given: for a template, the tenant issuer checked above
      // (a provider advertising RFC 9207 support needs the `iss` kept in the response, not dropped).
      const responseAs = withIssuer(
        md,
        iss !== null && md.as.issuer.includes('{tenantid}') ? iss : undefined,
      );
      let validated: URLSearchParams;
      try {
        validated = oauth.validateAuthResponse(responseAs, client, checked, params.expectedState);
      } catch (err) {
        if (err instanceof oauth.AuthorizationResponseError) {
          throw new BrokerError('provider_denied', 'The provider did not grant access.', {
            detail: 'authorization response error',
            fields: { providerError: err.error.slice(0, 64) },
          });
        }
        if (
          err instanceof oauth.OperationProcessingError &&
          md.as.authorization_response_iss_parameter_supported === true &&
          !checked.has('iss')
        ) {
          // The provider's metadata promises RFC 9207 `iss`, and the response has none.
          throw new BrokerError(
            'invalid_state',
            `The sign-in response lacks the issuer its provider advertises (RFC 9207). Check ${issuerSetting(config)}.`,
            { detail: 'authorization response without advertised iss' },
          );
        }
        throw new BrokerError('invalid_state', 'The sign-in response did not match this browser session.', {
          detail: 'authorization response validation failed',
        });
      }
      const wantsIdToken = params.scopes.includes('openid') && md.hasIssuer;
      return callToken('code', async () => {
        const additionalParameters = new URLSearchParams(extraToken);
        if (microsoft) additionalParameters.set('scope', tokenScopes(params.scopes));
        if (params.claims) additionalParameters.set('claims', params.claims);
        const response = await oauth.authorizationCodeGrantRequest(
          md.as,
          client,
          clientAuth,
          validated,
          deps.redirectUri,
          usePkce ? params.codeVerifier : oauth.nopkce,
          { ...requestOptions, additionalParameters },
        );
        const issuer = await issuerFor(md, response);
        const result = await oauth.processAuthorizationCodeResponse(
          withIssuer(md, issuer),
          client,
          response,
          {
            expectedNonce: wantsIdToken ? params.nonce : oauth.expectNoNonce,
            requireIdToken: wantsIdToken,
          },
        );
        const claims =
          wantsIdToken && result.id_token && issuer
            ? await verifyIdToken(md, result.id_token, issuer, params.nonce)
            : undefined;
        return toTokenResult(result, claims, params.scopes, defaultExpiresIn);
      });
    },

    async refresh(refreshToken, scopes, opts = {}) {
      const md = await metadata();
      const proveIdentity = opts.identity === true && oidc;
      return callToken('refresh', async () => {
        const additionalParameters = new URLSearchParams(extraToken);
        // Identity proof (import on a pinned connection): an id_token as at sign-in, verified the same way
        // except for the nonce, which belongs to a sign-in this refresh never had.
        const scope = [...(proveIdentity ? ['openid', 'profile'] : []), tokenScopes(scopes)]
          .filter((x) => x.length > 0)
          .join(' ');
        if (scope.length > 0) additionalParameters.set('scope', scope);
        const response = await oauth.refreshTokenGrantRequest(md.as, client, clientAuth, refreshToken, {
          ...requestOptions,
          additionalParameters,
        });
        const issuer = await issuerFor(md, response);
        const result = await oauth.processRefreshTokenResponse(withIssuer(md, issuer), client, response);
        const claims =
          proveIdentity && result.id_token && issuer
            ? await verifyIdToken(md, result.id_token, issuer, undefined)
            : undefined;
        return toTokenResult(result, claims, scopes, defaultExpiresIn);
      });
    },
  };
}

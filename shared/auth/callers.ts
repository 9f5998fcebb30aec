/**
 * @module auth/callers
 * Who may call the token endpoint and the manage API. The platform checks function keys first; when
 * `BROKER_AUTH_MODE=entra`, this module additionally requires an Entra ID bearer token with the right app
 * role, validated with jose against the tenant's JWKS (cached; refetched on an unknown `kid`, at most once per
 * 30 s so a spray of made-up `kid`s cannot turn into a spray of JWKS downloads).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens
 */
import type { HttpRequest } from '@azure/functions';
import {
  createRemoteJWKSet,
  customFetch as joseCustomFetch,
  errors as joseErrors,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose';
import type { CallerAuthConfig } from '../config.ts';
import { BrokerError } from '../errors.ts';
import type { FetchLike } from '../oauth/transport.ts';
import type { Caller } from '../broker/broker.ts';

export type Role = 'caller' | 'admin';

export interface Authenticator {
  authenticate(request: HttpRequest, role: Role): Promise<Caller>;
}

const REALM = 'token-broker';
/** RFC 6750 b64token syntax. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Entra signs with RS256; the others cover generic issuers. Symmetric and `none` are never accepted. */
const ALGORITHMS = ['RS256', 'PS256', 'ES256'];
const CLOCK_TOLERANCE_SECONDS = 60;
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_MAX_AGE_MS = 12 * 3600_000;

/** The key set could not be fetched (network, timeout, non-200, not a JWKS): the token was never judged. */
class KeySetUnavailable extends Error {}

/**
 * Every audience the API answers to. `BROKER_AUTH_AUDIENCE` may list several (comma-separated); an App ID URI of
 * the default form `api://{appId}` also admits the bare app id, because v2 access tokens always carry the API's
 * client id as `aud` while v1 tokens carry the requested resource (usually the App ID URI).
 */
export function acceptedAudiences(setting: string): string[] {
  const out = new Set<string>();
  for (const part of setting.split(',')) {
    const value = part.trim();
    if (!value) continue;
    out.add(value);
    const appId = /^api:\/\/([^/]+)\/?$/.exec(value)?.[1];
    if (appId && GUID.test(appId)) out.add(appId.toLowerCase());
  }
  return [...out];
}

export function createAuthenticator(
  config: CallerAuthConfig,
  fetch: FetchLike,
  timeoutMs: number,
): Authenticator {
  if (config.mode === 'function_key') {
    // The Functions platform has already checked the key (authLevel: function) before we run.
    return { authenticate: () => Promise.resolve({ kind: 'function_key' }) };
  }
  const audience = acceptedAudiences(config.audience ?? '');
  if (!config.jwksUrl || audience.length === 0 || config.issuers.length === 0) {
    throw new Error('entra caller authentication needs issuer, audience and JWKS url');
  }
  // Failures to reach the key set are tagged here, so they cannot be mistaken for a bad token below.
  const keyFetch: FetchLike = async (url, init) => {
    try {
      return await fetch(url, init);
    } catch (err) {
      throw new KeySetUnavailable('key set fetch failed', { cause: err });
    }
  };
  const remote = createRemoteJWKSet(new URL(config.jwksUrl), {
    [joseCustomFetch]: keyFetch,
    timeoutDuration: timeoutMs,
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: JWKS_MAX_AGE_MS,
  });
  const keys: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      // jose reports a non-200 or unparsable answer as a plain JOSEError; a timeout and a non-JWKS body have
      // their own classes. Everything else (unknown kid, unusable key) is about the token and stays a 401.
      if (
        err instanceof KeySetUnavailable ||
        err instanceof joseErrors.JWKSTimeout ||
        err instanceof joseErrors.JWKSInvalid ||
        (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC')
      ) {
        throw new KeySetUnavailable('key set unavailable', { cause: err });
      }
      throw err;
    }
  };
  const issuers = config.issuers;
  const challenge = (error?: string, extra = '') =>
    `Bearer realm="${REALM}"${error ? `, error="${error}"` : ''}${extra}`;

  return {
    async authenticate(request, role) {
      const header = request.headers.get('authorization');
      if (header === null) {
        throw new BrokerError('unauthorized', 'A bearer token is required.', {
          headers: { 'www-authenticate': challenge() },
        });
      }
      const match = /^Bearer +(\S+)$/i.exec(header.trim());
      const token = match?.[1];
      if (!token || !B64TOKEN.test(token)) {
        throw new BrokerError(
          'invalid_request',
          'The Authorization header is malformed; use "Bearer <token>".',
          { headers: { 'www-authenticate': challenge('invalid_request') } },
        );
      }
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: issuers,
          audience,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          algorithms: ALGORITHMS,
          requiredClaims: ['exp', 'iat'],
        }));
      } catch (err) {
        if (err instanceof KeySetUnavailable) {
          // Not the caller's fault: a 401 would send it off to fetch a new token that fails the same way.
          throw new BrokerError(
            'provider_unavailable',
            'The signing keys for bearer tokens are unavailable; try again shortly.',
            { detail: 'caller JWKS unavailable', retryAfterSeconds: 5 },
          );
        }
        throw new BrokerError('invalid_token', 'The bearer token is not valid.', {
          detail: err instanceof joseErrors.JOSEError ? err.code : 'verification failed',
          headers: { 'www-authenticate': challenge('invalid_token') },
        });
      }
      const wanted = role === 'admin' ? config.adminRole : config.callerRole;
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((r): r is string => typeof r === 'string')
        : [];
      // v2 tokens name the calling app in `azp`, v1 tokens in `appid`.
      const appId =
        typeof payload.azp === 'string'
          ? payload.azp
          : typeof payload.appid === 'string'
            ? payload.appid
            : undefined;
      if (!roles.includes(wanted)) {
        throw new BrokerError('insufficient_scope', `The caller lacks the app role ${wanted}.`, {
          headers: { 'www-authenticate': challenge('insufficient_scope', `, scope="${wanted}"`) },
          fields: { caller: appId },
        });
      }
      const caller: Caller = { kind: 'entra' };
      if (appId) caller.appId = appId;
      return caller;
    },
  };
}

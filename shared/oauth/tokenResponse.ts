/**
 * @module oauth/tokenResponse
 * A parsed token endpoint response (oauth4webapi) → what the broker keeps. Provider quirks are handled here, in
 * one place: no `expires_in` (the provider's documented default, flagged as assumed), `expires_in` or
 * `refresh_in` as strings, no `refresh_token` in a refresh response (the broker keeps the old one), the
 * `refresh_token_expires_in` some providers send, and no `scope` (the scopes asked for).
 */
import type { JWTPayload } from 'jose';
import type * as oauth from 'oauth4webapi';
import type { ConnectedIdentity } from '../store/types.ts';

export interface TokenResult {
  accessToken: string;
  tokenType: string;
  /** Lifetime as the provider stated it; the broker turns it into absolute times with its own clock. */
  expiresInSeconds: number;
  /** True when the provider sent no `expires_in` and `expiresInSeconds` is the provider's configured default. */
  expiresInAssumed?: boolean;
  /** Microsoft `refresh_in`: renew after this many seconds even though the token is still valid. */
  refreshInSeconds?: number;
  /** How long the refresh token (the grant) lives, when the provider says so (`refresh_token_expires_in`). */
  refreshTokenExpiresInSeconds?: number;
  /** Scopes the provider says the access token carries (the requested ones when it does not say). */
  scope: string;
  refreshToken?: string;
  identity?: ConnectedIdentity;
}

/** A positive number of seconds from a number or a numeric string (some providers send `"3599"`). */
export function positiveSeconds(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

export function toTokenResult(
  res: oauth.TokenEndpointResponse,
  claims: JWTPayload | undefined,
  requested: readonly string[],
  defaultExpiresInSeconds: number,
): TokenResult {
  // oauth4webapi already turns a numeric-string `expires_in` into a number; the rest it leaves as sent.
  const stated = positiveSeconds(res.expires_in);
  const expiresIn = stated ?? defaultExpiresInSeconds;
  const result: TokenResult = {
    accessToken: res.access_token,
    tokenType: res.token_type === 'bearer' ? 'Bearer' : res.token_type,
    expiresInSeconds: expiresIn,
    scope: typeof res.scope === 'string' && res.scope.length > 0 ? res.scope : requested.join(' '),
  };
  if (stated === undefined) result.expiresInAssumed = true;
  const extra = res as unknown as { refresh_in?: unknown; refresh_token_expires_in?: unknown };
  const refreshIn = positiveSeconds(extra.refresh_in);
  if (refreshIn !== undefined && refreshIn < expiresIn) result.refreshInSeconds = refreshIn;
  const grantLifetime = positiveSeconds(extra.refresh_token_expires_in);
  if (grantLifetime !== undefined) result.refreshTokenExpiresInSeconds = grantLifetime;
  if (typeof res.refresh_token === 'string' && res.refresh_token.length > 0)
    result.refreshToken = res.refresh_token;
  if (claims) result.identity = identityFrom(claims);
  return result;
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

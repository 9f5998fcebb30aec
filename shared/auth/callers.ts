/**
 * @module auth/callers
 * Who may call the token endpoint and the manage API. The platform checks function keys first; when
 * `BROKER_AUTH_MODE=entra`, this module additionally requires an Entra ID bearer token with the right app
 * role, validated with jose against the tenant's JWKS (cached; refetched on an unknown `kid`).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 */
import type { HttpRequest } from '@azure/functions';
import { createRemoteJWKSet, customFetch as joseCustomFetch, errors as joseErrors, jwtVerify } from 'jose';
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

export function createAuthenticator(config: CallerAuthConfig, fetch: FetchLike, timeoutMs: number): Authenticator {
  if (config.mode === 'function_key') {
    // The Functions platform has already checked the key (authLevel: function) before we run.
    return { authenticate: () => Promise.resolve({ kind: 'function_key' }) };
  }
  if (!config.jwksUrl || !config.audience || config.issuers.length === 0) {
    throw new Error('entra caller authentication needs issuer, audience and JWKS url');
  }
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
    [joseCustomFetch]: fetch as never,
    timeoutDuration: timeoutMs,
    cooldownDuration: 30_000,
    cacheMaxAge: 12 * 3600_000,
  });
  const audience = config.audience;
  const issuers = config.issuers;
  return {
    async authenticate(request, role) {
      const header = request.headers.get('authorization');
      if (header === null) {
        throw new BrokerError('unauthorized', 'A bearer token is required.', {
          headers: { 'www-authenticate': `Bearer realm="${REALM}"` },
        });
      }
      const match = /^Bearer +(\S+)$/i.exec(header.trim());
      const token = match?.[1];
      if (!token || !B64TOKEN.test(token)) {
        throw new BrokerError('invalid_request', 'The Authorization header is malformed; use "Bearer <token>".', {
          headers: { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_request"` },
        });
      }
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: issuers,
          audience,
          clockTolerance: 60,
          algorithms: ['RS256', 'PS256', 'ES256'],
          requiredClaims: ['exp', 'iat'],
        }));
      } catch (err) {
        throw new BrokerError('invalid_token', 'The bearer token is not valid.', {
          detail: err instanceof joseErrors.JOSEError ? err.code : 'verification failed',
          headers: { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` },
        });
      }
      const wanted = role === 'admin' ? config.adminRole : config.callerRole;
      const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
      const appId = typeof payload.azp === 'string' ? payload.azp : typeof payload.appid === 'string' ? payload.appid : undefined;
      if (!roles.includes(wanted)) {
        throw new BrokerError('insufficient_scope', `The caller lacks the app role ${wanted}.`, {
          headers: { 'www-authenticate': `Bearer realm="${REALM}", error="insufficient_scope", scope="${wanted}"` },
          fields: { caller: appId },
        });
      }
      const caller: Caller = { kind: 'entra' };
      if (appId) caller.appId = appId;
      return caller;
    },
  };
}

/**
 * @module demo-idp/rewrite
 * Translates Microsoft-style requests into what oidc-provider understands, before it sees them:
 *
 * - Scopes: `https://graph.microsoft.com/Mail.Send` (or short `Mail.Send`) stays a scope string — the resource's
 *   scopes are registered with their full prefixed names, so responses and grants keep Microsoft's spelling — and
 *   the prefix becomes an RFC 8707 `resource` parameter (one per resource at /authorize, the first one at /token).
 * - `offline_access`: OIDC only honours it with `prompt=consent`, Microsoft always does; the front adds the prompt
 *   and a marker so an already-consented app skips the page.
 * - Client authentication: a secret in HTTP Basic is moved into the body, so secret clients may use either form.
 * - Microsoft-only rejections: `resource` on v2 endpoints (AADSTS901002), `Origin` on confidential token requests
 *   (AADSTS9002326), codes redeemed on another tenant path (AADSTS700005), client credentials without `/.default`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseBasicAuth, type ClientAuthMethod, type RegisteredClient } from './directory.ts';
import { fullScope, parseScopes, type MicrosoftError } from './microsoft.ts';
import { encodeAuthorizeError, PARAM_AUTO_CONSENT, PARAM_ERROR } from './provider.ts';
import { DEFAULT_SCOPE, type ResourceRegistry } from './resources.ts';
import type { MemoryStore } from './store.ts';

export interface AuthorizeRewriteDeps {
  resources: ResourceRegistry;
  clients: ReadonlyMap<string, RegisteredClient>;
  tenantName: string;
}

/** Rewrites authorization-request parameters in place. MS-specific errors ride along in {@link PARAM_ERROR}. */
export function rewriteAuthorizeParams(params: URLSearchParams, deps: AuthorizeRewriteDeps): void {
  for (const key of [...params.keys()]) if (key.startsWith('demo_idp_')) params.delete(key);
  let error: string | undefined;
  const fail = (err: string, code: number, message: string) => {
    error ??= encodeAuthorizeError(err, code, message);
  };

  if (params.has('resource')) {
    params.delete('resource');
    fail('invalid_request', 901002, "The 'resource' request parameter is not supported.");
  }

  const prompts = (params.get('prompt') ?? '').split(' ').filter(Boolean);
  // oidc-provider has no account picker; a fresh sign-in is the closest equivalent.
  const promptList = prompts.map((p) => (p === 'select_account' ? 'login' : p));

  const scope = params.get('scope');
  if (scope !== null) {
    const parsed = parseScopes(scope);
    const clientName = deps.clients.get(params.get('client_id') ?? '')?.name ?? params.get('client_id') ?? '';
    for (const bad of parsed.invalid) {
      fail(
        'invalid_scope',
        70011,
        `The provided value for the input parameter 'scope' is not valid. The scope ${bad} is not valid.`,
      );
    }
    const scopes: string[] = [];
    const resources: string[] = [];
    for (const resource of parsed.resources) {
      if (!deps.resources.has(resource)) {
        fail(
          'invalid_resource',
          500011,
          `The resource principal named ${resource} was not found in the tenant named ${deps.tenantName}.`,
        );
        continue;
      }
      let any = false;
      for (const name of parsed.byResource.get(resource) ?? []) {
        const canonical = deps.resources.canonicalName(resource, name);
        if (canonical === DEFAULT_SCOPE) {
          fail(
            'invalid_scope',
            70011,
            `The demo IdP does not support '${resource}/.default' at the authorize endpoint; list the scopes.`,
          );
        } else if (!canonical) {
          fail(
            'invalid_client',
            650053,
            `The application '${clientName}' asked for scope '${name}' that doesn't exist on the resource '${resource}'.`,
          );
        } else {
          scopes.push(fullScope(resource, canonical));
          any = true;
        }
      }
      if (any) resources.push(resource);
    }
    params.set('scope', [...parsed.oidc, ...scopes].join(' '));
    for (const resource of resources) params.append('resource', resource);
    if (
      parsed.oidc.includes('offline_access') &&
      !promptList.includes('none') &&
      !promptList.includes('consent')
    ) {
      promptList.push('consent');
      params.set(PARAM_AUTO_CONSENT, '1');
    }
  }
  if (promptList.length) params.set('prompt', [...new Set(promptList)].join(' '));
  if (error) params.set(PARAM_ERROR, error);
}

export type ClientAuthKind = ClientAuthMethod;

export interface TokenRewriteDeps {
  resources: ResourceRegistry;
  clients: ReadonlyMap<string, RegisteredClient>;
  store: MemoryStore;
  codeAuthorities: ReadonlyMap<string, { key: string; at: number }>;
  revokedRefreshTokens: ReadonlySet<string>;
}

export interface TokenRoute {
  tenantId: string;
  authorityKey: string;
}

export interface TokenRewriteResult {
  body: URLSearchParams;
  headers: IncomingHttpHeaders;
  grantType: string;
  clientId?: string;
  clientAuth: ClientAuthKind;
  revoked: boolean;
  error?: MicrosoftError;
}

function assertionSubject(assertion: string): string | undefined {
  try {
    const payload: unknown = JSON.parse(
      Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8'),
    );
    const sub =
      typeof payload === 'object' && payload !== null ? (payload as { sub?: unknown }).sub : undefined;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

interface RefreshTokenGrantView {
  /** Resources the grant covers, in the order they were requested. */
  resources: string[];
  /** Full scope strings the grant holds for a resource. */
  scopesFor(resource: string): string[];
}

/** What a refresh token's grant has consent for; undefined when the token is unknown. */
function grantView(store: MemoryStore, ns: string, refreshToken: string): RefreshTokenGrantView | undefined {
  const rt = store.get(ns, 'RefreshToken', refreshToken);
  if (!rt || typeof rt.grantId !== 'string') return undefined;
  const raw = store.get(ns, 'Grant', rt.grantId)?.resources;
  const byResource = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const ordered = Array.isArray(rt.resource) ? rt.resource : [rt.resource];
  return {
    resources: ordered.filter((r): r is string => typeof r === 'string'),
    scopesFor: (resource) => {
      const value = byResource[resource];
      return typeof value === 'string' ? value.split(' ').filter(Boolean) : [];
    },
  };
}

const scopeError = (message: string): MicrosoftError => ({
  status: 400,
  error: 'invalid_scope',
  code: 70011,
  message,
});

export function rewriteTokenRequest(
  form: URLSearchParams,
  inHeaders: IncomingHttpHeaders,
  route: TokenRoute,
  deps: TokenRewriteDeps,
): TokenRewriteResult {
  const body = new URLSearchParams(form);
  const headers: IncomingHttpHeaders = { ...inHeaders };
  const grantType = body.get('grant_type') ?? '';
  let clientAuth: ClientAuthKind = 'none';

  const basic = parseBasicAuth(headers.authorization);
  if (basic) {
    clientAuth = 'client_secret_basic';
    const bodyId = body.get('client_id');
    if (
      !body.has('client_secret') &&
      !body.has('client_assertion') &&
      (bodyId === null || bodyId === basic.clientId)
    ) {
      body.set('client_id', basic.clientId);
      body.set('client_secret', basic.clientSecret);
      delete headers.authorization;
    }
  } else if (body.has('client_assertion')) {
    clientAuth = 'private_key_jwt';
  } else if (body.has('client_secret')) {
    clientAuth = 'client_secret_post';
  }
  const assertion = body.get('client_assertion');
  const clientId =
    body.get('client_id') ?? (assertion ? assertionSubject(assertion) : undefined) ?? basic?.clientId;
  const client = clientId ? deps.clients.get(clientId) : undefined;
  const refreshToken = body.get('refresh_token');
  const revoked =
    grantType === 'refresh_token' && refreshToken !== null && deps.revokedRefreshTokens.has(refreshToken);
  const result = (error?: MicrosoftError): TokenRewriteResult => ({
    body,
    headers,
    grantType,
    ...(clientId !== undefined ? { clientId } : {}),
    clientAuth,
    revoked,
    ...(error ? { error } : {}),
  });

  if (headers.origin !== undefined && client && client.authMethod !== 'none') {
    return result({
      status: 400,
      error: 'invalid_request',
      code: 9002326,
      message: `Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '${String(headers.origin)}'.`,
    });
  }
  if (body.has('resource') && grantType !== 'client_credentials') {
    return result({
      status: 400,
      error: 'invalid_request',
      code: 901002,
      message: "The 'resource' request parameter is not supported.",
    });
  }

  const parsed = parseScopes(body.get('scope') ?? undefined);
  if (parsed.invalid.length) {
    return result(
      scopeError(
        `The provided value for the input parameter 'scope' is not valid. The scope ${parsed.invalid.join(' ')} is not valid.`,
      ),
    );
  }

  switch (grantType) {
    case 'authorization_code': {
      const issuedOn = deps.codeAuthorities.get(body.get('code') ?? '');
      if (issuedOn && issuedOn.key !== route.authorityKey) {
        return result({
          status: 400,
          error: 'invalid_grant',
          code: 700005,
          message: 'Provided Authorization Code is intended to use against other tenant, thus rejected.',
        });
      }
      const first = parsed.resources[0];
      if (first) body.set('resource', first);
      body.delete('scope');
      break;
    }
    case 'refresh_token': {
      if (!body.has('scope')) break;
      const view = refreshToken ? grantView(deps.store, route.tenantId, refreshToken) : undefined;
      // No resource scope named: like Microsoft, answer for a resource the grant covers (the first).
      const resource = parsed.resources[0] ?? view?.resources[0];
      const scopes: string[] = [];
      if (resource) {
        const consented = view?.scopesFor(resource);
        for (const name of parsed.byResource.get(resource) ?? []) {
          const canonical = deps.resources.canonicalName(resource, name) ?? name;
          if (canonical === DEFAULT_SCOPE)
            scopes.push(...(consented?.length ? consented : [fullScope(resource, DEFAULT_SCOPE)]));
          else scopes.push(fullScope(resource, canonical));
        }
        // Microsoft's token carries every scope consented for the resource, not only the requested ones.
        if (consented && scopes.every((s) => consented.includes(s))) scopes.push(...consented);
        body.set('resource', resource);
      }
      body.set('scope', [...parsed.oidc, ...new Set(scopes)].join(' '));
      break;
    }
    case 'client_credentials': {
      const explicit = body.get('resource');
      let resource: string | undefined;
      if (body.has('scope')) {
        const names = [...parsed.byResource.values()].flat();
        if (
          parsed.oidc.length ||
          parsed.resources.length !== 1 ||
          names.some((n) => n.toLowerCase() !== DEFAULT_SCOPE)
        ) {
          return result({
            status: 400,
            error: 'invalid_scope',
            code: 1002012,
            message:
              'The provided value for scope is not valid. Client credential flows must have a scope value with ' +
              '/.default suffixed to the resource identifier (application ID URI).',
          });
        }
        resource = parsed.resources[0];
      } else if (explicit) {
        resource = explicit;
      } else {
        return result({
          status: 400,
          error: 'invalid_request',
          code: 900144,
          message: "The request body must contain the following parameter: 'scope'.",
        });
      }
      if (resource) {
        body.set('resource', resource);
        body.set('scope', fullScope(resource, DEFAULT_SCOPE));
      }
      break;
    }
  }
  return result();
}

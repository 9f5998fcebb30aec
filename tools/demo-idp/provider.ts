/**
 * @module demo-idp/provider
 * One oidc-provider instance per demo tenant, configured to behave like Microsoft's v2 endpoints: issuer
 * `<origin>/<tid>/v2.0`, routes `/oauth2/v2.0/*` under a `/{tenant}` mount, pairwise `sub`, Microsoft claims in
 * ID and JWT access tokens, resource indicators for resource-prefixed scopes, rotating refresh tokens, and a
 * middleware that reshapes responses (error bodies, discovery issuer, no RFC 9207 `iss` in redirects).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import Provider, { errors, type KoaContextWithOIDC, type OIDCProviderErrorInstance } from 'oidc-provider';
import type { Logger } from '../../shared/log.ts';
import { stableGuid, type DemoUser, type RegisteredClient } from './directory.ts';
import { getMeta, type RequestMeta } from './http.ts';
import {
  AADSTS_TITLES,
  formatTimestamp,
  issuerFor,
  issuerTemplate,
  mapProviderError,
  microsoftErrorBody,
  shapeTokenSuccess,
  type TenantInfo,
} from './microsoft.ts';
import { errorPage, newNonce, pageSecurityHeaders } from './pages.ts';
import type { ResourceRegistry } from './resources.ts';
import type { MemoryStore } from './store.ts';

export interface Runtime {
  origin: string;
  tenants: readonly TenantInfo[];
  users: readonly DemoUser[];
  clients: Map<string, RegisteredClient>;
  resources: ResourceRegistry;
  store: MemoryStore;
  signingJwk: Record<string, unknown>;
  cookieKeys: string[];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  authorizationCodeTtlSeconds: number;
  refreshInSeconds?: number;
  /** code → authority key of the path it was issued on (Microsoft: redeem on the same tenant path, AADSTS700005). */
  codeAuthorities: Map<string, { key: string; at: number }>;
  /** Every code issued and token value answered, superseded ones included (tests scan logs for them). */
  issued: { kind: 'access_token' | 'refresh_token' | 'id_token' | 'code'; value: string }[];
  /** false = refresh tokens are reused (Google, Salesforce); default true (Microsoft and most OIDC servers). */
  rotateRefreshTokens?: boolean;
  tokenQuirks?: TokenQuirks;
  log: Logger;
}

/**
 * Token-response quirks of real providers, applied to successful token responses.
 * - `omitExpiresIn`: Salesforce sends no `expires_in` (its tokens live as long as the org's session timeout).
 * - `expiresInAsString`: `"3599"` instead of 3599 (seen in providers and SDK mocks; RFC 6749 §5.1 says number).
 * - `omitRefreshTokenOnRefresh`: refresh responses carry no refresh token (Google; RFC 6749 §6 "MAY issue").
 * - `refreshTokenExpiresInSeconds`: `refresh_token_expires_in` (Google time-based access, GitHub apps).
 * - `omitScope`: no `scope` (RFC 6749 §5.1: optional when identical to the request).
 */
export interface TokenQuirks {
  omitExpiresIn?: boolean;
  expiresInAsString?: boolean;
  omitRefreshTokenOnRefresh?: boolean;
  refreshTokenExpiresInSeconds?: number;
  omitScope?: boolean;
}

/** A generic OpenID provider instead of Microsoft's shape (see server.ts `oidc`). */
export interface OidcFlavor {
  issuer: string;
  routes: { authorization: string; token: string; jwks: string };
  idTokenAlg: string;
  /** Extra signing key for `idTokenAlg` when it is not RS256. */
  idTokenJwk?: Record<string, unknown>;
  /** RFC 9207: `iss` in authorization responses and advertised in discovery; 'advertised-only' = a provider that
   * advertises it but leaves it out (misbehaving, for the client's check). */
  issParameter: boolean | 'advertised-only';
}

/** Applies {@link TokenQuirks} to a successful token response body. */
export function applyTokenQuirks(
  body: Record<string, unknown>,
  grantType: string,
  quirks: TokenQuirks | undefined,
): Record<string, unknown> {
  if (!quirks) return body;
  const out = { ...body };
  if (quirks.omitExpiresIn) {
    delete out.expires_in;
    delete out.ext_expires_in;
    delete out.refresh_in;
  } else if (quirks.expiresInAsString && typeof out.expires_in === 'number') {
    out.expires_in = String(out.expires_in);
  }
  if (quirks.omitRefreshTokenOnRefresh && grantType === 'refresh_token') delete out.refresh_token;
  if (quirks.refreshTokenExpiresInSeconds !== undefined && typeof out.refresh_token === 'string')
    out.refresh_token_expires_in = quirks.refreshTokenExpiresInSeconds;
  if (quirks.omitScope) delete out.scope;
  return out;
}

/** Extra authorization-request parameters the front adds; never accepted from clients (the front strips them). */
export const PARAM_ERROR = 'demo_idp_error';
export const PARAM_AUTO_CONSENT = 'demo_idp_auto_consent';

const GRANT_TTL_SECONDS = 10 * 365 * 24 * 3600;
const SESSION_TTL_SECONDS = 14 * 24 * 3600;

const MS_CLAIMS_SUPPORTED = [
  'sub',
  'iss',
  'aud',
  'exp',
  'iat',
  'nbf',
  'auth_time',
  'nonce',
  'preferred_username',
  'name',
  'oid',
  'tid',
  'ver',
  'email',
  'sid',
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asProviderError(err: Error): OIDCProviderErrorInstance | undefined {
  return 'error' in err && typeof (err as { error: unknown }).error === 'string'
    ? (err as OIDCProviderErrorInstance)
    : undefined;
}

/** `error|description` carried by {@link PARAM_ERROR}; oidc-provider then delivers it to the redirect URI. */
export function encodeAuthorizeError(error: string, code: number, message: string): string {
  const now = formatTimestamp(new Date());
  return `${error}|AADSTS${code}: ${message}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${now}`;
}

export function createTenantProvider(
  rt: Runtime,
  tenant: TenantInfo,
  index: number,
  flavor?: OidcFlavor,
): Provider {
  const providerErrors = new WeakMap<object, OIDCProviderErrorInstance>();
  const findUser = (id: string | undefined) =>
    rt.users.find((u) => u.objectId === id && u.tenantId === tenant.tenantId);

  const provider = new Provider(flavor?.issuer ?? issuerFor(rt.origin, tenant.tenantId), {
    adapter: rt.store.adapterFactory(flavor ? `oidc:${tenant.tenantId}` : tenant.tenantId, (id) => {
      const md = rt.clients.get(id)?.metadata;
      if (!md) return undefined;
      const copy = structuredClone(md);
      if (flavor) copy.id_token_signed_response_alg = flavor.idTokenAlg;
      return copy;
    }),
    jwks: { keys: flavor?.idTokenJwk ? [rt.signingJwk, flavor.idTokenJwk] : [rt.signingJwk] },
    cookies: {
      keys: rt.cookieKeys,
      names: {
        session: `demo_idp_session_${index}`,
        interaction: 'demo_idp_interaction',
        resume: 'demo_idp_resume',
      },
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    findAccount: (_ctx, id) => {
      const user = findUser(id);
      if (!user) return Promise.resolve(undefined);
      return Promise.resolve({
        accountId: user.objectId,
        claims: () => ({
          sub: user.objectId,
          tid: tenant.tenantId,
          oid: user.objectId,
          name: user.name,
          preferred_username: user.username,
          email: user.username,
          ver: '2.0',
          nbf: Math.floor(Date.now() / 1000),
        }),
      });
    },
    // `tid`, `ver` and `nbf` ride on `openid` so every ID token has them; `oid` needs `profile`, like Microsoft.
    claims: {
      openid: ['sub', 'tid', 'ver', 'nbf'],
      profile: ['name', 'preferred_username', 'oid'],
      email: ['email'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    subjectTypes: ['pairwise'],
    pairwiseIdentifier: (_ctx, accountId, client) =>
      Promise.resolve(
        createHash('sha256').update(`${tenant.tenantId}|${accountId}|${client.clientId}`).digest('base64url'),
      ),
    sectorIdentifierUriValidate: () => false,
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    rotateRefreshToken: rt.rotateRefreshTokens ?? true,
    allowOmittingSingleRegisteredRedirectUri: false,
    clockTolerance: 5,
    clientBasedCORS: () => false,
    extraParams: {
      [PARAM_ERROR]: (_ctx, value) => {
        if (typeof value !== 'string' || !value) return Promise.resolve();
        const bar = value.indexOf('|');
        return Promise.reject(new errors.CustomOIDCProviderError(value.slice(0, bar), value.slice(bar + 1)));
      },
      [PARAM_AUTO_CONSENT]: null,
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: rt.accessTokenTtlSeconds,
      ClientCredentials: rt.accessTokenTtlSeconds,
      AuthorizationCode: rt.authorizationCodeTtlSeconds,
      IdToken: 3600,
      RefreshToken: rt.refreshTokenTtlSeconds,
      Interaction: 3600,
      Session: SESSION_TTL_SECONDS,
      Grant: GRANT_TTL_SECONDS,
    },
    // Mounted at `/{tenant}` by the front, these become Microsoft's paths (or Keycloak's under `/realms/{realm}`).
    routes: flavor?.routes ?? {
      authorization: '/oauth2/v2.0/authorize',
      token: '/oauth2/v2.0/token',
      jwks: '/discovery/v2.0/keys',
    },
    interactions: {
      url: (ctx, interaction) =>
        Promise.resolve(`/${getMeta(ctx.req)?.segment ?? tenant.tenantId}/interaction/${interaction.uid}`),
    },
    renderError: (ctx, out) => {
      const nonce = typeof ctx.state.demoIdpNonce === 'string' ? ctx.state.demoIdpNonce : newNonce();
      const params = ctx.oidc.params ?? {};
      const described = describeAuthorizeError(out.error, out.error_description, params, tenant);
      for (const [k, v] of Object.entries(pageSecurityHeaders(nonce))) ctx.set(k, v);
      ctx.type = 'html';
      ctx.body = errorPage({
        nonce,
        title: 'Sign-in problem',
        message: described.message,
        code: described.code,
      });
      return Promise.resolve();
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Microsoft's userinfo lives on Graph; without it oidc-provider issues resource-bound tokens only.
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      revocation: { enabled: false },
      introspection: { enabled: false },
      claimsParameter: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Microsoft issues a code redemption's token for the first resource of the authorize `scope`.
        defaultResource: (_ctx, _client, oneOf) => Promise.resolve(oneOf?.[0]),
        useGrantedResource: () => Promise.resolve(true),
        getResourceServerInfo: (_ctx, resource) => {
          if (!rt.resources.has(resource)) {
            return Promise.reject(
              new errors.CustomOIDCProviderError(
                'invalid_resource',
                `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${tenant.displayName}.`,
              ),
            );
          }
          return Promise.resolve({
            scope: rt.resources.fullScopes(resource).join(' '),
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: rt.accessTokenTtlSeconds,
            jwt: { sign: { alg: 'RS256' } },
          });
        },
      },
    },
    formats: {
      customizers: {
        // Microsoft-shaped access-token claims (`scp`, `roles`, `tid`, `oid`, `azp`/`appid`, `ver`), typ JWT.
        jwt: (_ctx, token, jwt) => {
          const p = jwt.payload;
          jwt.header = { typ: 'JWT' };
          const clientId = typeof p.client_id === 'string' ? p.client_id : (token.clientId ?? '');
          const scope = typeof p.scope === 'string' ? p.scope : '';
          delete p.client_id;
          delete p.scope;
          const registered = rt.clients.get(clientId);
          const azpacr =
            registered?.authMethod === 'private_key_jwt'
              ? '2'
              : registered?.authMethod === 'none'
                ? '0'
                : '1';
          Object.assign(p, {
            nbf: p.iat,
            ver: '2.0',
            tid: tenant.tenantId,
            azp: clientId,
            appid: clientId,
            azpacr,
            uti: randomBytes(16).toString('base64url'),
          });
          if (token.kind === 'ClientCredentials') {
            const principal = stableGuid(`demo-idp service principal ${tenant.tenantId} ${clientId}`);
            Object.assign(p, { sub: principal, oid: principal, idtyp: 'app' });
            const roles = registered?.config.roles;
            if (roles?.length) p.roles = [...roles];
          } else {
            p.scp = scope
              .split(' ')
              .filter(Boolean)
              .map((s) => s.slice(s.lastIndexOf('/') + 1))
              .join(' ');
            const user = findUser(token.accountId);
            if (user)
              Object.assign(p, { oid: user.objectId, name: user.name, preferred_username: user.username });
          }
          return Promise.resolve();
        },
      },
    },
  });

  provider.on('grant.error', (ctx, err) => {
    const e = asProviderError(err);
    if (e) providerErrors.set(ctx, e);
  });
  provider.on('server_error', (ctx, err) => {
    const e = asProviderError(err);
    if (e) providerErrors.set(ctx, e);
    rt.log.error('demo-idp.server_error', { detail: `${err.name}: ${err.message}` });
  });

  provider.use(async (ctx, next) => {
    const meta = getMeta(ctx.req);
    const nonce = newNonce();
    ctx.state.demoIdpNonce = nonce;
    if (meta?.kind === 'authorize') {
      // Pages oidc-provider itself renders here: errors and the form_post auto-submit (whose script hash it adds
      // to script-src). The form target is the client's redirect URI, hence the scheme sources in form-action.
      ctx.set(
        'content-security-policy',
        `default-src 'none'; script-src 'self'; style-src 'nonce-${nonce}'; img-src 'none'; ` +
          "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
      );
    }
    await next();
    if (!meta) return;
    switch (meta.kind) {
      case 'token':
        await finishToken(ctx, meta);
        break;
      case 'discovery':
        patchDiscovery(ctx, meta);
        break;
      case 'keys':
        patchKeys(ctx, meta);
        break;
      case 'authorize':
        finishAuthorize(ctx, meta);
        break;
    }
  });

  async function finishToken(ctx: KoaContextWithOIDC, meta: RequestMeta): Promise<void> {
    const t = meta.token;
    if (!t) return;
    let error: string | undefined;
    let codes: number[] | undefined;
    const body = ctx.body;
    if (ctx.status >= 400 && isRecord(body) && typeof body.error === 'string') {
      const err = providerErrors.get(ctx);
      const description = typeof body.error_description === 'string' ? body.error_description : undefined;
      const ms = mapProviderError({
        error: body.error,
        detail: err?.error_detail ?? err?.error_description ?? description,
        grantType: t.grantType,
        clientId: t.clientId,
        tenantName: tenant.displayName,
        revoked: t.revoked,
      });
      const shaped = microsoftErrorBody(
        ms,
        rt.origin,
        t.correlationId ? { correlationId: t.correlationId } : {},
      );
      ctx.remove('www-authenticate');
      ctx.body = shaped;
      ctx.status = ms.status;
      error = shaped.error;
      codes = shaped.error_codes;
    } else if (ctx.status === 200 && isRecord(body)) {
      for (const kind of ['access_token', 'refresh_token', 'id_token'] as const) {
        const value = body[kind];
        if (typeof value === 'string') rt.issued.push({ kind, value });
      }
      ctx.body = applyTokenQuirks(
        shapeTokenSuccess(body, {
          grantType: t.grantType,
          ...(rt.refreshInSeconds !== undefined ? { refreshInSeconds: rt.refreshInSeconds } : {}),
        }),
        t.grantType,
        rt.tokenQuirks,
      );
    }
    if (t.afterFault) {
      const fault = await t.afterFault();
      ctx.respond = false;
      if (fault === 'reset') {
        ctx.req.socket.resetAndDestroy();
        t.done(0, 'connection_reset');
        return;
      }
      ctx.res.writeHead(fault.status, {
        ...fault.headers,
        'content-length': String(Buffer.byteLength(fault.body)),
      });
      ctx.res.end(fault.body);
      t.done(fault.status, 'injected_fault');
      return;
    }
    t.done(ctx.status, error, codes);
  }

  function patchDiscovery(ctx: KoaContextWithOIDC, meta: RequestMeta): void {
    if (ctx.status !== 200 || !isRecord(ctx.body)) return;
    if (flavor) {
      // oidc-provider's own document; RFC 9207 advertised only when the responses carry `iss`.
      if (flavor.issParameter === false) {
        const doc: Record<string, unknown> = { ...ctx.body };
        delete doc.authorization_response_iss_parameter_supported;
        ctx.body = doc;
      }
      return;
    }
    const doc: Record<string, unknown> = { ...ctx.body };
    doc.issuer =
      meta.issuerKind === 'template' ? issuerTemplate(rt.origin) : issuerFor(rt.origin, tenant.tenantId);
    // Microsoft sends no RFC 9207 `iss` in authorization responses and does not advertise it.
    delete doc.authorization_response_iss_parameter_supported;
    doc.token_endpoint_auth_methods_supported = [
      'client_secret_post',
      'private_key_jwt',
      'client_secret_basic',
    ];
    doc.claims_supported = MS_CLAIMS_SUPPORTED;
    doc.tenant_region_scope = null;
    doc.cloud_instance_name = new URL(rt.origin).host;
    ctx.body = doc;
  }

  function patchKeys(ctx: KoaContextWithOIDC, meta: RequestMeta): void {
    if (flavor || ctx.status !== 200 || !isRecord(ctx.body) || !Array.isArray(ctx.body.keys)) return;
    // Microsoft lists the issuer each key may sign for; the tenant-independent set carries the template.
    const issuer =
      meta.issuerKind === 'template' ? issuerTemplate(rt.origin) : issuerFor(rt.origin, tenant.tenantId);
    ctx.body = { keys: (ctx.body.keys as unknown[]).map((k) => (isRecord(k) ? { ...k, issuer } : k)) };
  }

  function finishAuthorize(ctx: KoaContextWithOIDC, meta: RequestMeta): void {
    const location = ctx.response.get('location');
    const url = location ? URL.parse(location) : null;
    if (url) {
      const hash = new URLSearchParams(url.hash.slice(1));
      let changed = false;
      const keepIss = flavor?.issParameter === true;
      if (!keepIss && url.searchParams.has('iss')) {
        url.searchParams.delete('iss');
        changed = true;
      }
      if (!keepIss && hash.has('iss')) {
        hash.delete('iss');
        url.hash = hash.toString();
        changed = true;
      }
      if (url.searchParams.get('error') === 'access_denied' && !url.searchParams.has('error_subcode')) {
        url.searchParams.set('error_subcode', 'cancel');
        changed = true;
      }
      const code = url.searchParams.get('code') ?? hash.get('code');
      if (code) rememberCode(code, meta.authorityKey);
      if (changed) ctx.set('location', url.href);
    }
    if (typeof ctx.body === 'string' && flavor?.issParameter === true) {
      const code = /name="code" value="([^"]+)"/.exec(ctx.body)?.[1];
      if (code)
        rememberCode(
          code.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))),
          meta.authorityKey,
        );
    } else if (typeof ctx.body === 'string' && ctx.body.includes('name="iss"')) {
      const html = ctx.body.replace(/\s*<input type="hidden" name="iss" value="[^"]*"\/>/, '');
      ctx.body = html;
      const code = /name="code" value="([^"]+)"/.exec(html)?.[1];
      if (code)
        rememberCode(
          code.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))),
          meta.authorityKey,
        );
    }
  }

  function rememberCode(code: string, key: string): void {
    const now = Date.now();
    for (const [c, v] of rt.codeAuthorities)
      if (now - v.at > rt.authorizationCodeTtlSeconds * 1000) rt.codeAuthorities.delete(c);
    rt.codeAuthorities.set(code, { key, at: now });
    rt.issued.push({ kind: 'code', value: code });
  }

  return provider;
}

/** What the sign-in error page says for errors oidc-provider cannot send back to the client. */
function describeAuthorizeError(
  error: string,
  description: string | undefined,
  params: Record<string, unknown>,
  tenant: TenantInfo,
): { code: number | string; message: string } {
  const clientId = typeof params.client_id === 'string' ? params.client_id : '';
  const redirectUri = typeof params.redirect_uri === 'string' ? params.redirect_uri : '';
  switch (error) {
    case 'invalid_redirect_uri':
      return {
        code: 50011,
        message:
          `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs ` +
          `configured for the application '${clientId}'.`,
      };
    case 'invalid_client':
      return {
        code: 700016,
        message: `Application with identifier '${clientId}' was not found in the directory '${tenant.displayName}'.`,
      };
    case 'invalid_request':
      if (description?.includes('interaction session') || description?.includes('session not found')) {
        return {
          code: 'session_expired',
          message:
            'Your sign-in session expired or this browser blocked its cookies. Start again from the app.',
        };
      }
      return { code: 900144, message: description ?? AADSTS_TITLES[900144] ?? 'Invalid request.' };
    default:
      return { code: error, message: description ?? error };
  }
}

/**
 * @module demo-idp/server
 * A local authorization server shaped like the Microsoft identity platform v2, for `npm start` and for the
 * integration, end-to-end, benchmark and fault tests. It is oidc-provider (one instance per demo tenant) behind a
 * small node:http front that maps Microsoft's `/{tenant}/...` paths, rewrites Microsoft-style scopes and client
 * authentication, serves the sign-in/consent pages, and injects faults and latency on the token endpoint.
 * Listens on loopback only; everything is in memory. See README.md next to this file.
 */
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { createLogger, type Logger } from '../../shared/log.ts';
import {
  DEFAULT_USERS,
  registerClient,
  toDemoUser,
  type DemoClientConfig,
  type DemoUser,
  type DemoUserConfig,
  type RegisteredClient,
} from './directory.ts';
import {
  BodyTooLargeError,
  isFormEncoded,
  readBody,
  sendHtml,
  sendJson,
  setMeta,
  setOriginalUrl,
  syntheticRequest,
  type EndpointKind,
  type RequestMeta,
} from './http.ts';
import { handleInteraction, type InteractionAction } from './interactions.ts';
import {
  AADSTS_TITLES,
  DEMO_TENANT,
  OTHER_TENANT,
  issuerFor,
  microsoftErrorBody,
  resolveTenantSegment,
  type MicrosoftError,
  type ResolvedTenant,
  type TenantInfo,
} from './microsoft.ts';
import { errorPage, indexPage, newNonce, pageSecurityHeaders } from './pages.ts';
import { createTenantProvider, type OidcFlavor, type Runtime, type TokenQuirks } from './provider.ts';
import { DEFAULT_RESOURCES, ResourceRegistry, type ResourceDefinition } from './resources.ts';
import { rewriteAuthorizeParams, rewriteTokenRequest, type ClientAuthKind } from './rewrite.ts';
import { MemoryStore, type RotatedRefreshTokenReuse } from './store.ts';

export type {
  TokenQuirks,
  DemoClientConfig,
  DemoUserConfig,
  DemoUser,
  TenantInfo,
  ResourceDefinition,
  RotatedRefreshTokenReuse,
};
export { DEMO_TENANT, OTHER_TENANT };

export interface StartDemoIdpOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Loopback only; default 127.0.0.1. */
  host?: string;
  clients: DemoClientConfig[];
  /** Access-token lifetime (`expires_in`); default 3600. */
  accessTokenTtlSeconds?: number;
  /** When set (and below the lifetime), token responses carry Microsoft's `refresh_in`. */
  refreshInSeconds?: number;
  /** Refresh-token idle lifetime (each rotation restarts it, like Microsoft's 90-day inactivity window). */
  refreshTokenTtlSeconds?: number;
  /**
   * What presenting a refresh token that was already rotated does. `revoke-family` (default, oidc-provider):
   * invalid_grant (AADSTS70000) and the whole grant is revoked — stricter than Microsoft. `allow` (Microsoft): the
   * superseded token keeps working until its own idle expiry, and each use returns another new token.
   */
  rotatedRefreshTokenReuse?: RotatedRefreshTokenReuse;
  authorizationCodeTtlSeconds?: number;
  /** Replaces the default demo users (adele@ and megan@demo.example, alex@other.example; password `demo`). */
  users?: DemoUserConfig[];
  /** Replaces the two default tenants; the first is the home tenant `common` resolves to. */
  tenants?: TenantInfo[];
  /** Extra resources (APIs) besides Graph, Microsoft Advertising and `api://token-broker`. */
  resources?: ResourceDefinition[];
  /** List the demo accounts and passwords on the sign-in page (default true). */
  showDemoAccounts?: boolean;
  /** No request log lines. */
  quiet?: boolean;
  logger?: Logger;
  /**
   * A generic OpenID provider instead of Microsoft's shape, for the home tenant: Keycloak-style paths
   * (`/realms/{realm}/protocol/openid-connect/{auth,token,certs}`, discovery at
   * `/realms/{realm}/.well-known/openid-configuration`), issuer `<origin>/realms/{realm}`, ID tokens signed with
   * `idTokenAlg`, RFC 9207 `iss` in authorization responses unless `issParameter: false`. The Microsoft paths keep
   * working beside it. Source for the layout: https://www.keycloak.org/securing-apps/oidc-layers
   */
  oidc?: {
    realm?: string;
    idTokenAlg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
    /** RFC 9207 `iss` in authorization responses (default true); 'advertised-only' = advertised but not sent. */
    issParameter?: boolean | 'advertised-only';
    /** false: no discovery document (404), like a plain OAuth server that still signs ID tokens. */
    discovery?: boolean;
  };
  /** Token-response quirks of real providers (see provider.ts `TokenQuirks`). */
  tokenQuirks?: TokenQuirks;
  /** false: refresh tokens are not rotated (Google, Salesforce). Default true. */
  rotateRefreshTokens?: boolean;
}

export interface TokenFault {
  /** How many token requests this fault applies to (default 1). */
  count?: number;
  /** Only requests with this grant_type (default: any). */
  grantType?: string;
  /** HTTP status (default 400 when `error` is set, else 503). */
  status?: number;
  /** Response body: Microsoft-shaped JSON (default), an HTML error page, or nothing. */
  body?: 'json' | 'html' | 'empty';
  retryAfterSeconds?: number;
  /** Delay before answering (or before resetting). */
  delayMs?: number;
  /** Reset the connection instead of answering. */
  reset?: boolean;
  error?: string;
  errorCodes?: number[];
  suberror?: string;
  /** Claims challenge (JSON text) in the error body, as Conditional Access sends with `interaction_required`. */
  claims?: string;
  /** Only requests whose `scope` parameter names this scope or resource (e.g. one API of a multi-resource grant). */
  scope?: string;
  /**
   * `before` (default): the request is not processed. `after`: the IdP processes it (a refresh token is rotated)
   * and the fault replaces the response — the "lost response" case.
   */
  phase?: 'before' | 'after';
}

export interface TokenRequestRecord {
  at: string;
  tenant: string;
  grantType: string;
  clientId?: string;
  clientAuth: ClientAuthKind;
  /** The `scope` parameter as sent by the client. */
  scope?: string;
  /** The request carried a `claims` parameter (a claims challenge passed on, as MSAL does); the IdP ignores it. */
  claims?: boolean;
  status: number;
  error?: string;
  errorCodes?: number[];
  faulted: boolean;
}

export interface DemoIdpStats {
  tokenRequests: number;
  authorizationCodeGrants: number;
  refreshGrants: number;
  clientCredentialsGrants: number;
  authorizeRequests: number;
  /** Zeroes the counters and clears `tokenLog`. */
  reset(): void;
}

export interface DemoEndpoints {
  issuer: string;
  authorization: string;
  token: string;
  discovery: string;
  jwks: string;
}

export interface DemoIdp {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Same as origin: the broker's Microsoft authority host. */
  authorityHost: string;
  /** The demo (home) tenant GUID. */
  tenantId: string;
  /** `${origin}/${tenantId}/v2.0` */
  issuer: string;
  tenants: readonly TenantInfo[];
  users: readonly DemoUser[];
  stats: DemoIdpStats;
  /** Recent token requests (no secrets), newest last, at most 500. */
  tokenLog: readonly TokenRequestRecord[];
  /** Every access, refresh and id token the token endpoint answered with, superseded ones included, and every
   * authorization code issued: what log and response scans search for. */
  issued(): { kind: 'access_token' | 'refresh_token' | 'id_token' | 'code'; value: string }[];
  /** Endpoint URLs for a tenant path segment (default: the demo tenant GUID). */
  endpoints(tenant?: string): DemoEndpoints;
  /** Revoke every grant, refresh token and session of a user ("revoke sessions"); next refresh → invalid_grant 50173. */
  revokeUser(username: string): Promise<void>;
  injectTokenFault(fault: TokenFault): void;
  clearFaults(): void;
  /** Delay added to every token request. */
  setLatency(ms: number): void;
  addClient(client: DemoClientConfig): Promise<void>;
  close(): Promise<void>;
}

interface TenantRuntime {
  tenant: TenantInfo;
  provider: Provider;
  callback: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const TOKEN_LOG_LIMIT = 500;
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A key for a generic-mode ID-token algorithm other than RS256. */
function idTokenKey(alg: 'PS256' | 'ES256' | 'EdDSA'): Record<string, unknown> {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = createHash('sha256')
    .update(JSON.stringify([jwk.n, jwk.x, jwk.y]))
    .digest('base64url')
    .slice(0, 27);
  return { ...jwk, kid, alg, use: 'sig' };
}

function signingKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  // Microsoft kids are short opaque strings; a thumbprint prefix is stable for the key's lifetime.
  const kid = createHash('sha256')
    .update(jwk.n ?? '')
    .digest('base64url')
    .slice(0, 27);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function faultResponse(
  fault: TokenFault,
  origin: string,
  correlationId: string | undefined,
): { status: number; headers: Record<string, string>; body: string } {
  const status = fault.status ?? (fault.error ? 400 : 503);
  const headers: Record<string, string> = { ...NO_STORE };
  if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
  const kind = fault.body ?? 'json';
  if (kind === 'empty') return { status, headers, body: '' };
  if (kind === 'html') {
    const text = `${status} ${STATUS_CODES[status] ?? 'Error'}`;
    headers['content-type'] = 'text/html; charset=utf-8';
    return {
      status,
      headers,
      body: `<!DOCTYPE html><html lang="en"><head><title>${text}</title></head><body><h1>${text}</h1><p>The service is unavailable. Please try again later.</p></body></html>`,
    };
  }
  const defaultCode = status === 429 ? 90055 : status === 500 ? 50000 : status >= 500 ? 90033 : 9002313;
  const codes = fault.errorCodes?.length ? fault.errorCodes : [defaultCode];
  const code = codes[0] ?? defaultCode;
  const error =
    fault.error ??
    (status === 429 || status >= 502
      ? 'temporarily_unavailable'
      : status >= 500
        ? 'server_error'
        : 'invalid_request');
  const err: MicrosoftError = {
    status,
    error,
    code,
    message: AADSTS_TITLES[code] ?? 'Injected fault.',
    ...(fault.suberror ? { suberror: fault.suberror } : {}),
    ...(fault.claims ? { claims: fault.claims } : {}),
  };
  headers['content-type'] = 'application/json; charset=utf-8';
  return {
    status,
    headers,
    body: JSON.stringify(
      microsoftErrorBody(err, origin, correlationId ? { correlationId } : {}, codes.slice(1)),
    ),
  };
}

export async function startDemoIdp(opts: StartDemoIdpOptions): Promise<DemoIdp> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error('demo-idp listens on loopback only (127.0.0.1, ::1 or localhost)');
  const log = opts.quiet
    ? createLogger({}, () => {})
    : (opts.logger ?? createLogger({ function: 'demo-idp' }));

  const tenants = (opts.tenants ?? [DEMO_TENANT, OTHER_TENANT]).map((t) => ({
    ...t,
    tenantId: t.tenantId.toLowerCase(),
  }));
  const firstTenant = tenants[0];
  if (!firstTenant) throw new Error('demo-idp needs at least one tenant');
  const home: TenantInfo = firstTenant;
  const users = (opts.users ?? DEFAULT_USERS).map(toDemoUser);
  for (const u of users) {
    if (!tenants.some((t) => t.tenantId === u.tenantId))
      throw new Error(`demo-idp user '${u.username}' names an unknown tenant`);
  }
  const clients = new Map<string, RegisteredClient>();
  for (const c of opts.clients) clients.set(c.clientId, registerClient(c));
  const resources = new ResourceRegistry([...DEFAULT_RESOURCES, ...(opts.resources ?? [])]);
  const accessTokenTtlSeconds = opts.accessTokenTtlSeconds ?? 3600;
  const rotatedRefreshTokenReuse = opts.rotatedRefreshTokenReuse ?? 'revoke-family';
  if (rotatedRefreshTokenReuse !== 'revoke-family' && rotatedRefreshTokenReuse !== 'allow')
    throw new Error("demo-idp: rotatedRefreshTokenReuse must be 'revoke-family' or 'allow'");

  const stats: DemoIdpStats = {
    tokenRequests: 0,
    authorizationCodeGrants: 0,
    refreshGrants: 0,
    clientCredentialsGrants: 0,
    authorizeRequests: 0,
    reset() {
      stats.tokenRequests = stats.authorizationCodeGrants = stats.refreshGrants = 0;
      stats.clientCredentialsGrants = stats.authorizeRequests = 0;
      tokenLog.length = 0;
    },
  };
  const tokenLog: TokenRequestRecord[] = [];
  const faults: { fault: TokenFault; remaining: number }[] = [];
  const revokedRefreshTokens = new Set<string>();
  let latencyMs = 0;
  const runtimes = new Map<string, TenantRuntime>();
  const showDemoAccounts = opts.showDemoAccounts ?? true;

  const server = createServer((req, res) => {
    const started = Date.now();
    let kind = 'other';
    res.on('finish', () => {
      if (kind === 'token') return; // token requests log with their outcome
      log.info('demo-idp.request', {
        method: req.method,
        route: kind,
        httpStatus: res.statusCode,
        durationMs: Date.now() - started,
      });
    });
    // Defaults for every response; pages and oidc-provider add their own on top.
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', 'no-store');
    route(req, res, (k) => (kind = k)).catch((err: unknown) => {
      log.error('demo-idp.unhandled', {
        detail: err instanceof Error ? `${err.name}: ${err.message}` : 'unknown',
      });
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;

  const runtime: Runtime = {
    origin,
    tenants,
    users,
    clients,
    resources,
    store: new MemoryStore(Date.now, { rotatedRefreshTokenReuse }),
    signingJwk: signingKey(),
    cookieKeys: [randomBytes(32).toString('base64url')],
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 90 * 24 * 3600,
    authorizationCodeTtlSeconds: opts.authorizationCodeTtlSeconds ?? 600,
    ...(opts.refreshInSeconds !== undefined ? { refreshInSeconds: opts.refreshInSeconds } : {}),
    codeAuthorities: new Map(),
    issued: [],
    ...(opts.rotateRefreshTokens !== undefined ? { rotateRefreshTokens: opts.rotateRefreshTokens } : {}),
    ...(opts.tokenQuirks ? { tokenQuirks: opts.tokenQuirks } : {}),
    log,
  };
  if (opts.tokenQuirks?.omitRefreshTokenOnRefresh && opts.rotateRefreshTokens !== false) {
    await closeServer();
    throw new Error('demo-idp: omitRefreshTokenOnRefresh needs rotateRefreshTokens: false');
  }
  const realm = opts.oidc ? (opts.oidc.realm ?? 'demo') : undefined;
  let oidcRuntime: TenantRuntime | undefined;
  if (opts.oidc && realm !== undefined) {
    if (!/^[a-z0-9-]{1,32}$/.test(realm)) {
      await closeServer();
      throw new Error('demo-idp: oidc.realm must be 1-32 lowercase letters, digits or dashes');
    }
    const alg = opts.oidc.idTokenAlg ?? 'RS256';
    const flavor: OidcFlavor = {
      issuer: `${origin}/realms/${realm}`,
      routes: {
        authorization: '/protocol/openid-connect/auth',
        token: '/protocol/openid-connect/token',
        jwks: '/protocol/openid-connect/certs',
      },
      idTokenAlg: alg,
      ...(alg === 'RS256' ? {} : { idTokenJwk: idTokenKey(alg) }),
      issParameter: opts.oidc.issParameter ?? true,
    };
    const provider = createTenantProvider(runtime, home, tenants.length, flavor);
    oidcRuntime = { tenant: home, provider, callback: provider.callback() };
  }
  tenants.forEach((tenant, index) => {
    const provider = createTenantProvider(runtime, tenant, index);
    runtimes.set(tenant.tenantId, { tenant, provider, callback: provider.callback() });
  });

  async function validateClient(id: string): Promise<void> {
    const any = runtimes.get(home.tenantId);
    // oidc-provider validates metadata lazily; find() surfaces a bad registration now instead of at first use.
    await any?.provider.Client.find(id);
  }
  try {
    for (const id of clients.keys()) await validateClient(id);
  } catch (err) {
    await closeServer();
    throw err;
  }

  function resolved(segment: string): ResolvedTenant | undefined {
    return SEGMENT.test(segment) ? resolveTenantSegment(segment, tenants) : undefined;
  }

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    setKind: (k: string) => void,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const parts = url.pathname.split('/').slice(1);
    if (url.pathname === '/') {
      const nonce = newNonce();
      sendHtml(res, 200, indexPage({ nonce, origin, tenants }), pageSecurityHeaders(nonce));
      return;
    }
    if (url.pathname === '/error') {
      const nonce = newNonce();
      const code = Number(url.searchParams.get('code'));
      const title = AADSTS_TITLES[code];
      sendHtml(
        res,
        title ? 200 : 404,
        errorPage({
          nonce,
          title: 'Error code',
          message: title ?? 'Unknown error code.',
          code: title ? `AADSTS${code}` : 'unknown',
        }),
        pageSecurityHeaders(nonce),
      );
      return;
    }
    if (oidcRuntime && realm !== undefined && url.pathname.startsWith(`/realms/${realm}/`)) {
      return routeOidc(req, res, setKind, url, oidcRuntime, realm);
    }
    const [segment = '', ...restParts] = parts;
    const rest = `/${restParts.join('/')}`;
    const kind: EndpointKind | 'interaction' | undefined =
      rest === '/v2.0/.well-known/openid-configuration'
        ? 'discovery'
        : rest === '/discovery/v2.0/keys'
          ? 'keys'
          : rest === '/oauth2/v2.0/token'
            ? 'token'
            : rest === '/oauth2/v2.0/authorize' || /^\/oauth2\/v2\.0\/authorize\/[\w-]+$/.test(rest)
              ? 'authorize'
              : /^\/interaction\/[\w-]+(\/login|\/consent)?$/.test(rest)
                ? 'interaction'
                : undefined;
    if (!kind) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    setKind(kind);
    const tenantRoute = resolved(segment);
    const trt = tenantRoute ? runtimes.get(tenantRoute.tenant.tenantId) : undefined;
    if (!tenantRoute || !trt) {
      const err: MicrosoftError = {
        status: 400,
        error: 'invalid_tenant',
        code: 90002,
        message: `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      };
      if (kind === 'authorize' || kind === 'interaction') {
        const nonce = newNonce();
        sendHtml(
          res,
          400,
          errorPage({ nonce, title: 'Sign-in problem', message: err.message, code: 90002 }),
          pageSecurityHeaders(nonce),
        );
      } else {
        if (kind === 'token') stats.tokenRequests++;
        sendJson(res, 400, microsoftErrorBody(err, origin), NO_STORE);
      }
      return;
    }
    const meta: RequestMeta = {
      kind: kind === 'interaction' ? 'authorize' : kind,
      segment,
      tenantId: tenantRoute.tenant.tenantId,
      issuerKind: tenantRoute.issuerKind,
      authorityKey: tenantRoute.authorityKey,
    };
    switch (kind) {
      case 'discovery':
        return dispatch(req, res, trt, '/.well-known/openid-configuration', meta);
      case 'keys':
        return dispatch(req, res, trt, `/discovery/v2.0/keys`, meta);
      case 'authorize':
        return handleAuthorize(req, res, trt, meta, rest, url);
      case 'interaction': {
        const [, uid = '', step] = restParts;
        return interaction(req, res, trt, segment, uid, step);
      }
      case 'token':
        return handleToken(req, res, trt, meta);
    }
  }

  /** Generic mode: the same front, Keycloak's paths, one realm on the home tenant's users. */
  async function routeOidc(
    req: IncomingMessage,
    res: ServerResponse,
    setKind: (k: string) => void,
    url: URL,
    trt: TenantRuntime,
    realmName: string,
  ): Promise<void> {
    const segment = `realms/${realmName}`;
    const rest = url.pathname.slice(segment.length + 1);
    const kind: EndpointKind | 'interaction' | undefined =
      rest === '/.well-known/openid-configuration'
        ? 'discovery'
        : rest === '/protocol/openid-connect/certs'
          ? 'keys'
          : rest === '/protocol/openid-connect/token'
            ? 'token'
            : rest === '/protocol/openid-connect/auth' ||
                /^\/protocol\/openid-connect\/auth\/[\w-]+$/.test(rest)
              ? 'authorize'
              : /^\/interaction\/[\w-]+(\/login|\/consent)?$/.test(rest)
                ? 'interaction'
                : undefined;
    if (!kind || (kind === 'discovery' && opts.oidc?.discovery === false)) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    setKind(kind);
    const meta: RequestMeta = {
      kind: kind === 'interaction' ? 'authorize' : kind,
      segment,
      tenantId: trt.tenant.tenantId,
      issuerKind: 'concrete',
      authorityKey: segment,
    };
    switch (kind) {
      case 'discovery':
      case 'keys':
        return dispatch(req, res, trt, rest, meta);
      case 'authorize':
        return handleAuthorize(req, res, trt, meta, rest, url, '/protocol/openid-connect/auth');
      case 'interaction': {
        const [, , uid = '', step] = rest.split('/');
        return interaction(req, res, trt, segment, uid, step);
      }
      case 'token':
        return handleToken(req, res, trt, meta, '/protocol/openid-connect/token');
    }
  }

  /** Hands a request to a tenant's oidc-provider, mounted at `/{segment}`. */
  /** `/interaction/{uid}[/login|/consent]`: the sign-in and consent pages, under either route shape. */
  function interaction(
    req: IncomingMessage,
    res: ServerResponse,
    trt: TenantRuntime,
    segment: string,
    uid: string,
    step: string | undefined,
  ): Promise<void> {
    const action: InteractionAction = step === 'login' ? 'login' : step === 'consent' ? 'consent' : 'show';
    return handleInteraction(
      req,
      res,
      { rt: runtime, provider: trt.provider, tenant: trt.tenant, segment, showDemoAccounts },
      uid,
      action,
    );
  }

  async function dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    trt: TenantRuntime,
    inner: string,
    meta: RequestMeta,
  ): Promise<void> {
    const search = new URL(req.url ?? '/', origin).search;
    const target = inner.includes('?') ? inner : `${inner}${search}`;
    setOriginalUrl(req, `/${meta.segment}${target}`);
    req.url = target;
    setMeta(req, meta);
    await trt.callback(req, res);
  }

  async function handleAuthorize(
    req: IncomingMessage,
    res: ServerResponse,
    trt: TenantRuntime,
    meta: RequestMeta,
    rest: string,
    url: URL,
    authorizePath = '/oauth2/v2.0/authorize',
  ): Promise<void> {
    if (rest !== authorizePath) return dispatch(req, res, trt, rest, meta); // resume after a step
    stats.authorizeRequests++;
    let params = new URLSearchParams(url.search);
    if (req.method === 'POST') {
      if (!isFormEncoded(req)) {
        const nonce = newNonce();
        sendHtml(
          res,
          415,
          errorPage({ nonce, title: 'Sign-in problem', message: 'Unsupported request body.' }),
          pageSecurityHeaders(nonce),
        );
        return;
      }
      params = new URLSearchParams(await readBody(req));
    }
    rewriteAuthorizeParams(params, { resources, clients, tenantName: trt.tenant.displayName });
    const target = `${authorizePath}?${params.toString()}`;
    const forward =
      req.method === 'POST'
        ? syntheticRequest(req, {
            method: 'GET',
            url: target,
            headers: { ...req.headers, 'content-type': undefined },
          })
        : req;
    return dispatch(forward, res, trt, target, meta);
  }

  function takeFault(grantType: string, scope: string): TokenFault | undefined {
    const i = faults.findIndex(
      (f) =>
        (f.fault.grantType === undefined || f.fault.grantType === grantType) &&
        (f.fault.scope === undefined || scope.includes(f.fault.scope)),
    );
    const entry = faults[i];
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) faults.splice(i, 1);
    return entry.fault;
  }

  async function handleToken(
    req: IncomingMessage,
    res: ServerResponse,
    trt: TenantRuntime,
    meta: RequestMeta,
    tokenPath = '/oauth2/v2.0/token',
  ): Promise<void> {
    const started = Date.now();
    stats.tokenRequests++;
    const requestId = req.headers['client-request-id'];
    const correlationId =
      typeof requestId === 'string' && /^[0-9a-fA-F-]{36}$/.test(requestId) ? requestId : undefined;
    const record: TokenRequestRecord = {
      at: new Date().toISOString(),
      tenant: meta.segment,
      grantType: '',
      clientAuth: 'none',
      status: 0,
      faulted: false,
    };
    tokenLog.push(record);
    if (tokenLog.length > TOKEN_LOG_LIMIT) tokenLog.shift();
    let finished = false;
    const done = (status: number, error?: string, codes?: number[]) => {
      if (finished) return;
      finished = true;
      record.status = status;
      if (error) record.error = error;
      if (codes) record.errorCodes = codes;
      log.info('demo-idp.token', {
        route: 'token',
        outcome: record.grantType || 'none',
        httpStatus: status,
        providerError: error,
        providerCodes: codes?.join(','),
        durationMs: Date.now() - started,
      });
    };
    const reply = (err: MicrosoftError) => {
      const body = microsoftErrorBody(err, origin, correlationId ? { correlationId } : {});
      sendJson(res, err.status, body, NO_STORE);
      done(err.status, body.error, body.error_codes);
    };

    if (req.method !== 'POST') {
      reply({
        status: 400,
        error: 'invalid_request',
        code: 900561,
        message: 'The endpoint only accepts POST requests.',
      });
      return;
    }
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      reply({ status: 413, error: 'invalid_request', code: 9002313, message: 'Request body too large.' });
      return;
    }
    const form = isFormEncoded(req) ? new URLSearchParams(raw) : undefined;
    const grantType = form?.get('grant_type') ?? '';
    record.grantType = grantType;
    if (form?.has('scope')) record.scope = form.get('scope') ?? '';
    if (form?.has('claims')) record.claims = true;
    if (grantType === 'authorization_code') stats.authorizationCodeGrants++;
    else if (grantType === 'refresh_token') stats.refreshGrants++;
    else if (grantType === 'client_credentials') stats.clientCredentialsGrants++;

    if (latencyMs > 0) await sleep(latencyMs);
    const fault = takeFault(grantType, form?.get('scope') ?? '');
    if (fault && (fault.phase ?? 'before') === 'before') {
      record.faulted = true;
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.reset) {
        req.socket.resetAndDestroy();
        done(0, 'connection_reset');
        return;
      }
      const out = faultResponse(fault, origin, correlationId);
      res.writeHead(out.status, { ...out.headers, 'content-length': String(Buffer.byteLength(out.body)) });
      res.end(out.body);
      done(out.status, 'injected_fault');
      return;
    }

    let forward: IncomingMessage;
    let tokenMeta: RequestMeta['token'];
    if (form) {
      const rewritten = rewriteTokenRequest(form, req.headers, meta, {
        resources,
        clients,
        store: runtime.store,
        codeAuthorities: runtime.codeAuthorities,
        revokedRefreshTokens,
      });
      record.clientAuth = rewritten.clientAuth;
      if (rewritten.clientId !== undefined) record.clientId = rewritten.clientId;
      if (rewritten.error) {
        reply(rewritten.error);
        return;
      }
      forward = syntheticRequest(req, {
        method: 'POST',
        url: tokenPath,
        headers: rewritten.headers,
        body: rewritten.body.toString(),
      });
      tokenMeta = {
        grantType,
        ...(rewritten.clientId !== undefined ? { clientId: rewritten.clientId } : {}),
        ...(correlationId ? { correlationId } : {}),
        revoked: rewritten.revoked,
        done,
      };
    } else {
      forward = syntheticRequest(req, {
        method: 'POST',
        url: tokenPath,
        headers: req.headers,
        body: raw,
      });
      tokenMeta = { grantType, revoked: false, done };
    }
    if (fault) {
      record.faulted = true;
      tokenMeta.afterFault = async () => {
        if (fault.delayMs) await sleep(fault.delayMs);
        return fault.reset ? 'reset' : faultResponse(fault, origin, correlationId);
      };
    }
    await dispatch(forward, res, trt, tokenPath, { ...meta, token: tokenMeta });
    // Anything oidc-provider answered without passing the reshaping middleware still gets a log line.
    done(res.statusCode);
  }

  async function revokeUser(username: string): Promise<void> {
    const user = users.find((u) => u.username === username.trim().toLowerCase());
    if (!user) throw new Error(`demo-idp: unknown user '${username}'`);
    const { store } = runtime;
    for (const ns of runtimes.keys()) {
      for (const [id, rtPayload] of store.entries(ns, 'RefreshToken')) {
        if (rtPayload.accountId === user.objectId) revokedRefreshTokens.add(id);
      }
      for (const [id, grant] of store.entries(ns, 'Grant')) {
        if (grant.accountId !== user.objectId) continue;
        store.revokeByGrantId(ns, id);
        store.delete(ns, 'Grant', id);
      }
      for (const [id, rtPayload] of store.entries(ns, 'RefreshToken')) {
        if (rtPayload.accountId === user.objectId) store.delete(ns, 'RefreshToken', id);
      }
      for (const [id, session] of store.entries(ns, 'Session')) {
        if (session.accountId === user.objectId) store.delete(ns, 'Session', id);
      }
    }
    await Promise.resolve();
  }

  async function closeServer(): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  const endpoints = (tenant: string = home.tenantId): DemoEndpoints =>
    realm !== undefined && tenant === `realms/${realm}`
      ? {
          issuer: `${origin}/realms/${realm}`,
          authorization: `${origin}/realms/${realm}/protocol/openid-connect/auth`,
          token: `${origin}/realms/${realm}/protocol/openid-connect/token`,
          discovery: `${origin}/realms/${realm}/.well-known/openid-configuration`,
          jwks: `${origin}/realms/${realm}/protocol/openid-connect/certs`,
        }
      : microsoftEndpoints(tenant);
  const microsoftEndpoints = (tenant: string): DemoEndpoints => ({
    issuer: issuerFor(origin, resolveTenantSegment(tenant, tenants)?.tenant.tenantId ?? tenant),
    authorization: `${origin}/${tenant}/oauth2/v2.0/authorize`,
    token: `${origin}/${tenant}/oauth2/v2.0/token`,
    discovery: `${origin}/${tenant}/v2.0/.well-known/openid-configuration`,
    jwks: `${origin}/${tenant}/discovery/v2.0/keys`,
  });

  return {
    origin,
    authorityHost: origin,
    tenantId: home.tenantId,
    issuer: issuerFor(origin, home.tenantId),
    tenants,
    users,
    stats,
    tokenLog,
    issued: () => [...runtime.issued],
    endpoints,
    revokeUser,
    injectTokenFault(fault) {
      const count = fault.count ?? 1;
      if (!(count > 0)) throw new Error('demo-idp: fault count must be positive');
      faults.push({ fault: { ...fault }, remaining: count });
    },
    clearFaults() {
      faults.length = 0;
    },
    setLatency(ms) {
      if (!(ms >= 0)) throw new Error('demo-idp: latency must be ≥ 0');
      latencyMs = ms;
    },
    async addClient(client) {
      if (clients.has(client.clientId))
        throw new Error(`demo-idp: client '${client.clientId}' already exists`);
      clients.set(client.clientId, registerClient(client));
      try {
        await validateClient(client.clientId);
      } catch (err) {
        clients.delete(client.clientId);
        throw err;
      }
    },
    close: closeServer,
  };
}

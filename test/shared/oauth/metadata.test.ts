/**
 * Provider metadata: OpenID Connect discovery against documents served by loopback servers this file controls
 * (one HTTPS with a self-signed certificate, one plain HTTP for the dev-only `allowInsecureHttp` path), read
 * through the real undici client the broker uses. Document shapes follow:
 * - OpenID Connect Discovery 1.0 §3/§4 (https://openid.net/specs/openid-connect-discovery-1_0.html): the
 *   document lives at `{issuer}/.well-known/openid-configuration` and its `issuer` must equal the issuer asked for;
 * - RFC 8414 §3 (https://www.rfc-editor.org/rfc/rfc8414#section-3): a server without a document answers 404;
 * - Microsoft identity platform v2.0 metadata (https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc,
 *   https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration): the document is found under
 *   `/{tenant}/v2.0`; `common`/`organizations` publish the `{tenantid}` issuer template, a tenant (or
 *   `consumers`, the MSA tenant 9188040d-6c67-4c5b-b112-36a304b66dad) its own GUID issuer.
 */
import assert from 'node:assert/strict';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { Agent, fetch as undiciFetch } from 'undici';
import { BrokerError } from '../../../shared/errors.ts';
import {
  DEFAULT_ID_TOKEN_ALGS,
  isNetworkError,
  issuerSetting,
  type MetadataDeps,
  metadataSource,
  resolveIssuer,
  tenantFromIssuer,
} from '../../../shared/oauth/metadata.ts';
import type { GenericProviderConfig, MicrosoftProviderConfig } from '../../../shared/providerConfig.ts';
import type { FetchLike } from '../../../shared/oauth/transport.ts';

const MSA_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a';
const MS_TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
const WELL_KNOWN = '/.well-known/openid-configuration';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

interface Peer {
  base: string;
  routes: Map<string, Route>;
  /** Path and Accept header of every request, in order. */
  seen: { path: string; accept: string | undefined }[];
  close(): Promise<void>;
}

async function startPeer(tls?: { key: string; cert: string }): Promise<Peer> {
  const routes = new Map<string, Route>();
  const seen: Peer['seen'] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ path: req.url ?? '', accept: req.headers.accept });
    const route = routes.get(req.url ?? '');
    if (route) return route(req, res);
    send(res, 404, { error: 'not_found' });
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    base: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    routes,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((done) => server.close(() => done()));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const json =
  (body: unknown, status = 200): Route =>
  (_req, res) =>
    send(res, status, body);

/** Microsoft's published v2.0 document (trimmed), with the given issuer. */
function microsoftDocument(issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    token_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    end_session_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/logout',
    cloud_instance_name: 'microsoftonline.com',
    msgraph_host: 'graph.microsoft.com',
    ...extra,
  };
}

/** An OpenID Connect Discovery 1.0 §3 document with its required members, endpoints on `base`. */
function oidcDocument(
  issuer: string,
  base: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    userinfo_endpoint: `${base}/userinfo`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    ...extra,
  };
}

function generic(overrides: Partial<GenericProviderConfig> = {}): GenericProviderConfig {
  return {
    kind: 'oauth2',
    name: 'acme',
    clientId: 'client-1',
    credential: { kind: 'none' },
    defaultScopes: ['openid'],
    extraAuthorizeParams: {},
    extraTokenParams: {},
    usePkce: true,
    ...overrides,
  };
}

function microsoft(tenant: string, authorityHost: string): MicrosoftProviderConfig {
  return {
    kind: 'microsoft',
    name: 'microsoft',
    clientId: 'client-1',
    tenant,
    authorityHost,
    credential: { kind: 'none' },
    defaultScopes: ['openid'],
  };
}

async function rejection(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof BrokerError, `expected a BrokerError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

let https: Peer;
let http: Peer;
let agent: Agent;
/** Every URL the broker's fetch was asked for. */
const fetched: string[] = [];
let fetchTls: FetchLike;

before(async () => {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  https = await startPeer({ key: pems.private, cert: pems.cert });
  http = await startPeer();
  agent = new Agent({ connect: { ca: pems.cert } });
  fetchTls = async (url, init) => {
    fetched.push(url);
    const response = await undiciFetch(url, {
      method: init.method,
      headers: init.headers as Record<string, string>,
      redirect: 'manual',
      signal: init.signal,
      dispatcher: agent,
    });
    return response as unknown as Response;
  };
});

after(async () => {
  await Promise.all([https.close(), http.close()]);
  await agent.close();
});

beforeEach(() => {
  https.routes.clear();
  http.routes.clear();
  https.seen.length = 0;
  http.seen.length = 0;
  fetched.length = 0;
});

const secure = (): MetadataDeps => ({ fetch: fetchTls, allowInsecureHttp: false, timeoutMs: 5000 });
const insecure = (): MetadataDeps => ({ fetch: fetchTls, allowInsecureHttp: true, timeoutMs: 5000 });

describe('issuerSetting', () => {
  it('names the Microsoft settings for Microsoft and the provider issuer setting otherwise', () => {
    assert.equal(issuerSetting(microsoft('common', 'x')), 'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST');
    assert.equal(issuerSetting(generic({ name: 'github' })), 'BROKER_PROVIDERS.github.issuer');
  });
});

describe('explicit endpoints (no issuer): no discovery', () => {
  it('answers from the settings without any request, the same answer each call', async () => {
    const config = generic({
      authorizationUrl: 'https://idp.test/authorize',
      tokenUrl: 'https://idp.test/token',
    });
    const source = metadataSource(config, secure());
    const first = await source();
    assert.equal(await source(), first);
    assert.deepEqual(first, {
      as: {
        issuer: 'https://idp.test/authorize',
        authorization_endpoint: 'https://idp.test/authorize',
        token_endpoint: 'https://idp.test/token',
        id_token_signing_alg_values_supported: [...DEFAULT_ID_TOKEN_ALGS],
      },
      hasIssuer: false,
      idTokenAlgs: [...DEFAULT_ID_TOKEN_ALGS],
    });
    assert.equal('jwks_uri' in first.as, false);
    assert.deepEqual(fetched, []);
  });

  it('uses a configured key set and ID-token algorithms', async () => {
    const config = generic({
      authorizationUrl: 'https://idp.test/authorize',
      tokenUrl: 'https://idp.test/token',
      jwksUrl: 'https://idp.test/jwks',
      idTokenSigningAlgs: ['ES384'],
    });
    const meta = await metadataSource(config, secure())();
    assert.equal(meta.as.jwks_uri, 'https://idp.test/jwks');
    assert.deepEqual(meta.idTokenAlgs, ['ES384']);
    assert.deepEqual(meta.as.id_token_signing_alg_values_supported, ['ES384']);
  });

  it('refuses a configuration without both endpoint URLs (a programming error, config parsing prevents it)', () => {
    assert.throws(
      () => metadataSource(generic({ authorizationUrl: 'https://idp.test/a' }), secure()),
      /both endpoint/,
    );
    assert.throws(
      () => metadataSource(generic({ tokenUrl: 'https://idp.test/t' }), secure()),
      /both endpoint/,
    );
  });
});

describe('generic provider discovery (OpenID Connect Discovery 1.0)', () => {
  it('reads the document at {issuer}/.well-known/openid-configuration, asking for JSON, through the given fetch', async () => {
    const issuer = `${https.base}/realm`;
    https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base)));
    const meta = await metadataSource(generic({ issuer }), secure())();
    assert.deepEqual(https.seen, [{ path: `/realm${WELL_KNOWN}`, accept: 'application/json' }]);
    assert.deepEqual(fetched, [`${issuer}${WELL_KNOWN}`]);
    assert.equal(meta.hasIssuer, true);
    assert.equal(meta.as.issuer, issuer);
    assert.equal(meta.as.authorization_endpoint, `${https.base}/authorize`);
    assert.equal(meta.as.token_endpoint, `${https.base}/token`);
    assert.equal(meta.as.jwks_uri, `${https.base}/jwks`);
    assert.equal(meta.as.userinfo_endpoint, `${https.base}/userinfo`);
    assert.deepEqual(meta.idTokenAlgs, ['RS256', 'ES256']);
  });

  it('keeps only the verifiable ID-token algorithms the document advertises, and hands them to oauth4webapi', async () => {
    const issuer = `${https.base}/realm`;
    const advertised = ['HS256', 'RS512', 'none', 'PS384', 'Ed25519', 'HS512', 'EdDSA'];
    https.routes.set(
      `/realm${WELL_KNOWN}`,
      json(oidcDocument(issuer, https.base, { id_token_signing_alg_values_supported: advertised })),
    );
    const meta = await metadataSource(generic({ issuer }), secure())();
    assert.deepEqual(meta.idTokenAlgs, ['RS512', 'PS384', 'Ed25519', 'EdDSA']);
    assert.deepEqual(meta.as.id_token_signing_alg_values_supported, meta.idTokenAlgs);
  });

  it('a document that advertises no algorithms: the defaults; configured algorithms win over the document', async () => {
    const issuer = `${https.base}/realm`;
    const doc = oidcDocument(issuer, https.base);
    delete doc.id_token_signing_alg_values_supported;
    https.routes.set(`/realm${WELL_KNOWN}`, json(doc));
    assert.deepEqual((await metadataSource(generic({ issuer }), secure())()).idTokenAlgs, [
      ...DEFAULT_ID_TOKEN_ALGS,
    ]);
    https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base)));
    const meta = await metadataSource(generic({ issuer, idTokenSigningAlgs: ['PS512'] }), secure())();
    assert.deepEqual(meta.idTokenAlgs, ['PS512']);
    assert.deepEqual(meta.as.id_token_signing_alg_values_supported, ['PS512']);
  });

  it('symmetric or none only: a configuration error naming the issuer setting and the advertised list (cut to 300)', async () => {
    const issuer = `${https.base}/realm`;
    https.routes.set(
      `/realm${WELL_KNOWN}`,
      json(oidcDocument(issuer, https.base, { id_token_signing_alg_values_supported: ['HS256', 'none'] })),
    );
    const err = await rejection(metadataSource(generic({ issuer }), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.equal(err.status, 502);
    assert.match(
      err.message,
      /^Provider acme: .*symmetric or none.* Check BROKER_PROVIDERS\.acme\.issuer\.$/,
    );
    assert.equal(
      err.detail,
      'BROKER_PROVIDERS.acme.issuer: id_token_signing_alg_values_supported: HS256,none',
    );
    assert.deepEqual(err.fields, { provider: 'acme' });

    const many = Array.from({ length: 80 }, (_, i) => `HS${i}`);
    https.routes.set(
      `/realm${WELL_KNOWN}`,
      json(oidcDocument(issuer, https.base, { id_token_signing_alg_values_supported: many })),
    );
    const long = await rejection(metadataSource(generic({ issuer }), secure())());
    assert.equal(long.detail?.length, 300);
    assert.ok(
      long.detail?.startsWith(
        'BROKER_PROVIDERS.acme.issuer: id_token_signing_alg_values_supported: HS0,HS1,',
      ),
    );
  });

  it('configured algorithms are filtered too: none verifiable and none advertised is a configuration error', async () => {
    // Config parsing allows only verifiable names; this module does not rely on it.
    const issuer = `${https.base}/realm`;
    const doc = oidcDocument(issuer, https.base);
    delete doc.id_token_signing_alg_values_supported;
    https.routes.set(`/realm${WELL_KNOWN}`, json(doc));
    const err = await rejection(
      metadataSource(generic({ issuer, idTokenSigningAlgs: ['HS256'] }), secure())(),
    );
    assert.equal(err.code, 'provider_misconfigured');
    assert.equal(err.detail, 'BROKER_PROVIDERS.acme.issuer: id_token_signing_alg_values_supported: ');
  });

  it('explicit endpoint settings win over the document', async () => {
    const issuer = `${https.base}/realm`;
    https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base)));
    const meta = await metadataSource(
      generic({
        issuer,
        authorizationUrl: 'https://public.idp.test/authorize',
        tokenUrl: 'https://public.idp.test/token',
        jwksUrl: 'https://public.idp.test/jwks',
      }),
      secure(),
    )();
    assert.equal(meta.as.authorization_endpoint, 'https://public.idp.test/authorize');
    assert.equal(meta.as.token_endpoint, 'https://public.idp.test/token');
    assert.equal(meta.as.jwks_uri, 'https://public.idp.test/jwks');
    // Still the document's answer otherwise: its issuer and its algorithms.
    assert.equal(meta.as.issuer, issuer);
    assert.deepEqual(meta.idTokenAlgs, ['RS256', 'ES256']);
  });

  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
    for (const [what, value] of [
      ['missing', undefined],
      ['not a URL', 'not a url'],
      ['not a string', [`https://idp.test/${field}`]],
    ] as const) {
      it(`a document whose ${field} is ${what}: a configuration error naming ${field}`, async () => {
        const issuer = `${https.base}/realm`;
        https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base, { [field]: value })));
        const err = await rejection(metadataSource(generic({ issuer }), secure())());
        assert.equal(err.code, 'provider_misconfigured');
        assert.equal(err.detail, `BROKER_PROVIDERS.acme.issuer: ${field} missing`);
        assert.match(
          err.message,
          new RegExp(`no usable ${field}\\. Check BROKER_PROVIDERS\\.acme\\.issuer\\.$`),
        );
      });
    }
  }

  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
    it(`an http ${field} is refused unless insecure HTTP is allowed`, async () => {
      const issuer = `${https.base}/realm`;
      https.routes.set(
        `/realm${WELL_KNOWN}`,
        json(oidcDocument(issuer, https.base, { [field]: `http://idp.test/${field}` })),
      );
      const err = await rejection(metadataSource(generic({ issuer }), secure())());
      assert.equal(err.code, 'provider_misconfigured');
      assert.equal(err.detail, `BROKER_PROVIDERS.acme.issuer: ${field} not https`);
      const meta = await metadataSource(generic({ issuer }), insecure())();
      assert.equal(meta.as[field], `http://idp.test/${field}`);
    });
  }

  it('allowInsecureHttp: discovery over plain http works; without it an http issuer is a configuration error', async () => {
    const issuer = `${http.base}/dev`;
    http.routes.set(`/dev${WELL_KNOWN}`, json(oidcDocument(issuer, http.base)));
    const meta = await metadataSource(generic({ issuer }), insecure())();
    assert.equal(meta.as.token_endpoint, `${http.base}/token`);
    assert.equal(http.seen.length, 1);

    const err = await rejection(metadataSource(generic({ issuer }), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.match(err.detail ?? '', /HTTPS/);
    assert.equal(http.seen.length, 1, 'nothing was sent over http');
  });

  it('a document for another issuer: a configuration error naming where it was read and why', async () => {
    const issuer = `${https.base}/realm`;
    https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(`${https.base}/other`, https.base)));
    const err = await rejection(metadataSource(generic({ issuer }), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.ok(err.message.includes(`its OpenID configuration at ${issuer}/.well-known/openid-configuration`));
    assert.match(err.message, /"issuer" property does not match/);
    assert.match(err.detail ?? '', /^BROKER_PROVIDERS\.acme\.issuer: .*"issuer" property does not match/);
    assert.ok(err.cause instanceof Error);
  });

  it('a fetch that fails with a non-Error: a configuration error ("unusable document")', async () => {
    const issuer = `${https.base}/realm`;
    // The point of this test: a fetch hook that rejects with something other than an Error.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    const odd: FetchLike = () => Promise.reject('not an Error');
    const err = await rejection(metadataSource(generic({ issuer }), { ...secure(), fetch: odd })());
    assert.equal(err.code, 'provider_misconfigured');
    assert.equal(err.detail, 'BROKER_PROVIDERS.acme.issuer: unusable document');
    assert.equal(err.cause, 'not an Error');
  });

  describe('no document (404, RFC 8414 §3)', () => {
    const endpoints = {
      authorizationUrl: 'https://idp.test/authorize',
      tokenUrl: 'https://idp.test/token',
      jwksUrl: 'https://idp.test/jwks',
    };

    it('with every endpoint configured: the settings, under the configured issuer', async () => {
      const issuer = `${https.base}/nodoc`;
      const meta = await metadataSource(generic({ issuer, ...endpoints }), secure())();
      assert.deepEqual(
        https.seen.map((r) => r.path),
        [`/nodoc${WELL_KNOWN}`],
      );
      assert.deepEqual(meta, {
        as: {
          issuer,
          authorization_endpoint: endpoints.authorizationUrl,
          token_endpoint: endpoints.tokenUrl,
          jwks_uri: endpoints.jwksUrl,
          id_token_signing_alg_values_supported: [...DEFAULT_ID_TOKEN_ALGS],
        },
        hasIssuer: true,
        idTokenAlgs: [...DEFAULT_ID_TOKEN_ALGS],
      });
    });

    for (const missing of ['authorizationUrl', 'tokenUrl', 'jwksUrl'] as const) {
      it(`without ${missing}: a configuration error (the document was needed)`, async () => {
        const issuer = `${https.base}/nodoc`;
        const partial: Partial<GenericProviderConfig> = { ...endpoints };
        delete partial[missing];
        const err = await rejection(metadataSource(generic({ issuer, ...partial }), secure())());
        assert.equal(err.code, 'provider_misconfigured');
        assert.match(err.detail ?? '', /unexpected HTTP status code/);
      });
    }

    it('a document that exists is read even when every endpoint is configured', async () => {
      const issuer = `${https.base}/realm`;
      https.routes.set(
        `/realm${WELL_KNOWN}`,
        json(oidcDocument(issuer, https.base, { id_token_signing_alg_values_supported: ['ES512'] })),
      );
      const meta = await metadataSource(generic({ issuer, ...endpoints }), secure())();
      assert.deepEqual(meta.idTokenAlgs, ['ES512']);
    });
  });

  describe('an unavailable provider is transient, not a configuration error', () => {
    for (const status of [500, 503, 429]) {
      it(`HTTP ${status}: provider_unavailable, retry after 5 s`, async () => {
        const issuer = `${https.base}/realm`;
        https.routes.set(`/realm${WELL_KNOWN}`, json({ error: 'busy' }, status));
        const err = await rejection(metadataSource(generic({ issuer }), secure())());
        assert.equal(err.code, 'provider_unavailable');
        assert.equal(err.retryAfterSeconds, 5);
        assert.equal(err.detail, `discovery HTTP ${status}`);
        assert.deepEqual(err.fields, { provider: 'acme' });
        assert.match(err.message, /^Provider acme: its discovery document is unavailable right now/);
      });
    }

    for (const status of [400, 403, 428]) {
      it(`HTTP ${status}: a configuration error`, async () => {
        const issuer = `${https.base}/realm`;
        https.routes.set(`/realm${WELL_KNOWN}`, json({ error: 'nope' }, status));
        const err = await rejection(metadataSource(generic({ issuer }), secure())());
        assert.equal(err.code, 'provider_misconfigured');
      });
    }

    it('connection refused: provider_unavailable with the network error as cause', async () => {
      const gone = await startPeer();
      await gone.close();
      const issuer = `${gone.base}/realm`;
      const err = await rejection(metadataSource(generic({ issuer }), insecure())());
      assert.equal(err.code, 'provider_unavailable');
      assert.equal(err.retryAfterSeconds, 5);
      assert.equal(err.detail, 'discovery request failed');
      assert.deepEqual(err.fields, { provider: 'acme' });
      assert.ok(err.cause instanceof Error && isNetworkError(err.cause));
    });

    it('no answer within timeoutMs: provider_unavailable (the request is aborted)', async () => {
      const issuer = `${https.base}/slow`;
      let arrived!: () => void;
      const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
      https.routes.set(`/slow${WELL_KNOWN}`, () => arrived()); // never answers
      const err = await rejection(metadataSource(generic({ issuer }), { ...secure(), timeoutMs: 200 })());
      await requestArrived;
      assert.equal(err.code, 'provider_unavailable');
      assert.equal(err.detail, 'discovery request failed');
    });
  });

  describe('caching', () => {
    it('one request for concurrent and later calls', async () => {
      const issuer = `${https.base}/realm`;
      https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base)));
      const source = metadataSource(generic({ issuer }), secure());
      const [a, b] = await Promise.all([source(), source()]);
      const c = await source();
      assert.equal(a, b);
      assert.equal(a, c);
      assert.equal(https.seen.length, 1);
    });

    it('a failed attempt is not kept: the next call asks again', async () => {
      const issuer = `${https.base}/realm`;
      https.routes.set(`/realm${WELL_KNOWN}`, json({ error: 'busy' }, 503));
      const source = metadataSource(generic({ issuer }), secure());
      assert.equal((await rejection(source())).code, 'provider_unavailable');
      https.routes.set(`/realm${WELL_KNOWN}`, json(oidcDocument(issuer, https.base)));
      assert.equal((await source()).as.issuer, issuer);
      assert.equal(https.seen.length, 2);
    });
  });
});

describe('Microsoft discovery (v2.0 metadata)', () => {
  const serve = (tenantPath: string, doc: unknown, peer = https): void => {
    peer.routes.set(
      `/${tenantPath}/v2.0${WELL_KNOWN}`,
      typeof doc === 'string' ? (_q, s) => send(s, 200, doc) : json(doc),
    );
  };

  it('common: the {tenantid} issuer template, read from /common/v2.0 on the authority host', async () => {
    serve('common', microsoftDocument(MS_TEMPLATE));
    const meta = await metadataSource(microsoft('common', https.base), secure())();
    assert.deepEqual(
      https.seen.map((r) => r.path),
      [`/common/v2.0${WELL_KNOWN}`],
    );
    assert.equal(meta.as.issuer, MS_TEMPLATE);
    assert.equal(meta.hasIssuer, true);
    assert.equal(meta.as.token_endpoint, 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
    assert.equal(meta.as.jwks_uri, 'https://login.microsoftonline.com/common/discovery/v2.0/keys');
    assert.deepEqual(meta.idTokenAlgs, ['RS256']);
  });

  it('organizations (any letter case): the template is accepted', async () => {
    serve('Organizations', microsoftDocument(MS_TEMPLATE));
    const meta = await metadataSource(microsoft('Organizations', https.base), secure())();
    assert.equal(meta.as.issuer, MS_TEMPLATE);
  });

  it('a named tenant that gets the template: a configuration error naming both Microsoft settings', async () => {
    serve('contoso.onmicrosoft.com', microsoftDocument(MS_TEMPLATE));
    const err = await rejection(metadataSource(microsoft('contoso.onmicrosoft.com', https.base), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.match(
      err.message,
      /multi-tenant issuer for a single tenant\. Check MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST\.$/,
    );
    assert.equal(
      err.detail,
      'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST: template issuer for a named tenant',
    );
    assert.deepEqual(err.fields, { provider: 'microsoft' });
  });

  it('consumers: the MSA tenant GUID issuer', async () => {
    const issuer = `https://login.microsoftonline.com/${MSA_TENANT}/v2.0`;
    serve('consumers', microsoftDocument(issuer));
    assert.equal((await metadataSource(microsoft('consumers', https.base), secure())()).as.issuer, issuer);
  });

  it('a tenant GUID: its own issuer, compared without letter case', async () => {
    const issuer = `https://login.microsoftonline.com/${TENANT}/v2.0`;
    serve(TENANT.toUpperCase(), microsoftDocument(issuer));
    const meta = await metadataSource(microsoft(TENANT.toUpperCase(), https.base), secure())();
    assert.equal(meta.as.issuer, issuer);
  });

  it('a tenant GUID answered with another tenant: a configuration error', async () => {
    serve(TENANT, microsoftDocument(`https://login.microsoftonline.com/${OTHER_TENANT}/v2.0`));
    const err = await rejection(metadataSource(microsoft(TENANT, https.base), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.equal(err.detail, 'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST: issuer tenant differs');
  });

  it('a domain tenant: the GUID issuer its document names', async () => {
    const issuer = `https://login.microsoftonline.com/${OTHER_TENANT}/v2.0`;
    serve('contoso.com', microsoftDocument(issuer));
    assert.equal((await metadataSource(microsoft('contoso.com', https.base), secure())()).as.issuer, issuer);
  });

  it('an http issuer (a loopback stand-in) has the recognised shape', async () => {
    const issuer = `${http.base}/${TENANT}/v2.0`;
    serve(TENANT, microsoftDocument(issuer), http);
    const meta = await metadataSource(microsoft(TENANT, http.base), insecure())();
    assert.equal(meta.as.issuer, issuer);
  });

  for (const issuer of [
    'https://login.microsoftonline.com/contoso/v2.0',
    `https://sts.windows.net/${TENANT}/`,
    `https://login.microsoftonline.com/${TENANT}/v2.0/extra`,
    `https://login.microsoftonline.com/${TENANT}/v2x0`,
    `https://login.microsoftonline.com/x/${TENANT}/v2.0`,
    `xhttps://login.microsoftonline.com/${TENANT}/v2.0`,
    `https://login.microsoftonline.com/${TENANT}0/v2.0`,
    `https://login.microsoftonline.com/{tenantid}x/v2.0`,
  ]) {
    it(`an issuer the broker does not recognise (${issuer}): a configuration error`, async () => {
      serve('contoso.com', microsoftDocument(issuer));
      const err = await rejection(metadataSource(microsoft('contoso.com', https.base), secure())());
      assert.equal(err.code, 'provider_misconfigured');
      assert.equal(err.detail, 'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST: issuer shape');
    });
  }

  for (const [what, doc] of [
    ['not JSON', '<html>sign-in page</html>'],
    ['without an issuer', microsoftDocument(MS_TEMPLATE, { issuer: undefined })],
    ['with an issuer that is not a URL', microsoftDocument('login.microsoftonline.com/common')],
    ['with a non-string issuer', microsoftDocument(MS_TEMPLATE, { issuer: [MS_TEMPLATE] })],
  ] as const) {
    it(`a document ${what}: a configuration error ("no issuer")`, async () => {
      serve('common', doc);
      const err = await rejection(metadataSource(microsoft('common', https.base), secure())());
      assert.equal(err.code, 'provider_misconfigured');
      assert.equal(
        err.detail,
        'MICROSOFT_TENANT and MICROSOFT_AUTHORITY_HOST: discovery document has no issuer',
      );
    });
  }

  it('the tenant is one path segment: a "/" in it cannot move the request elsewhere', async () => {
    serve('common', microsoftDocument(MS_TEMPLATE));
    const err = await rejection(metadataSource(microsoft('x/../common', https.base), secure())());
    assert.equal(err.code, 'provider_misconfigured');
    assert.deepEqual(
      https.seen.map((r) => r.path),
      [`/x%2F..%2Fcommon/v2.0${WELL_KNOWN}`],
    );
  });

  it('an unreachable authority host: provider_unavailable', async () => {
    const gone = await startPeer();
    await gone.close();
    const err = await rejection(metadataSource(microsoft('common', gone.base), insecure())());
    assert.equal(err.code, 'provider_unavailable');
    assert.deepEqual(err.fields, { provider: 'microsoft' });
  });
});

describe('resolveIssuer', () => {
  it('a concrete issuer is returned as is', () => {
    const issuer = `https://login.microsoftonline.com/${TENANT}/v2.0`;
    assert.equal(resolveIssuer(issuer, undefined), issuer);
  });
  it('fills the template from a GUID tid (any letter case)', () => {
    assert.equal(resolveIssuer(MS_TEMPLATE, TENANT), `https://login.microsoftonline.com/${TENANT}/v2.0`);
    assert.equal(
      resolveIssuer(MS_TEMPLATE, TENANT.toUpperCase()),
      `https://login.microsoftonline.com/${TENANT.toUpperCase()}/v2.0`,
    );
  });
  it('refuses a tid that is not exactly a GUID', () => {
    // A forged token's tid may be any JSON: a list holding a GUID is still no GUID.
    for (const tid of [
      [TENANT],
      undefined,
      42,
      'contoso',
      `${TENANT}x`,
      `x${TENANT}`,
      TENANT.replaceAll('-', ''),
      `../${TENANT}`,
    ]) {
      assert.equal(resolveIssuer(MS_TEMPLATE, tid), undefined, String(tid));
    }
  });
});

describe('tenantFromIssuer', () => {
  it('the part of the issuer where the template has {tenantid}', () => {
    assert.equal(tenantFromIssuer(`https://login.microsoftonline.com/${TENANT}/v2.0`, MS_TEMPLATE), TENANT);
  });
  it('undefined when the issuer does not fit the template', () => {
    assert.equal(tenantFromIssuer(`https://evil.test/${TENANT}/v2.0`, MS_TEMPLATE), undefined);
    assert.equal(
      tenantFromIssuer(`https://login.microsoftonline.com/${TENANT}/v1.0`, MS_TEMPLATE),
      undefined,
    );
  });
  it('undefined for a template without {tenantid}', () => {
    assert.equal(tenantFromIssuer('https://idp.test/undefined', 'https://idp.test/undefined'), undefined);
  });
});

describe('isNetworkError', () => {
  const coded = (code: unknown): Error => Object.assign(new Error('x'), { code });
  const named = (name: string): Error => Object.assign(new Error('x'), { name });
  it('timeouts, aborts, failed or terminated fetches and socket error codes are network errors', () => {
    for (const err of [
      named('TimeoutError'),
      named('AbortError'),
      new TypeError('fetch failed'),
      new TypeError('Fetch Failed'),
      new TypeError('terminated'),
      coded('ECONNREFUSED'),
      coded('ECONNRESET'),
      coded('ETIMEDOUT'),
      coded('EPIPE'),
      coded('UND_ERR_SOCKET'),
      coded('ENOTFOUND'),
      coded('EAI_AGAIN'),
    ]) {
      assert.equal(
        isNetworkError(err),
        true,
        `${err.name} ${err.message} ${String((err as { code?: unknown }).code)}`,
      );
    }
  });
  it('anything else is not', () => {
    for (const err of [
      'fetch failed',
      { name: 'TimeoutError' },
      undefined,
      new Error('fetch failed'),
      new TypeError('Invalid URL'),
      named('Error'),
      coded('XECONNRESET'),
      coded('ERR_INVALID_URL'),
      coded(42),
      coded(['ECONNRESET']),
    ]) {
      assert.equal(isNetworkError(err), false, inspect(err));
    }
  });
});

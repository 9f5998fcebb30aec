/**
 * The provider client against an in-process identity provider on loopback: discovery documents in the shapes of
 * OpenID Connect Discovery 1.0 and Microsoft's v2 endpoint (the `{tenantid}` issuer template for `common`),
 * a JWKS, and a token endpoint whose answers each test scripts (RFC 6749 §5.1/§5.2 bodies, OIDC ID tokens
 * signed with our own key). Every document names the host `idp.test`; only the broker's transport (the `fetch`
 * in the provider's deps) knows it lives on 127.0.0.1, so a call that bypassed the transport would fail.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc
 * @see https://www.rfc-editor.org/rfc/rfc9207 (authorization response `iss`)
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { GenericProviderConfig, MicrosoftProviderConfig } from '../../../shared/config.ts';
import type { BrokerError } from '../../../shared/errors.ts';
import { problemResponse } from '../../../shared/http.ts';
import { createLogger } from '../../../shared/log.ts';
import { classifyFailure } from '../../../shared/oauth/classify.ts';
import { createProviderClient, ProviderFailure, type ProviderDeps } from '../../../shared/oauth/provider.ts';
import { createTransport, type FetchLike } from '../../../shared/oauth/transport.ts';
import { newSigningKey, sign, type SigningKey } from '../../support/entraTokens.ts';

describe('ProviderFailure in request.failed', () => {
  it("logs the broker's own status as httpStatus and the provider's as providerHttpStatus", () => {
    const lines: string[] = [];
    const failure = new ProviderFailure(
      classifyFailure({ httpStatus: 401, body: { error: 'invalid_client' } }),
      'refresh',
    );
    const answer = problemResponse(
      failure,
      createLogger({}, (_l, line) => lines.push(line)),
    );
    const line = lines.find((l) => l.startsWith('request.failed')) ?? '';
    assert.equal(answer.status, failure.status);
    assert.match(line, new RegExp(`\\bhttpStatus=${failure.status}\\b`));
    assert.match(line, /\bproviderHttpStatus=401\b/);
  });
});

const HOST = 'http://idp.test';
const CLIENT_ID = 'client-1';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = '0b7c1e6e-0000-4000-8000-000000000001';
const REDIRECT = 'https://broker.test/api/connect/callback';
const STATE = 'state-1';
const NONCE = 'nonce-1';
const VERIFIER = 'verifier-0123456789-0123456789-0123456789-0123';
const GRAPH_SEND = 'https://graph.microsoft.com/Mail.Send';
const MS_ISSUER = `${HOST}/${TENANT}/v2.0`;
const ACME_ISSUER = `${HOST}/acme`;

interface TokenCall {
  form: URLSearchParams;
  authorization: string | undefined;
}
interface Answer {
  status?: number;
  body: unknown;
}

interface Idp {
  key: SigningKey;
  tokenCalls: TokenCall[];
  jwksFetches: number;
  /** Merged into every discovery document. */
  discovery: Record<string, unknown>;
  /** The published keys; Microsoft's carry an `issuer` each. */
  jwks: Record<string, unknown>[];
  answer: (call: TokenCall) => Answer | Promise<Answer>;
  fetch: FetchLike;
  reset(): void;
  close(): Promise<void>;
}

async function startIdp(): Promise<Idp> {
  const key = await newSigningKey('key-1');
  const idp: Idp = {
    key,
    tokenCalls: [],
    jwksFetches: 0,
    discovery: {},
    jwks: [key.publicJwk],
    answer: () => ({ status: 400, body: { error: 'invalid_grant' } }),
    fetch: undefined as unknown as FetchLike,
    reset() {
      idp.tokenCalls.length = 0;
      idp.discovery = {};
      idp.jwks = [key.publicJwk];
      idp.answer = () => ({ status: 400, body: { error: 'invalid_grant' } });
    },
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', HOST).pathname;
    const send = (status: number, body: unknown) =>
      res
        .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(typeof body === 'string' ? body : JSON.stringify(body));
    const wellKnown = /^(.*)\/\.well-known\/openid-configuration$/.exec(path);
    if (req.method === 'GET' && wellKnown) {
      const prefix = wellKnown[1] ?? '';
      // Microsoft's v2 documents: the `{tenantid}` template for common/organizations, the tenant's own issuer
      // otherwise; any other path is a generic issuer whose document lives under it.
      const ms = /^\/([^/]+)\/v2\.0$/.exec(prefix)?.[1];
      const issuer =
        ms === undefined
          ? `${HOST}${prefix}`
          : `${HOST}/${ms === 'common' || ms === 'organizations' ? '{tenantid}' : ms}/v2.0`;
      send(200, {
        issuer,
        authorization_endpoint: `${HOST}/authorize`,
        token_endpoint: `${HOST}/token`,
        jwks_uri: `${HOST}/keys`,
        response_types_supported: ['code'],
        id_token_signing_alg_values_supported: ['RS256'],
        ...idp.discovery,
      });
      return;
    }
    if (req.method === 'GET' && path === '/keys') {
      idp.jwksFetches++;
      send(200, { keys: idp.jwks });
      return;
    }
    if (req.method === 'POST' && path === '/token') {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const call = { form: new URLSearchParams(text), authorization: req.headers.authorization };
        idp.tokenCalls.push(call);
        void Promise.resolve(idp.answer(call)).then((a) => send(a.status ?? 200, a.body));
      });
      return;
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const transport = createTransport({ timeoutMs: 5000 });
  idp.fetch = (url, init) => transport.fetch(String(url).replace(HOST, origin), init);
  idp.close = async () => {
    await transport.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return idp;
}

const secret = { kind: 'secret', secret: 'client-secret-value', method: 'client_secret_post' } as const;

function microsoft(tenant = 'common'): MicrosoftProviderConfig {
  return {
    kind: 'microsoft',
    name: 'microsoft',
    clientId: CLIENT_ID,
    tenant,
    authorityHost: HOST,
    credential: secret,
    defaultScopes: [GRAPH_SEND],
  };
}

/** A generic OpenID provider found by discovery under `issuer`. */
function acme(over: Partial<GenericProviderConfig> = {}): GenericProviderConfig {
  return {
    kind: 'oauth2',
    name: 'acme',
    issuer: ACME_ISSUER,
    clientId: CLIENT_ID,
    credential: secret,
    defaultScopes: ['read'],
    extraAuthorizeParams: {},
    extraTokenParams: {},
    usePkce: true,
    ...over,
  };
}

/** A plain OAuth 2.0 provider: endpoints configured, no issuer, no discovery. */
function plain(over: Partial<GenericProviderConfig> = {}): GenericProviderConfig {
  const { issuer: _none, ...rest } = acme();
  return { ...rest, authorizationUrl: `${HOST}/authorize`, tokenUrl: `${HOST}/token`, ...over };
}

const now = () => Math.floor(Date.now() / 1000);

function claims(iss: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss,
    aud: CLIENT_ID,
    sub: 'subject-1',
    iat: now(),
    exp: now() + 3600,
    nonce: NONCE,
    tid: TENANT,
    oid: 'object-1',
    preferred_username: 'ada@contoso.test',
    ...over,
  };
}

function tokens(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    access_token: 'at-1',
    token_type: 'Bearer',
    expires_in: 3600,
    refresh_token: 'rt-2',
    ...over,
  };
}

function callback(over: Record<string, string> = {}): URLSearchParams {
  return new URLSearchParams({ code: 'code-1', state: STATE, ...over });
}

async function rejection(p: Promise<unknown>): Promise<BrokerError> {
  try {
    await p;
  } catch (err) {
    return err as BrokerError;
  }
  throw new Error('expected a rejection');
}

describe('createProviderClient against an in-process identity provider', () => {
  let idp: Idp;
  const deps = (over: Partial<ProviderDeps> = {}): ProviderDeps => ({
    fetch: idp.fetch,
    redirectUri: REDIRECT,
    allowInsecureHttp: true,
    timeoutMs: 5000,
    ...over,
  });
  const idToken = (c: Record<string, unknown>, kid?: string) => sign(c, idp.key, kid);
  const answerOnce = (body: Record<string, unknown>, status = 200) => {
    idp.answer = () => ({ status, body });
  };

  before(async () => {
    idp = await startIdp();
  });
  after(async () => {
    await idp.close();
  });
  beforeEach(() => idp.reset());

  describe('sign-in scopes', () => {
    it('Microsoft asks for openid, profile and offline_access besides the scopes, once each', () => {
      const client = createProviderClient(microsoft(), deps());
      assert.equal(client.name, 'microsoft');
      assert.equal(client.kind, 'microsoft');
      assert.deepEqual(client.defaultScopes, [GRAPH_SEND]);
      assert.deepEqual(client.loginScopes(['openid', GRAPH_SEND]), [
        'openid',
        'profile',
        'offline_access',
        GRAPH_SEND,
      ]);
      assert.deepEqual(client.loginScopes([]), ['openid', 'profile', 'offline_access', GRAPH_SEND]);
    });

    it('a generic provider with an issuer adds openid; one without adds nothing', () => {
      assert.deepEqual(createProviderClient(acme(), deps()).loginScopes(['read']), ['openid', 'read']);
      const oauthOnly = createProviderClient(plain(), deps());
      assert.equal(oauthOnly.kind, 'oauth2');
      assert.deepEqual(oauthOnly.loginScopes([]), ['read']);
      assert.deepEqual(oauthOnly.loginScopes(['write']), ['write']);
    });
  });

  describe('authorization URL', () => {
    it('Microsoft: discovered endpoint, PKCE S256, nonce, query response mode, hint, prompt and claims', async () => {
      const client = createProviderClient(microsoft(), deps());
      const url = await client.authorizationUrl({
        scopes: ['openid', 'profile', 'offline_access', GRAPH_SEND],
        state: STATE,
        nonce: NONCE,
        codeChallenge: 'challenge-1',
        loginHint: 'ada@contoso.test',
        prompt: 'select_account',
        claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}',
      });
      assert.equal(`${url.origin}${url.pathname}`, `${HOST}/authorize`);
      assert.deepEqual(Object.fromEntries(url.searchParams), {
        client_id: CLIENT_ID,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: `openid profile offline_access ${GRAPH_SEND}`,
        state: STATE,
        nonce: NONCE,
        code_challenge: 'challenge-1',
        code_challenge_method: 'S256',
        response_mode: 'query',
        login_hint: 'ada@contoso.test',
        prompt: 'select_account',
        claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}',
      });
    });

    it("generic: the provider's extra parameters (its prompt wins), no PKCE when off, no nonce without openid", async () => {
      const client = createProviderClient(
        plain({ usePkce: false, extraAuthorizeParams: { audience: 'api://acme', prompt: 'consent' } }),
        deps(),
      );
      const url = await client.authorizationUrl({
        scopes: ['read'],
        state: STATE,
        nonce: NONCE,
        codeChallenge: 'challenge-1',
        prompt: 'select_account',
      });
      assert.deepEqual(Object.fromEntries(url.searchParams), {
        audience: 'api://acme',
        prompt: 'consent',
        client_id: CLIENT_ID,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'read',
        state: STATE,
      });
    });

    it('sends no prompt, login_hint or claims when none is given', async () => {
      const client = createProviderClient(acme(), deps());
      const url = await client.authorizationUrl({
        scopes: ['openid', 'read'],
        state: STATE,
        nonce: NONCE,
        codeChallenge: 'challenge-1',
      });
      assert.deepEqual(Object.fromEntries(url.searchParams), {
        client_id: CLIENT_ID,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid read',
        state: STATE,
        nonce: NONCE,
        code_challenge: 'challenge-1',
        code_challenge_method: 'S256',
      });
    });
  });

  describe('code redemption', () => {
    const msScopes = ['openid', 'profile', 'offline_access', GRAPH_SEND];
    const redeem = (
      client: ReturnType<typeof createProviderClient>,
      over: Partial<Parameters<typeof client.redeemCode>[0]> = {},
    ) =>
      client.redeemCode({
        callbackParams: callback(),
        expectedState: STATE,
        nonce: NONCE,
        codeVerifier: VERIFIER,
        scopes: msScopes,
        ...over,
      });

    it('Microsoft common: one resource plus offline_access, verified id_token from the tenant, identity kept', async () => {
      const id = await idToken(claims(MS_ISSUER));
      answerOnce(tokens({ scope: GRAPH_SEND, id_token: id }));
      const client = createProviderClient(microsoft(), deps());
      const result = await redeem(client, {
        scopes: [...msScopes, 'https://outlook.office.com/IMAP.AccessAsUser.All'],
        claims: '{"access_token":{"xms_cc":{"values":["cp1"]}}}',
      });
      assert.deepEqual(result, {
        accessToken: 'at-1',
        tokenType: 'Bearer',
        expiresInSeconds: 3600,
        scope: GRAPH_SEND,
        refreshToken: 'rt-2',
        identity: {
          tenantId: TENANT,
          objectId: 'object-1',
          subject: 'subject-1',
          issuer: MS_ISSUER,
          username: 'ada@contoso.test',
        },
      });
      const form = idp.tokenCalls[0]?.form;
      assert.deepEqual(Object.fromEntries(form ?? []), {
        grant_type: 'authorization_code',
        code: 'code-1',
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
        client_id: CLIENT_ID,
        client_secret: 'client-secret-value',
        scope: `${GRAPH_SEND} offline_access`,
        claims: '{"access_token":{"xms_cc":{"values":["cp1"]}}}',
      });
    });

    it('Microsoft common: accepts the tenant issuer as RFC 9207 iss, refuses an issuer outside the template', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER)) }));
      const client = createProviderClient(microsoft(), deps());
      const ok = await redeem(client, { callbackParams: callback({ iss: MS_ISSUER }) });
      assert.equal(ok.identity?.tenantId, TENANT);
      const err = await rejection(
        redeem(client, { callbackParams: callback({ iss: `${HOST}/not-a-tenant/v2.0` }) }),
      );
      assert.equal(err.code, 'invalid_state');
      assert.match(err.detail ?? '', /iss mismatch/);
      assert.equal(idp.tokenCalls.length, 1);
    });

    it('Microsoft common advertising RFC 9207 iss: the tenant issuer in the callback is accepted', async () => {
      idp.discovery = { authorization_response_iss_parameter_supported: true };
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER)) }));
      const client = createProviderClient(microsoft(), deps());
      const ok = await redeem(client, { callbackParams: callback({ iss: MS_ISSUER }) });
      assert.equal(ok.identity?.issuer, MS_ISSUER);
      const err = await rejection(redeem(client));
      assert.equal(err.detail, 'authorization response without advertised iss');
    });

    it('Microsoft: an id_token issued for another tenant than its tid is refused', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(`${HOST}/${OTHER_TENANT}/v2.0`)) }));
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
    });

    it('Microsoft: an id_token without a tenant id cannot fill the issuer template and is refused', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER, { tid: undefined })) }));
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
    });

    it('Microsoft: a code answer without an id_token is refused', async () => {
      answerOnce(tokens());
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
      assert.equal(err.detail, 'code protocol');
    });

    it('Microsoft: a 200 that is not JSON is a protocol error, not an outage', async () => {
      idp.answer = () => ({ body: '<html>sign in</html>' });
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
    });

    it('an id_token with another nonce is refused', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER, { nonce: 'other' })) }));
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.ok(['provider_error', 'invalid_state'].includes(err.code), err.code);
    });

    it('an id_token expired within the two-minute clock tolerance is accepted', async () => {
      answerOnce(
        tokens({ id_token: await idToken(claims(MS_ISSUER, { iat: now() - 3600, exp: now() - 60 })) }),
      );
      const result = await redeem(createProviderClient(microsoft(), deps()));
      assert.equal(result.identity?.subject, 'subject-1');
    });

    it('an id_token signed by a key the JWKS does not publish is refused', async () => {
      const stranger = await newSigningKey('key-1');
      answerOnce(tokens({ id_token: await sign(claims(MS_ISSUER), stranger) }));
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
    });

    it("a key the JWKS lists for another issuer cannot sign for this one (Microsoft's key issuer)", async () => {
      idp.jwks = [{ ...idp.key.publicJwk, issuer: `${HOST}/${OTHER_TENANT}/v2.0` }];
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER)) }));
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
      assert.equal(err.detail, 'signing key issuer mismatch');
    });

    it('the signing key is the one named by kid, whose templated issuer fits the tenant', async () => {
      const other = await newSigningKey('key-0');
      idp.jwks = [
        { ...other.publicJwk, issuer: `${HOST}/${OTHER_TENANT}/v2.0` },
        { ...idp.key.publicJwk, issuer: `${HOST}/{tenantid}/v2.0` },
      ];
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER)) }));
      const result = await redeem(createProviderClient(microsoft(), deps()));
      assert.equal(result.identity?.issuer, MS_ISSUER);
    });

    it('an id_token without kid verifies against a single-key JWKS', async () => {
      const { kid: _kid, ...noKid } = idp.key.publicJwk;
      idp.jwks = [{ ...noKid, kid: 'key-1' }];
      const { SignJWT } = await import('jose');
      const id = await new SignJWT(claims(MS_ISSUER))
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .sign(idp.key.privateKey);
      answerOnce(tokens({ id_token: id }));
      const result = await redeem(createProviderClient(microsoft(), deps()));
      assert.equal(result.identity?.subject, 'subject-1');
    });

    it('Microsoft without expires_in assumes an hour', async () => {
      answerOnce(tokens({ expires_in: undefined, id_token: await idToken(claims(MS_ISSUER)) }));
      const result = await redeem(createProviderClient(microsoft(), deps()));
      assert.equal(result.expiresInSeconds, 3600);
      assert.equal(result.expiresInAssumed, true);
    });

    it('a provider that refuses the code: a provider error for this sign-in', async () => {
      answerOnce({ error: 'invalid_grant' }, 400);
      const err = await rejection(redeem(createProviderClient(microsoft(), deps())));
      assert.equal(err.code, 'provider_error');
      assert.equal(err.detail, 'code reauth');
    });

    it('the provider denied access in the callback: provider_denied with its error, cut short', async () => {
      const err = await rejection(
        redeem(createProviderClient(microsoft(), deps()), {
          callbackParams: callback({ error: `access_denied${'x'.repeat(100)}` }),
        }),
      );
      assert.equal(err.code, 'provider_denied');
      assert.equal(err.fields.providerError, `access_denied${'x'.repeat(100)}`.slice(0, 64));
      assert.equal(idp.tokenCalls.length, 0);
    });

    it('a callback for another browser session (state) is refused before any token call', async () => {
      const err = await rejection(
        redeem(createProviderClient(microsoft(), deps()), { callbackParams: callback({ state: 'other' }) }),
      );
      assert.equal(err.code, 'invalid_state');
      assert.equal(err.detail, 'authorization response validation failed');
      assert.equal(idp.tokenCalls.length, 0);
    });

    describe('generic OpenID provider (RFC 9207 iss)', () => {
      const scopes = ['openid', 'read'];

      it('accepts its own iss when it advertises iss support', async () => {
        idp.discovery = { authorization_response_iss_parameter_supported: true };
        answerOnce(tokens({ id_token: await idToken(claims(ACME_ISSUER)) }));
        const result = await redeem(createProviderClient(acme(), deps()), {
          scopes,
          callbackParams: callback({ iss: ACME_ISSUER }),
        });
        assert.equal(result.identity?.issuer, ACME_ISSUER);
        assert.equal(idp.tokenCalls[0]?.form.has('scope'), false);
      });

      it('refuses a response without the iss it advertises', async () => {
        idp.discovery = { authorization_response_iss_parameter_supported: true };
        const err = await rejection(redeem(createProviderClient(acme(), deps()), { scopes }));
        assert.equal(err.code, 'invalid_state');
        assert.equal(err.detail, 'authorization response without advertised iss');
        assert.match(err.message, /BROKER_PROVIDERS\.acme\.issuer/);
      });

      it('a state mismatch with iss present is a session mismatch, not a missing iss', async () => {
        idp.discovery = { authorization_response_iss_parameter_supported: true };
        const err = await rejection(
          redeem(createProviderClient(acme(), deps()), {
            scopes,
            callbackParams: callback({ iss: ACME_ISSUER, state: 'other' }),
          }),
        );
        assert.equal(err.detail, 'authorization response validation failed');
      });

      it('refuses an iss of another issuer', async () => {
        const err = await rejection(
          redeem(createProviderClient(acme(), deps()), {
            scopes,
            callbackParams: callback({ iss: `${HOST}/evil` }),
          }),
        );
        assert.equal(err.code, 'invalid_state');
        assert.match(err.detail ?? '', /iss mismatch/);
      });

      it('the refused iss is logged cut to 120 characters', async () => {
        const long = `${HOST}/${'e'.repeat(300)}`;
        const err = await rejection(
          redeem(createProviderClient(acme(), deps()), { scopes, callbackParams: callback({ iss: long }) }),
        );
        assert.equal(err.code, 'invalid_state');
        assert.ok((err.detail ?? '').includes(long.slice(0, 120)));
        assert.ok(!(err.detail ?? '').includes(long.slice(0, 121)), 'iss cut to 120 characters');
      });

      it('without openid an id_token the provider sends anyway is not needed nor used', async () => {
        answerOnce(tokens({ id_token: await idToken(claims(ACME_ISSUER, { nonce: undefined })) }));
        const result = await redeem(createProviderClient(acme(), deps()), { scopes: ['read'] });
        assert.equal(result.identity, undefined);
        assert.equal(result.accessToken, 'at-1');
      });
    });

    describe('plain OAuth 2.0 provider', () => {
      it('a provider without a configured issuer that sends iss is a configuration problem', async () => {
        const long = `${HOST}/${'x'.repeat(300)}`;
        const err = await rejection(
          redeem(createProviderClient(plain(), deps()), { callbackParams: callback({ iss: long }) }),
        );
        assert.equal(err.code, 'provider_misconfigured');
        assert.match(err.message, /BROKER_PROVIDERS\.acme\.issuer/);
        assert.ok((err.detail ?? '').includes(long.slice(0, 120)));
        assert.ok(!(err.detail ?? '').includes(long.slice(0, 121)), 'iss cut to 120 characters');
      });

      it('no id_token needed even with openid; its token parameters, claims and no PKCE when off', async () => {
        answerOnce(tokens({ expires_in: undefined }));
        const client = createProviderClient(
          plain({
            usePkce: false,
            extraTokenParams: { resource: 'api://acme' },
            defaultExpiresInSeconds: 1234,
          }),
          deps(),
        );
        const result = await redeem(client, { scopes: ['openid', 'read'], claims: '{"id_token":{}}' });
        assert.equal(result.identity, undefined);
        assert.equal(result.expiresInSeconds, 1234);
        assert.equal(result.expiresInAssumed, true);
        assert.deepEqual(Object.fromEntries(idp.tokenCalls[0]?.form ?? []), {
          resource: 'api://acme',
          claims: '{"id_token":{}}',
          grant_type: 'authorization_code',
          code: 'code-1',
          redirect_uri: REDIRECT,
          client_id: CLIENT_ID,
          client_secret: 'client-secret-value',
        });
      });

      it('without expires_in nor a configured default assumes ten minutes', async () => {
        answerOnce(tokens({ expires_in: undefined }));
        const result = await redeem(createProviderClient(plain(), deps()), { scopes: ['read'] });
        assert.equal(result.expiresInSeconds, 600);
        assert.equal(idp.tokenCalls[0]?.form.get('code_verifier'), VERIFIER);
        assert.equal(idp.tokenCalls[0]?.form.has('claims'), false);
      });
    });
  });

  describe('refresh', () => {
    it('Microsoft: one resource plus offline_access, no id_token asked for', async () => {
      answerOnce(tokens({ scope: GRAPH_SEND }));
      const client = createProviderClient(microsoft(), deps());
      const result = await client.refresh('rt-1', [
        'openid',
        GRAPH_SEND,
        'https://outlook.office.com/SMTP.Send',
      ]);
      assert.equal(result.accessToken, 'at-1');
      assert.equal(result.refreshToken, 'rt-2');
      assert.equal(result.identity, undefined);
      assert.deepEqual(Object.fromEntries(idp.tokenCalls[0]?.form ?? []), {
        grant_type: 'refresh_token',
        refresh_token: 'rt-1',
        scope: `${GRAPH_SEND} offline_access`,
        client_id: CLIENT_ID,
        client_secret: 'client-secret-value',
      });
    });

    it('without an identity proof an id_token the provider sends anyway is not used', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER, { nonce: undefined })) }));
      const result = await createProviderClient(microsoft(), deps()).refresh('rt-1', [GRAPH_SEND]);
      assert.equal(result.identity, undefined);
      assert.equal(result.accessToken, 'at-1');
    });

    it('Microsoft identity proof: openid profile asked for, id_token verified without a nonce', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER, { nonce: undefined })) }));
      const result = await createProviderClient(microsoft(), deps()).refresh('rt-1', [GRAPH_SEND], {
        identity: true,
      });
      assert.equal(idp.tokenCalls[0]?.form.get('scope'), `openid profile ${GRAPH_SEND} offline_access`);
      assert.deepEqual(result.identity, {
        tenantId: TENANT,
        objectId: 'object-1',
        subject: 'subject-1',
        issuer: MS_ISSUER,
        username: 'ada@contoso.test',
      });
    });

    it('the key set is fetched once and reused for later id_tokens', async () => {
      const client = createProviderClient(microsoft(), deps());
      const before = idp.jwksFetches;
      for (let i = 0; i < 2; i++) {
        answerOnce(tokens({ id_token: await idToken(claims(MS_ISSUER, { nonce: undefined })) }));
        const result = await client.refresh('rt-1', [GRAPH_SEND], { identity: true });
        assert.equal(result.identity?.tenantId, TENANT);
      }
      assert.equal(idp.jwksFetches - before, 1);
    });

    it('generic: OIDC scopes are not sent on refresh; no scope parameter when nothing is left', async () => {
      answerOnce(tokens());
      const client = createProviderClient(acme(), deps());
      await client.refresh('rt-1', ['openid', 'email']);
      await client.refresh('rt-1', ['openid', 'read', 'profile']);
      assert.equal(idp.tokenCalls[0]?.form.has('scope'), false);
      assert.equal(idp.tokenCalls[1]?.form.get('scope'), 'read');
    });

    it('generic identity proof with only OIDC scopes asks for exactly openid profile', async () => {
      answerOnce(tokens({ id_token: await idToken(claims(ACME_ISSUER, { nonce: undefined })) }));
      const result = await createProviderClient(acme(), deps()).refresh('rt-1', ['openid'], {
        identity: true,
      });
      assert.equal(idp.tokenCalls[0]?.form.get('scope'), 'openid profile');
      assert.equal(result.identity?.subject, 'subject-1');
    });

    it('a plain OAuth 2.0 provider cannot prove identity: no openid asked for, its token parameters sent', async () => {
      answerOnce(tokens());
      const client = createProviderClient(plain({ extraTokenParams: { resource: 'api://acme' } }), deps());
      const result = await client.refresh('rt-1', ['read'], { identity: true });
      assert.equal(result.identity, undefined);
      assert.equal(idp.tokenCalls[0]?.form.get('scope'), 'read');
      assert.equal(idp.tokenCalls[0]?.form.get('resource'), 'api://acme');
    });

    it('a refused refresh token asks the account to sign in again', async () => {
      answerOnce({ error: 'invalid_grant', error_codes: [700082] }, 400);
      const err = await rejection(createProviderClient(plain(), deps()).refresh('rt-1', ['read']));
      assert.equal(err.code, 'connection_needs_reauth');
    });

    it('a failed refresh names neither the refresh token nor the client secret, even when the provider echoes them', async () => {
      const refreshToken = `rt-${'s'.repeat(40)}`;
      answerOnce(
        {
          error: 'invalid_grant',
          error_description: `refresh token ${refreshToken} is revoked (client secret client-secret-value)`,
        },
        400,
      );
      const err = await rejection(createProviderClient(plain(), deps()).refresh(refreshToken, ['read']));
      assert.equal(err.code, 'connection_needs_reauth');
      const visible = JSON.stringify({ message: err.message, detail: err.detail, fields: err.fields, err });
      for (const secretValue of [refreshToken.slice(0, 16), 'client-secret-value']) {
        assert.ok(!visible.includes(secretValue), `error shows ${secretValue}`);
      }
    });

    it('invalid_client is a configuration problem for a secret, transient for a federated credential', async () => {
      answerOnce({ error: 'invalid_client', error_codes: [70021] }, 401);
      const withSecret = await rejection(createProviderClient(plain(), deps()).refresh('rt-1', ['read']));
      assert.equal(withSecret.code, 'provider_misconfigured');
      const federated = createProviderClient(
        plain({
          credential: { kind: 'managed_identity', clientId: 'mi-1', audience: 'api://AzureADTokenExchange' },
        }),
        deps({
          assertionSource: {
            getAssertion: () =>
              Promise.resolve({ token: 'mi-assertion', expiresOnTimestamp: Date.now() + 3_600_000 }),
          },
        }),
      );
      const err = await rejection(federated.refresh('rt-1', ['read']));
      assert.equal(err.code, 'provider_unavailable');
      assert.equal(idp.tokenCalls[1]?.form.get('client_assertion'), 'mi-assertion');
    });

    it('a token endpoint that never answers fails as unavailable after the deadline', async () => {
      // Answers at once when the call carries no deadline, so a missing signal shows as a different error.
      const stalling: FetchLike = (_url, init) =>
        new Promise((resolve, reject) => {
          const signal = init.signal;
          if (!signal) {
            resolve(
              new Response('{"error":"invalid_grant"}', {
                status: 400,
                headers: { 'content-type': 'application/json' },
              }),
            );
            return;
          }
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      const err = await rejection(
        createProviderClient(plain(), deps({ fetch: stalling, timeoutMs: 50 })).refresh('rt-1', ['read']),
      );
      assert.equal(err.code, 'provider_unavailable');
    });
  });
});

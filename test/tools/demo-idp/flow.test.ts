import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { buildAuthorizeRequest, CookieJar, driveAuthorization } from '../../../tools/demo-idp/driver.ts';
import { startDemoIdp, type DemoIdp } from '../../../tools/demo-idp/server.ts';

const CLIENT_ID = 'flow-app';
const SECRET = 'flow-secret-value';
const REDIRECT = 'http://localhost:7071/api/callback';
const GRAPH = 'https://graph.microsoft.com/Mail.Send';
const ADS = 'https://ads.microsoft.com/msads.manage';
const CONSENT_SCOPE = `openid profile offline_access ${GRAPH} ${ADS}`;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let idp: DemoIdp;
let as: oauth.AuthorizationServer;
const client: oauth.Client = { client_id: CLIENT_ID };
const auth = oauth.ClientSecretPost(SECRET);

async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  return oauth.processDiscoveryResponse(
    url,
    await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
  );
}

/** Full sign-in + consent + code redemption; returns the token response and the request it answered. */
async function connect(
  opts: { scope?: string; tokenScope?: string; tenant?: string; username?: string } = {},
) {
  const tenant = opts.tenant ?? idp.tenantId;
  const request = buildAuthorizeRequest({
    authorizationEndpoint: idp.endpoints(tenant).authorization,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT,
    scope: opts.scope ?? CONSENT_SCOPE,
  });
  const result = await driveAuthorization(request.url, {
    ...(opts.username ? { username: opts.username } : {}),
  });
  const params = oauth.validateAuthResponse(as, client, result.params, request.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    auth,
    params,
    REDIRECT,
    request.codeVerifier,
    {
      ...insecure,
      ...(opts.tokenScope ? { additionalParameters: { scope: opts.tokenScope } } : {}),
    },
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: request.nonce,
    requireIdToken: true,
  });
  return { tokens, request, result };
}

async function refresh(refreshToken: string, scope?: string): Promise<Response> {
  return oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, {
    ...insecure,
    ...(scope ? { additionalParameters: { scope } } : {}),
  });
}

async function errorBody(res: Response): Promise<Record<string, unknown>> {
  assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/json');
  return (await res.json()) as Record<string, unknown>;
}

function assertMicrosoftError(body: Record<string, unknown>, error: string, code: number): void {
  assert.equal(body.error, error);
  assert.deepEqual(body.error_codes, [code]);
  assert.match(
    String(body.error_description),
    new RegExp(
      `^AADSTS${code}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: `,
    ),
  );
  assert.match(String(body.trace_id), /^[0-9a-f-]{36}$/);
  assert.match(String(body.correlation_id), /^[0-9a-f-]{36}$/);
  assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
}

before(async () => {
  idp = await startDemoIdp({
    quiet: true,
    accessTokenTtlSeconds: 60,
    refreshInSeconds: 30,
    clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT], name: 'Flow Test App' }],
  });
  as = await discover(idp.issuer);
});

after(async () => {
  await idp.close();
});

void describe('discovery', () => {
  void it('publishes the issuer template for common and organizations, like Microsoft', async () => {
    for (const tenant of ['common', 'organizations']) {
      const res = await fetch(idp.endpoints(tenant).discovery);
      assert.equal(res.status, 200);
      const doc = (await res.json()) as Record<string, unknown>;
      assert.equal(doc.issuer, `${idp.origin}/{tenantid}/v2.0`);
      assert.equal(doc.authorization_endpoint, `${idp.origin}/${tenant}/oauth2/v2.0/authorize`);
      assert.equal(doc.token_endpoint, `${idp.origin}/${tenant}/oauth2/v2.0/token`);
      assert.equal(doc.jwks_uri, `${idp.origin}/${tenant}/discovery/v2.0/keys`);
      assert.equal(doc.authorization_response_iss_parameter_supported, undefined);
    }
  });

  void it('publishes the concrete issuer for the tenant GUID and its domain', async () => {
    for (const tenant of [idp.tenantId, 'demo.example']) {
      const doc = (await (await fetch(idp.endpoints(tenant).discovery)).json()) as Record<string, unknown>;
      assert.equal(doc.issuer, idp.issuer);
      assert.deepEqual(doc.scopes_supported, ['openid', 'offline_access', 'profile', 'email']);
      assert.deepEqual(doc.subject_types_supported, ['pairwise']);
    }
    assert.equal(as.issuer, `${idp.origin}/${idp.tenantId}/v2.0`);
  });

  void it('answers an unknown tenant with AADSTS90002', async () => {
    const res = await fetch(
      `${idp.origin}/11111111-2222-4333-8444-555555555555/v2.0/.well-known/openid-configuration`,
    );
    assert.equal(res.status, 400);
    assertMicrosoftError(await errorBody(res), 'invalid_tenant', 90002);
  });

  void it('serves the signing keys with a kid and the issuer they sign for', async () => {
    const jwks = (await (await fetch(idp.endpoints('common').jwks)).json()) as {
      keys: Record<string, unknown>[];
    };
    assert.equal(jwks.keys.length, 1);
    const key = jwks.keys[0] ?? {};
    assert.equal(key.kty, 'RSA');
    assert.equal(typeof key.kid, 'string');
    assert.equal(key.d, undefined);
    assert.equal(key.issuer, `${idp.origin}/{tenantid}/v2.0`);
  });
});

void describe('authorization code flow', () => {
  void it('signs in, consents, redeems the code with PKCE and returns Microsoft-shaped tokens', async () => {
    const { tokens, result } = await connect({ tokenScope: `openid offline_access ${GRAPH}` });
    assert.deepEqual(result.pages, ['login', 'consent']);
    assert.equal(result.url.origin + result.url.pathname, REDIRECT);
    assert.equal(result.params.get('iss'), null, 'no RFC 9207 iss in the redirect, like Microsoft');
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, GRAPH);
    assert.equal(tokens.expires_in, 60);
    assert.equal(tokens.ext_expires_in, 60);
    assert.equal(tokens.refresh_in, 30);
    assert.equal(typeof tokens.refresh_token, 'string');

    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''));
    const idToken = await jwtVerify(tokens.id_token ?? '', jwks, {
      issuer: idp.issuer,
      audience: CLIENT_ID,
      algorithms: ['RS256'],
    });
    const adele = idp.users.find((u) => u.username === 'adele@demo.example');
    assert.equal(idToken.protectedHeader.alg, 'RS256');
    assert.equal(typeof idToken.protectedHeader.kid, 'string');
    assert.equal(idToken.payload.tid, idp.tenantId);
    assert.equal(idToken.payload.oid, adele?.objectId);
    assert.equal(idToken.payload.preferred_username, 'adele@demo.example');
    assert.equal(idToken.payload.name, 'Adele Vance');
    assert.equal(idToken.payload.ver, '2.0');
    assert.match(String(idToken.payload.sub), /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(idToken.payload.sub, adele?.objectId, 'sub is pairwise, not the oid');
    for (const claim of ['iat', 'exp', 'nbf'] as const) assert.equal(typeof idToken.payload[claim], 'number');

    const at = await jwtVerify(tokens.access_token, jwks, {
      issuer: idp.issuer,
      audience: 'https://graph.microsoft.com',
    });
    assert.equal(at.payload.scp, 'Mail.Send');
    assert.equal(at.payload.tid, idp.tenantId);
    assert.equal(at.payload.oid, adele?.objectId);
    assert.equal(at.payload.azp, CLIENT_ID);
    assert.equal(at.payload.scope, undefined);
  });

  void it('echoes the nonce and uses the tenant issuer when signing in through /common', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints('common').authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const result = await driveAuthorization(request.url);
    const res = await fetch(idp.endpoints('common').token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: CLIENT_ID,
        client_secret: SECRET,
        code: result.params.get('code') ?? '',
        redirect_uri: REDIRECT,
        code_verifier: request.codeVerifier,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, string>;
    const jwks = createRemoteJWKSet(new URL(idp.endpoints('common').jwks));
    const { payload } = await jwtVerify(body.id_token ?? '', jwks, { audience: CLIENT_ID });
    const template = `${idp.origin}/{tenantid}/v2.0`;
    assert.equal(payload.iss, template.replace('{tenantid}', String(payload.tid)));
    assert.equal(payload.nonce, request.nonce);
    // Without `scope` at redemption the token is for the first resource of the consent, like Microsoft.
    assert.equal(body.scope, GRAPH);
  });

  void it('rejects a reused code with AADSTS54005', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const params = oauth.validateAuthResponse(
      as,
      client,
      (await driveAuthorization(request.url)).params,
      request.state,
    );
    const first = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      REDIRECT,
      request.codeVerifier,
      insecure,
    );
    assert.equal(first.status, 200);
    const second = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      REDIRECT,
      request.codeVerifier,
      insecure,
    );
    assert.equal(second.status, 400);
    assertMicrosoftError(await errorBody(second), 'invalid_grant', 54005);
  });

  void it('rejects a wrong PKCE verifier with AADSTS501481', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const params = oauth.validateAuthResponse(
      as,
      client,
      (await driveAuthorization(request.url)).params,
      request.state,
    );
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      REDIRECT,
      oauth.generateRandomCodeVerifier(),
      insecure,
    );
    assert.equal(res.status, 400);
    assertMicrosoftError(await errorBody(res), 'invalid_grant', 501481);
  });

  void it('rejects a code redeemed on another tenant path with AADSTS700005', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints('common').authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const params = oauth.validateAuthResponse(
      as,
      client,
      (await driveAuthorization(request.url)).params,
      request.state,
    );
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      REDIRECT,
      request.codeVerifier,
      insecure,
    );
    assert.equal(res.status, 400);
    assertMicrosoftError(await errorBody(res), 'invalid_grant', 700005);
  });

  void it('requires PKCE', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    request.url.searchParams.delete('code_challenge');
    request.url.searchParams.delete('code_challenge_method');
    const res = await fetch(request.url, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location') ?? '');
    assert.equal(location.origin + location.pathname, REDIRECT);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.equal(location.searchParams.get('state'), request.state);
  });

  void it('turns Deny into error=access_denied with the state, like Microsoft', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const result = await driveAuthorization(request.url, { decision: 'deny' });
    assert.equal(result.params.get('error'), 'access_denied');
    assert.equal(result.params.get('error_subcode'), 'cancel');
    assert.match(result.params.get('error_description') ?? '', /^AADSTS65004: /);
    assert.equal(result.params.get('state'), request.state);
    assert.equal(result.params.get('code'), null);
    assert.equal(result.params.get('iss'), null);
  });

  void it('keeps the sign-in session: a second request for consented scopes skips both pages', async () => {
    const jar = new CookieJar();
    const make = () =>
      buildAuthorizeRequest({
        authorizationEndpoint: idp.endpoints().authorization,
        clientId: CLIENT_ID,
        redirectUri: REDIRECT,
        scope: CONSENT_SCOPE,
      });
    const first = await driveAuthorization(make().url, { jar });
    assert.deepEqual(first.pages, ['login', 'consent']);
    const second = await driveAuthorization(make().url, { jar });
    assert.deepEqual(second.pages, []);
    assert.equal(typeof second.params.get('code'), 'string');
    const third = await driveAuthorization(
      buildAuthorizeRequest({
        authorizationEndpoint: idp.endpoints().authorization,
        clientId: CLIENT_ID,
        redirectUri: REDIRECT,
        scope: `${CONSENT_SCOPE} https://graph.microsoft.com/Mail.Read`,
      }).url,
      { jar },
    );
    assert.deepEqual(third.pages, ['consent'], 'a new scope asks for consent again');
  });

  void it('reports unknown scopes and the resource parameter back to the client', async () => {
    const cases: [string, (u: URL) => void, string, string][] = [
      [
        'unknown scope',
        (u) => u.searchParams.set('scope', 'openid https://graph.microsoft.com/Nope.Read'),
        'invalid_client',
        'AADSTS650053',
      ],
      [
        'unknown resource',
        (u) => u.searchParams.set('scope', 'openid https://unknown.example/read'),
        'invalid_resource',
        'AADSTS500011',
      ],
      [
        'resource parameter',
        (u) => u.searchParams.set('resource', 'https://graph.microsoft.com'),
        'invalid_request',
        'AADSTS901002',
      ],
    ];
    for (const [name, mutate, error, code] of cases) {
      const request = buildAuthorizeRequest({
        authorizationEndpoint: idp.endpoints().authorization,
        clientId: CLIENT_ID,
        redirectUri: REDIRECT,
        scope: CONSENT_SCOPE,
      });
      mutate(request.url);
      const res = await fetch(request.url, { redirect: 'manual' });
      const location = new URL(res.headers.get('location') ?? '', idp.origin);
      assert.equal(location.searchParams.get('error'), error, name);
      assert.ok(location.searchParams.get('error_description')?.startsWith(code), name);
      assert.equal(location.searchParams.get('state'), request.state, name);
    }
  });

  void it('rejects the identity of the other tenant at this tenant’s sign-in page', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    await assert.rejects(
      driveAuthorization(request.url, { username: 'alex@other.example' }),
      /not in the Demo Identity directory/,
    );
    await assert.rejects(
      driveAuthorization(request.url, { password: 'wrong' }),
      /account or password is incorrect/,
    );
  });

  void it('issues tokens from the second tenant with its own tid and issuer', async () => {
    const other = idp.tenants[1]?.tenantId ?? '';
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints('other.example').authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: CONSENT_SCOPE,
    });
    const result = await driveAuthorization(request.url, { username: 'alex@other.example' });
    const otherAs = await discover(`${idp.origin}/${other}/v2.0`);
    const params = oauth.validateAuthResponse(otherAs, client, result.params, request.state);
    const res = await oauth.authorizationCodeGrantRequest(
      { ...otherAs, token_endpoint: idp.endpoints('other.example').token },
      client,
      auth,
      params,
      REDIRECT,
      request.codeVerifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(otherAs, client, res, {
      expectedNonce: request.nonce,
      requireIdToken: true,
    });
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    assert.equal(claims?.tid, other);
    assert.equal(claims?.iss, `${idp.origin}/${other}/v2.0`);
  });
});

void describe('refresh tokens', () => {
  void it('rotates: the new refresh token works, the old one is rejected and the family revoked', async () => {
    const { tokens } = await connect();
    const rt0 = tokens.refresh_token ?? '';
    const first = await oauth.processRefreshTokenResponse(
      as,
      client,
      await refresh(rt0, `openid offline_access ${GRAPH}`),
    );
    const rt1 = first.refresh_token ?? '';
    assert.notEqual(rt1, rt0);
    assert.equal(first.scope, GRAPH);
    assert.equal(typeof first.id_token, 'string');

    const reuse = await refresh(rt0);
    assert.equal(reuse.status, 400);
    assertMicrosoftError(await errorBody(reuse), 'invalid_grant', 70000);
    // oidc-provider treats reuse of a rotated token as theft and revokes the whole grant, so rt1 dies too.
    const after = await refresh(rt1);
    assert.equal(after.status, 400);
    assert.equal((await errorBody(after)).error, 'invalid_grant');
  });

  void it('mints a token for a second consented resource via scope=', async () => {
    const { tokens } = await connect();
    const res = await refresh(tokens.refresh_token ?? '', `${ADS} offline_access`);
    const ads = await oauth.processRefreshTokenResponse(as, client, res);
    assert.equal(ads.scope, ADS);
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''));
    const { payload } = await jwtVerify(ads.access_token, jwks, {
      issuer: idp.issuer,
      audience: 'https://ads.microsoft.com',
    });
    assert.equal(payload.scp, 'msads.manage');
    assert.equal(typeof ads.refresh_token, 'string');
    // Short names mean Graph.
    const graph = await oauth.processRefreshTokenResponse(
      as,
      client,
      await refresh(ads.refresh_token ?? '', 'Mail.Send'),
    );
    assert.equal(graph.scope, GRAPH);
  });

  void it('answers a scope that was not consented with 65001 consent_required', async () => {
    const { tokens } = await connect();
    for (const scope of [
      'https://graph.microsoft.com/Mail.Read',
      'https://api.ads.microsoft.com/msads.manage',
    ]) {
      const res = await refresh(tokens.refresh_token ?? '', scope);
      assert.equal(res.status, 400, scope);
      const body = await errorBody(res);
      assertMicrosoftError(body, 'invalid_grant', 65001);
      assert.equal(body.suberror, 'consent_required');
    }
    // The refused request did not consume the token.
    const ok = await refresh(tokens.refresh_token ?? '', GRAPH);
    assert.equal(ok.status, 200);
  });

  void it('issues a refresh token only when offline_access was requested', async () => {
    const request = buildAuthorizeRequest({
      authorizationEndpoint: idp.endpoints().authorization,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT,
      scope: `openid profile ${GRAPH}`,
    });
    const result = await driveAuthorization(request.url);
    const params = oauth.validateAuthResponse(as, client, result.params, request.state);
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      REDIRECT,
      request.codeVerifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, {
      expectedNonce: request.nonce,
    });
    assert.equal(tokens.refresh_token, undefined);
    assert.equal(tokens.scope, GRAPH);
  });

  void it('rejects every refresh token of a user after revokeUser with AADSTS50173', async () => {
    const megan = await connect({ username: 'megan@demo.example' });
    const adele = await connect();
    await idp.revokeUser('megan@demo.example');
    const res = await refresh(megan.tokens.refresh_token ?? '');
    assert.equal(res.status, 400);
    assertMicrosoftError(await errorBody(res), 'invalid_grant', 50173);
    assert.equal((await refresh(adele.tokens.refresh_token ?? '')).status, 200, 'other users are unaffected');
    await assert.rejects(idp.revokeUser('nobody@demo.example'), /unknown user/);
  });

  void it('rejects an unknown refresh token with AADSTS70000 and rejects the resource parameter', async () => {
    const res = await refresh('not-a-real-refresh-token');
    assertMicrosoftError(await errorBody(res), 'invalid_grant', 70000);
    const withResource = await oauth.refreshTokenGrantRequest(as, client, auth, 'x', {
      ...insecure,
      additionalParameters: { resource: 'https://graph.microsoft.com' },
    });
    assert.equal(withResource.status, 400);
    assertMicrosoftError(await errorBody(withResource), 'invalid_request', 901002);
  });

  void it('applies the configured lifetimes: access token expires_in, refresh token idle expiry (700082)', async () => {
    const short = await startDemoIdp({
      quiet: true,
      accessTokenTtlSeconds: 5,
      refreshTokenTtlSeconds: 1,
      clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT] }],
    });
    try {
      const request = buildAuthorizeRequest({
        authorizationEndpoint: short.endpoints().authorization,
        clientId: CLIENT_ID,
        redirectUri: REDIRECT,
        scope: CONSENT_SCOPE,
      });
      const { params } = await driveAuthorization(request.url);
      const res = await fetch(short.endpoints().token, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: CLIENT_ID,
          client_secret: SECRET,
          code: params.get('code') ?? '',
          redirect_uri: REDIRECT,
          code_verifier: request.codeVerifier,
        }),
      });
      const body = (await res.json()) as {
        expires_in: number;
        access_token: string;
        refresh_token: string;
        refresh_in?: number;
      };
      assert.equal(body.expires_in, 5);
      assert.equal(body.refresh_in, undefined);
      const payload = JSON.parse(
        Buffer.from(body.access_token.split('.')[1] ?? '', 'base64url').toString(),
      ) as { exp: number; iat: number };
      assert.equal(payload.exp - payload.iat, 5);

      await new Promise((resolve) => setTimeout(resolve, 1100));
      const expired = await fetch(short.endpoints().token, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: CLIENT_ID,
          client_secret: SECRET,
          refresh_token: body.refresh_token,
        }),
      });
      assert.equal(expired.status, 400);
      const error = await errorBody(expired);
      assertMicrosoftError(error, 'invalid_grant', 700082);
      assert.equal(error.suberror, 'bad_token');
    } finally {
      await short.close();
    }
  });
});

import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, exportJWK, generateKeyPair, importPKCS8, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { generate } from 'selfsigned';
import { buildAuthorizeRequest, driveAuthorization } from '../../../tools/demo-idp/driver.ts';
import { startDemoIdp, type DemoIdp } from '../../../tools/demo-idp/server.ts';

const REDIRECT = 'http://localhost:7071/api/callback';
const SCOPE = 'openid profile offline_access https://graph.microsoft.com/Mail.Send';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let idp: DemoIdp;
let as: oauth.AuthorizationServer;
let jwtKey: CryptoKey;
let certKey: CryptoKey;
let certThumbprint: string;

async function signInAndRedeem(clientId: string, auth: oauth.ClientAuth): Promise<Response> {
  const client = { client_id: clientId };
  const request = buildAuthorizeRequest({
    authorizationEndpoint: idp.endpoints().authorization,
    clientId,
    redirectUri: REDIRECT,
    scope: SCOPE,
  });
  const result = await driveAuthorization(request.url);
  const params = oauth.validateAuthResponse(as, client, result.params, request.state);
  return oauth.authorizationCodeGrantRequest(
    as,
    client,
    auth,
    params,
    REDIRECT,
    request.codeVerifier,
    insecure,
  );
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

before(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  jwtKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
  const pems = await generate([{ name: 'commonName', value: 'token-broker test' }], {
    keySize: 2048,
    algorithm: 'sha256',
  });
  certKey = await importPKCS8(pems.private, 'RS256');
  certThumbprint = createHash('sha256').update(new X509Certificate(pems.cert).raw).digest('base64url');

  idp = await startDemoIdp({
    quiet: true,
    clients: [
      {
        clientId: 'post-app',
        clientSecret: 'post-secret',
        redirectUris: [REDIRECT],
        authMethod: 'client_secret_post',
      },
      {
        clientId: 'basic-app',
        clientSecret: 'basic secret+/=',
        redirectUris: [REDIRECT],
        authMethod: 'client_secret_basic',
      },
      { clientId: 'jwt-app', jwks: { keys: [publicJwk] }, redirectUris: [REDIRECT] },
      { clientId: 'cert-app', certificates: [pems.cert], redirectUris: [REDIRECT] },
      { clientId: 'public-app', redirectUris: ['http://127.0.0.1:9999/cb', REDIRECT], authMethod: 'none' },
      {
        clientId: 'caller-app',
        clientSecret: 'caller-secret',
        redirectUris: [],
        roles: ['Tokens.Read'],
        grantTypes: ['client_credentials'],
      },
    ],
  });
  const issuer = new URL(idp.issuer);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
  );
});

after(async () => {
  await idp.close();
});

void describe('client authentication', () => {
  void it('accepts client_secret_post', async () => {
    const res = await signInAndRedeem('post-app', oauth.ClientSecretPost('post-secret'));
    assert.equal(res.status, 200);
    assert.equal(idp.tokenLog.at(-1)?.clientAuth, 'client_secret_post');
  });

  void it('accepts client_secret_basic with form-encoded credentials', async () => {
    const res = await signInAndRedeem('basic-app', oauth.ClientSecretBasic('basic secret+/='));
    assert.equal(res.status, 200);
    assert.equal(idp.tokenLog.at(-1)?.clientAuth, 'client_secret_basic');
  });

  void it('accepts either secret form for any secret client, like Microsoft', async () => {
    assert.equal((await signInAndRedeem('post-app', oauth.ClientSecretBasic('post-secret'))).status, 200);
    assert.equal((await signInAndRedeem('basic-app', oauth.ClientSecretPost('basic secret+/='))).status, 200);
  });

  void it('accepts private_key_jwt against a registered JWKS', async () => {
    const res = await signInAndRedeem('jwt-app', oauth.PrivateKeyJwt({ key: jwtKey, kid: 'key-1' }));
    assert.equal(res.status, 200);
    assert.equal(idp.tokenLog.at(-1)?.clientAuth, 'private_key_jwt');
  });

  void it('accepts a Microsoft-style certificate assertion (x5t#S256, aud = token endpoint)', async () => {
    const auth = oauth.PrivateKeyJwt(
      { key: certKey },
      {
        [oauth.modifyAssertion]: (header, payload) => {
          header['x5t#S256'] = certThumbprint;
          payload.aud = idp.endpoints().token;
        },
      },
    );
    const res = await signInAndRedeem('cert-app', auth);
    assert.equal(res.status, 200);
  });

  void it('rejects an assertion signed by another key with AADSTS700027', async () => {
    const other = await generateKeyPair('RS256');
    const res = await signInAndRedeem(
      'jwt-app',
      oauth.PrivateKeyJwt({ key: other.privateKey, kid: 'key-1' }),
    );
    assert.equal(res.status, 401);
    const body = await json(res);
    assert.equal(body.error, 'invalid_client');
    assert.deepEqual(body.error_codes, [700027]);
  });

  void it('answers a wrong secret with 401 invalid_client and AADSTS7000215', async () => {
    for (const auth of [oauth.ClientSecretPost('wrong'), oauth.ClientSecretBasic('wrong')]) {
      const res = await signInAndRedeem('post-app', auth);
      assert.equal(res.status, 401);
      const body = await json(res);
      assert.equal(body.error, 'invalid_client');
      assert.deepEqual(body.error_codes, [7000215]);
      assert.match(String(body.error_description), /^AADSTS7000215: /);
      assert.doesNotMatch(JSON.stringify(body), /wrong/, 'the presented secret is not echoed');
    }
  });

  void it('answers an unknown client with AADSTS700016', async () => {
    const res = await oauth.refreshTokenGrantRequest(
      as,
      { client_id: 'nobody' },
      oauth.ClientSecretPost('x'),
      'rt',
      insecure,
    );
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.equal(body.error, 'unauthorized_client');
    assert.deepEqual(body.error_codes, [700016]);
  });

  void it('lets a public client redeem with PKCE only', async () => {
    const res = await signInAndRedeem('public-app', oauth.None());
    assert.equal(res.status, 200);
  });

  void it('rejects confidential token requests that carry an Origin header (AADSTS9002326)', async () => {
    const res = await oauth.refreshTokenGrantRequest(
      as,
      { client_id: 'post-app' },
      oauth.ClientSecretPost('post-secret'),
      'rt',
      {
        ...insecure,
        headers: new Headers({ origin: 'http://localhost:7071' }),
      },
    );
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.equal(body.error, 'invalid_request');
    assert.deepEqual(body.error_codes, [9002326]);
  });

  void it('registers clients at runtime and validates them', async () => {
    await idp.addClient({ clientId: 'late-app', clientSecret: 'late-secret', redirectUris: [REDIRECT] });
    assert.equal((await signInAndRedeem('late-app', oauth.ClientSecretPost('late-secret'))).status, 200);
    await assert.rejects(
      idp.addClient({ clientId: 'late-app', clientSecret: 'x', redirectUris: [REDIRECT] }),
      /already exists/,
    );
    await assert.rejects(
      idp.addClient({ clientId: 'bad-app', redirectUris: ['not a url'], clientSecret: 'x' }),
    );
    await assert.rejects(
      idp.addClient({ clientId: 'no-keys', redirectUris: [REDIRECT], authMethod: 'private_key_jwt' }),
      /needs jwks/,
    );
  });
});

void describe('client credentials', () => {
  const caller = { client_id: 'caller-app' };
  const callerAuth = oauth.ClientSecretPost('caller-secret');

  void it('issues an app-only JWT for api://token-broker/.default with the caller’s roles', async () => {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      caller,
      callerAuth,
      { scope: 'api://token-broker/.default' },
      insecure,
    );
    const tokens = await oauth.processClientCredentialsResponse(as, caller, res);
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, undefined, 'Microsoft sends no scope for client credentials');
    assert.equal(typeof tokens.expires_in, 'number');
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: idp.issuer,
      audience: 'api://token-broker',
      algorithms: ['RS256'],
    });
    assert.equal(typeof protectedHeader.kid, 'string');
    assert.deepEqual(payload.roles, ['Tokens.Read']);
    assert.equal(payload.azp, 'caller-app');
    assert.equal(payload.appid, 'caller-app');
    assert.equal(payload.tid, idp.tenantId);
    assert.equal(payload.ver, '2.0');
    assert.equal(payload.idtyp, 'app');
    assert.equal(payload.oid, payload.sub);
    assert.equal(payload.scp, undefined);
    assert.equal(idp.stats.clientCredentialsGrants >= 1, true);
  });

  void it('accepts resource= instead of scope', async () => {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      caller,
      callerAuth,
      { resource: 'api://token-broker' },
      insecure,
    );
    const tokens = await oauth.processClientCredentialsResponse(as, caller, res);
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(as.jwks_uri ?? '')), {
      audience: 'api://token-broker',
    });
    assert.deepEqual(payload.roles, ['Tokens.Read']);
  });

  void it('omits roles for a caller without any', async () => {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: 'post-app' },
      oauth.ClientSecretPost('post-secret'),
      { scope: 'api://token-broker/.default' },
      insecure,
    );
    const tokens = await oauth.processClientCredentialsResponse(as, { client_id: 'post-app' }, res);
    const payload = JSON.parse(
      Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString(),
    ) as Record<string, unknown>;
    assert.equal(payload.roles, undefined);
  });

  void it('rejects scopes without /.default (AADSTS1002012) and unknown resources (AADSTS500011)', async () => {
    const bad = await oauth.clientCredentialsGrantRequest(
      as,
      caller,
      callerAuth,
      { scope: 'https://graph.microsoft.com/Mail.Send' },
      insecure,
    );
    assert.equal(bad.status, 400);
    const badBody = await json(bad);
    assert.equal(badBody.error, 'invalid_scope');
    assert.deepEqual(badBody.error_codes, [1002012]);
    const unknown = await oauth.clientCredentialsGrantRequest(
      as,
      caller,
      callerAuth,
      { scope: 'api://nope/.default' },
      insecure,
    );
    assert.equal(unknown.status, 400);
    const unknownBody = await json(unknown);
    assert.equal(unknownBody.error, 'invalid_resource');
    assert.deepEqual(unknownBody.error_codes, [500011]);
  });

  void it('refuses client credentials to a client registered without the grant', async () => {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: 'public-app' },
      oauth.None(),
      { scope: 'api://token-broker/.default' },
      insecure,
    );
    assert.equal(res.status, 400);
    assert.equal((await json(res)).error, 'unauthorized_client');
  });
});

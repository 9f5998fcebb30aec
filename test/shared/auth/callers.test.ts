import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import functions, { type HttpRequest } from '@azure/functions';
import {
  acceptedAudiences,
  type Authenticator,
  createAuthenticator,
  type Role,
} from '../../../shared/auth/callers.ts';
import { parseConfig } from '../../../shared/config.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { createTransport } from '../../../shared/oauth/transport.ts';
import {
  entraAppClaims,
  hmacSigned,
  type JwksServer,
  newSigningKey,
  sign,
  type SigningKey,
  startJwksServer,
  unsecured,
} from '../../support/entraTokens.ts';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest: Request } = functions;

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const API_APP_ID = '5a1e7c3d-2b4f-4e6a-9c8d-1f0e2d3c4b5a';
const CALLER_APP = '0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b';
const OTHER_TENANT = 'b7e3a9c2-4f61-4d0a-9c3b-2e8f5a1d6c47';

const transport = createTransport({ timeoutMs: 2000 });
let jwks: JwksServer;
let key: SigningKey;
let auth: Authenticator;

function entraConfig(jwksUrl: string, extra: Record<string, string> = {}) {
  return parseConfig({
    BROKER_AUTH_MODE: 'entra',
    BROKER_AUTH_TENANT_ID: TENANT,
    BROKER_AUTH_AUDIENCE: `api://${API_APP_ID}`,
    BROKER_AUTH_JWKS_URL: jwksUrl,
    // The test JWKS server is plain http on loopback.
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    ...extra,
  }).auth;
}

function request(authorization?: string): HttpRequest {
  return new Request({
    method: 'GET',
    url: 'https://broker.test/api/connections/alpha/token',
    headers: authorization === undefined ? {} : { authorization },
  });
}

const v1 = (o: Partial<Parameters<typeof entraAppClaims>[0]> = {}) =>
  entraAppClaims({
    version: '1.0',
    tenantId: TENANT,
    audience: `api://${API_APP_ID}`,
    appId: CALLER_APP,
    roles: ['Tokens.Read'],
    ...o,
  });
const v2 = (o: Partial<Parameters<typeof entraAppClaims>[0]> = {}) =>
  entraAppClaims({
    version: '2.0',
    tenantId: TENANT,
    audience: API_APP_ID,
    appId: CALLER_APP,
    roles: ['Tokens.Read'],
    ...o,
  });

/** Resolves to the error code (and the error) the authenticator throws, or 'ok' with the caller. */
async function outcome(a: Authenticator, authorization: string | undefined, role: Role = 'caller') {
  try {
    return { code: 'ok', caller: await a.authenticate(request(authorization), role) };
  } catch (err) {
    if (!(err instanceof BrokerError)) throw err;
    return { code: err.code, error: err };
  }
}

const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  key = await newSigningKey('key-1');
  jwks = await startJwksServer([key]);
  auth = createAuthenticator(entraConfig(jwks.url), transport.fetch, 2000);
});
after(async () => {
  await jwks.close();
  await transport.close();
});

describe('Entra bearer tokens: accepted shapes', () => {
  it('accepts a v1 token (sts.windows.net issuer, App ID URI audience) and takes the caller from appid', async () => {
    const r = await outcome(auth, `Bearer ${await sign(v1(), key)}`);
    assert.deepEqual(r.caller, { kind: 'entra', appId: CALLER_APP });
  });

  it('accepts a v2 token (login.microsoftonline.com/{tid}/v2.0, client-id audience) and takes the caller from azp', async () => {
    const r = await outcome(auth, `Bearer ${await sign(v2(), key)}`);
    assert.deepEqual(r.caller, { kind: 'entra', appId: CALLER_APP });
  });

  it('reads the scheme case-insensitively', async () => {
    assert.equal((await outcome(auth, `bearer ${await sign(v2(), key)}`)).code, 'ok');
  });

  it('lists the audiences it answers to: each configured one, plus the app id behind api://{guid}', () => {
    assert.deepEqual(acceptedAudiences(`api://${API_APP_ID.toUpperCase()}`), [
      `api://${API_APP_ID.toUpperCase()}`,
      API_APP_ID,
    ]);
    assert.deepEqual(acceptedAudiences('api://token-broker, https://broker.example/api ,'), [
      'api://token-broker',
      'https://broker.example/api',
    ]);
  });

  it('ignores the Authorization header entirely in function-key mode', async () => {
    const fk = createAuthenticator(parseConfig({}).auth, transport.fetch, 2000);
    assert.deepEqual((await outcome(fk, undefined)).caller, { kind: 'function_key' });
    assert.deepEqual((await outcome(fk, 'Bearer nonsense', 'admin')).caller, { kind: 'function_key' });
  });
});

describe('Entra bearer tokens: refused claims (401 invalid_token)', () => {
  const cases: [string, () => Record<string, unknown>][] = [
    ['wrong audience', () => v2({ audience: 'api://someone-else' })],
    ['another tenant (v2 issuer)', () => v2({ tenantId: OTHER_TENANT })],
    ['another tenant (v1 issuer)', () => v1({ tenantId: OTHER_TENANT })],
    ['another cloud’s issuer', () => v2({ authorityHost: 'https://login.microsoftonline.us' })],
    ['expired beyond the 60 s skew', () => v2({ now: now() - 3600 - 120 })],
    ['not yet valid beyond the 60 s skew', () => ({ ...v2(), nbf: now() + 120 })],
    ['no exp', () => ({ ...v2(), exp: undefined })],
    ['no iat', () => ({ ...v2(), iat: undefined })],
  ];
  for (const [title, claims] of cases) {
    it(title, async () => {
      const r = await outcome(auth, `Bearer ${await sign(claims(), key)}`);
      assert.equal(r.code, 'invalid_token');
      assert.equal(r.error?.status, 401);
      assert.equal(
        r.error?.headers['www-authenticate'],
        'Bearer realm="token-broker", error="invalid_token"',
      );
    });
  }

  it('accepts expiry and not-before within the 60 s skew', async () => {
    assert.equal(
      (await outcome(auth, `Bearer ${await sign(v2({ now: now() - 3600 - 30 }), key)}`)).code,
      'ok',
    );
    assert.equal((await outcome(auth, `Bearer ${await sign({ ...v2(), nbf: now() + 30 }, key)}`)).code, 'ok');
  });

  it('refuses alg none and HS256 (also keyed with the RSA public key) without touching the key set', async () => {
    const before = jwks.fetches;
    const publicPem = Buffer.from(JSON.stringify(key.publicJwk));
    for (const token of [
      unsecured(v2(), key.kid),
      await hmacSigned(v2(), publicPem, key.kid),
      await hmacSigned(v2(), new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'), key.kid),
    ]) {
      const r = await outcome(auth, `Bearer ${token}`);
      assert.equal(r.code, 'invalid_token');
      assert.equal(r.error?.detail, 'ERR_JOSE_ALG_NOT_ALLOWED');
    }
    assert.equal(jwks.fetches, before);
  });

  it('refuses a token signed by another key that claims a published kid', async () => {
    const impostor = await newSigningKey(key.kid);
    const r = await outcome(auth, `Bearer ${await sign(v2(), impostor)}`);
    assert.equal(r.code, 'invalid_token');
    assert.equal(r.error?.detail, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('never puts the token into the error it throws', async () => {
    const token = await sign(v2({ audience: 'api://someone-else' }), key);
    const r = await outcome(auth, `Bearer ${token}`);
    const text = JSON.stringify({
      m: r.error?.message,
      d: r.error?.detail,
      f: r.error?.fields,
      h: r.error?.headers,
    });
    assert.ok(!text.includes(token.split('.')[2] ?? 'x'));
  });
});

describe('Entra bearer tokens: roles (403 insufficient_scope)', () => {
  it('refuses a token without roles, or with roles that are not a list', async () => {
    for (const claims of [
      v2({ roles: [] }),
      { ...v2(), roles: undefined },
      { ...v2(), roles: 'Tokens.Read' },
    ]) {
      const r = await outcome(auth, `Bearer ${await sign(claims, key)}`);
      assert.equal(r.code, 'insufficient_scope');
      assert.equal(r.error?.status, 403);
      assert.equal(
        r.error?.headers['www-authenticate'],
        'Bearer realm="token-broker", error="insufficient_scope", scope="Tokens.Read"',
      );
    }
  });

  it('asks Tokens.Read on token routes and Connections.Manage on manage routes; neither implies the other', async () => {
    const reader = `Bearer ${await sign(v2({ roles: ['Tokens.Read'] }), key)}`;
    const admin = `Bearer ${await sign(v2({ roles: ['Connections.Manage'] }), key)}`;
    const both = `Bearer ${await sign(v2({ roles: ['Connections.Manage', 'Tokens.Read'] }), key)}`;
    assert.equal((await outcome(auth, reader, 'caller')).code, 'ok');
    assert.equal((await outcome(auth, reader, 'admin')).code, 'insufficient_scope');
    assert.equal((await outcome(auth, admin, 'admin')).code, 'ok');
    assert.equal((await outcome(auth, admin, 'caller')).code, 'insufficient_scope');
    assert.equal((await outcome(auth, both, 'caller')).code, 'ok');
    assert.equal((await outcome(auth, both, 'admin')).code, 'ok');
    // role names compare exactly, as Entra emits them
    assert.equal(
      (await outcome(auth, `Bearer ${await sign(v2({ roles: ['tokens.read'] }), key)}`)).code,
      'insufficient_scope',
    );
  });

  it('uses the configured role names', async () => {
    const custom = createAuthenticator(
      entraConfig(jwks.url, { BROKER_AUTH_CALLER_ROLE: 'Broker.Read' }),
      transport.fetch,
      2000,
    );
    assert.equal(
      (await outcome(custom, `Bearer ${await sign(v2({ roles: ['Broker.Read'] }), key)}`)).code,
      'ok',
    );
    assert.equal((await outcome(custom, `Bearer ${await sign(v2(), key)}`)).code, 'insufficient_scope');
  });
});

describe('Entra bearer tokens: RFC 6750 header handling', () => {
  it('answers a missing header with 401 unauthorized and a bare challenge', async () => {
    const r = await outcome(auth, undefined);
    assert.equal(r.code, 'unauthorized');
    assert.equal(r.error?.status, 401);
    assert.equal(r.error?.headers['www-authenticate'], 'Bearer realm="token-broker"');
  });

  it('answers a malformed header with 400 invalid_request', async () => {
    for (const header of [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a"b',
      'Token abc',
      'Bearer =abc',
    ]) {
      const r = await outcome(auth, header);
      assert.equal(r.code, 'invalid_request', header);
      assert.equal(r.error?.status, 400);
      assert.equal(
        r.error?.headers['www-authenticate'],
        'Bearer realm="token-broker", error="invalid_request"',
      );
    }
  });

  it('answers a well-formed non-JWT with 401 invalid_token', async () => {
    assert.equal((await outcome(auth, 'Bearer abc.def.ghi')).code, 'invalid_token');
    assert.equal((await outcome(auth, 'Bearer not-a-jwt')).code, 'invalid_token');
  });
});

describe('Entra bearer tokens: the key set', () => {
  it('refetches the JWKS once for an unknown kid after the issuer rotates its key, not more than every 30 s', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const server = await startJwksServer([key]);
    try {
      const a = createAuthenticator(entraConfig(server.url), transport.fetch, 2000);
      assert.equal((await outcome(a, `Bearer ${await sign(v2({ now: now() }), key)}`)).code, 'ok');
      assert.equal(server.fetches, 1);

      // The issuer rotates: the new key is published, tokens signed with it arrive.
      const next = await newSigningKey('key-2');
      server.publish([next]);
      // Within the cooldown a made-up kid costs no download (and the token is refused).
      const bogus = await newSigningKey('made-up');
      assert.equal(
        (await outcome(a, `Bearer ${await sign(v2({ now: now() }), bogus)}`)).code,
        'invalid_token',
      );
      assert.equal(server.fetches, 1);

      t.mock.timers.tick(31_000);
      assert.equal((await outcome(a, `Bearer ${await sign(v2({ now: now() }), next)}`)).code, 'ok');
      assert.equal(server.fetches, 2, 'exactly one refetch for the new kid');
      assert.equal((await outcome(a, `Bearer ${await sign(v2({ now: now() }), next)}`)).code, 'ok');
      assert.equal(server.fetches, 2, 'the new key is cached');
      // The retired key is gone from the set: its tokens are refused once the set has been reloaded.
      t.mock.timers.tick(31_000);
      assert.equal((await outcome(a, `Bearer ${await sign(v2({ now: now() }), key)}`)).code, 'invalid_token');
      assert.equal(server.fetches, 3);
    } finally {
      await server.close();
    }
  });

  it('answers 503 provider_unavailable (not 401) while the key set cannot be fetched, then recovers', async () => {
    const server = await startJwksServer([key]);
    try {
      const a = createAuthenticator(entraConfig(server.url), transport.fetch, 2000);
      const token = `Bearer ${await sign(v2(), key)}`;
      server.failWith(500);
      const down = await outcome(a, token);
      assert.equal(down.code, 'provider_unavailable');
      assert.equal(down.error?.status, 503);
      assert.equal(down.error?.retryAfterSeconds, 5);
      server.failWith(undefined);
      assert.equal((await outcome(a, token)).code, 'ok');
    } finally {
      await server.close();
    }
    const unreachable = createAuthenticator(entraConfig(server.url), transport.fetch, 2000);
    assert.equal(
      (await outcome(unreachable, `Bearer ${await sign(v2(), key)}`)).code,
      'provider_unavailable',
    );
  });

  it('refuses to start without issuer, audience or key set', () => {
    assert.throws(() =>
      createAuthenticator(
        { mode: 'entra', issuers: [], audience: 'x', jwksUrl: jwks.url, callerRole: 'a', adminRole: 'b' },
        transport.fetch,
        1000,
      ),
    );
    assert.throws(() =>
      createAuthenticator(
        {
          mode: 'entra',
          issuers: ['https://i'],
          audience: ' , ',
          jwksUrl: jwks.url,
          callerRole: 'a',
          adminRole: 'b',
        },
        transport.fetch,
        1000,
      ),
    );
  });
});

describe('Entra bearer tokens: more shapes', () => {
  it('admits the app id behind api://{guid}/ with a trailing slash too', () => {
    assert.deepEqual(acceptedAudiences(`api://${API_APP_ID}/`), [`api://${API_APP_ID}/`, API_APP_ID]);
    for (const notGuid of [
      `api://${API_APP_ID}/path`,
      `api://x${API_APP_ID}`,
      `api://${API_APP_ID}0`,
      `xapi://${API_APP_ID}`,
    ])
      assert.deepEqual(acceptedAudiences(notGuid), [notGuid]);
  });

  it('refuses to start without a key set URL', () => {
    assert.throws(
      () =>
        createAuthenticator(
          { mode: 'entra', issuers: ['https://i'], audience: 'x', callerRole: 'a', adminRole: 'b' },
          transport.fetch,
          1000,
        ),
      /needs issuer, audience and JWKS url/,
    );
  });

  it('reads a header with surrounding spaces or several spaces after the scheme, not one with a prefix', async () => {
    const token = await sign(v2(), key);
    assert.equal((await outcome(auth, `  Bearer ${token}  `)).code, 'ok');
    assert.equal((await outcome(auth, `Bearer   ${token}`)).code, 'ok');
    assert.equal((await outcome(auth, `xBearer ${token}`)).code, 'invalid_request');
  });

  it('names no caller app when the token carries neither azp nor appid, and the refused app when it does', async () => {
    const anonymous = { ...v2(), azp: undefined };
    assert.deepEqual((await outcome(auth, `Bearer ${await sign(anonymous, key)}`)).caller, { kind: 'entra' });
    const numeric = { ...v1(), appid: 42 };
    assert.deepEqual((await outcome(auth, `Bearer ${await sign(numeric, key)}`)).caller, { kind: 'entra' });
    const refused = await outcome(auth, `Bearer ${await sign(v1({ roles: [] }), key)}`);
    assert.deepEqual(refused.error?.fields, { caller: CALLER_APP });
  });

  it('answers 503 when the key set URL serves something that is not a JWKS', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"none"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const a = createAuthenticator(entraConfig(`http://127.0.0.1:${port}/keys`), transport.fetch, 2000);
      const r = await outcome(a, `Bearer ${await sign(v2(), key)}`);
      assert.equal(r.code, 'provider_unavailable');
      assert.equal(r.error?.status, 503);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('answers 503 when the key set does not answer within the timeout', async () => {
    const server = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const a = createAuthenticator(entraConfig(`http://127.0.0.1:${port}/keys`), transport.fetch, 200);
      assert.equal((await outcome(a, `Bearer ${await sign(v2(), key)}`)).code, 'provider_unavailable');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/**
 * Caller and admin authentication with real Entra-shaped access tokens: the demo IdP issues client-credentials
 * JWTs (app roles in `roles`, `azp`/`appid`) and the built app, served by the dev host with BROKER_AUTH_MODE=entra,
 * validates them against the IdP's JWKS. Claim variants the IdP cannot produce on demand are covered by
 * test/shared/auth/callers.test.ts with locally signed tokens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, OTHER_TENANT } from '../../tools/demo-idp/server.ts';
import type { BrokerHost } from '../support/brokerHost.ts';
import { startConnect } from '../support/connectPage.ts';
import { BROKER_API, startEntraBrokerHost } from '../support/entraHost.ts';
import { refreshTokenScanner, ResponseLog } from '../support/responseLog.ts';

// Entra app ids are GUIDs; the demo IdP takes them as client ids.
const READER = '3f2c1b0a-9e8d-4c7b-a6f5-e4d3c2b1a090';
const OTHER_READER = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const ADMIN = 'c0ffee00-1234-4abc-8def-0123456789ab';
const NO_ROLE = 'deadbeef-0000-4000-8000-000000000001';
const API = BROKER_API;

let idp: DemoIdp;
let h: BrokerHost;
const secrets: Record<string, string> = {};
const responses = new ResponseLog();
const tokens: Record<string, string> = {};

async function clientCredentialsToken(
  appId: string,
  params: Record<string, string> = { scope: `${API}/.default` },
  tenant?: string,
) {
  const res = await fetch(idp.endpoints(tenant).token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: appId,
      client_secret: secrets[appId] ?? '',
      ...params,
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.access_token);
  h.secrets.add(`bearer token of ${appId}`, body.access_token);
  return body.access_token;
}

/** The broker API with both the function key (platform) and, unless null, a bearer token (app). */
function call(
  method: string,
  path: string,
  bearer: string | null,
  init: { body?: unknown; key?: string | null } = {},
) {
  const headers: Record<string, string> = bearer === null ? {} : { authorization: `Bearer ${bearer}` };
  return h.api(method, path, { headers, ...init });
}

async function problem(
  res: Response,
): Promise<{ status: number; code: string | undefined; challenge: string | null }> {
  const text = await res.text();
  const code = text ? (JSON.parse(text) as { code?: string }).code : undefined;
  return { status: res.status, code, challenge: res.headers.get('www-authenticate') };
}

async function connect(name: string): Promise<void> {
  const link = await call('POST', `manage/connections/${name}/link`, tokens.admin ?? null);
  assert.equal(link.status, 201);
  const { url } = (await link.json()) as { url: string };
  h.secrets.add('connect link', new URL(url).searchParams.get('link'));
  const start = await startConnect(url);
  const cookie = start.headers.getSetCookie()[0]?.split(';')[0] ?? '';
  const result = await driveAuthorization(start.headers.get('location') ?? '', {
    username: 'adele@demo.example',
    password: 'demo',
  });
  h.secrets.add('authorization code', result.params.get('code'));
  const callback = await fetch(result.url, { headers: { cookie }, redirect: 'manual' });
  assert.equal(callback.status, 200);
}

before(async () => {
  responses.install();
  const callers = [
    [READER, ['Tokens.Read']],
    [OTHER_READER, ['Tokens.Read']],
    [ADMIN, ['Connections.Manage']],
    [NO_ROLE, []],
  ] as const;
  for (const [id] of callers) secrets[id] = randomBytes(24).toString('base64url');
  ({ idp, host: h } = await startEntraBrokerHost(
    callers.map(([clientId, roles]) => ({ clientId, clientSecret: secrets[clientId] ?? '', roles })),
  ));
  for (const s of Object.values(secrets)) h.secrets.add('caller client secret', s);
  tokens.reader = await clientCredentialsToken(READER);
  tokens.otherReader = await clientCredentialsToken(OTHER_READER);
  tokens.admin = await clientCredentialsToken(ADMIN);
  tokens.noRole = await clientCredentialsToken(NO_ROLE);

  assert.equal(
    (
      await call('PUT', 'manage/connections/open', tokens.admin, {
        body: { scopes: ['https://graph.microsoft.com/Mail.Send'] },
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await call('PUT', 'manage/connections/restricted', tokens.admin, {
        body: { allowedCallers: [READER.toUpperCase()] },
      })
    ).status,
    201,
  );
  await connect('open');
  await connect('restricted');
});

after(async () => {
  // Close first, assert after: a failing scan must not leave the dev host and the IdP running.
  responses.uninstall();
  let found: Awaited<ReturnType<typeof refreshTokenScanner>> | undefined;
  let logs = '';
  try {
    found = await refreshTokenScanner(h.store);
    logs = await h.collectSecrets();
  } finally {
    await h?.close();
    await idp?.close();
  }
  const { scanner, count } = found;
  assert.equal(count, 2);
  scanner.add('function key', h.functionKey);
  scanner.add('broker client secret', h.clientSecret);
  scanner.add('broker key', h.brokerKey.toString('base64url'));
  for (const s of Object.values(secrets)) scanner.add('caller client secret', s);
  scanner.watch(() => idp.issued().filter((i) => i.kind === 'refresh_token'));
  assert.ok(responses.count > 20, 'responses were recorded');
  responses.assertClean(scanner);
  h.secrets.assertAbsent(logs, 'dev host logs');
});

describe('Entra ID callers through the dev host (demo IdP client-credentials tokens)', () => {
  it('a token request with a valid function key but no bearer is refused: 401 with a Bearer challenge', async () => {
    const r = await problem(await call('GET', 'connections/open/token', null));
    assert.deepEqual(r, { status: 401, code: 'unauthorized', challenge: 'Bearer realm="token-broker"' });
  });

  it('… and with a valid function key but a bad, malformed or foreign bearer', async () => {
    const [h1, p1, s1] = (tokens.reader ?? '').split('.');
    const tampered = `${h1}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p1 ?? '', 'base64url').toString()), roles: ['Connections.Manage'] })).toString('base64url')}.${s1}`;
    assert.deepEqual(await problem(await call('GET', 'connections/open/token', tampered)), {
      status: 401,
      code: 'invalid_token',
      challenge: 'Bearer realm="token-broker", error="invalid_token"',
    });
    const malformed = await h.api('GET', 'connections/open/token', {
      headers: { authorization: `Basic ${tokens.reader}` },
    });
    assert.deepEqual(await problem(malformed), {
      status: 400,
      code: 'invalid_request',
      challenge: 'Bearer realm="token-broker", error="invalid_request"',
    });
    // Same IdP, same caller, but a token for Graph, or one issued by another tenant: audience / issuer refused.
    const graph = await clientCredentialsToken(READER, { scope: 'https://graph.microsoft.com/.default' });
    assert.equal((await problem(await call('GET', 'connections/open/token', graph))).code, 'invalid_token');
    const foreign = await clientCredentialsToken(READER, undefined, OTHER_TENANT.tenantId);
    assert.equal((await problem(await call('GET', 'connections/open/token', foreign))).code, 'invalid_token');
  });

  it('a valid bearer without the function key is refused by the platform (401, empty body)', async () => {
    const res = await call('GET', 'connections/open/token', tokens.reader ?? '', { key: null });
    assert.equal(res.status, 401);
    assert.equal(await res.text(), '');
  });

  it('a Tokens.Read token (scope=api://token-broker/.default or resource=api://token-broker) reads a token', async () => {
    for (const bearer of [tokens.reader ?? '', await clientCredentialsToken(READER, { resource: API })]) {
      const res = await call('GET', 'connections/open/token', bearer);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { access_token: string };
      h.secrets.add('served access token', body.access_token);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
  });

  it('roles: Tokens.Read cannot manage, Connections.Manage cannot read tokens, no role can do neither', async () => {
    const readerOnManage = await problem(await call('GET', 'manage/connections', tokens.reader ?? ''));
    assert.deepEqual(readerOnManage, {
      status: 403,
      code: 'insufficient_scope',
      challenge: 'Bearer realm="token-broker", error="insufficient_scope", scope="Connections.Manage"',
    });
    const adminOnToken = await problem(await call('GET', 'connections/open/token', tokens.admin ?? ''));
    assert.deepEqual([adminOnToken.status, adminOnToken.code], [403, 'insufficient_scope']);
    for (const [method, path] of [
      ['GET', 'connections/open/token'],
      ['GET', 'manage/connections'],
      ['DELETE', 'manage/connections/open'],
    ] as const) {
      assert.equal(
        (await problem(await call(method, path, tokens.noRole ?? ''))).code,
        'insufficient_scope',
        `${method} ${path}`,
      );
    }
    assert.equal((await call('GET', 'manage/connections', tokens.admin ?? '')).status, 200);
    assert.equal((await h.record('open'))?.status, 'active', 'the refused DELETE changed nothing');
  });

  it('allowedCallers: only the listed app id reads a restricted connection, on the cold and the cached path', async () => {
    for (let i = 0; i < 2; i++) {
      const other = await problem(
        await call('GET', 'connections/restricted/token', tokens.otherReader ?? ''),
      );
      assert.deepEqual([other.status, other.code], [403, 'forbidden']);
      const mine = await call('GET', 'connections/restricted/token', tokens.reader ?? '');
      assert.equal(mine.status, 200);
      h.secrets.add('served access token', ((await mine.json()) as { access_token: string }).access_token);
    }
    // The unrestricted connection stays open to every Tokens.Read caller.
    assert.equal((await call('GET', 'connections/open/token', tokens.otherReader ?? '')).status, 200);
  });
});

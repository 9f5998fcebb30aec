import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { startConnect } from '../support/connectPage.ts';
import { installContractCheck } from '../support/contract.ts';

// Access tokens live 16 s; the refresh margin (300 s) is capped at half a token's lifetime
// (shared/broker/refreshPolicy.ts), so a token is fresh for 8 s, then due. The window is wide enough that a loaded
// machine does not turn a fresh token due between two steps of one test.
const FRESH_MS = 8_000;
let h: BrokerHost;

before(async () => {
  h = await startBrokerHost({ idp: { accessTokenTtlSeconds: 16 } });
});
// Every answer this suite sees must fit the OpenAPI document (test/support/contract.ts).
const contract = installContractCheck();
after(async () => {
  contract.uninstall();
  try {
    await h.assertNoSecretsInLogs();
  } finally {
    await h.close();
  }
  contract.assertAllValid();
});

async function token(name: string) {
  const res = await h.api('GET', `connections/${name}/token`);
  const body = (await res.json()) as Record<string, unknown>;
  if (typeof body.access_token === 'string')
    h.secrets.add(`${name} access token (served)`, body.access_token);
  return { res, body };
}

describe('connect → callback → token → refresh, through the dev host', () => {
  it('PUT creates a pending connection and the link starts the flow with a sealed __Host- cookie', async () => {
    const put = await h.api('PUT', 'manage/connections/alpha', {
      body: { scopes: ['https://graph.microsoft.com/Mail.Send'] },
    });
    assert.equal(put.status, 201);
    const view = (await put.json()) as Record<string, unknown>;
    assert.equal(view.status, 'pending');
    const link = await h.newLink('alpha');
    // The link shows the consent page; its Continue answers 303 to the provider (test/support/connectPage.ts).
    const res = await startConnect(link);
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const authorize = new URL(res.headers.get('location') ?? '');
    assert.equal(authorize.origin + authorize.pathname, `${h.idp.origin}/common/oauth2/v2.0/authorize`);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('redirect_uri'), `${h.baseUrl}/api/callback`);
    assert.deepEqual(authorize.searchParams.get('scope')?.split(' ').sort(), [
      'https://graph.microsoft.com/Mail.Send',
      'offline_access',
      'openid',
      'profile',
    ]);
    const [cookie] = res.headers.getSetCookie().filter((c) => c.startsWith('__Host-token-broker-login-'));
    assert.match(
      cookie ?? '',
      // HTTP streams: the library writes cookies itself with the `cookie` package (no ASP.NET lower-casing)
      /^__Host-token-broker-login-[A-Za-z0-9_-]{16}=[^;]+; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  it('signs in at the IdP, and the callback stores the connection and shows the result page', async () => {
    const out = await h.connect('alpha');
    assert.equal(out.callback.status, 200);
    assert.match(out.callback.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(out.callback.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(out.callbackBody, /Your account is connected/);
    assert.match(
      out.callback.headers.getSetCookie()[0] ?? '',
      /^__Host-token-broker-login-[A-Za-z0-9_-]{16}=; Max-Age=0/,
    );
    assert.equal((await h.record('alpha'))?.status, 'active');
    const status = await h.api('GET', 'manage/connections/alpha');
    const view = (await status.json()) as { status: string; identity: { username: string } };
    assert.equal(view.status, 'active');
    assert.equal(view.identity.username, 'adele@demo.example');
    assert.ok(!JSON.stringify(view).includes('token'), 'status JSON carries no token fields');
  });

  it('serves the token with no-store and without calling the IdP while it is fresh', async () => {
    await h.createConnection('beta');
    await h.connect('beta');
    h.idp.stats.reset();
    const { res, body } = await token('alpha');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'connection',
      'expires_at',
      'expires_in',
      'scope',
      'token_type',
    ]);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(h.idp.stats.refreshGrants, 0);
  });

  it('refreshes exactly once when the token becomes due', async () => {
    const before = (await token('alpha')).body.access_token;
    await sleep(FRESH_MS + 300);
    h.idp.stats.reset();
    const after = (await token('alpha')).body.access_token;
    const again = (await token('alpha')).body.access_token;
    assert.notEqual(after, before);
    assert.equal(again, after);
    assert.equal(h.idp.stats.refreshGrants, 1);
  });

  it('the timer (POST /admin/functions/refresh) refreshes due connections only', async () => {
    await h.createConnection('gamma');
    await h.connect('gamma');
    const beforeRecords = {
      alpha: await h.record('alpha'),
      beta: await h.record('beta'),
      gamma: await h.record('gamma'),
    };
    h.idp.stats.reset();
    const res = await fetch(`${h.baseUrl}/admin/functions/refresh`, {
      method: 'POST',
      headers: {
        'x-functions-key': h.functionKey,
        'x-devhost-wait': 'true',
        'content-type': 'application/json',
      },
      body: '{}',
    });
    assert.equal(res.status, 202);
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.equal((await h.record('alpha'))?.revision, beforeRecords.alpha?.revision);
    assert.equal((await h.record('gamma'))?.revision, beforeRecords.gamma?.revision);
    assert.ok(((await h.record('beta'))?.revision ?? 0) > (beforeRecords.beta?.revision ?? 0));
    assert.match(h.host.logs(), /refresh\.sweep .*due=1 refreshed=1 failed=0/);
  });

  it('200 parallel token requests on a stale connection cause one refresh at the IdP', async () => {
    await sleep(FRESH_MS + 300);
    h.idp.stats.reset();
    const all = await Promise.all(Array.from({ length: 200 }, () => token('alpha')));
    assert.ok(all.every((r) => r.res.status === 200));
    assert.equal(new Set(all.map((r) => r.body.access_token)).size, 1);
    assert.equal(h.idp.stats.refreshGrants, 1);
  });

  it('lists connections without tokens and deletes one', async () => {
    const list = (await (await h.api('GET', 'manage/connections')).json()) as {
      connections: { connection: string }[];
    };
    assert.deepEqual(
      list.connections.map((c) => c.connection),
      ['alpha', 'beta', 'gamma'],
    );
    assert.equal((await h.api('DELETE', 'manage/connections/gamma')).status, 204);
    assert.equal((await h.api('GET', 'manage/connections/gamma')).status, 404);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keyIdOf } from '../../shared/config.ts';
import { Keyring, signToken } from '../../shared/crypto.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { startConnect } from '../support/connectPage.ts';
import { installContractCheck } from '../support/contract.ts';

let h: BrokerHost;
let keyring: Keyring;

before(async () => {
  h = await startBrokerHost();
  keyring = new Keyring([{ kid: keyIdOf(h.brokerKey), key: h.brokerKey }]);
  await h.createConnection('alpha');
  await h.connect('alpha');
  await h.createConnection('pinned', {
    scopes: ['https://graph.microsoft.com/Mail.Send'],
    expectedIdentity: { username: 'megan@demo.example' },
  });
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

/** Everything the store holds, by connection: revision and status. Bad input must leave it unchanged. */
async function snapshot(): Promise<string> {
  const list = await h.store.listMetadata();
  return JSON.stringify(list.map((m) => [m.connection, m.revision, m.status]).sort());
}

async function expectProblem(res: Response, status: number, code: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = JSON.parse(text) as { code: string; status: number };
  assert.equal(body.code, code);
  assert.equal(body.status, status);
}

const json = { accept: 'application/json' };

describe('bad input: a 4xx problem with a stable code, and nothing stored changes', () => {
  const cases: [string, () => Promise<Response>, number, string][] = [
    ['unknown connection', () => h.api('GET', 'connections/nope/token'), 404, 'unknown_connection'],
    ['invalid connection name', () => h.api('GET', 'connections/Bad_Name/token'), 400, 'invalid_request'],
    [
      'connection name too long',
      () => h.api('GET', `connections/${'a'.repeat(64)}/token`),
      400,
      'invalid_request',
    ],
    ['unknown query parameter', () => h.api('GET', 'connections/alpha/token?foo=1'), 400, 'invalid_request'],
    [
      'duplicated query parameter',
      () => h.api('GET', 'connections/alpha/token?scope=a&scope=b'),
      400,
      'invalid_request',
    ],
    [
      'scope not granted',
      () => h.api('GET', 'connections/alpha/token?scope=https://ads.microsoft.com/msads.manage'),
      403,
      'scope_not_granted',
    ],
    [
      'PUT with an unknown field',
      () => h.api('PUT', 'manage/connections/alpha', { body: { scopes: [], colour: 'red' } }),
      400,
      'invalid_request',
    ],
    [
      'PUT with a wrong type',
      () => h.api('PUT', 'manage/connections/alpha', { body: { scopes: 'Mail.Send' } }),
      400,
      'invalid_request',
    ],
    [
      'PUT with invalid JSON',
      () => h.api('PUT', 'manage/connections/alpha', { body: '{"scopes":' }),
      400,
      'invalid_request',
    ],
    [
      'PUT with a wrong content type',
      () =>
        h.api('PUT', 'manage/connections/alpha', { body: '{}', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    ],
    [
      'PUT with an oversized body',
      () =>
        h.api('PUT', 'manage/connections/alpha', { body: { scopes: [], description: 'x'.repeat(70_000) } }),
      413,
      'payload_too_large',
    ],
    [
      'PUT with an unknown provider',
      () => h.api('PUT', 'manage/connections/alpha', { body: { provider: 'nope', scopes: [] } }),
      400,
      'invalid_request',
    ],
    [
      'PUT with a malformed pinned tenant',
      () =>
        h.api('PUT', 'manage/connections/alpha', {
          body: { scopes: [], expectedIdentity: { tenantId: 'x' } },
        }),
      400,
      'invalid_request',
    ],
    [
      'unknown manage action',
      () => h.api('POST', 'manage/connections/alpha/frobnicate'),
      400,
      'invalid_request',
    ],
    [
      'import without a refresh token',
      () => h.api('POST', 'manage/connections/alpha/import', { body: {} }),
      400,
      'invalid_request',
    ],
    [
      'import of a rejected refresh token',
      () =>
        h.api('POST', 'manage/connections/alpha/import', {
          body: { refreshToken: 'not-a-valid-refresh-token' },
        }),
      400,
      'invalid_request',
    ],
    [
      'refresh with a body',
      () => h.api('POST', 'manage/connections/alpha/refresh', { body: { force: true } }),
      400,
      'invalid_request',
    ],
    [
      'link for an unknown connection',
      () => h.api('POST', 'manage/connections/nope/link'),
      404,
      'unknown_connection',
    ],
    [
      'delete an unknown connection',
      () => h.api('DELETE', 'manage/connections/nope'),
      404,
      'unknown_connection',
    ],
    [
      'connect without a link',
      () => fetch(`${h.apiUrl}/connect/alpha`, { headers: json, redirect: 'manual' }),
      400,
      'invalid_request',
    ],
    [
      'connect with a tampered link',
      () =>
        fetch(`${h.apiUrl}/connect/alpha?link=${'A'.repeat(40)}.${'B'.repeat(20)}.${'C'.repeat(43)}`, {
          headers: json,
          redirect: 'manual',
        }),
      403,
      'invalid_link',
    ],
    [
      'connect with an expired link',
      async () =>
        fetch(
          // A valid `t` (the connection's createdAt): only the expiry is wrong.
          `${h.apiUrl}/connect/alpha?link=${signToken(keyring, 'connect-link', { c: 'alpha', t: (await h.record('alpha'))?.createdAt, exp: Date.now() - 1000, n: 'x' })}`,
          { headers: json, redirect: 'manual' },
        ),
      403,
      'invalid_link',
    ],
    [
      'connect with another connection’s link',
      () =>
        fetch(
          `${h.apiUrl}/connect/pinned?link=${signToken(keyring, 'connect-link', { c: 'alpha', exp: Date.now() + 60_000, n: 'x' })}`,
          { headers: json, redirect: 'manual' },
        ),
      403,
      'invalid_link',
    ],
    [
      'callback without the cookie',
      () => fetch(`${h.apiUrl}/callback?code=abcdefgh&state=abcdefgh`, { headers: json }),
      400,
      'invalid_state',
    ],
    [
      'callback with an unknown parameter',
      () => fetch(`${h.apiUrl}/callback?code=abcdefgh&state=abcdefgh&x=1`, { headers: json }),
      400,
      'invalid_request',
    ],
    [
      'callback without code or error',
      () => fetch(`${h.apiUrl}/callback?state=abcdefgh`, { headers: json }),
      400,
      'invalid_request',
    ],
  ];
  for (const [title, call, status, code] of cases) {
    it(title, async () => {
      const before = await snapshot();
      await expectProblem(await call(), status, code);
      assert.equal(await snapshot(), before);
    });
  }

  it('token and manage calls without or with a wrong key get 401 with an empty body', async () => {
    const before = await snapshot();
    for (const res of [
      await h.api('GET', 'connections/alpha/token', { key: null }),
      await h.api('GET', 'connections/alpha/token', { key: 'wrong-key-value' }),
      await h.api('GET', 'manage/connections', { key: null }),
      await h.api('DELETE', 'manage/connections/alpha', { key: 'wrong-key-value' }),
    ]) {
      assert.equal(res.status, 401);
      assert.equal(await res.text(), '');
    }
    assert.equal(await snapshot(), before);
  });

  it('an expired link with a valid signature, connection and instance is refused as expired, and only that', async () => {
    // Everything but the expiry is right (the connection's createdAt in `t`), so only the expiry check can
    // refuse it: the same link with a future expiry opens the consent page.
    const t = (await h.record('alpha'))?.createdAt;
    const forged = (exp: number) =>
      `${h.apiUrl}/connect/alpha?link=${signToken(keyring, 'connect-link', { c: 'alpha', t, exp, n: 'x' })}`;
    const before = await snapshot();
    const res = await fetch(forged(Date.now() - 1000), { headers: json, redirect: 'manual' });
    const body = (await res.json()) as { code: string; detail: string };
    assert.equal(res.status, 403);
    assert.equal(body.code, 'invalid_link');
    assert.match(body.detail, /has expired/);
    const fresh = await fetch(forged(Date.now() + 60_000), {
      headers: { accept: 'text/html' },
      redirect: 'manual',
    });
    assert.equal(fresh.status, 200, 'the same link, unexpired, is accepted');
    await fresh.text();
    assert.equal(await snapshot(), before);
  });

  it('a browser sees a readable page with the same status for a bad link', async () => {
    const t = (await h.record('alpha'))?.createdAt;
    const res = await fetch(
      `${h.apiUrl}/connect/alpha?link=${signToken(keyring, 'connect-link', { c: 'alpha', t, exp: Date.now() - 1000, n: 'x' })}`,
      { headers: { accept: 'text/html' }, redirect: 'manual' },
    );
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('x-broker-error'), 'invalid_link');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.match(await res.text(), /expired or is not valid/);
  });

  it('callback with a wrong state, a replayed code, a provider error, or the wrong account changes nothing', async () => {
    const before = await snapshot();
    // wrong state: a real cookie from a connect, but the state of another attempt
    const a = await startConnect(await h.newLink('alpha'));
    const cookie = a.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    await expectProblem(
      await fetch(`${h.apiUrl}/callback?code=abcdefgh&state=not-the-state`, { headers: { cookie, ...json } }),
      400,
      'invalid_state',
    );
    // provider error: the person denied consent
    const denied = await h.connect('alpha', { decision: 'deny' });
    assert.equal(denied.callback.status, 400);
    assert.equal(denied.callback.headers.get('x-broker-error'), 'provider_denied');
    // identity pinning: adele signs in to a connection pinned to megan
    const mismatch = await h.connect('pinned', { username: 'adele@demo.example' });
    assert.equal(mismatch.callback.status, 403);
    assert.equal(mismatch.callback.headers.get('x-broker-error'), 'identity_mismatch');
    assert.equal(await snapshot(), before);
    // replay: a successful callback, then the same URL and cookie again
    const ok = await h.connect('alpha');
    assert.equal(ok.callback.status, 200);
    const afterOk = await snapshot();
    const cookieOk = ok.connectCookies[0]?.split(';')[0] ?? '';
    const replay = await fetch(ok.drive.url, { headers: { cookie: cookieOk, ...json } });
    await expectProblem(replay, 400, 'invalid_state');
    assert.equal(await snapshot(), afterOk);
  });
});

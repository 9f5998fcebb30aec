/**
 * The connect flow under attack, through the dev host and the demo IdP: forged Host headers, forged and stolen
 * links, the sealed state cookie, login CSRF, RFC 9207 mix-up, identity pinning, repeated and oversized
 * parameters. Every refusal must also leave the store and the IdP untouched (no code redeemed).
 * Plain bad-input cases (unknown names, tampered/expired/other-connection links, missing cookie, wrong state,
 * replay on the same instance) are in test/e2e/badInput.test.ts and are not repeated here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { openLoginState } from '../../shared/broker/loginState.ts';
import { STATE_COOKIE_NAME, stateCookieName } from '../../shared/broker/stateCookie.ts';
import { keyIdOf } from '../../shared/config.ts';
import { Keyring, seal, signToken } from '../../shared/crypto.ts';
import { driveAuthorization, type DriveResult } from '../../tools/demo-idp/driver.ts';
import { OTHER_TENANT } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { startConnect } from '../support/connectPage.ts';
import { refreshTokenScanner, ResponseLog } from '../support/responseLog.ts';

let h: BrokerHost;
let keyring: Keyring;
const responses = new ResponseLog();
const seenRefreshTokens: (string | undefined)[] = [];
const JSON_ACCEPT = { accept: 'application/json' };

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** node:http directly: fetch forbids setting Host. Recorded like every other answer. */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  const url = new URL(`${h.apiUrl}/${path}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: url.port, method, path: `${url.pathname}${url.search}`, headers },
      (res) => {
        let text = '';
        res.on('error', reject);
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          const out = { status: res.statusCode ?? 0, headers: res.headers, body: text };
          void responses.add(url.pathname, out.status, res.headers, text).then(() => resolve(out));
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function snapshot(): Promise<string> {
  const list = await h.store.listMetadata();
  return JSON.stringify(list.map((m) => [m.connection, m.revision, m.status]).sort());
}

async function code(res: Response): Promise<string> {
  const text = await res.text();
  return `${res.status} ${text ? (JSON.parse(text) as { code: string }).code : ''}`;
}

/** Opens a fresh link like the account owner's browser: returns the login cookie and the authorize URL. */
async function startFlow(
  name: string,
): Promise<{ cookie: string; setCookie: string; authorizeUrl: URL; link: string }> {
  const link = await h.newLink(name);
  const res = await startConnect(link);
  assert.equal(res.status, 303);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith(`${STATE_COOKIE_NAME}-`)) ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  h.secrets.add('state cookie', cookie.slice(cookie.indexOf('=') + 1));
  return { cookie, setCookie, authorizeUrl: new URL(res.headers.get('location') ?? ''), link };
}

async function signIn(authorizeUrl: URL, username = 'adele@demo.example'): Promise<DriveResult> {
  const result = await driveAuthorization(authorizeUrl.href, { username, password: 'demo' });
  h.secrets.add('authorization code', result.params.get('code'));
  return result;
}

function callback(url: URL | string, cookie?: string): Promise<Response> {
  return fetch(url, { headers: { ...JSON_ACCEPT, ...(cookie ? { cookie } : {}) }, redirect: 'manual' });
}

function adele() {
  const user = h.idp.users.find((u) => u.username === 'adele@demo.example');
  assert.ok(user);
  return user;
}

before(async () => {
  responses.install();
  // The dev host answers only loopback Host names unless told otherwise (like App Service's front end, which
  // routes by Host); evil.example is let through so the forged-Host tests reach the app and prove it ignores Host.
  h = await startBrokerHost({ env: { DEVHOST_ALLOWED_HOSTS: 'evil.example' } });
  keyring = new Keyring([{ kid: keyIdOf(h.brokerKey), key: h.brokerKey }]);
  await h.createConnection('alpha');
  const first = await h.connect('alpha');
  assert.equal(first.callback.status, 200);
  seenRefreshTokens.push((await h.record('alpha'))?.tokens?.refreshToken);
});

after(async () => {
  // Close first, assert after: a failing scan must not leave the dev host and the IdP running.
  responses.uninstall();
  let found: Awaited<ReturnType<typeof refreshTokenScanner>> | undefined;
  let logs = '';
  try {
    found = await refreshTokenScanner(h.store, seenRefreshTokens);
    logs = await h.collectSecrets();
  } finally {
    await h?.close();
  }
  const { scanner, count } = found;
  assert.ok(count >= 4, 'the suite connected accounts whose refresh tokens are scanned for');
  // Nor any of the broker's own secrets, nor any refresh token the IdP ever issued (superseded ones too).
  scanner.add('function key', h.functionKey);
  scanner.add('client secret', h.clientSecret);
  scanner.add('broker key', h.brokerKey.toString('base64url'));
  scanner.watch(() => h.idp.issued().filter((i) => i.kind === 'refresh_token'));
  assert.ok(responses.count > 50, 'responses were recorded');
  responses.assertClean(scanner);
  h.secrets.assertAbsent(logs, 'dev host logs');
});

describe('redirect URI and links come from configuration, never from the request', () => {
  const forged = {
    host: 'evil.example:8443',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'https',
    'x-original-host': 'evil.example',
    forwarded: 'host=evil.example;proto=https',
  };

  it('a forged Host / X-Forwarded-Host / Forwarded on connect changes neither redirect_uri nor the cookie', async () => {
    const honest = await startFlow('alpha');
    const link = new URL(await h.newLink('alpha'));
    const page = await raw('GET', `connect/alpha${link.search}`, { ...forged, accept: 'text/html' });
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body + JSON.stringify(page.headers), /evil/);
    const fields = new URLSearchParams();
    for (const m of page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
      fields.set(m[1] ?? '', (m[2] ?? '').replace(/&amp;/g, '&'));
    const consentCookie = (page.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';
    const res = await raw(
      'POST',
      'connect/alpha',
      {
        ...forged,
        accept: 'text/html',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: consentCookie,
      },
      fields.toString(),
    );
    assert.equal(res.status, 303, res.body);
    const location = new URL(String(res.headers.location));
    assert.equal(
      location.origin + location.pathname,
      honest.authorizeUrl.origin + honest.authorizeUrl.pathname,
    );
    assert.equal(location.searchParams.get('redirect_uri'), `${h.baseUrl}/api/callback`);
    assert.equal(
      location.searchParams.get('redirect_uri'),
      honest.authorizeUrl.searchParams.get('redirect_uri'),
    );
    const cookie = res.headers['set-cookie']?.find((c) => c.startsWith(`${STATE_COOKIE_NAME}-`)) ?? '';
    const attributes = (c: string) =>
      c
        .split(';')
        .slice(1)
        .map((a) => a.trim().toLowerCase())
        .sort();
    assert.deepEqual(attributes(cookie), attributes(honest.setCookie));
    assert.ok(cookie.startsWith(`${stateCookieName(location.searchParams.get('state') ?? '')}=`));
    assert.doesNotMatch(cookie, /domain=/i);
    assert.doesNotMatch(JSON.stringify(res.headers), /evil/);
    // RFC 9700 §4.2.4: the authorize URL (state, nonce, challenge) must not leak through Referer or caches.
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('a forged Host on link creation still yields a link on the configured base URL', async () => {
    const res = await raw('POST', 'manage/connections/alpha/link', {
      ...forged,
      'x-functions-key': h.functionKey,
    });
    assert.equal(res.status, 201);
    const { url } = JSON.parse(res.body) as { url: string };
    h.secrets.add('connect link', new URL(url).searchParams.get('link'));
    assert.ok(url.startsWith(`${h.baseUrl}/api/connect/alpha?link=`), url);
  });
});

describe('connect links: HMAC-signed, expiring, one connection', () => {
  it('refuses links signed by an unlisted key, with another purpose’s key, altered, re-kid’ed or with a bad expiry; no cookie is set', async () => {
    const before = await snapshot();
    const stranger = randomBytes(32);
    const strangerRing = new Keyring([{ kid: keyIdOf(stranger), key: stranger }]);
    const real = new URL(await h.newLink('alpha')).searchParams.get('link') ?? '';
    const [kid, , mac] = real.split('.');
    const future = Date.now() + 3600_000;
    const variants: Record<string, string> = {
      'unlisted key': signToken(strangerRing, 'connect-link', { c: 'alpha', exp: future, n: 'x' }),
      'state-cookie key': signToken(keyring, 'state-cookie', { c: 'alpha', exp: future, n: 'x' }),
      'payload swapped under the real MAC': `${kid}.${Buffer.from(JSON.stringify({ c: 'alpha', exp: future * 10, n: 'x' })).toString('base64url')}.${mac}`,
      'another kid': `${keyIdOf(stranger)}.${real.split('.')[1]}.${mac}`,
      'expiry as text': signToken(keyring, 'connect-link', { c: 'alpha', exp: String(future), n: 'x' }),
      'no expiry': signToken(keyring, 'connect-link', { c: 'alpha', n: 'x' }),
    };
    for (const [title, link] of Object.entries(variants)) {
      const res = await fetch(`${h.apiUrl}/connect/alpha?link=${link}`, {
        headers: JSON_ACCEPT,
        redirect: 'manual',
      });
      assert.equal(await code(res), '403 invalid_link', title);
      assert.deepEqual(res.headers.getSetCookie(), [], title);
    }
    assert.equal(await snapshot(), before);
  });

  it('a stolen link cannot attach another account to a connection pinned to its owner', async () => {
    const owner = adele();
    await h.createConnection('pinned-owner', {
      scopes: ['https://graph.microsoft.com/Mail.Send'],
      expectedIdentity: { tenantId: owner.tenantId, objectId: owner.objectId, username: owner.username },
    });
    assert.equal((await h.connect('pinned-owner')).callback.status, 200);
    const before = await h.record('pinned-owner');
    seenRefreshTokens.push(before?.tokens?.refreshToken);
    const thief = await startFlow('pinned-owner');
    const result = await signIn(thief.authorizeUrl, 'megan@demo.example');
    assert.equal(await code(await callback(result.url, thief.cookie)), '403 identity_mismatch');
    const afterRecord = await h.record('pinned-owner');
    assert.equal(afterRecord?.revision, before?.revision);
    assert.equal(afterRecord?.identity?.username, owner.username);
    assert.equal(afterRecord?.tokens?.refreshToken, before?.tokens?.refreshToken);
  });
});

describe('the login state cookie', () => {
  it('is sealed, __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, host-only, and lives at most 10 minutes', async () => {
    const flow = await startFlow('alpha');
    const [pair = '', ...attrs] = flow.setCookie.split(';').map((p) => p.trim());
    const lower = attrs.map((a) => a.toLowerCase());
    assert.ok(pair.startsWith('__Host-'));
    for (const a of ['httponly', 'secure', 'samesite=lax', 'path=/']) assert.ok(lower.includes(a), a);
    assert.ok(!lower.some((a) => a.startsWith('domain=')));
    const maxAge = Number(lower.find((a) => a.startsWith('max-age='))?.slice(8));
    assert.ok(maxAge > 0 && maxAge <= 600, String(maxAge));
    // Nothing readable inside: neither the state nor the nonce of this very flow, in any encoding.
    const value = pair.slice(pair.indexOf('=') + 1);
    const state = flow.authorizeUrl.searchParams.get('state') ?? '';
    const nonce = flow.authorizeUrl.searchParams.get('nonce') ?? '';
    const decoded = value
      .split('.')
      .map((p) => Buffer.from(p, 'base64url').toString('latin1'))
      .join('|');
    for (const secret of [state, nonce]) {
      assert.ok(secret.length >= 16);
      assert.ok(!value.includes(secret) && !decoded.includes(secret));
    }
    // … yet it is what binds the browser to this state.
    assert.equal(pair.slice(0, pair.indexOf('=')), stateCookieName(state), 'named after its state');
    assert.equal((await openLoginState(keyring, value, stateCookieName(state), Date.now()))?.s, state);
  });

  it('an expired, foreign-key, other-purpose or duplicated cookie is refused and the code is never redeemed', async () => {
    const before = await snapshot();
    const flow = await startFlow('alpha');
    const name = stateCookieName(flow.authorizeUrl.searchParams.get('state') ?? '');
    // The cookie as issued (a JWE), re-sealed below in the format used before jose: forgeries in that format
    // must be refused like any other.
    const state = JSON.parse(
      JSON.stringify(await openLoginState(keyring, flow.cookie.split('=')[1] ?? '', name, Date.now())),
    ) as Record<string, unknown>;
    const stranger = randomBytes(32);
    const variants: Record<string, string> = {
      expired: seal(keyring, 'state-cookie', { ...state, exp: Date.now() - 1000 }, name),
      'sealed with an unlisted key': seal(
        new Keyring([{ kid: keyIdOf(stranger), key: stranger }]),
        'state-cookie',
        state,
        name,
      ),
      'sealed for another cookie name': seal(keyring, 'state-cookie', state, STATE_COOKIE_NAME),
      'sealed with the link key': seal(keyring, 'connect-link', state, name),
    };
    const result = await signIn(flow.authorizeUrl);
    h.idp.stats.reset();
    for (const [title, value] of Object.entries(variants)) {
      assert.equal(await code(await callback(result.url, `${name}=${value}`)), '400 invalid_state', title);
    }
    assert.equal(
      await code(await callback(result.url, `${flow.cookie}; ${flow.cookie}`)),
      '400 invalid_state',
      'duplicated',
    );
    assert.equal(h.idp.stats.authorizationCodeGrants, 0);
    assert.equal(await snapshot(), before);
  });

  it('a refused callback clears the cookie too, and the cleared cookie keeps its attributes', async () => {
    const res = await callback(
      `${h.apiUrl}/callback?code=abcdefgh&state=abcdefgh`,
      `${stateCookieName('abcdefgh')}=garbage`,
    );
    assert.equal(await code(res), '400 invalid_state');
    const cleared = res.headers.getSetCookie()[0] ?? '';
    assert.match(cleared, new RegExp(`^${stateCookieName('abcdefgh')}=; `));
    assert.match(cleared, /max-age=0/i);
    assert.match(cleared, /secure/i);
    assert.match(cleared, /path=\//i);
  });
});

describe('login CSRF and mix-up', () => {
  it('an attacker’s authorization response replayed into a victim’s browser is refused: nothing redeemed, nothing stored', async () => {
    const before = await snapshot();
    const attacker = await startFlow('alpha');
    const response = await signIn(attacker.authorizeUrl, 'megan@demo.example');
    h.idp.stats.reset();
    // The victim's browser has no login cookie at all …
    assert.equal(await code(await callback(response.url)), '400 invalid_state');
    // … or has its own, from a connect link it opened itself.
    const victim = await startFlow('alpha');
    assert.equal(await code(await callback(response.url, victim.cookie)), '400 invalid_state');
    assert.equal(h.idp.stats.authorizationCodeGrants, 0);
    assert.equal(await snapshot(), before);
    assert.equal((await h.record('alpha'))?.identity?.username, 'adele@demo.example');
  });

  it('an authorization response naming another issuer (RFC 9207 iss) is refused before the code is redeemed', async () => {
    const before = await snapshot();
    for (const iss of [
      'http://127.0.0.1:9/evil/v2.0',
      `${h.idp.origin}/common/v2.0`,
      `${h.idp.origin}/${adele().tenantId}/v2.0/extra`,
    ]) {
      const flow = await startFlow('alpha');
      const result = await signIn(flow.authorizeUrl);
      h.idp.stats.reset();
      const url = new URL(result.url);
      url.searchParams.set('iss', iss);
      assert.equal(await code(await callback(url, flow.cookie)), '400 invalid_state', iss);
      assert.equal(h.idp.stats.authorizationCodeGrants, 0, iss);
    }
    assert.equal(await snapshot(), before);
    // Control: the right issuer is accepted, so the refusals above are about the issuer.
    const flow = await startFlow('alpha');
    const result = await signIn(flow.authorizeUrl);
    const url = new URL(result.url);
    url.searchParams.set('iss', h.idp.issuer);
    assert.equal((await callback(url, flow.cookie)).status, 200);
    seenRefreshTokens.push((await h.record('alpha'))?.tokens?.refreshToken);
  });
});

describe('identity pinning (verified id_token claims)', () => {
  const cases: [string, () => Record<string, string>, number][] = [
    ['another tenant id', () => ({ tenantId: OTHER_TENANT.tenantId }), 403],
    [
      'another object id',
      () => ({ objectId: h.idp.users.find((u) => u.username === 'megan@demo.example')?.objectId ?? '' }),
      403,
    ],
    ['another username', () => ({ username: 'megan@demo.example' }), 403],
    [
      'right username and tenant, wrong object id',
      () => ({ tenantId: adele().tenantId, username: adele().username, objectId: OTHER_TENANT.tenantId }),
      403,
    ],
    [
      'all three matching (username case-insensitive)',
      () => ({
        tenantId: adele().tenantId,
        objectId: adele().objectId.toUpperCase(),
        username: 'ADELE@demo.example',
      }),
      200,
    ],
  ];
  cases.forEach(([title, expected, status], i) => {
    it(`${title} → ${status}`, async () => {
      const name = `pin-${i}`;
      await h.createConnection(name, {
        scopes: ['https://graph.microsoft.com/Mail.Send'],
        expectedIdentity: expected(),
      });
      const flow = await startFlow(name);
      const result = await signIn(flow.authorizeUrl, 'adele@demo.example');
      const res = await callback(result.url, flow.cookie);
      const record = await h.record(name);
      if (status === 200) {
        assert.equal(res.status, 200);
        assert.equal(record?.status, 'active');
        seenRefreshTokens.push(record?.tokens?.refreshToken);
      } else {
        assert.equal(await code(res), `${status} identity_mismatch`);
        assert.equal(record?.status, 'pending');
        assert.equal(record?.tokens, undefined);
      }
    });
  });
});

describe('parameters and sizes', () => {
  it('repeated link, state or code parameters are refused', async () => {
    const link = new URL(await h.newLink('alpha')).searchParams.get('link') ?? '';
    const before = await snapshot();
    for (const path of [
      `connect/alpha?link=${link}&link=${link}`,
      'callback?code=abcdefgh&code=abcdefgh&state=abcdefgh',
      'callback?code=abcdefgh&state=abcdefgh&state=abcdefgh',
      'callback?error=access_denied&error=server_error&state=abcdefgh',
    ]) {
      assert.equal(
        await code(await fetch(`${h.apiUrl}/${path}`, { headers: JSON_ACCEPT, redirect: 'manual' })),
        '400 invalid_request',
        path,
      );
    }
    assert.equal(await snapshot(), before);
  });

  it('oversized parameters are refused: link over 2 KB, state or code over 4 KB', async () => {
    for (const path of [
      `connect/alpha?link=${'a'.repeat(2049)}`,
      `callback?code=abcdefgh&state=${'s'.repeat(4097)}`,
      `callback?code=${'c'.repeat(4097)}&state=abcdefgh`,
    ]) {
      assert.equal(
        await code(await fetch(`${h.apiUrl}/${path}`, { headers: JSON_ACCEPT, redirect: 'manual' })),
        '400 invalid_request',
      );
    }
  });

  it('a JSON body over 64 KB is refused even when sent chunked without Content-Length', async () => {
    const before = await snapshot();
    const body = JSON.stringify({ refreshToken: 'r'.repeat(70_000) });
    const res = await raw(
      'POST',
      'manage/connections/alpha/import',
      {
        'x-functions-key': h.functionKey,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      },
      body,
    );
    assert.equal(res.status, 413);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'payload_too_large');
    assert.equal(await snapshot(), before);
  });
});

describe('callers in function-key mode', () => {
  it('a connection restricted to app ids is closed to function-key callers (fails closed)', async () => {
    await h.createConnection('restricted', {
      scopes: ['https://graph.microsoft.com/Mail.Send'],
      allowedCallers: ['3f2c1b0a-9e8d-4c7b-a6f5-e4d3c2b1a090'],
    });
    assert.equal((await h.connect('restricted')).callback.status, 200);
    assert.equal(await code(await h.api('GET', 'connections/restricted/token')), '403 forbidden');
  });

  it('the token answer holds the access token and its metadata only', async () => {
    const res = await h.api('GET', 'connections/alpha/token');
    const body = (await res.json()) as Record<string, unknown>;
    h.secrets.add('served access token', String(body.access_token));
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'connection',
      'expires_at',
      'expires_in',
      'scope',
      'token_type',
    ]);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });
});

describe('no refresh token in any answer', () => {
  it('status, list, manual refresh, import and token answers carry none — nor the 409 once the grant is revoked', async () => {
    await h.createConnection('leaky');
    assert.equal((await h.connect('leaky', { username: 'megan@demo.example' })).callback.status, 200);
    const rts: string[] = [];
    const remember = async () => rts.push((await h.record('leaky'))?.tokens?.refreshToken ?? '');
    await remember();
    const answers: [string, Response][] = [
      ['status', await h.api('GET', 'manage/connections/leaky')],
      ['list', await h.api('GET', 'manage/connections')],
      ['manual refresh', await h.api('POST', 'manage/connections/leaky/refresh')],
    ];
    await remember();
    answers.push([
      'import',
      await h.api('POST', 'manage/connections/leaky/import', { body: { refreshToken: rts.at(-1) } }),
    ]);
    await remember();
    answers.push(['token', await h.api('GET', 'connections/leaky/token')]);
    await h.idp.revokeUser('megan@demo.example');
    answers.push(['refresh after revocation', await h.api('POST', 'manage/connections/leaky/refresh')]);
    assert.deepEqual(
      answers.map(([what, res]) => `${what} ${res.status}`),
      [
        'status 200',
        'list 200',
        'manual refresh 200',
        'import 200',
        'token 200',
        'refresh after revocation 409',
      ],
    );
    assert.equal(new Set(rts).size, 3, 'the refresh token rotated at each refresh');
    seenRefreshTokens.push(...rts);
    for (const [what, res] of answers) {
      let text = await res.text();
      res.headers.forEach((v, k) => (text += `\n${k}: ${v}`));
      for (const rt of rts) assert.ok(rt.length > 16 && !text.includes(rt), what);
    }
  });
});

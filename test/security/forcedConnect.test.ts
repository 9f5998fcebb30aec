/**
 * Forced connect (the link holder is not the account owner): a page that only navigates a signed-in victim to
 * an attacker's valid link must not attach the victim's account. Through the dev host and the demo IdP:
 * opening a link starts nothing at the provider; only the page's own Continue (a same-site POST carrying a
 * SameSite=Strict cookie and a token bound to the link) does, and it asks the provider for an account picker.
 * Also: a second sign-in in the same browser keeps its own login cookie, so no site can abort a person's flow
 * by starting another one in their browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STATE_COOKIE_NAME } from '../../shared/broker/stateCookie.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { openConsentPage, pressContinue } from '../support/connectPage.ts';

let h: BrokerHost;

before(async () => {
  h = await startBrokerHost();
  await h.createConnection('attacker-conn', {
    scopes: ['https://graph.microsoft.com/Mail.Send'],
    description: 'Invoices mailbox',
  });
  await h.createConnection('pinned', {
    scopes: ['https://graph.microsoft.com/Mail.Send'],
    expectedIdentity: { username: 'adele@demo.example' },
  });
});

after(async () => {
  let logs = '';
  try {
    logs = await h.collectSecrets();
  } finally {
    await h?.close();
  }
  h.secrets.assertAbsent(logs, 'dev host logs');
});

const loginCookies = (res: Response) =>
  res.headers
    .getSetCookie()
    .filter((c) => c.startsWith(`${STATE_COOKIE_NAME}-`))
    .map((c) => c.split(';')[0] ?? '');

describe('forced connect', () => {
  it('opening a link (location.href = link) only shows a page: connection, requesting app, permissions; nothing at the provider', async () => {
    h.idp.stats.reset();
    const link = await h.newLink('attacker-conn');
    const res = await fetch(link, { redirect: 'manual', headers: { accept: 'text/html' } });
    const html = await res.text();
    assert.equal(res.status, 200, 'a link must not redirect straight to the provider');
    assert.equal(res.headers.get('location'), null);
    assert.deepEqual(loginCookies(res), [], 'no sign-in started');
    assert.match(html, /data-code="consent"/);
    assert.match(html, /attacker-conn/);
    assert.match(html, /Invoices mailbox/);
    assert.match(html, /Token broker at localhost:\d+/);
    assert.match(html, /Mail\.Send/);
    assert.match(html, /<form method="post" action="\/api\/connect\/attacker-conn">/);
    // No script at all; the form may post only back here and on to the provider.
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.doesNotMatch(csp, /script-src/);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`form-action 'self' ${h.idp.origin.replace(/[.]/g, '\\.')}(;|$)`));
    assert.doesNotMatch(html, /<script/i);
    // The consent cookie: host-only, Strict, short-lived.
    const consent = res.headers.getSetCookie()[0] ?? '';
    assert.match(consent, /^__Host-token-broker-consent-[A-Za-z0-9_-]{16}=/);
    assert.match(consent, /samesite=strict/i);
    assert.match(consent, /httponly/i);
    assert.equal(h.idp.stats.authorizeRequests, 0);
  });

  it('Continue sends the browser to the provider with an account picker (prompt=select_account)', async () => {
    const form = await openConsentPage(await h.newLink('attacker-conn'));
    const res = await pressContinue(form);
    assert.equal(res.status, 303);
    const authorize = new URL(res.headers.get('location') ?? '');
    assert.equal(authorize.searchParams.get('prompt'), 'select_account');
    assert.equal(authorize.searchParams.get('login_hint'), null);
    assert.equal(loginCookies(res).length, 1);
    // The consent cookie is spent.
    assert.ok(res.headers.getSetCookie().some((c) => /^__Host-token-broker-consent-[^=]+=; /.test(c)));
  });

  it('a connection pinned by user name gets login_hint instead (Microsoft refuses both together)', async () => {
    const res = await pressContinue(await openConsentPage(await h.newLink('pinned')));
    const authorize = new URL(res.headers.get('location') ?? '');
    assert.equal(authorize.searchParams.get('login_hint'), 'adele@demo.example');
    assert.equal(authorize.searchParams.get('prompt'), null);
  });

  it('a cross-site POST cannot press Continue: no Strict cookie, another link’s token, a forged token or a foreign Origin are refused', async () => {
    const form = await openConsentPage(await h.newLink('attacker-conn'));
    const other = await openConsentPage(await h.newLink('attacker-conn'));
    h.idp.stats.reset();
    const refusals: [string, Response][] = [
      // The attacker fetched a page server-side and auto-submits its form from evil.example: no cookie.
      ['no consent cookie', await pressContinue(form, { cookie: null })],
      ['another page’s cookie', await pressContinue(form, { cookie: other.cookie })],
      [
        'another link’s token',
        await pressContinue(form, { fields: { consent: other.fields.consent ?? '' } }),
      ],
      ['a forged token', await pressContinue(form, { fields: { consent: `${form.fields.consent}x` } })],
      ['a foreign Origin', await pressContinue(form, { headers: { origin: 'https://evil.example' } })],
      [
        'Sec-Fetch-Site cross-site',
        await pressContinue(form, { headers: { 'sec-fetch-site': 'cross-site' } }),
      ],
    ];
    for (const [title, res] of refusals) {
      assert.equal(res.status, 400, title);
      assert.equal(res.headers.get('x-broker-error'), 'invalid_state', title);
      assert.equal(res.headers.get('location'), null, title);
      assert.deepEqual(loginCookies(res), [], title);
    }
    // The genuine press still works afterwards.
    assert.equal((await pressContinue(form)).status, 303);
  });

  it('two sign-ins in one browser keep their own login cookies: the first completes after the second started', async () => {
    await h.createConnection('two-flows');
    const first = await pressContinue(await openConsentPage(await h.newLink('two-flows')));
    // Another sign-in starts in the same browser (the person's own second tab, or a site navigating them).
    const second = await pressContinue(await openConsentPage(await h.newLink('attacker-conn')));
    const jar = [...loginCookies(first), ...loginCookies(second)];
    assert.equal(new Set(jar.map((c) => c.split('=')[0])).size, 2, 'two cookies, not one overwritten');
    for (const c of jar) h.secrets.add('state cookie', c.slice(c.indexOf('=') + 1));
    const result = await driveAuthorization(first.headers.get('location') ?? '', {
      username: 'adele@demo.example',
      password: 'demo',
    });
    h.secrets.add('authorization code', result.params.get('code'));
    const done = await fetch(result.url, { headers: { cookie: jar.join('; '), accept: 'text/html' } });
    assert.equal(done.status, 200, await done.text());
    assert.equal((await h.record('two-flows'))?.status, 'active');
  });
});

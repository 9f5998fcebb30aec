/**
 * The connect flow in a real browser: Debian's Chromium (headless, playwright-core) clicks through the demo IdP
 * and the broker's pages, served by the built app on the dev host. Every page a person sees is checked for its
 * security headers, an applied stylesheet under CSP, and zero axe-core violations; the docs' screenshots are
 * taken on the way.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { keyIdOf } from '../../shared/config.ts';
import { Keyring, signToken } from '../../shared/crypto.ts';
import { STATE_COOKIE_NAME } from '../../shared/broker/stateCookie.ts';
import { startDemoIdp, type DemoIdp } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from '../support/brokerHost.ts';
import {
  assertAccessible,
  assertPageHeaders,
  checkPage,
  launchChromium,
  newContext,
  openPage,
  type WatchedPage,
} from './chromium.ts';

const SCOPES = ['https://graph.microsoft.com/Mail.Send'];

let idp: DemoIdp;
let h: BrokerHost;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** The HTML of every page shown, scanned for secrets at the end. */
const pagesSeen: string[] = [];

before(async () => {
  // Our own IdP, registered like `npm start` registers it, so the screenshots show what a newcomer sees.
  const port = await freePort();
  const clientSecret = randomBytes(24).toString('base64url');
  idp = await startDemoIdp({
    quiet: true,
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret,
        redirectUris: [`http://localhost:${port}/api/callback`],
        name: 'Token broker (demo)',
      },
    ],
  });
  [h, browser] = await Promise.all([
    startBrokerHost({ port, sharedIdp: { idp, clientSecret } }),
    launchChromium(),
  ]);
});
after(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  try {
    await h?.assertNoSecretsInLogs(pagesSeen.join('\n'));
  } finally {
    await h?.close();
    await idp?.close();
  }
});

async function freshPage(): Promise<WatchedPage> {
  const context = await newContext(browser);
  contexts.push(context);
  return openPage(context);
}

async function check(watched: WatchedPage, label: string, shot?: string) {
  const out = await checkPage(watched, label, shot);
  // The connect page carries its own link and a signed continue token in its form, by design (both JWTs whose
  // claim structure can share 16-character pieces with the IdP's tokens); every other page is scanned.
  if (label !== 'connect page') pagesSeen.push(out.html);
  return out;
}

/** Stable hooks the broker's pages carry for tests: the outcome code on `<main>` and in a header. */
async function brokerOutcome(
  watched: WatchedPage,
): Promise<{ status: number; code: string | null; header?: string }> {
  const response = watched.lastDocument();
  const header = (await response.allHeaders())['x-broker-error'];
  const code = await watched.page.locator('main').getAttribute('data-code');
  return { status: response.status(), code, ...(header ? { header } : {}) };
}

async function signIn(watched: WatchedPage, username: string): Promise<void> {
  const { page } = watched;
  await page.locator('#login').fill(username);
  await page.locator('#password').fill('demo');
  await Promise.all([page.waitForURL(/\/interaction\/|\/api\/callback\?/), page.locator('#sign-in').click()]);
}

async function decide(watched: WatchedPage, decision: 'allow' | 'deny'): Promise<void> {
  const { page } = watched;
  await Promise.all([page.waitForURL(`${h.apiUrl}/callback?**`), page.locator(`#${decision}`).click()]);
}

/** Opens a connect link: the consent page, then its Continue button (the only way to the provider). */
async function openLink(watched: WatchedPage, link: string, shot?: string): Promise<void> {
  const { page } = watched;
  await page.goto(link);
  await page.locator('main[data-code="consent"] form button').waitFor();
  if (shot) await check(watched, 'connect page', shot);
  await Promise.all([page.waitForURL(`${idpOrigin()}/**`), page.locator('main form button').click()]);
}

function idpOrigin(): string {
  return new URL(h.idp.authorityHost).origin;
}

describe('connect flow in Chromium', () => {
  it('connects through sign-in and consent, then the token is served over HTTP with the function key', async () => {
    await h.createConnection('sales-mailbox', { provider: 'microsoft', scopes: SCOPES });
    const w = await freshPage();
    const { page } = w;

    // The link opens the broker's consent page (connection, requester, permissions) — nothing at the IdP yet.
    const link = await h.newLink('sales-mailbox');
    await page.goto(link);
    await page.locator('main[data-code="consent"]').waitFor();
    assert.equal(new URL(page.url()).origin, new URL(h.baseUrl).origin);
    const consentPage = await check(w, 'connect page', '00-connect-page.png');
    assert.match(consentPage.html, /sales-mailbox/);
    assert.match(consentPage.html, /Mail\.Send/);
    assert.equal(h.idp.stats.authorizeRequests, 0, 'opening the link sent nothing to the IdP');
    const [consentCookie] = (await page.context().cookies(h.baseUrl)).filter((c) =>
      c.name.startsWith('__Host-token-broker-consent-'),
    );
    assert.deepEqual([consentCookie?.sameSite, consentCookie?.httpOnly], ['Strict', true]);
    // Continue: to the IdP with an account picker (prompt=select_account; the demo IdP shows its sign-in page).
    const [authorize] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(`${idpOrigin()}/common/oauth2/v2.0/authorize`)),
      page.locator('main form button').click(),
    ]);
    assert.equal(new URL(authorize.url()).searchParams.get('prompt'), 'select_account');
    await page.locator('#login-form').waitFor();
    assert.equal(new URL(page.url()).origin, idpOrigin());
    await check(w, 'IdP sign-in (account picker)', '01-sign-in.png');
    const [stateCookie] = (await page.context().cookies(h.baseUrl)).filter((c) =>
      c.name.startsWith(`${STATE_COOKIE_NAME}-`),
    );
    assert.ok(stateCookie, 'the connect answer set the state cookie');
    assert.deepEqual(
      [stateCookie.secure, stateCookie.httpOnly, stateCookie.sameSite, stateCookie.path],
      [true, true, 'Lax', '/'],
    );
    h.secrets.add('state cookie', stateCookie.value);

    await signIn(w, 'adele@demo.example');
    await page.locator('#consent-form').waitFor();
    await check(w, 'IdP consent', '02-consent.png');

    await decide(w, 'allow');
    h.secrets.add('authorization code', new URL(page.url()).searchParams.get('code'));
    const connected = await check(w, 'connected', '03-connected.png');
    assert.deepEqual(await brokerOutcome(w), { status: 200, code: 'connected' });
    assert.equal(
      (await page.context().cookies(h.baseUrl)).some((c) => c.name.startsWith(`${STATE_COOKIE_NAME}-`)),
      false,
      'the callback cleared the state cookie',
    );

    const record = await h.record('sales-mailbox');
    assert.equal(record?.status, 'active');
    assert.equal(record?.identity?.username, 'adele@demo.example');
    const accessToken = record?.tokens?.primary?.accessToken;
    assert.ok(accessToken);
    assert.equal(connected.html.includes(accessToken), false, 'no token on the page');

    const res = await fetch(`${h.apiUrl}/connections/sales-mailbox/token`, {
      headers: { 'x-functions-key': h.functionKey },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { access_token: string; token_type: string; connection: string };
    assert.deepEqual(
      [body.access_token, body.token_type, body.connection],
      [accessToken, 'Bearer', 'sales-mailbox'],
    );
    const anonymous = await fetch(`${h.apiUrl}/connections/sales-mailbox/token`);
    assert.equal(anonymous.status, 401);
  });

  it('shows the "not connected" page when consent is denied, and stores nothing', async () => {
    await h.createConnection('marketing-mailbox', { provider: 'microsoft', scopes: SCOPES });
    const w = await freshPage();
    await openLink(w, await h.newLink('marketing-mailbox'));
    await signIn(w, 'adele@demo.example');
    await w.page.locator('#consent-form').waitFor();
    await decide(w, 'deny');
    await check(w, 'consent denied', '04-denied.png');
    assert.deepEqual(await brokerOutcome(w), {
      status: 400,
      code: 'provider_denied',
      header: 'provider_denied',
    });
    const record = await h.record('marketing-mailbox');
    assert.equal(record?.status, 'pending');
    assert.equal(record?.tokens, undefined);
  });

  it('shows the "link expired" page for an expired connect link, and sets no cookie', async () => {
    const keyring = new Keyring([{ kid: keyIdOf(h.brokerKey), key: h.brokerKey }]);
    const expired = signToken(keyring, 'connect-link', {
      c: 'sales-mailbox',
      // A valid instance (`t`): only the expiry is wrong.
      t: (await h.record('sales-mailbox'))?.createdAt,
      exp: Date.now() - 1000,
      n: 'expired1',
    });
    const w = await freshPage();
    await w.page.goto(`${h.apiUrl}/connect/sales-mailbox?link=${expired}`);
    await check(w, 'link expired', '05-link-expired.png');
    assert.deepEqual(await brokerOutcome(w), { status: 403, code: 'invalid_link', header: 'invalid_link' });
    assert.deepEqual(await w.page.context().cookies(h.baseUrl), []);
  });

  it('shows the "wrong account" page when the account differs from the pinned identity', async () => {
    await h.createConnection('megan-mailbox', {
      provider: 'microsoft',
      scopes: SCOPES,
      expectedIdentity: { username: 'megan@demo.example' },
    });
    const w = await freshPage();
    await openLink(w, await h.newLink('megan-mailbox'));
    // The broker passes the pinned account as login_hint; the person signs in with another one anyway.
    assert.equal(await w.page.locator('#login').inputValue(), 'megan@demo.example');
    await signIn(w, 'adele@demo.example');
    await w.page.locator('#consent-form').waitFor();
    await decide(w, 'allow');
    await check(w, 'identity mismatch', '06-identity-mismatch.png');
    assert.deepEqual(await brokerOutcome(w), {
      status: 403,
      code: 'identity_mismatch',
      header: 'identity_mismatch',
    });
    const record = await h.record('megan-mailbox');
    assert.equal(record?.status, 'pending');
    assert.equal(record?.tokens, undefined);
  });

  it('keeps the other pages a person can meet accessible and behind the same headers', async () => {
    const w = await freshPage();
    const { page } = w;

    // IdP: a wrong password re-shows the sign-in form with the error tied to the fields.
    await openLink(w, await h.newLink('sales-mailbox'));
    await page.locator('#login').fill('adele@demo.example');
    await page.locator('#password').fill('not-the-password');
    await Promise.all([page.waitForLoadState('load'), page.locator('#sign-in').click()]);
    await page.locator('#login-error').waitFor();
    await check(w, 'IdP sign-in error');
    assert.equal(w.lastDocument().status(), 400);
    assert.equal(await page.locator('#password').getAttribute('aria-invalid'), 'true');

    // IdP: an authorization request it refuses (unknown client) is an error page, not a redirect.
    await page.goto(
      `${h.idp.authorityHost}/common/oauth2/v2.0/authorize?client_id=nobody&response_type=code`,
    );
    await page.locator('#error-message').waitFor();
    await check(w, 'IdP error page');
    assert.ok(w.lastDocument().status() >= 400);

    // IdP: a sign-in page opened without its interaction cookie (another browser, or it expired).
    await page.goto(`${h.idp.authorityHost}/common/interaction/not-a-current-sign-in`);
    await page.locator('#error-message').waitFor();
    await check(w, 'IdP session expired page');
    assert.equal(w.lastDocument().status(), 400);

    // Broker: a callback that did not start in this browser (no state cookie).
    await page.goto(`${h.apiUrl}/callback?code=abcdefgh&state=ijklmnop`);
    await check(w, 'broker invalid state');
    assert.deepEqual(await brokerOutcome(w), { status: 400, code: 'invalid_state', header: 'invalid_state' });

    // Broker: a link cut short when it was copied.
    await page.goto(`${h.apiUrl}/connect/sales-mailbox`);
    await check(w, 'broker incomplete link');
    assert.deepEqual(await brokerOutcome(w), {
      status: 400,
      code: 'invalid_request',
      header: 'invalid_request',
    });
  });

  it('has checks that catch an inaccessible page and a response without the page headers', async () => {
    const w = await freshPage();
    await w.page.setContent('<input type="text"><img src="data:,">');
    await assert.rejects(assertAccessible(w.page, 'bad page'), /html-has-lang|label|image-alt/);
    const health = await w.page.goto(`${h.apiUrl}/health`);
    assert.ok(health);
    await assert.rejects(assertPageHeaders(health), assert.AssertionError);
  });
});

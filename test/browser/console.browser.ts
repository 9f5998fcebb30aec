/**
 * The admin console in a real browser: Debian's Chromium (headless, playwright-core) drives the console served by
 * the built app on the dev host, through the whole life of a connection — create → link → sign in at the demo IdP
 * → active → force refresh → revoke at the IdP → "needs sign-in" with its explanation → new link → active →
 * delete. Every view is checked with axe-core (light and dark) and under the console's CSP; the docs'
 * screenshots are taken on the way.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { startDemoIdp, type DemoIdp } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from '../support/brokerHost.ts';
import { type JwksServer, newSigningKey, type SigningKey, startJwksServer } from '../support/entraTokens.ts';
import { assertAccessible, launchChromium, openPage, screenshot, type WatchedPage } from './chromium.ts';

let idp: DemoIdp;
let h: BrokerHost;
let browser: Browser;
const contexts: BrowserContext[] = [];

before(async () => {
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
    await h?.assertNoSecretsInLogs();
  } finally {
    await h?.close();
    await idp?.close();
  }
});

async function freshPage(): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: 1100, height: 760 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.baseUrl });
  contexts.push(context);
  return openPage(context);
}

/** The console's own headers: scripts and styles from its origin only, nothing inline, never framed. */
async function assertConsoleHeaders(response: Response): Promise<void> {
  const headers = await response.allHeaders();
  assert.match(headers['content-type'] ?? '', /^text\/html; charset=utf-8$/i);
  assert.equal(headers['cache-control'], 'no-store');
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  const csp = headers['content-security-policy'] ?? '';
  for (const directive of [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ]) {
    assert.ok(csp.split('; ').includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
}

/** axe in both schemes, no CSP violation so far, and the page's HTML kept for the secret scan. */
async function check(w: WatchedPage, label: string, shot?: string): Promise<void> {
  await assertAccessible(w.page, label);
  assert.deepEqual(w.cspViolations(), [], `${label}: CSP violations`);
  // The console shows connect links on purpose; what it must never show is a key or a token.
  const html = await w.page.content();
  assert.equal(html.includes(h.functionKey), false, `${label}: the function key is on the page`);
  if (shot) await shootWithoutToast(w.page, shot);
}

/** Screenshots without a passing notification (it would show whatever happened last). */
async function shootWithoutToast(page: Page, name: string): Promise<void> {
  await page.evaluate(() => {
    const toast = document.getElementById('toast');
    toast?.classList.remove('on');
    if (toast) toast.textContent = '';
  });
  await screenshot(page, name);
}

async function signInToConsole(w: WatchedPage): Promise<void> {
  await w.page.goto(`${h.apiUrl}/console`);
  await w.page.getByLabel('Function key').fill(h.functionKey);
  await w.page.getByLabel('Function key').press('Enter');
  await w.page.locator('main h1', { hasText: 'Connections' }).waitFor();
}

/** Follows a connect link in a new tab of the same browser: consent page (if any), IdP sign-in and consent. */
async function connectThroughLink(w: WatchedPage, url: string): Promise<string> {
  const tab = await w.page.context().newPage();
  try {
    await tab.goto(url);
    // A broker page with an explicit Continue button may come before the provider (added by the consent work).
    const cont = tab.getByRole('button', { name: /^continue/i });
    if (new URL(tab.url()).origin === h.baseUrl && (await cont.count()) > 0) {
      await Promise.all([tab.waitForURL((u) => u.origin !== h.baseUrl), cont.first().click()]);
    }
    await tab
      .locator('#login')
      .waitFor({ timeout: 5000 })
      .catch(async (err: unknown) => {
        throw new Error(
          `no sign-in form at ${new URL(tab.url()).pathname}: ${(await tab.locator('body').textContent())?.slice(0, 300)}`,
          { cause: err },
        );
      });
    await tab.locator('#login').fill('adele@demo.example');
    await tab.locator('#password').fill('demo');
    await Promise.all([tab.waitForURL(/\/interaction\/|\/api\/callback\?/), tab.locator('#sign-in').click()]);
    if (await tab.locator('#consent-form').count()) {
      await Promise.all([tab.waitForURL(`${h.apiUrl}/callback?**`), tab.locator('#allow').click()]);
    }
    h.secrets.add('authorization code', new URL(tab.url()).searchParams.get('code'));
    return (await tab.locator('main').getAttribute('data-code')) ?? '';
  } finally {
    await tab.close();
  }
}

async function createLink(w: WatchedPage, lifetime: string): Promise<{ url: string; expiry: string }> {
  const { page } = w;
  await page.getByLabel('Valid for').selectOption({ label: lifetime });
  await page.locator('#create-link').click();
  const field = page.getByLabel('Connect link — send it to the account owner');
  await field.waitFor();
  const url = await field.inputValue();
  h.secrets.add('connect link', new URL(url).searchParams.get('link'));
  return { url, expiry: (await page.locator('#link-expiry time').getAttribute('datetime')) ?? '' };
}

async function badgeOf(page: Page): Promise<string | null> {
  return page.locator('.status-line .badge').getAttribute('data-status');
}

describe('admin console in Chromium', () => {
  it('is served with a strict CSP, refuses a wrong key and keeps the right one out of URL and storage', async () => {
    const w = await freshPage();
    const { page } = w;
    const response = await page.goto(`${h.apiUrl}/console`);
    assert.ok(response);
    await assertConsoleHeaders(response);
    await page.getByLabel('Function key').waitFor();
    await check(w, 'console sign-in', 'console-01-sign-in.png');

    // Keyboard only: the skip link, then the key field, typed and submitted with Enter.
    await page.reload();
    await page.getByLabel('Function key').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'function-key');
    await page.getByLabel('Function key').fill('not-the-key-0123456789');
    await page.keyboard.press('Enter');
    const error = page.locator('form .field-error');
    await error.waitFor();
    assert.match((await error.textContent()) ?? '', /not accepted/);
    assert.equal(await page.getByLabel('Function key').getAttribute('aria-invalid'), 'true');
    await check(w, 'console sign-in error');

    await page.getByLabel('Function key').fill(h.functionKey);
    await page.keyboard.press('Enter');
    await page.locator('main h1', { hasText: 'Connections' }).waitFor();
    assert.equal(page.url().includes(h.functionKey), false, 'no key in the URL');
    const stored = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
      html: document.documentElement.outerHTML,
    }));
    assert.deepEqual([stored.local, stored.session, stored.cookie], [0, 0, '']);
    assert.equal(stored.html.includes(h.functionKey), false, 'the key is not left in the page');
    assert.equal((await page.context().cookies()).length, 0, 'no cookie at all');

    // A reload forgets the key: it lived in the tab's memory only.
    await page.reload();
    await page.getByLabel('Function key').waitFor();
  });

  it('creates, connects, refreshes, explains a revoked grant, reconnects and deletes a connection', async () => {
    await h.createConnection('invoices-mailbox', {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
      description: 'Invoices sent by accounting',
    });
    const w = await freshPage();
    const { page } = w;
    // The page's timers run on a clock the test moves, so "refreshes itself" is checked without waiting or racing.
    await page.clock.install();
    await signInToConsole(w);
    await check(w, 'console list (one pending)');

    // Create: first with mistakes, each reported on its field by the API's own rules.
    await page.locator('#new-connection').focus();
    await page.keyboard.press('Enter');
    await page.locator('main h1', { hasText: 'New connection' }).waitFor();
    assert.equal(
      await page.evaluate(() => document.activeElement?.tagName),
      'H1',
      'focus moved to the heading',
    );
    const scopes = page.getByLabel('Scopes', { exact: true });
    assert.equal(
      await scopes.inputValue(),
      'https://graph.microsoft.com/Mail.Send',
      "the provider's defaults",
    );
    assert.match(
      (await page.locator('#preset-hint').textContent()) ?? '',
      /presets: google, salesforce, auth0/,
    );
    await page.getByLabel(/^Name/).fill('Sales Mailbox');
    await scopes.fill('https://graph.microsoft.com/Mail.Send\n"quoted"');
    await page.getByLabel('Tenant ID').fill('not-a-guid');
    await page.locator('#save').click();
    const summary = page.locator('#error-summary');
    await summary.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'error-summary');
    assert.equal(await summary.locator('li').count(), 3);
    for (const label of [/^Name/, 'Scopes', 'Tenant ID']) {
      assert.equal(
        await page.getByLabel(label, { exact: true }).getAttribute('aria-invalid'),
        'true',
        String(label),
      );
    }
    assert.match((await summary.textContent()) ?? '', /must be a GUID/);
    assert.match((await summary.textContent()) ?? '', /must be a scope token \(item 2\)/);
    await check(w, 'console form errors', 'console-03-form-errors.png');
    assert.equal(await h.record('sales-mailbox'), undefined, 'nothing was sent');

    await page.getByLabel(/^Name/).fill('sales-mailbox');
    await page.getByLabel('Description').fill('Quotes and order confirmations');
    await page.getByRole('button', { name: 'Use the provider’s defaults' }).click();
    await page.getByLabel('Tenant ID').fill('');
    await page.getByLabel('Username').fill('adele@demo.example');
    await page.locator('#save').click();
    await page.locator('main h1', { hasText: 'sales-mailbox' }).waitFor();
    assert.equal(await badgeOf(page), 'pending');
    const created = await h.record('sales-mailbox');
    assert.deepEqual(created?.settings.expectedIdentity, { username: 'adele@demo.example' });
    assert.equal(created?.settings.description, 'Quotes and order confirmations');

    // Link: lifetime, copy, QR, expiry.
    const before = Date.now();
    const link = await createLink(w, '1 day');
    const ttl = Date.parse(link.expiry) - before;
    assert.ok(ttl > 23.9 * 3600_000 && ttl <= 24 * 3600_000 + 60_000, `a one-day link (${ttl} ms)`);
    assert.equal(new URL(link.url).pathname, '/api/connect/sales-mailbox');
    assert.equal(await page.locator('#link-result svg.qr path').count(), 1, 'a QR code');
    await page.locator('#copy-link').click();
    await page.locator('#toast', { hasText: 'copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link.url);
    await check(w, 'console link', 'console-04-link.png');

    // Sign in at the demo IdP through the link; the console shows the connection active.
    assert.equal(await connectThroughLink(w, link.url), 'connected');
    assert.equal(await badgeOf(page), 'pending', 'not yet re-read');
    await page.clock.runFor(30_000);
    await page.locator('.status-line .badge[data-status="active"]').waitFor();
    await page.getByRole('link', { name: '← All connections' }).click();
    await page.locator('main h1', { hasText: 'Connections' }).waitFor();
    const row = page.locator('tr[data-connection="sales-mailbox"]');
    await row.locator('.badge[data-status="active"]').waitFor();
    assert.match((await row.textContent()) ?? '', /adele@demo\.example/);
    assert.match((await row.textContent()) ?? '', /Quotes and order confirmations/);
    await check(w, 'console list', 'console-02-list.png');

    // Filter and sort.
    await page.getByLabel('Status').selectOption('pending');
    assert.deepEqual(
      await page
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-connection'))),
      ['invoices-mailbox'],
    );
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Filter').fill('adele');
    assert.equal(await page.locator('tbody tr').count(), 1);
    await page.getByLabel('Filter').fill('');
    await page.locator('button[data-sort="connection"]').click();
    assert.equal(
      await page.locator('th:has(button[data-sort="connection"])').getAttribute('aria-sort'),
      'descending',
    );
    assert.deepEqual(
      await page
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-connection'))),
      ['sales-mailbox', 'invoices-mailbox'],
    );
    await page.emulateMedia({ colorScheme: 'dark' });
    await shootWithoutToast(page, 'console-06-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });

    // Details and a forced refresh: a new access token.
    await row.getByRole('link', { name: 'sales-mailbox' }).click();
    await page.locator('main h1', { hasText: 'sales-mailbox' }).waitFor();
    assert.equal(await badgeOf(page), 'active');
    const tokenBefore = (await h.record('sales-mailbox'))?.tokens?.primary?.accessToken;
    await page.locator('#force-refresh').click();
    await page.locator('#toast', { hasText: 'Refreshed' }).waitFor();
    const tokenAfter = (await h.record('sales-mailbox'))?.tokens?.primary?.accessToken;
    assert.ok(tokenBefore && tokenAfter && tokenBefore !== tokenAfter, 'a new access token was stored');
    const shown = await page.content();
    const refreshToken = (await h.record('sales-mailbox'))?.tokens?.refreshToken ?? '';
    for (const secret of [tokenBefore, tokenAfter, refreshToken]) {
      assert.ok(secret.length > 16);
      assert.equal(shown.includes(secret.slice(0, 16)), false, 'no token on the console');
    }
    assert.match((await page.locator('main').textContent()) ?? '', /Mail\.Send/, 'granted scopes shown');

    // Revoke at the IdP: the next refresh fails with invalid_grant / AADSTS50173 and the console explains it.
    await idp.revokeUser('adele@demo.example');
    await page.locator('#force-refresh').click();
    const problem = page.locator('#problem');
    await problem.waitFor();
    assert.equal(await badgeOf(page), 'needs_reauth');
    assert.equal(await problem.getAttribute('data-action'), 'send_link');
    const explained = (await problem.textContent()) ?? '';
    assert.equal(await problem.locator('h2').textContent(), 'The sign-in was revoked');
    assert.match(explained, /must sign in again: send its owner a new connect link/);
    assert.match(explained, /invalid_grant/);
    assert.match(explained, /AADSTS50173/);
    await page.locator('#go-to-link').click();
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      'create-link',
      'the fix is one keypress away',
    );
    assert.match(
      (await page.locator('[role="alert"]').first().textContent()) ?? '',
      /connection_needs_reauth|sign in again/,
    );
    assert.equal((await h.record('sales-mailbox'))?.status, 'needs_reauth');
    await check(w, 'console needs sign-in', 'console-05-needs-sign-in.png');

    // A new link, the same account signs in again, and the connection is active again.
    const again = await createLink(w, '15 minutes');
    assert.equal(await connectThroughLink(w, again.url), 'connected');
    await page.getByRole('link', { name: '← All connections' }).click();
    await page.locator('tr[data-connection="sales-mailbox"] .badge[data-status="active"]').waitFor();
    await page.getByRole('link', { name: 'sales-mailbox' }).click();
    await page.locator('main h1', { hasText: 'sales-mailbox' }).waitFor();
    assert.equal(await badgeOf(page), 'active');
    assert.equal(await page.locator('#problem').count(), 0);

    // Delete: Escape cancels, the dialog's Delete button deletes.
    await page.locator('#delete').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      'cancel-delete',
      'the safe choice has focus',
    );
    await check(w, 'console delete dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await h.record('sales-mailbox'))?.status, 'active', 'Escape deleted nothing');
    await page.locator('#delete').click();
    await page.locator('#confirm-delete').click();
    await page.locator('main h1', { hasText: 'Connections' }).waitFor();
    assert.equal(await page.locator('tr[data-connection="sales-mailbox"]').count(), 0);
    assert.equal(await h.record('sales-mailbox'), undefined);
  });

  it('imports a refresh token only after the warning is acknowledged, and shows API errors', async () => {
    await h.createConnection('import-target', {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    const w = await freshPage();
    const { page } = w;
    await signInToConsole(w);
    await page.getByRole('link', { name: 'import-target' }).click();
    await page.locator('main h1', { hasText: 'import-target' }).waitFor();
    await page.locator('#import summary').click();
    await page.getByLabel('Refresh token').fill('not-a-real-refresh-token');
    await page.locator('#import-token').click();
    const out = page.locator('#import [role="alert"]');
    await out.filter({ hasText: 'Confirm' }).waitFor();
    await page.getByLabel('I understand the risks').check();
    await page.locator('#import-token').click();
    // The demo IdP refuses the made-up token; the API's problem is shown and nothing is stored.
    await out.filter({ hasText: /\(\w+\)$/ }).waitFor();
    assert.equal((await h.record('import-target'))?.status, 'pending');
    await check(w, 'console import');
  });
});

/**
 * Entra mode. Chromium cannot reach Microsoft here, so Playwright's request routing answers for
 * login.microsoftonline.com the way Microsoft's v2.0 endpoints do (discovery document, authorize → redirect with a
 * code, token endpoint with CORS, as documented for single-page apps:
 * https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow). The access token is signed
 * by a local key the broker trusts through BROKER_AUTH_JWKS_URL, so the broker's own validation and role check run
 * for real. What this checks is the console's side: MSAL Browser's PKCE request, the redirect bridge, the bearer
 * on every manage call, and nothing in Web Storage but MSAL's short-lived request state.
 */
describe('admin console in Entra mode', () => {
  const TENANT = '5b0c7a8e-3f1d-4c2a-9e6b-7d4f2a1c8e91';
  const API_APP = '8d1f0c2a-6b3e-4f5a-9c7d-2e1b0a9f8c71';
  const CONSOLE_APP = '3c2b1a09-8f7e-4d6c-b5a4-938271605f4e';
  const AUTHORITY = `https://login.microsoftonline.com/${TENANT}`;
  const ISSUER = `${AUTHORITY}/v2.0`;
  let eh: BrokerHost;
  let jwks: JwksServer;
  let key: SigningKey;

  before(async () => {
    key = await newSigningKey();
    jwks = await startJwksServer([key]);
    eh = await startBrokerHost({
      env: {
        BROKER_AUTH_MODE: 'entra',
        BROKER_AUTH_TENANT_ID: TENANT,
        BROKER_AUTH_ISSUER: ISSUER,
        BROKER_AUTH_JWKS_URL: jwks.url,
        BROKER_AUTH_AUDIENCE: `api://${API_APP}`,
        BROKER_CONSOLE_CLIENT_ID: CONSOLE_APP,
        // The console's authority is built from this; MSAL accepts only https authorities.
        MICROSOFT_AUTHORITY_HOST: 'https://login.microsoftonline.com',
      },
    });
  });
  after(async () => {
    await eh?.close();
    await jwks?.close();
  });

  async function jwt(claims: Record<string, unknown>, signed: boolean): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const body = { iat: now, nbf: now, exp: now + 3600, ...claims };
    if (signed) {
      return new SignJWT(body)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
        .sign(key.privateKey);
    }
    // MSAL Browser reads the ID token's claims without checking its signature (it came over TLS from the authority).
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${b64({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${b64(body)}.c2ln`;
  }

  it('signs the admin in with Microsoft (PKCE) and calls the manage API with the bearer and the key', async () => {
    const cors = { 'access-control-allow-origin': eh.baseUrl, 'access-control-allow-headers': '*' };
    const seen = {
      challenge: '',
      verifier: '',
      nonce: '',
      redirectUri: '',
      scope: '',
      authorize: 0,
      token: 0,
    };
    const user = { oid: '0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f', username: 'admin@contoso.example' };
    let accessToken = '';
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, locale: 'en-US' });
    contexts.push(context);
    await context.route('https://login.microsoftonline.com/**', async (route) => {
      const request = route.request();
      const url = new URL(request.url());
      if (request.method() === 'OPTIONS')
        return route.fulfill({
          status: 204,
          headers: { ...cors, 'access-control-allow-methods': 'GET, POST' },
        });
      if (url.pathname.endsWith('/.well-known/openid-configuration')) {
        return route.fulfill({
          status: 200,
          headers: { ...cors, 'content-type': 'application/json' },
          body: JSON.stringify({
            issuer: ISSUER,
            authorization_endpoint: `${AUTHORITY}/oauth2/v2.0/authorize`,
            token_endpoint: `${AUTHORITY}/oauth2/v2.0/token`,
            end_session_endpoint: `${AUTHORITY}/oauth2/v2.0/logout`,
            jwks_uri: `${AUTHORITY}/discovery/v2.0/keys`,
            response_modes_supported: ['query', 'fragment', 'form_post'],
          }),
        });
      }
      if (url.pathname.endsWith('/discovery/instance')) {
        return route.fulfill({
          status: 200,
          headers: { ...cors, 'content-type': 'application/json' },
          body: JSON.stringify({
            tenant_discovery_endpoint: `${ISSUER}/.well-known/openid-configuration`,
            'api-version': '1.1',
            metadata: [
              {
                preferred_network: 'login.microsoftonline.com',
                preferred_cache: 'login.windows.net',
                aliases: ['login.microsoftonline.com', 'login.windows.net'],
              },
            ],
          }),
        });
      }
      if (url.pathname.endsWith('/oauth2/v2.0/authorize')) {
        seen.authorize++;
        const q = url.searchParams;
        assert.equal(q.get('client_id'), CONSOLE_APP);
        assert.equal(q.get('response_type'), 'code');
        assert.equal(q.get('code_challenge_method'), 'S256');
        seen.challenge = q.get('code_challenge') ?? '';
        seen.nonce = q.get('nonce') ?? '';
        seen.redirectUri = q.get('redirect_uri') ?? '';
        seen.scope = q.get('scope') ?? '';
        const response = new URLSearchParams({
          code: 'console-code-0123456789',
          state: q.get('state') ?? '',
        });
        response.set(
          'client_info',
          Buffer.from(JSON.stringify({ uid: user.oid, utid: TENANT })).toString('base64url'),
        );
        const sep = q.get('response_mode') === 'query' ? '?' : '#';
        return route.fulfill({ status: 302, headers: { location: `${seen.redirectUri}${sep}${response}` } });
      }
      if (url.pathname.endsWith('/oauth2/v2.0/token')) {
        seen.token++;
        const form = new URLSearchParams(request.postData() ?? '');
        seen.verifier = form.get('code_verifier') ?? '';
        accessToken = await jwt(
          {
            iss: ISSUER,
            aud: `api://${API_APP}`,
            tid: TENANT,
            oid: user.oid,
            azp: CONSOLE_APP,
            roles: ['Connections.Manage'],
            scp: 'Console.Access',
            ver: '2.0',
          },
          true,
        );
        eh.secrets.add('console access token', accessToken);
        const idToken = await jwt(
          {
            iss: ISSUER,
            aud: CONSOLE_APP,
            tid: TENANT,
            oid: user.oid,
            sub: user.oid,
            preferred_username: user.username,
            name: 'Console Admin',
            nonce: seen.nonce,
            ver: '2.0',
          },
          false,
        );
        return route.fulfill({
          status: 200,
          headers: { ...cors, 'content-type': 'application/json' },
          body: JSON.stringify({
            token_type: 'Bearer',
            scope: `api://${API_APP}/.default`,
            expires_in: 3600,
            ext_expires_in: 3600,
            access_token: accessToken,
            id_token: idToken,
            client_info: Buffer.from(JSON.stringify({ uid: user.oid, utid: TENANT })).toString('base64url'),
          }),
        });
      }
      return route.fulfill({ status: 404, headers: cors, body: 'not modelled' });
    });
    const w = await openPage(context);
    const { page } = w;
    const bearers: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${eh.apiUrl}/manage/`)) bearers.push(r.headers().authorization ?? '');
    });
    const response = await page.goto(`${eh.apiUrl}/console`);
    const csp = (await response?.allHeaders())?.['content-security-policy'] ?? '';
    assert.match(csp, /connect-src 'self' https:\/\/login\.microsoftonline\.com;/);
    await page.locator('#sign-in-microsoft').click();
    await page.getByText(`Signed in with Microsoft as ${user.username}.`).waitFor();
    assert.equal(seen.authorize, 1);
    assert.equal(seen.token, 1);
    assert.equal(createHash('sha256').update(seen.verifier).digest('base64url'), seen.challenge, 'PKCE S256');
    assert.equal(seen.redirectUri, `${eh.apiUrl}/console/redirect`);
    assert.match(seen.scope, new RegExp(`api://${API_APP}/\\.default`));
    await check(w, 'console Entra sign-in');

    await page.getByLabel('Function key').fill(eh.functionKey);
    await page.getByLabel('Function key').press('Enter');
    await page.locator('main h1', { hasText: 'Connections' }).waitFor();
    assert.match(
      (await page.locator('#session').textContent()) ?? '',
      new RegExp(`Signed in as ${user.username}`),
    );
    assert.ok(bearers.length >= 2);
    assert.ok(
      bearers.every((b) => b === `Bearer ${accessToken}`),
      'every manage call carries the bearer',
    );
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
    assert.equal(storage.includes(accessToken.slice(0, 40)), false, 'no access token in Web Storage');
    assert.equal(storage.includes(eh.functionKey), false, 'no key in Web Storage');
    await eh.assertNoSecretsInLogs();
  });
});

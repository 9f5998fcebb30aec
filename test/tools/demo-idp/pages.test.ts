import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildAuthorizeRequest, CookieJar, driveAuthorization } from '../../../tools/demo-idp/driver.ts';
import { startDemoIdp, type DemoIdp } from '../../../tools/demo-idp/server.ts';

const CLIENT_ID = 'pages-app';
const REDIRECT = 'http://localhost:7071/api/callback';
const SCOPE =
  'openid profile offline_access https://graph.microsoft.com/Mail.Send https://ads.microsoft.com/msads.manage';

let idp: DemoIdp;

function authorizeUrl(extra: Record<string, string> = {}): URL {
  const { url } = buildAuthorizeRequest({
    authorizationEndpoint: idp.endpoints().authorization,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT,
    scope: SCOPE,
  });
  for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
  return url;
}

/** GETs a URL with the jar, following same-origin redirects, and returns the final response and its URL. */
async function open(url: URL, jar: CookieJar): Promise<{ res: Response; url: URL }> {
  let current = url;
  for (;;) {
    const cookie = jar.header(current.pathname);
    const res = await fetch(current, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    jar.store(res.headers.getSetCookie(), current.pathname);
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) return { res, url: current };
    await res.arrayBuffer();
    current = new URL(location, current);
  }
}

async function post(
  url: URL,
  jar: CookieJar,
  form: Record<string, string>,
  type = 'application/x-www-form-urlencoded',
): Promise<Response> {
  const cookie = jar.header(url.pathname);
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': type, ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form),
  });
  jar.store(res.headers.getSetCookie(), url.pathname);
  return res;
}

function assertPageHeaders(res: Response, formAction?: string): string {
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  if (formAction) assert.match(csp, new RegExp(`form-action 'self' ${formAction.replace(/[.:/]/g, '\\$&')}`));
  const nonce = /style-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce, 'styles are allowed by nonce only');
  return nonce;
}

function assertAccessibleDocument(html: string, nonce: string): void {
  assert.match(html, /^<!doctype html>\n<html lang="en">/);
  assert.match(html, /<meta name="viewport"/);
  assert.equal(html.match(/<h1[ >]/g)?.length, 1, 'exactly one h1');
  assert.match(html, /<main aria-labelledby="title">/);
  assert.ok(html.includes(`<style nonce="${nonce}">`));
  assert.match(html, /:focus-visible\{outline:3px solid/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /(?:src|href)="https?:/, 'no external assets');
  for (const [, id] of html.matchAll(/<input id="([^"]+)"/g)) {
    assert.ok(html.includes(`<label for="${id}">`), `input #${id} has a label`);
  }
}

before(async () => {
  idp = await startDemoIdp({
    quiet: true,
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: 'pages-secret',
        redirectUris: [REDIRECT],
        name: 'Pages <Test> App',
      },
    ],
  });
});

after(async () => {
  await idp.close();
});

void describe('sign-in page', () => {
  void it('is a self-contained accessible form with stable ids and security headers', async () => {
    const jar = new CookieJar();
    const { res, url } = await open(authorizeUrl({ login_hint: 'adele@demo.example' }), jar);
    assert.equal(res.status, 200);
    assert.match(url.pathname, /^\/[0-9a-f-]{36}\/interaction\/[\w-]+$/);
    const nonce = assertPageHeaders(res, 'http://localhost:7071');
    const html = await res.text();
    assertAccessibleDocument(html, nonce);
    assert.match(html, /<h1 id="title">Sign in to Demo Identity \(local\)<\/h1>/);
    assert.match(
      html,
      /<form id="login-form" method="post" action="\/[0-9a-f-]{36}\/interaction\/[\w-]+\/login">/,
    );
    assert.match(
      html,
      /<input id="login" name="login" type="email" autocomplete="username"[^>]*value="adele@demo.example"/,
    );
    assert.match(
      html,
      /<input id="password" name="password" type="password" autocomplete="current-password"/,
    );
    assert.match(html, /<button id="sign-in" type="submit">Sign in<\/button>/);
    assert.ok(html.includes('Pages &#60;Test&#62; App'), 'the client name is escaped');
    assert.doesNotMatch(
      html,
      /megan@other|alex@other\.example/,
      'only this tenant’s demo accounts are listed',
    );
  });

  void it('re-renders with an announced, linked error on bad credentials', async () => {
    const jar = new CookieJar();
    const { url } = await open(authorizeUrl(), jar);
    const res = await post(new URL(`${url.pathname}/login`, idp.origin), jar, {
      login: 'adele@demo.example',
      password: 'nope',
    });
    assert.equal(res.status, 400);
    const nonce = assertPageHeaders(res);
    const html = await res.text();
    assertAccessibleDocument(html, nonce);
    assert.match(
      html,
      /<div id="login-error" class="error" role="alert">Your account or password is incorrect\.<\/div>/,
    );
    assert.match(html, /id="password"[^>]*aria-invalid="true" aria-describedby="login-error"/);
  });

  void it('refuses posts without the interaction cookie, of the wrong type, or for the wrong step', async () => {
    const jar = new CookieJar();
    const { url } = await open(authorizeUrl(), jar);
    const login = new URL(`${url.pathname}/login`, idp.origin);
    const noCookie = await post(login, new CookieJar(), { login: 'adele@demo.example', password: 'demo' });
    assert.equal(noCookie.status, 400);
    assert.match(await noCookie.text(), /id="error-code">session_expired</);
    const json = await fetch(login, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: jar.header(login.pathname) ?? '' },
      body: '{}',
    });
    assert.equal(json.status, 415);
    const consent = await post(new URL(`${url.pathname}/consent`, idp.origin), jar, { decision: 'allow' });
    assert.equal(consent.status, 409);
  });
});

void describe('consent page', () => {
  void it('says who is signed in and what the app wants, with Allow and Deny', async () => {
    const jar = new CookieJar();
    const { url } = await open(authorizeUrl(), jar);
    const loggedIn = await post(new URL(`${url.pathname}/login`, idp.origin), jar, {
      login: 'adele@demo.example',
      password: 'demo',
    });
    assert.equal(loggedIn.status, 303);
    const { res } = await open(new URL(loggedIn.headers.get('location') ?? '', idp.origin), jar);
    assert.equal(res.status, 200);
    const nonce = assertPageHeaders(res, 'http://localhost:7071');
    const html = await res.text();
    assertAccessibleDocument(html, nonce);
    assert.match(html, /<h1 id="title">Permissions requested<\/h1>/);
    assert.match(html, /Signed in as <strong>adele@demo\.example<\/strong>/);
    assert.match(html, /Pages &#60;Test&#62; App<\/span> wants to:/);
    for (const text of [
      'Send mail as you',
      'Manage your Microsoft Advertising accounts',
      'Sign you in and read your basic profile',
      'Stay signed in',
    ]) {
      assert.ok(html.includes(text), text);
    }
    assert.match(html, /<button id="allow" type="submit" name="decision" value="allow">Allow<\/button>/);
    assert.match(
      html,
      /<button id="deny" class="secondary" type="submit" name="decision" value="deny">Deny<\/button>/,
    );
    const bad = await post(new URL(/action="([^"]+)"/.exec(html)?.[1] ?? '', idp.origin), jar, {
      decision: 'maybe',
    });
    assert.equal(bad.status, 400);
  });
});

void describe('errors and other pages', () => {
  void it('renders an error page (not a redirect) for an unregistered redirect URI', async () => {
    const url = authorizeUrl({ redirect_uri: 'https://evil.example/cb' });
    const res = await fetch(url, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(res.status, 400);
    const nonce = assertPageHeaders(res);
    const html = await res.text();
    assertAccessibleDocument(html, nonce);
    assert.match(html, /id="error-code">50011</);
  });

  void it('renders AADSTS90002 for an unknown tenant at /authorize', async () => {
    const res = await fetch(`${idp.origin}/nowhere.example/oauth2/v2.0/authorize?client_id=x`);
    assert.equal(res.status, 400);
    assertPageHeaders(res);
    assert.match(await res.text(), /id="error-code">90002</);
  });

  void it('serves an index page and error-code pages with the same headers', async () => {
    const index = await fetch(idp.origin);
    assert.equal(index.status, 200);
    assertAccessibleDocument(await index.text(), assertPageHeaders(index));
    const code = await fetch(`${idp.origin}/error?code=65001`);
    assert.equal(code.status, 200);
    assertPageHeaders(code);
    assert.match(await code.text(), /AADSTS65001/);
  });

  void it('sets nosniff, no-referrer and no-store on JSON answers too', async () => {
    const res = await fetch(idp.endpoints().token, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token' }),
    });
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });
});

void describe('response modes', () => {
  void it('form_post: auto-submitting form without iss, under a CSP that only allows its own script hash', async () => {
    let last: Response | undefined;
    const result = await driveAuthorization(authorizeUrl({ response_mode: 'form_post' }), {
      fetch: async (input, init) => (last = await fetch(input, init)),
    });
    assert.equal(result.responseMode, 'form_post');
    const csp = last?.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /form-action 'self' http: https:/);
    assert.equal(result.url.href, REDIRECT);
    assert.equal(typeof result.params.get('code'), 'string');
    assert.equal(result.params.get('iss'), null);
  });

  void it('fragment: parameters in the fragment, without iss', async () => {
    const result = await driveAuthorization(authorizeUrl({ response_mode: 'fragment' }));
    assert.equal(result.responseMode, 'fragment');
    assert.equal(typeof result.params.get('code'), 'string');
    assert.equal(result.params.get('iss'), null);
  });

  void it('accepts the authorization request as a form POST', async () => {
    const url = authorizeUrl();
    const res = await fetch(url.origin + url.pathname, {
      method: 'POST',
      body: url.searchParams,
      redirect: 'manual',
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /\/interaction\//);
  });
});

/**
 * The console's routes on the dev host serving the built app: the shell and its assets are public and hold no
 * data; the providers list is part of the manage API (function key, admin role) and names no secret.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BrokerHost, CLIENT_ID, startBrokerHost } from '../support/brokerHost.ts';

let h: BrokerHost;
before(async () => {
  h = await startBrokerHost();
});
after(async () => {
  await h?.close();
});

describe('console routes', () => {
  it('serves the shell without a key, with a CSP that allows no inline script', async () => {
    const res = await fetch(`${h.apiUrl}/console`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.match(html, /src="\/api\/console\/assets\/app\.js"/);
    assert.match(html, /data-auth-mode="function_key"/);
  });

  it('serves the built script and stylesheet with an ETag, and 304 when unchanged', async () => {
    for (const [name, type] of [
      ['app.js', /^text\/javascript/],
      ['app.css', /^text\/css/],
      ['redirect.js', /^text\/javascript/],
    ] as const) {
      const res = await fetch(`${h.apiUrl}/console/assets/${name}`);
      assert.equal(res.status, 200, name);
      assert.match(res.headers.get('content-type') ?? '', type);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.ok((await res.arrayBuffer()).byteLength > 100, `${name} has content`);
      const etag = res.headers.get('etag');
      assert.ok(etag);
      const again = await fetch(`${h.apiUrl}/console/assets/${name}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
    }
  });

  it('refuses anything that is not a built asset name, and unknown query parameters', async () => {
    for (const path of [
      'console/assets/app.js.map',
      'console/assets/nope.js',
      'console/assets/..%2Fpackage.json',
    ]) {
      const res = await fetch(`${h.apiUrl}/${path}`);
      assert.ok(res.status === 400 || res.status === 404, `${path}: ${res.status}`);
      assert.doesNotMatch(await res.text(), /"dependencies"/);
    }
    assert.equal((await fetch(`${h.apiUrl}/console?key=x`)).status, 400);
  });

  it('lists the configured providers with their default scopes to admins only, without client details', async () => {
    assert.equal((await h.api('GET', 'manage/providers', { key: null })).status, 401);
    const res = await h.api('GET', 'manage/providers');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const text = await res.text();
    const body = JSON.parse(text) as {
      providers: unknown[];
      presets: { name: string; defaultScopes: string[] }[];
    };
    assert.deepEqual(body.providers, [
      { name: 'microsoft', kind: 'microsoft', defaultScopes: ['https://graph.microsoft.com/Mail.Send'] },
    ]);
    // Presets not configured yet are offered as what BROKER_PROVIDERS could add.
    assert.deepEqual(
      body.presets.map((p) => p.name),
      ['google', 'salesforce', 'auth0'],
    );
    assert.deepEqual(body.presets[0]?.defaultScopes, ['openid', 'email']);
    assert.equal(text.includes(CLIENT_ID), false, 'no client id');
    assert.equal(text.includes(h.clientSecret), false, 'no client secret');
    assert.equal((await h.api('GET', 'manage/providers?x=1')).status, 400);
  });
});

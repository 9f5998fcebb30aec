import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { ASSET_NAME, consoleAsset, consoleCsp, consolePage } from '../../../shared/console/page.ts';
import { BrokerError } from '../../../shared/errors.ts';

const entra = {
  clientId: '00000000-0000-0000-0000-000000000001',
  authority: 'https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111',
  scope: 'api://22222222-2222-2222-2222-222222222222/.default',
};

describe('consoleCsp', () => {
  it('allows scripts, styles and API calls from this origin only, and no framing', () => {
    assert.equal(
      consoleCsp({ authMode: 'function_key' }),
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    );
  });
  it('in Entra mode also allows the Microsoft authority for token calls and silent renewal frames', () => {
    const csp = consoleCsp({ authMode: 'entra', entra });
    assert.match(csp, /connect-src 'self' https:\/\/login\.microsoftonline\.com;/);
    assert.match(csp, /frame-src https:\/\/login\.microsoftonline\.com 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(consoleCsp({ authMode: 'entra', entra }, 'redirect'), /frame-ancestors 'self'/);
  });
});

describe('consolePage', () => {
  it('is a shell without inline script that loads its assets from its own path', () => {
    const page = consolePage({ authMode: 'function_key' }, '/api/console/');
    const html = page.body as string;
    assert.match(html, /<script type="module" src="\/api\/console\/assets\/app\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="\/api\/console\/assets\/app\.css">/);
    assert.match(html, /data-api-base="\/api"/);
    assert.doesNotMatch(html, /<script>|<script(?![^>]*src=)[^>]*>|<style|style=/);
    assert.equal(page.headers && (page.headers as Record<string, string>)['cache-control'], 'no-store');
  });
  it('escapes the settings it embeds', () => {
    const settings = { authMode: 'entra' as const, entra: { ...entra, scope: '"><script>x</script>' } };
    const html = consolePage(settings, '/api/console').body as string;
    assert.doesNotMatch(html, /<script>x/);
    assert.match(html, /data-entra-scope="&quot;&gt;&lt;script&gt;x&lt;\/script&gt;"/);
  });
  it('the redirect page runs only the redirect bridge', () => {
    const html = consolePage({ authMode: 'entra', entra }, '/api/console/redirect', 'redirect')
      .body as string;
    assert.match(html, /src="\/api\/console\/assets\/redirect\.js"/);
  });
});

describe('consolePage headers and settings', () => {
  it('sends the console with its CSP, no caching, no referrer and no framing at all', () => {
    const page = consolePage({ authMode: 'function_key' }, '/api/console');
    assert.equal(page.status, 200);
    assert.deepEqual(page.headers, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': consoleCsp({ authMode: 'function_key' }),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
    });
  });

  it('lets only the console itself frame the redirect page, with the redirect CSP', () => {
    const headers = consolePage({ authMode: 'entra', entra }, '/api/console/redirect', 'redirect')
      .headers as Record<string, string>;
    assert.equal(headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(headers['content-security-policy'], consoleCsp({ authMode: 'entra', entra }, 'redirect'));
    assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'self'/);
  });

  it('tells the browser the auth mode and, in Entra mode only, the public sign-in settings', () => {
    const keyed = consolePage({ authMode: 'function_key' }, '/api/console').body as string;
    assert.match(keyed, /<html lang="en" data-auth-mode="function_key" data-api-base="\/api">/);
    assert.doesNotMatch(keyed, /data-entra-/);
    const html = consolePage({ authMode: 'entra', entra }, '/api/console').body as string;
    assert.match(html, /data-auth-mode="entra"/);
    assert.match(html, new RegExp(`data-entra-client-id="${entra.clientId}"`));
    assert.match(
      html,
      /data-entra-authority="https:\/\/login\.microsoftonline\.com\/1{8}-1{4}-1{4}-1{4}-1{12}"/,
    );
    assert.match(html, /data-entra-scope="api:\/\/2{8}-2{4}-2{4}-2{4}-2{12}\/\.default"/);
  });

  it('addresses assets and the API from the console path, however it is written', () => {
    for (const base of ['/api/console', '/api/console/', '/api/console//', '/api/console/redirect']) {
      const html = consolePage({ authMode: 'function_key' }, base).body as string;
      assert.match(html, /href="\/api\/console\/assets\/app\.css"/, base);
      assert.match(html, /src="\/api\/console\/assets\/app\.js"/, base);
      assert.match(html, /data-api-base="\/api"/, base);
    }
    // Under another prefix, only the trailing console segment is cut for the API base.
    const html = consolePage({ authMode: 'function_key' }, '/broker/console/').body as string;
    assert.match(html, /data-api-base="\/broker"/);
    assert.match(html, /src="\/broker\/console\/assets\/app\.js"/);
    const odd = consolePage({ authMode: 'function_key' }, '/console-x/redirect-y/console').body as string;
    assert.match(odd, /data-api-base="\/console-x\/redirect-y"/);
    assert.match(odd, /src="\/console-x\/redirect-y\/console\/assets\/app\.js"/);
  });
});

describe('ASSET_NAME', () => {
  it('accepts flat built names and nothing that could name a path', () => {
    for (const ok of ['app.js', 'app.css', 'entra-7SNCB3RS.js', 'chunk-RC7TYSYY.js'])
      assert.match(ok, ASSET_NAME);
    for (const bad of [
      '../package.json',
      'a/b.js',
      'app.js.map',
      'app.js.LEGAL.txt',
      '.js',
      'app.JS',
      'x.html',
    ])
      assert.doesNotMatch(bad, ASSET_NAME);
  });
});

describe('consoleAsset', () => {
  // The module serves what esbuild wrote beside it (`../console/` from the bundle). Run from the sources, that
  // folder is shared/console/ itself: the test puts built-like files there for the one load (the set is read
  // once per process) and removes them at once.
  const dir = new URL('../../../shared/console/', import.meta.url);
  const tag = `t${process.pid}`;
  const files: Record<string, string> = {
    [`${tag}-app.js`]: 'export const x = 1;\n',
    [`${tag}-app.css`]: 'body { color: red; }\n',
    [`${tag}-app.js.map`]: '{}', // not served: not a script or stylesheet
    [`${tag}-notes.txt`]: 'x',
    [`${tag} app.css`]: 'x', // a stylesheet, but not a flat built name
  };
  let js: Awaited<ReturnType<typeof consoleAsset>>;
  let css: Awaited<ReturnType<typeof consoleAsset>>;

  before(async () => {
    try {
      for (const [name, text] of Object.entries(files)) await writeFile(new URL(name, dir), text);
      js = await consoleAsset(`${tag}-app.js`, null);
    } finally {
      for (const name of Object.keys(files)) await rm(new URL(name, dir), { force: true });
    }
    css = await consoleAsset(`${tag}-app.css`, null);
  });

  it('serves a built script and stylesheet with their types, an ETag, revalidation and nosniff', () => {
    const etag = `"${createHash('sha256')
      .update(files[`${tag}-app.js`] ?? '')
      .digest('base64url')
      .slice(0, 27)}"`;
    assert.equal(js.status, 200);
    assert.deepEqual(js.headers, {
      'content-type': 'text/javascript; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
      etag,
      'cross-origin-resource-policy': 'same-origin',
    });
    assert.equal(Buffer.from(js.body as Uint8Array).toString('utf8'), files[`${tag}-app.js`]);
    assert.equal(css.status, 200);
    assert.equal((css.headers as Record<string, string>)['content-type'], 'text/css; charset=utf-8');
    assert.notEqual((css.headers as Record<string, string>).etag, etag);
  });

  it('answers 304 without a body when the browser has the current version', async () => {
    const etag = (js.headers as Record<string, string>).etag ?? '';
    const again = await consoleAsset(`${tag}-app.js`, etag);
    assert.equal(again.status, 304);
    assert.equal(again.body, undefined);
    assert.deepEqual(again.headers, js.headers);
    assert.equal((await consoleAsset(`${tag}-app.js`, '"stale"')).status, 200);
  });

  it('knows no other file of the folder, and no file that is not a flat built script or stylesheet', async () => {
    for (const name of [`${tag}-app.js.map`, `${tag}-notes.txt`, `${tag} app.css`, 'page.ts', 'nothing.js'])
      await assert.rejects(consoleAsset(name, null), (err: unknown) => {
        assert.ok(err instanceof BrokerError, name);
        assert.equal(err.code, 'invalid_request');
        return true;
      });
  });
});

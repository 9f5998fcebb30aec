import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ASSET_NAME, consoleCsp, consolePage } from '../../../shared/console/page.ts';

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

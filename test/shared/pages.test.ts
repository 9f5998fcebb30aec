import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../shared/errors.ts';
import {
  connectedPage,
  consentPage,
  consentPageHeaders,
  errorPageContent,
  escapeHtml,
  PAGE_SECURITY_HEADERS,
  pageResponse,
  renderPage,
} from '../../shared/pages.ts';

function styleOf(html: string): string {
  const match = /<style>([\s\S]*?)<\/style>/.exec(html);
  assert.ok(match?.[1], 'one inline stylesheet');
  return match[1];
}

describe('result pages', () => {
  it('allow exactly their own stylesheet by hash, and no script, image, form or framing', () => {
    const html = renderPage(connectedPage('sales-mailbox', 'adele@demo.example'));
    const hash = createHash('sha256').update(styleOf(html)).digest('base64');
    const csp = PAGE_SECURITY_HEADERS['content-security-policy'];
    assert.equal(
      csp,
      `default-src 'none'; style-src 'sha256-${hash}'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
    );
    assert.doesNotMatch(html, /<script|<img|<link|<form|<iframe|https?:\/\//i);
  });

  it('carry the security headers on every response, errors included', () => {
    for (const init of [
      pageResponse(200, connectedPage('a', undefined)),
      pageResponse(403, errorPageContent('invalid_link', 'ref'), { 'x-broker-error': 'invalid_link' }),
    ]) {
      const headers = init.headers as Record<string, string>;
      for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS))
        assert.equal(headers[name], value, name);
      assert.equal(headers['cache-control'], 'no-store');
      assert.equal(headers['referrer-policy'], 'no-referrer');
      assert.equal(headers['x-content-type-options'], 'nosniff');
    }
  });

  it('escape every value they show', () => {
    const html = renderPage(connectedPage('x', '<img src=x onerror=alert(1)>@example.com'));
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;@example.com'));
    assert.doesNotMatch(html, /<img/);
    assert.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
    const ref = renderPage(errorPageContent('invalid_state', '"><b>'));
    assert.ok(ref.includes('&quot;&gt;&lt;b&gt;'));
  });

  it('mark the outcome code on <main>, with the reference on error pages', () => {
    assert.match(renderPage(connectedPage('a', undefined)), /<main class="ok" data-code="connected"/);
    for (const code of Object.keys(ERROR_CODES)) {
      const content = errorPageContent(code, 'ref-1');
      assert.equal(content.code, code);
      assert.ok(content.next?.length, `${code}: says what to do next`);
      const html = renderPage(content);
      assert.match(html, new RegExp(`<main class="(bad|warn)" data-code="${code}"`));
      assert.match(html, /<code class="ref">ref-1<\/code>/);
      assert.equal(html.match(/<h1[ >]/g)?.length, 1, `${code}: one h1`);
    }
    assert.equal(errorPageContent('made_up').code, 'made_up');
    assert.doesNotMatch(renderPage(errorPageContent('made_up')), /class="ref"/);
  });

  it('tell a person which cases to retry and which to take to an administrator', () => {
    assert.equal(errorPageContent('invalid_link').tone, 'warn');
    assert.equal(errorPageContent('provider_unavailable').tone, 'warn');
    assert.equal(errorPageContent('identity_mismatch').tone, 'bad');
    assert.equal(errorPageContent('provider_misconfigured').tone, 'bad');
    assert.deepEqual(errorPageContent('internal_error').next, errorPageContent('made_up').next);
  });
});

describe('consent page', () => {
  const facts = {
    connection: 'sales-mailbox',
    provider: 'microsoft',
    providerKind: 'microsoft' as const,
    scopes: ['https://graph.microsoft.com/Mail.Send'],
    pinned: false,
    linkExpiresAt: '2026-11-30T10:00:00.000Z',
  };
  it('says why when Microsoft asked for an extra sign-in step (claims challenge), and only then', () => {
    const plain = consentPage(facts, 'Token broker', []);
    const challenged = consentPage({ ...facts, claimsChallenge: true }, 'Token broker', []);
    assert.equal(challenged.lines.length, plain.lines.length + 1);
    assert.match(challenged.lines.at(-1) ?? '', /Microsoft asked for an extra sign-in step/);
    assert.ok(!plain.lines.some((l) => l.includes('extra sign-in step')));
  });

  it('names the connection, the requester, the permissions and the account, and posts its fields back', () => {
    const html = renderPage(
      consentPage({ ...facts, description: '<b>Invoices</b>' }, 'Token broker at broker.example', [
        ['link', 'a"b<c'],
        ['consent', 'tok&en'],
      ]),
    );
    assert.match(html, /<main class="info" data-code="consent"/);
    for (const text of [
      'sales-mailbox',
      'Token broker at broker.example',
      'Mail.Send',
      'The account you choose',
    ])
      assert.ok(html.includes(text), text);
    assert.ok(html.includes('&lt;b&gt;Invoices&lt;/b&gt;') && !html.includes('<b>Invoices'));
    assert.match(html, /<form method="post" action="\/api\/connect\/sales-mailbox">/);
    assert.ok(html.includes('<input type="hidden" name="link" value="a&quot;b&lt;c">'));
    assert.ok(html.includes('<input type="hidden" name="consent" value="tok&amp;en">'));
    assert.doesNotMatch(html, /<script/i);
    const pinned = renderPage(
      consentPage({ ...facts, pinned: true, expectedUsername: 'adele@x.example' }, 'T', []),
    );
    assert.ok(pinned.includes('adele@x.example'));
  });

  it('lets its form post only to itself and to the provider, nothing else', () => {
    const csp = consentPageHeaders('https://login.microsoftonline.com')['content-security-policy'] ?? '';
    assert.match(csp, /(^|; )form-action 'self' https:\/\/login\.microsoftonline\.com(;|$)/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src|unsafe/);
    assert.match(PAGE_SECURITY_HEADERS['content-security-policy'] ?? '', /form-action 'none'/);
  });
});

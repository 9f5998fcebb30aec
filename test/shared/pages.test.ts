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

describe('page rendering in detail', () => {
  const base = { code: 'c', tone: 'ok' as const, badge: 'B', title: 'T', lines: ['one', 'two'] };

  it('renders paragraphs, and leaves out empty fact, next-step and form sections', () => {
    const html = renderPage({ ...base, facts: [], next: [] });
    assert.ok(html.includes('<p>one</p><p>two</p>'));
    assert.doesNotMatch(html, /<dl>|<h2>|<ul>|<form/);
    const full = renderPage({ ...base, facts: [['K', 'V']], next: ['Do this'] });
    assert.ok(full.includes('<dl><dt>K</dt><dd>V</dd></dl>'));
    assert.ok(full.includes('<h2>What to do next</h2><ul><li>Do this</li></ul>'));
  });

  it('titles the page with its title and the product name, and shows the badge', () => {
    const html = renderPage({ ...base, title: 'A & B' });
    assert.ok(html.includes('<title>A &amp; B – Token broker</title>'));
    assert.ok(html.includes('<h1 id="page-title">A &amp; B</h1>'));
    assert.ok(html.includes('<span>B</span>'));
  });

  it('draws a different icon for each tone', () => {
    const paths = (['ok', 'bad', 'warn', 'info'] as const).map(
      (tone) => /<path d="([^"]+)"\/>/.exec(renderPage({ ...base, tone }))?.[1],
    );
    assert.deepEqual(paths, [
      'M7 12.5l3.3 3.3L17.2 8.8',
      'M8.5 8.5l7 7M15.5 8.5l-7 7',
      'M12 6.8v6.4M12 17.2v.01',
      'M12 10.8v6.4M12 6.8v.01',
    ]);
  });

  it('shows its own closing line instead of the code, or the code with an optional reference', () => {
    assert.ok(renderPage({ ...base, foot: 'Bye <now>' }).includes('<p class="foot">Bye &lt;now&gt;</p>'));
    assert.ok(renderPage(base).includes('<p class="foot">Error code <code>c</code></p>'));
    assert.ok(
      renderPage({ ...base, reference: 'r1' }).includes(
        '<p class="foot">Error code <code>c</code><br>Reference <code class="ref">r1</code></p>',
      ),
    );
    assert.equal(errorPageContent('invalid_link', '').reference, undefined);
    assert.equal('reference' in errorPageContent('invalid_link'), false);
  });

  it('sets cookies on a page response only when given', () => {
    const page = connectedPage('a', undefined);
    assert.equal('cookies' in pageResponse(200, page), false);
    const cookies = [{ name: 'x', value: '', maxAge: 0 }];
    assert.deepEqual(pageResponse(400, page, {}, cookies).cookies, cookies);
    const res = pageResponse(400, page, { 'x-broker-error': 'e' });
    assert.equal(res.status, 400);
    assert.equal(res.body, renderPage(page));
    assert.equal((res.headers as Record<string, string>)['x-broker-error'], 'e');
  });

  it('lists the connection, and the account only when known, on the connected page', () => {
    assert.deepEqual(connectedPage('mail', 'a@b.example').facts, [
      ['Connection', 'mail'],
      ['Account', 'a@b.example'],
    ]);
    assert.deepEqual(connectedPage('mail', undefined).facts, [['Connection', 'mail']]);
    assert.equal(connectedPage('mail', undefined).tone, 'ok');
  });

  it('groups the error codes a person can meet into what they can do about them', () => {
    const title = (code: string) => errorPageContent(code).title;
    for (const code of ['provider_unavailable', 'store_unavailable', 'lock_timeout'])
      assert.equal(title(code), 'The service is busy or unavailable right now', code);
    for (const code of ['provider_misconfigured', 'config_error'])
      assert.equal(title(code), 'The broker is not set up correctly', code);
    assert.equal(title('internal_error'), 'The account could not be connected');
    assert.equal(title('invalid_request'), 'This address is incomplete or not valid');
    assert.equal(title('unknown_connection'), 'This connection no longer exists');
    assert.equal(title('provider_denied'), 'The sign-in was cancelled or access was not granted');
    assert.equal(title('invalid_state'), 'This sign-in could not be verified');
    assert.equal(title('provider_error'), 'The identity provider’s answer could not be used');
  });
});

describe('consent page in detail', () => {
  const facts = {
    connection: 'sales mailbox',
    provider: 'acme',
    providerKind: 'oauth2' as const,
    scopes: ['read', 'write'],
    pinned: false,
    linkExpiresAt: '2026-11-30T10:00:00.000Z',
  };
  const row = (content: ReturnType<typeof consentPage>, label: string) =>
    content.facts?.find(([k]) => k === label)?.[1];

  it('names a generic provider by its configured name, and Microsoft as Microsoft', () => {
    const page = consentPage(facts, 'R', []);
    assert.equal(row(page, 'Sign-in with'), 'acme');
    assert.equal(page.title, 'Connect your acme account to “sales mailbox”?');
    assert.equal(page.form?.button, 'Continue to acme');
    assert.equal(
      row(consentPage({ ...facts, providerKind: 'microsoft' }, 'R', []), 'Sign-in with'),
      'Microsoft',
    );
  });

  it('lists the rows in order, the purpose only when described', () => {
    assert.deepEqual(
      consentPage(facts, 'Broker at b.example', []).facts?.map(([k]) => k),
      ['Connection', 'Requested by', 'Sign-in with', 'Account', 'Permissions'],
    );
    const described = consentPage({ ...facts, description: 'Invoices' }, 'R', []);
    assert.deepEqual(described.facts?.slice(0, 2), [
      ['Connection', 'sales mailbox'],
      ['Purpose', 'Invoices'],
    ]);
    assert.equal(row(described, 'Requested by'), 'R');
  });

  it('says which account: the expected one, a pinned one, or the one chosen', () => {
    assert.equal(row(consentPage(facts, 'R', []), 'Account'), 'The account you choose at the next step');
    assert.equal(
      row(consentPage({ ...facts, pinned: true }, 'R', []), 'Account'),
      'One specific account chosen by your administrator',
    );
    assert.equal(
      row(consentPage({ ...facts, pinned: true, expectedUsername: 'a@b.example' }, 'R', []), 'Account'),
      'a@b.example',
    );
  });

  it('lists the permissions with offline access, and when the link stops working', () => {
    const page = consentPage(facts, 'R', [['link', 'l']]);
    assert.equal(row(page, 'Permissions'), 'read, write, offline access (keep access without you present)');
    assert.equal(page.foot, 'This link works until 2026-11-30 10:00:00 UTC.');
    assert.deepEqual(page.form, {
      action: '/api/connect/sales%20mailbox',
      button: 'Continue to acme',
      fields: [['link', 'l']],
    });
    assert.equal(page.lines.length, 1);
  });

  it('keeps the rest of the page policy when allowing the provider as a form target', () => {
    const csp = consentPageHeaders('https://idp.example')['content-security-policy'];
    assert.equal(
      csp,
      (PAGE_SECURITY_HEADERS['content-security-policy'] ?? '').replace(
        "form-action 'none'",
        "form-action 'self' https://idp.example",
      ),
    );
    assert.notEqual(csp, PAGE_SECURITY_HEADERS['content-security-policy']);
  });
});

describe('page wording', () => {
  it('explains every outcome in at least one paragraph', () => {
    for (const code of [...Object.keys(ERROR_CODES), 'made_up']) {
      const lines = errorPageContent(code).lines;
      assert.ok(lines.length > 0 && lines.every((l) => l.length > 20), code);
    }
    assert.ok(connectedPage('a', undefined).lines.length > 0);
  });

  it('offers the consent page next steps: continue to the provider, or close the window', () => {
    const next = consentPage(
      {
        connection: 'c',
        provider: 'acme',
        providerKind: 'oauth2',
        scopes: [],
        pinned: false,
        linkExpiresAt: '2026-11-30T10:00:00.000Z',
      },
      'R',
      [],
    ).next;
    assert.equal(next?.length, 2);
    assert.match(next?.[0] ?? '', /^Continue to acme /);
    assert.match(next?.[1] ?? '', /Close this window/);
  });
});

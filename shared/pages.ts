/**
 * @module pages
 * The few HTML pages a person sees at the end of the connect flow: connected, or why not and what to do next.
 * One static stylesheet allowed by its hash, no script, no external assets, nothing secret (no token, code,
 * link or state), and the same security headers on every page. `<main data-code>` carries the outcome code so
 * tests assert codes, not prose.
 */
import type { ConnectDescription } from './broker/connectFlow.ts';
import { createHash } from 'node:crypto';
import type { HttpResponseInit } from '@azure/functions';

// Colours meet WCAG AA (4.5:1) against their card in both schemes; the browser suite runs axe-core in both.
const CSS = `
:root{color-scheme:light dark;--bg:#eef1f5;--card:#fff;--text:#1f2328;--muted:#4b5563;--line:#d1d5db;--ok:#0f7b3f;--bad:#b42318;--warn:#8a5a00;--link:#0b57a4;--focus:#c2410c}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1b2027;--text:#eef1f4;--muted:#b5bec8;--line:#3a424d;--ok:#5fd38d;--bad:#ff8a80;--warn:#ffd479;--link:#8ab4ff;--focus:#ffb37a}}
*,*::before,*::after{box-sizing:border-box}
html{background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;padding:3rem 1rem}
main{width:100%;max-width:32rem;padding:2rem;background:var(--card);border-radius:.5rem;border-top:.35rem solid var(--tone);box-shadow:0 1px 3px rgba(0,0,0,.2)}
.ok{--tone:var(--ok)}.bad{--tone:var(--bad)}.warn{--tone:var(--warn)}
.brand{margin:0 0 1.25rem;font-size:.9rem;font-weight:600;color:var(--muted);letter-spacing:.02em}
.status{display:flex;align-items:center;gap:.6rem;margin:0 0 .5rem;color:var(--tone);font-weight:700;font-size:.85rem;letter-spacing:.06em;text-transform:uppercase}
.status svg{flex:none;width:1.75rem;height:1.75rem}
.status circle{fill:currentColor}.status path{fill:none;stroke:var(--card);stroke-width:2.4;stroke-linecap:round;stroke-linejoin:round}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1rem;margin:1.5rem 0 .5rem}
p{margin:0 0 1rem}
ul{margin:0 0 1rem;padding-left:1.25rem}li{margin:.35rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0 0 1rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.foot{margin:1.5rem 0 0;padding-top:1rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem}
a{color:var(--link)}:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
form{margin:1.5rem 0 0}button{font:inherit;font-weight:600;padding:.65rem 1.25rem;border:0;border-radius:.375rem;background:var(--link);color:var(--card);cursor:pointer}
.info{--tone:var(--link)}
`;

const CSS_HASH = createHash('sha256').update(CSS).digest('base64');

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; style-src 'sha256-${CSS_HASH}'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
});

export type PageTone = 'ok' | 'bad' | 'warn' | 'info';

export interface PageContent {
  /** Stable outcome: `connected` or an error code (`<main data-code>`; tests read it). */
  code: string;
  tone: PageTone;
  badge: string;
  title: string;
  /** Paragraphs of plain text (escaped). */
  lines: string[];
  /** Label/value pairs shown as a short list (escaped). */
  facts?: [label: string, value: string][];
  /** Short "what to do next" bullet points (escaped). */
  next?: string[];
  /** Closing line under a rule (escaped); without it the page shows its code (and reference). */
  foot?: string;
  /** Error pages: the invocation id an administrator can look up in the logs (random, nothing secret). */
  reference?: string;
  /** A POST form back to the same address (the consent page's continue button), with hidden fields. */
  form?: { action: string; button: string; fields: [name: string, value: string][] };
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

// Decorative: the badge next to it says the same in words.
const ICON_PATHS: Record<PageTone, string> = {
  ok: 'M7 12.5l3.3 3.3L17.2 8.8',
  bad: 'M8.5 8.5l7 7M15.5 8.5l-7 7',
  warn: 'M12 6.8v6.4M12 17.2v.01',
  info: 'M12 10.8v6.4M12 6.8v.01',
};

function icon(tone: PageTone): string {
  return `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="12"/><path d="${ICON_PATHS[tone]}"/></svg>`;
}

function footer(content: PageContent): string {
  if (content.foot) return `<p class="foot">${escapeHtml(content.foot)}</p>`;
  const reference = content.reference
    ? `<br>Reference <code class="ref">${escapeHtml(content.reference)}</code>`
    : '';
  return `<p class="foot">Error code <code>${escapeHtml(content.code)}</code>${reference}</p>`;
}

export function renderPage(content: PageContent): string {
  const e = escapeHtml;
  const paragraphs = content.lines.map((l) => `<p>${e(l)}</p>`).join('');
  const facts = content.facts?.length
    ? `<dl>${content.facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('')}</dl>`
    : '';
  const next = content.next?.length
    ? `<h2>What to do next</h2><ul>${content.next.map((n) => `<li>${e(n)}</li>`).join('')}</ul>`
    : '';
  const form = content.form
    ? `<form method="post" action="${e(content.form.action)}">${content.form.fields
        .map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`)
        .join('')}<button type="submit">${e(content.form.button)}</button></form>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${e(content.title)} – Token broker</title>
<style>${CSS}</style>
</head>
<body>
<main class="${content.tone}" data-code="${e(content.code)}" aria-labelledby="page-title">
<p class="brand">Token broker</p>
<p class="status">${icon(content.tone)}<span>${e(content.badge)}</span></p>
<h1 id="page-title">${e(content.title)}</h1>
${paragraphs}${facts}${next}${form}${footer(content)}
</main>
</body>
</html>
`;
}

export function pageResponse(
  status: number,
  content: PageContent,
  extraHeaders: Record<string, string> = {},
  cookies?: HttpResponseInit['cookies'],
): HttpResponseInit {
  const init: HttpResponseInit = {
    status,
    body: renderPage(content),
    headers: { ...PAGE_SECURITY_HEADERS, ...extraHeaders },
  };
  if (cookies) init.cookies = cookies;
  return init;
}

type ErrorText = Omit<PageContent, 'code' | 'foot' | 'reference'>;

const AGAIN = 'Open the connect link again in this browser.';
const ASK_ADMIN_FOR_LINK = 'Ask your administrator for a new connect link, then open it in this browser.';
const TELL_ADMIN = 'If it keeps happening, tell your administrator and include the reference below.';

const SERVICE_BUSY: ErrorText = {
  tone: 'warn',
  badge: 'Try again soon',
  title: 'The service is busy or unavailable right now',
  lines: ['The account could not be connected this time. Nothing was stored.'],
  next: ['Wait a minute, then open the connect link again.', TELL_ADMIN],
};

const MISCONFIGURED: ErrorText = {
  tone: 'bad',
  badge: 'Setup problem',
  title: 'The broker is not set up correctly',
  lines: [
    'The identity provider or the broker rejected the broker’s configuration, so nothing was connected. You cannot fix this from here.',
  ],
  next: ['Tell your administrator and include the reference below.'],
};

const SOMETHING_WRONG: ErrorText = {
  tone: 'bad',
  badge: 'Something went wrong',
  title: 'The account could not be connected',
  lines: ['The broker could not finish connecting this account. Nothing was stored.'],
  next: ['Try the connect link again in a few minutes.', TELL_ADMIN],
};

/** What a person is told for each error code the connect flow can end with. */
const ERROR_TEXT: Partial<Record<string, ErrorText>> = {
  invalid_link: {
    tone: 'warn',
    badge: 'Link not valid',
    title: 'This connect link has expired or is not valid',
    lines: [
      'Connect links work for a short time, and only for the connection they were made for. Nothing was changed.',
    ],
    next: [ASK_ADMIN_FOR_LINK],
  },
  invalid_request: {
    tone: 'warn',
    badge: 'Link not complete',
    title: 'This address is incomplete or not valid',
    lines: [
      'The page was opened with an address the broker does not accept — often a connect link that was cut short when it was copied. Nothing was changed.',
    ],
    next: ['Copy the whole connect link and open it again.', ASK_ADMIN_FOR_LINK],
  },
  provider_denied: {
    tone: 'bad',
    badge: 'Not connected',
    title: 'The sign-in was cancelled or access was not granted',
    lines: [
      'The identity provider reported that access was declined, so nothing was connected and nothing was stored.',
    ],
    next: [
      'If this was a mistake, open the connect link again and choose Allow.',
      'If your organisation requires an administrator to approve the app, ask your administrator.',
    ],
  },
  identity_mismatch: {
    tone: 'bad',
    badge: 'Wrong account',
    title: 'You signed in with a different account than expected',
    lines: [
      'This connection is meant for one specific account. The account you signed in with is a different one, so nothing was stored.',
    ],
    next: [
      'Sign out at the identity provider (or use a private window), open the connect link again and sign in with the expected account.',
      'Not sure which account that is? Ask your administrator.',
    ],
  },
  invalid_state: {
    tone: 'warn',
    badge: 'Start again',
    title: 'This sign-in could not be verified',
    lines: [
      'A sign-in must start and finish in the same browser within ten minutes, and each answer from the identity provider can be used only once. Nothing was stored.',
    ],
    next: [AGAIN, 'If the link has expired, ask your administrator for a new one.'],
  },
  unknown_connection: {
    tone: 'warn',
    badge: 'Not found',
    title: 'This connection no longer exists',
    lines: ['The administrator may have removed it. Nothing was changed.'],
    next: ['Ask your administrator for a new connect link.'],
  },
  provider_error: {
    tone: 'bad',
    badge: 'Not connected',
    title: 'The identity provider’s answer could not be used',
    lines: [
      'You signed in, but the identity provider’s answer could not be used to connect the account, so nothing was stored.',
    ],
    next: [AGAIN, TELL_ADMIN],
  },
  provider_unavailable: SERVICE_BUSY,
  store_unavailable: SERVICE_BUSY,
  lock_timeout: SERVICE_BUSY,
  provider_misconfigured: MISCONFIGURED,
  config_error: MISCONFIGURED,
};

/**
 * The page for an error code a person can meet in the connect flow. `reference` (the invocation id) lets an
 * administrator find the matching log line; it is random and carries nothing secret.
 */
export function errorPageContent(code: string, reference?: string): PageContent {
  const text = ERROR_TEXT[code] ?? SOMETHING_WRONG;
  return reference ? { ...text, code, reference } : { ...text, code };
}

/** What the consent page needs to say: the broker's description of the link, less what only the headers use. */
export type ConsentFacts = Omit<ConnectDescription, 'authorizeOrigin' | 'claimsChallenge'> & {
  claimsChallenge?: boolean;
};

/**
 * The page a connect link opens: who asks, for which connection, with which permissions, and an explicit
 * continue. Nothing happens at the provider until the person presses the button (forced-connect defence).
 */
export function consentPage(
  facts: ConsentFacts,
  requestedBy: string,
  fields: [string, string][],
): PageContent {
  const providerName = facts.providerKind === 'microsoft' ? 'Microsoft' : facts.provider;
  const account = facts.expectedUsername
    ? facts.expectedUsername
    : facts.pinned
      ? 'One specific account chosen by your administrator'
      : 'The account you choose at the next step';
  const rows: [string, string][] = [
    ['Connection', facts.connection],
    ...(facts.description ? ([['Purpose', facts.description]] as [string, string][]) : []),
    ['Requested by', requestedBy],
    ['Sign-in with', providerName],
    ['Account', account],
    ['Permissions', [...facts.scopes, 'offline access (keep access without you present)'].join(', ')],
  ];
  return {
    code: 'consent',
    tone: 'info',
    badge: 'Connect an account',
    title: `Connect your ${providerName} account to “${facts.connection}”?`,
    lines: [
      `The token broker will keep signed-in access to this account and hand short-lived tokens with these permissions to the applications your administrator allows. Only continue if you expected this link and want this account used for it.`,
      ...(facts.claimsChallenge
        ? [
            `${providerName} asked for an extra sign-in step for this account (for example multi-factor authentication or a Conditional Access policy) before it issues new tokens. This sign-in passes that request on: complete the step ${providerName} shows you.`,
          ]
        : []),
    ],
    facts: rows,
    next: [
      `Continue to ${providerName} and choose the account to connect. You can still cancel there.`,
      'Did not expect this? Close this window: nothing has been connected.',
    ],
    form: {
      action: `/api/connect/${encodeURIComponent(facts.connection)}`,
      button: `Continue to ${providerName}`,
      fields,
    },
    foot: `This link works until ${facts.linkExpiresAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.`,
  };
}

/** The consent page's security headers: its form may post back here, and the answer redirects to the provider. */
export function consentPageHeaders(authorizeOrigin: string): Record<string, string> {
  return {
    'content-security-policy': (PAGE_SECURITY_HEADERS['content-security-policy'] ?? '').replace(
      "form-action 'none'",
      `form-action 'self' ${authorizeOrigin}`,
    ),
  };
}

export function connectedPage(connection: string, username: string | undefined): PageContent {
  return {
    code: 'connected',
    tone: 'ok',
    badge: 'Connected',
    title: 'Your account is connected',
    lines: [
      'The broker now keeps this connection fresh. You will not need to sign in again unless your administrator sends you a new link.',
    ],
    facts: username
      ? [
          ['Connection', connection],
          ['Account', username],
        ]
      : [['Connection', connection]],
    foot: 'You can close this window.',
  };
}

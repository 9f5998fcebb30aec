/**
 * @module pages
 * The few HTML pages a person sees (connect results). Static CSS allowed by hash, no script, no external
 * assets, and nothing secret on them. Every page carries the same security headers.
 */
import { createHash } from 'node:crypto';
import type { HttpResponseInit } from '@azure/functions';

const CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--text:#1b1f24;--muted:#4a5560;--ok:#0f7b3f;--bad:#b3261e;--warn:#8a5a00;--ring:#2f6fed}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1b2027;--text:#eef1f4;--muted:#b5bec8;--ok:#5fd38d;--bad:#ff8a80;--warn:#ffd479;--ring:#8ab4ff}}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:34rem;margin:1.5rem;padding:2rem 2.25rem;background:var(--card);border-radius:14px;box-shadow:0 1px 3px rgba(0,0,0,.12),0 8px 24px rgba(0,0,0,.06)}
h1{font-size:1.5rem;line-height:1.25;margin:.25rem 0 1rem}p{margin:.5rem 0}.muted{color:var(--muted);font-size:.95rem}
.badge{display:inline-block;font-weight:600;font-size:.85rem;letter-spacing:.02em;text-transform:uppercase}
.ok .badge{color:var(--ok)}.bad .badge{color:var(--bad)}.warn .badge{color:var(--warn)}
code{font:600 .95em ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
ul{padding-left:1.2rem}a{color:var(--ring)}a:focus-visible{outline:3px solid var(--ring);outline-offset:2px}
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

export type PageTone = 'ok' | 'bad' | 'warn';

export interface PageContent {
  tone: PageTone;
  badge: string;
  title: string;
  /** Paragraphs of plain text (escaped). */
  lines: string[];
  /** Short "what to do next" bullet points (escaped). */
  next?: string[];
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

export function renderPage(content: PageContent): string {
  const paragraphs = content.lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('');
  const next = content.next?.length
    ? `<h2 class="muted">What to do next</h2><ul>${content.next.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(content.title)} · Token broker</title><style>${CSS}</style></head><body><main class="${content.tone}" aria-labelledby="page-title"><span class="badge">${escapeHtml(content.badge)}</span><h1 id="page-title">${escapeHtml(content.title)}</h1>${paragraphs}${next}<p class="muted">You can close this window.</p></main></body></html>`;
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

/** The page for each error code a person can meet in the connect flow. */
export function errorPageContent(code: string): PageContent {
  switch (code) {
    case 'invalid_link':
      return {
        tone: 'warn',
        badge: 'Link not valid',
        title: 'This connect link has expired or is not valid',
        lines: ['Connect links work for a short time and for one connection only.'],
        next: ['Ask your administrator for a new connect link, then open it in this browser.'],
      };
    case 'provider_denied':
      return {
        tone: 'bad',
        badge: 'Not connected',
        title: 'The sign-in was cancelled or access was not granted',
        lines: [
          'The identity provider reported that access was declined, so nothing was connected and nothing was stored.',
        ],
        next: [
          'If this was a mistake, open the connect link again and choose Allow.',
          'If your organisation requires admin consent, ask your administrator.',
        ],
      };
    case 'identity_mismatch':
      return {
        tone: 'bad',
        badge: 'Wrong account',
        title: 'You signed in with a different account than expected',
        lines: [
          'This connection is pinned to a specific account. The account you used does not match, so nothing was stored.',
        ],
        next: [
          'Sign out at the identity provider, open the connect link again and sign in with the expected account.',
        ],
      };
    case 'invalid_state':
      return {
        tone: 'warn',
        badge: 'Start again',
        title: 'This sign-in could not be verified',
        lines: [
          'The sign-in must be started and finished in the same browser within ten minutes, and each response can be used once.',
        ],
        next: ['Open the connect link again in this browser.'],
      };
    case 'unknown_connection':
      return {
        tone: 'warn',
        badge: 'Not found',
        title: 'This connection no longer exists',
        lines: ['The administrator may have removed it.'],
        next: ['Ask your administrator for a new connect link.'],
      };
    default:
      return {
        tone: 'bad',
        badge: 'Something went wrong',
        title: 'The account could not be connected',
        lines: ['The broker could not finish connecting this account. Nothing secret was shown or stored.'],
        next: [
          'Try the connect link again in a few minutes.',
          'If it keeps failing, tell your administrator the time it happened.',
        ],
      };
  }
}

export function connectedPage(connection: string, username: string | undefined): PageContent {
  return {
    tone: 'ok',
    badge: 'Connected',
    title: 'Your account is connected',
    lines: [
      username
        ? `Signed in as ${username}. The connection “${connection}” is ready.`
        : `The connection “${connection}” is ready.`,
      'The broker keeps this connection fresh from now on; you do not need to sign in again unless you are asked to.',
    ],
  };
}

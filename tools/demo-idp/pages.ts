/**
 * @module demo-idp/pages
 * The demo IdP's HTML: sign-in, consent, error and index pages. Self-contained (inline CSS under a per-response
 * nonce, no scripts, no external assets) and accessible: `lang`, one `h1`, real `<label>`s, visible focus, error
 * text tied to its field, contrast ≥ 4.5:1. Element ids are stable so browser tests can drive the pages.
 */
import { randomBytes } from 'node:crypto';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/**
 * Headers every HTML page carries. `form-action` must also list the client's redirect origins: Chromium applies
 * it to the redirect chain that follows a form post (consent → resume → redirect_uri).
 */
export function pageSecurityHeaders(
  nonce: string,
  formActions: readonly string[] = [],
): Record<string, string> {
  const actions = ["'self'", ...new Set(formActions)].join(' ');
  return {
    'content-security-policy':
      `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'none'; form-action ${actions}; ` +
      "frame-ancestors 'none'; base-uri 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-type': 'text/html; charset=utf-8',
  };
}

const STYLE = `
*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;line-height:1.5;color:#1f2328;background:#eef1f5}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;padding:3rem 1rem}
main{background:#fff;width:100%;max-width:28rem;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.2)}
.brand{margin:0 0 1rem;font-size:.9rem;font-weight:600;color:#374151;letter-spacing:.02em}
h1{font-size:1.5rem;margin:0 0 .75rem;line-height:1.25}
h2{font-size:1rem;margin:1.5rem 0 .5rem}
p{margin:0 0 1rem}
.muted{color:#4b5563;font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input{display:block;width:100%;font:inherit;padding:.55rem .7rem;border:1px solid #6b7280;border-radius:.25rem;background:#fff;color:#1f2328}
input[aria-invalid=true]{border-color:#b42318;border-width:2px}
.actions{display:flex;gap:.75rem;flex-wrap:wrap;margin-top:1.5rem}
button{font:inherit;font-weight:600;padding:.6rem 1.4rem;border-radius:.25rem;border:2px solid #0b57a4;cursor:pointer;background:#0b57a4;color:#fff}
button.secondary{background:#fff;color:#1f2328;border-color:#6b7280}
button:hover{background:#0a4a8c;border-color:#0a4a8c}
button.secondary:hover{background:#f3f4f6;border-color:#374151}
:focus-visible{outline:3px solid #c2410c;outline-offset:2px}
.error{border-left:4px solid #b42318;background:#fef3f2;color:#8a1c12;padding:.75rem 1rem;margin:0 0 1rem}
ul.perms{padding-left:1.25rem;margin:0 0 1rem}
ul.perms li{margin:.35rem 0}
code{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:.85em;background:#f3f4f6;padding:.05rem .3rem;border-radius:.2rem;word-break:break-all}
.notice{margin-top:1.5rem;padding-top:1rem;border-top:1px solid #d1d5db}
main>:last-child,.error>:last-child,.notice>:last-child{margin-bottom:0}
`;

export const PRODUCT_NAME = 'Demo Identity (local)';

function layout(nonce: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} – ${PRODUCT_NAME}</title>
<style nonce="${escapeHtml(nonce)}">${STYLE}</style>
</head>
<body>
<main aria-labelledby="title">
<p class="brand">${PRODUCT_NAME}</p>
${body}
</main>
</body>
</html>
`;
}

export interface LoginPageInput {
  nonce: string;
  /** Form target (path on the IdP). */
  action: string;
  clientName: string;
  tenantName: string;
  username?: string;
  error?: string;
  demoAccounts?: readonly { username: string; password: string }[];
}

export function loginPage(input: LoginPageInput): string {
  const invalid = input.error ? ' aria-invalid="true" aria-describedby="login-error"' : '';
  const accounts = input.demoAccounts?.length
    ? `<section class="notice" aria-labelledby="demo-accounts">
<h2 id="demo-accounts">Demo accounts</h2>
<ul class="perms">${input.demoAccounts
        .map(
          (a) =>
            `<li><code>${escapeHtml(a.username)}</code>, password <code>${escapeHtml(a.password)}</code></li>`,
        )
        .join('')}</ul>
</section>`
    : '';
  return layout(
    input.nonce,
    'Sign in',
    `<h1 id="title">Sign in to ${PRODUCT_NAME}</h1>
<p><strong>${escapeHtml(input.clientName)}</strong> wants you to sign in with your ${escapeHtml(input.tenantName)} account.</p>
<p class="muted">This is a local demo identity provider, not Microsoft. It only knows the demo accounts.</p>
${input.error ? `<div id="login-error" class="error" role="alert">${escapeHtml(input.error)}</div>` : ''}
<form id="login-form" method="post" action="${escapeHtml(input.action)}">
<label for="login">Email address</label>
<input id="login" name="login" type="email" autocomplete="username" spellcheck="false" required value="${escapeHtml(input.username ?? '')}"${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${invalid}>
<div class="actions"><button id="sign-in" type="submit">Sign in</button></div>
</form>
${accounts}`,
  );
}

export interface ConsentPageInput {
  nonce: string;
  action: string;
  clientName: string;
  username: string;
  tenantName: string;
  /** One entry per permission: the sentence and the raw scope strings it stands for. */
  permissions: readonly { text: string; scopes: readonly string[] }[];
}

export function consentPage(input: ConsentPageInput): string {
  const items = input.permissions
    .map(
      (p) =>
        `<li>${escapeHtml(p.text)}<br><span class="muted">${p.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ')}</span></li>`,
    )
    .join('\n');
  return layout(
    input.nonce,
    'Permissions requested',
    `<h1 id="title">Permissions requested</h1>
<p>Signed in as <strong>${escapeHtml(input.username)}</strong> (${escapeHtml(input.tenantName)}).</p>
<h2 id="perms-heading"><span>${escapeHtml(input.clientName)}</span> wants to:</h2>
<ul class="perms" aria-labelledby="perms-heading">
${items}
</ul>
<p class="muted">Choose Allow to let the app use these permissions on your behalf, or Deny to return to the app without giving access.</p>
<form id="consent-form" method="post" action="${escapeHtml(input.action)}">
<div class="actions">
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" class="secondary" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>`,
  );
}

export interface ErrorPageInput {
  nonce: string;
  title: string;
  message: string;
  code?: number | string;
  traceId?: string;
}

export function errorPage(input: ErrorPageInput): string {
  return layout(
    input.nonce,
    input.title,
    `<h1 id="title">${escapeHtml(input.title)}</h1>
<div class="error" role="alert"><p id="error-message">${escapeHtml(input.message)}</p>
${input.code !== undefined ? `<p>Error code: <code id="error-code">${escapeHtml(String(input.code))}</code></p>` : ''}
${input.traceId ? `<p class="muted">Trace ID: <code>${escapeHtml(input.traceId)}</code></p>` : ''}</div>
<p class="muted">You can close this page and start again from the app.</p>`,
  );
}

export interface IndexPageInput {
  nonce: string;
  origin: string;
  tenants: readonly { tenantId: string; domain: string; displayName: string }[];
}

export function indexPage(input: IndexPageInput): string {
  const rows = input.tenants
    .map(
      (t) =>
        `<li>${escapeHtml(t.displayName)}: <code>${escapeHtml(t.tenantId)}</code> (<code>${escapeHtml(t.domain)}</code>)</li>`,
    )
    .join('');
  return layout(
    input.nonce,
    'About',
    `<h1 id="title">${PRODUCT_NAME}</h1>
<p>A local authorization server shaped like the Microsoft identity platform v2, for the token-broker demo and tests.</p>
<h2>Endpoints</h2>
<ul class="perms">
<li><code>${escapeHtml(input.origin)}/{tenant}/oauth2/v2.0/authorize</code></li>
<li><code>${escapeHtml(input.origin)}/{tenant}/oauth2/v2.0/token</code></li>
<li><code>${escapeHtml(input.origin)}/{tenant}/v2.0/.well-known/openid-configuration</code></li>
<li><code>${escapeHtml(input.origin)}/{tenant}/discovery/v2.0/keys</code></li>
</ul>
<h2>Tenants</h2>
<p class="muted"><code>common</code>, <code>organizations</code> and <code>consumers</code> resolve to the first one.</p>
<ul class="perms">${rows}</ul>`,
  );
}

/**
 * @module demo-idp/driver
 * Drives the demo IdP's sign-in and consent pages without a browser: a cookie-keeping fetch loop that follows
 * redirects, fills `login`/`password`, answers `decision=allow|deny`, and stops at the first redirect that leaves
 * the IdP (the client's redirect URI) or at a form_post page. For tests and scripts.
 *
 * The HTTP sequence it performs (what any non-browser client must do):
 *   1. GET  {authorize URL}                           → 303 Location: /{tenant}/interaction/{uid} + Set-Cookie
 *   2. GET  /{tenant}/interaction/{uid}               → 200 sign-in page (form#login-form)
 *   3. POST /{tenant}/interaction/{uid}/login          login=…&password=…   → 303 /{tenant}/oauth2/v2.0/authorize/{uid}
 *   4. GET  /{tenant}/oauth2/v2.0/authorize/{uid}      → 303 /{tenant}/interaction/{uid2}  (consent needed)
 *   5. GET  /{tenant}/interaction/{uid2}              → 200 consent page (form#consent-form)
 *   6. POST /{tenant}/interaction/{uid2}/consent       decision=allow       → 303 /{tenant}/oauth2/v2.0/authorize/{uid2}
 *   7. GET  /{tenant}/oauth2/v2.0/authorize/{uid2}     → 303 {redirect_uri}?code=…&state=…   (stop here)
 * Cookies are path-scoped; send each one back on requests under its Path.
 */

import { createHash, randomBytes } from 'node:crypto';

export class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  /** Applies `Set-Cookie` headers received for a request to `requestPath`. */
  store(setCookies: readonly string[], requestPath: string): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = requestPath.slice(0, requestPath.lastIndexOf('/') + 1) || '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path' && v.startsWith('/')) path = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${name}|${path}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  /** The `Cookie` header for a request path (RFC 6265 path match), or undefined. */
  header(path: string): string | undefined {
    const matches = [...this.#cookies.values()].filter(
      (c) =>
        path === c.path || (path.startsWith(c.path) && (c.path.endsWith('/') || path[c.path.length] === '/')),
    );
    matches.sort((a, b) => b.path.length - a.path.length);
    return matches.length ? matches.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

export interface DriveOptions {
  username?: string;
  password?: string;
  /** Consent answer (default allow). */
  decision?: 'allow' | 'deny';
  /** Reuse a jar to keep the IdP session (a second authorization then skips sign-in). */
  jar?: CookieJar;
  maxSteps?: number;
  fetch?: typeof fetch;
}

export interface DriveResult {
  /** Where the IdP sent the browser (the client's redirect URI, with its parameters). */
  url: URL;
  /** The authorization response parameters (from the query, the fragment, or the form_post fields). */
  params: URLSearchParams;
  responseMode: 'query' | 'fragment' | 'form_post';
  /** The interactive pages answered on the way, in order. */
  pages: ('login' | 'consent')[];
  jar: CookieJar;
}

function decodeHtml(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, n: string) => String.fromCharCode(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function formAction(html: string, id: string): string | undefined {
  const m = new RegExp(`<form id="${id}" method="post" action="([^"]+)"`).exec(html);
  return m?.[1] ? decodeHtml(m[1]) : undefined;
}

function pageMessage(html: string): string {
  const alert = /role="alert">([\s\S]*?)<\/(?:div|p)>/.exec(html)?.[1];
  const title = /<title>([^<]*)<\/title>/.exec(html)?.[1];
  return decodeHtml(
    (alert ?? title ?? 'unknown page')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

export class DriveError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'DriveError';
    this.status = status;
  }
}

/** Follows an authorization request through sign-in and consent to the client's redirect URI. */
export async function driveAuthorization(
  authorizeUrl: string | URL,
  opts: DriveOptions = {},
): Promise<DriveResult> {
  const fetchImpl = opts.fetch ?? fetch;
  const jar = opts.jar ?? new CookieJar();
  const pages: DriveResult['pages'] = [];
  let url = new URL(authorizeUrl);
  const idpOrigin = url.origin;
  let method = 'GET';
  let body: string | undefined;

  for (let step = 0; step < (opts.maxSteps ?? 20); step++) {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(url.pathname);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetchImpl(url, {
      method,
      headers,
      redirect: 'manual',
      ...(body !== undefined ? { body } : {}),
    });
    jar.store(res.headers.getSetCookie(), url.pathname);

    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new DriveError('redirect without Location', res.status);
      const next = new URL(location, url);
      if (next.origin !== idpOrigin) {
        const fragment = new URLSearchParams(next.hash.slice(1));
        const fromFragment = !next.search && fragment.size > 0;
        return {
          url: next,
          params: fromFragment ? fragment : new URLSearchParams(next.search),
          responseMode: fromFragment ? 'fragment' : 'query',
          pages,
          jar,
        };
      }
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }

    const html = await res.text();
    const login = formAction(html, 'login-form');
    if (login) {
      if (pages.at(-1) === 'login' && method === 'POST')
        throw new DriveError(`sign-in failed: ${pageMessage(html)}`, res.status);
      pages.push('login');
      url = new URL(login, url);
      method = 'POST';
      body = new URLSearchParams({
        login: opts.username ?? 'adele@demo.example',
        password: opts.password ?? 'demo',
      }).toString();
      continue;
    }
    const consent = formAction(html, 'consent-form');
    if (consent) {
      pages.push('consent');
      url = new URL(consent, url);
      method = 'POST';
      body = new URLSearchParams({ decision: opts.decision ?? 'allow' }).toString();
      continue;
    }
    const formPost = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
    if (formPost) {
      const params = new URLSearchParams();
      for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) {
        params.append(decodeHtml(m[1] ?? ''), decodeHtml(m[2] ?? ''));
      }
      return { url: new URL(decodeHtml(formPost)), params, responseMode: 'form_post', pages, jar };
    }
    throw new DriveError(`unexpected page (HTTP ${res.status}): ${pageMessage(html)}`, res.status);
  }
  throw new DriveError('too many steps', 0);
}

export interface AuthorizeRequestInput {
  /** The authorize endpoint, e.g. `idp.endpoints('common').authorization`. */
  authorizationEndpoint: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  responseMode?: 'query' | 'fragment' | 'form_post';
  prompt?: string;
  loginHint?: string;
}

export interface AuthorizeRequest {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** A code-flow authorization request with fresh `state`, `nonce` and a PKCE S256 challenge. */
export function buildAuthorizeRequest(input: AuthorizeRequestInput): AuthorizeRequest {
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const codeVerifier = randomBytes(32).toString('base64url');
  const url = new URL(input.authorizationEndpoint);
  url.search = new URLSearchParams({
    client_id: input.clientId,
    response_type: 'code',
    redirect_uri: input.redirectUri,
    scope: input.scope,
    state,
    nonce,
    code_challenge: createHash('sha256').update(codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(input.responseMode ? { response_mode: input.responseMode } : {}),
    ...(input.prompt ? { prompt: input.prompt } : {}),
    ...(input.loginHint ? { login_hint: input.loginHint } : {}),
  }).toString();
  return { url, state, nonce, codeVerifier };
}

/**
 * @module console/page
 * Serves the admin console: one HTML shell and the static assets esbuild wrote to `dist/console/` (the browser
 * bundle and its stylesheet). The shell holds no data and no secret; everything the console shows comes from
 * the manage API, called by the browser with the admin's own credentials (a function key kept in the tab's
 * memory, plus an Entra bearer token in Entra mode). No cookie authenticates anything here, so there is
 * nothing for a cross-site request to ride on (CSRF).
 *
 * CSP: scripts and styles only from this origin (no inline script or style), API calls only to this origin
 * (plus the Microsoft authority in Entra mode), nothing may frame the console.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { HttpResponseInit } from '@azure/functions';
import { BrokerError } from '../errors.ts';
import { escapeHtml } from '../pages.ts';

export interface ConsoleSettings {
  authMode: 'function_key' | 'entra';
  /** Entra mode: what the browser needs to sign the admin in with MSAL Browser (all public values). */
  entra?: { clientId: string; authority: string; scope: string };
}

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};
/** Flat names esbuild writes (`app.js`, `app.css`, `entra-ABC123.js`); no path can be expressed. */
export const ASSET_NAME = /^[A-Za-z0-9_-]{1,64}\.(?:js|css)$/;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

let assets: Promise<Map<string, Asset>> | undefined;

/**
 * dist/console/ sits beside dist/functions/ and dist/chunks/, so one `../console/` works from whichever bundle
 * file this module ends up in.
 */
async function loadAssets(dir: URL = new URL('../console/', import.meta.url)): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out; // not built: every asset is a 404 and the shell says so
  }
  for (const name of names) {
    const type = ASSET_TYPES[name.slice(name.lastIndexOf('.'))];
    if (!type || !ASSET_NAME.test(name)) continue;
    const body = await readFile(new URL(name, dir));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    out.set(name, { body, type, etag });
  }
  return out;
}

export async function consoleAsset(name: string, ifNoneMatch: string | null): Promise<HttpResponseInit> {
  assets ??= loadAssets();
  const asset = (await assets).get(name);
  if (!asset) throw new BrokerError('invalid_request', 'There is no such console asset.');
  const headers = {
    'content-type': asset.type,
    'x-content-type-options': 'nosniff',
    // Revalidated on every load (the ETag makes that a 304), so a new deployment is picked up at once.
    'cache-control': 'no-cache',
    etag: asset.etag,
    'cross-origin-resource-policy': 'same-origin',
  };
  if (ifNoneMatch === asset.etag) return { status: 304, headers };
  return { status: 200, headers, body: new Uint8Array(asset.body) };
}

export function consoleCsp(settings: ConsoleSettings, page: 'console' | 'redirect' = 'console'): string {
  const connect = ["'self'"];
  const frame: string[] = [];
  if (settings.entra) {
    // MSAL Browser calls the authority's metadata and token endpoints, and renews silently in a hidden iframe
    // that goes to the authority and comes back to our redirect page.
    const origin = new URL(settings.entra.authority).origin;
    connect.push(origin);
    frame.push(origin, "'self'");
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${connect.join(' ')}`,
    ...(frame.length ? [`frame-src ${frame.join(' ')}`] : []),
    "form-action 'none'",
    // Only the redirect page may be framed, and only by the console itself (MSAL's silent renewal).
    page === 'redirect' ? "frame-ancestors 'self'" : "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/**
 * The HTML shell. `basePath` is the console's own path (`/api/console`): assets are addressed from it. The
 * `redirect` page is where Microsoft returns in Entra mode; it only runs MSAL's redirect bridge.
 */
export function consolePage(
  settings: ConsoleSettings,
  basePath: string,
  page: 'console' | 'redirect' = 'console',
): HttpResponseInit {
  const base = basePath.replace(/\/+$/, '').replace(/\/redirect$/, '');
  const script = page === 'redirect' ? 'redirect.js' : 'app.js';
  const e = escapeHtml;
  const data = [
    `data-auth-mode="${e(settings.authMode)}"`,
    `data-api-base="${e(base.replace(/\/console$/, ''))}"`,
    ...(settings.entra
      ? [
          `data-entra-client-id="${e(settings.entra.clientId)}"`,
          `data-entra-authority="${e(settings.entra.authority)}"`,
          `data-entra-scope="${e(settings.entra.scope)}"`,
        ]
      : []),
  ].join(' ');
  const html = `<!doctype html>
<html lang="en" ${data}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta name="color-scheme" content="light dark">
<title>Connections – Token broker</title>
<link rel="stylesheet" href="${e(base)}/assets/app.css">
<script type="module" src="${e(base)}/assets/${script}"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><p class="brand">Token broker <span>console</span></p><div id="session"></div></header>
<main id="main" tabindex="-1"><noscript><p>The console needs JavaScript. The same actions are available through the manage API (see the README).</p></noscript></main>
<div id="toast" class="toast" role="status" aria-live="polite"></div>
</body>
</html>
`;
  return {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': consoleCsp(settings, page),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'x-frame-options': page === 'redirect' ? 'SAMEORIGIN' : 'DENY',
      'cross-origin-opener-policy': 'same-origin',
    },
    body: html,
  };
}

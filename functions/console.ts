import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { getConfig } from '../shared/config.ts';
import { ASSET_NAME, consoleAsset, consolePage } from '../shared/console/page.ts';
import { apiHandler, pageHandler } from '../shared/functionKit.ts';
import { parseParams, parseQuery, requireEmptyBody } from '../shared/http.ts';

const noQuery = z.object({}).strict();
const assetParams = z.object({ name: z.string().regex(ASSET_NAME, 'must be a console asset name') }).strict();

/** GET console: the admin console's HTML shell (no data; the browser calls the manage API itself). */
export const consoleShell = pageHandler('console', async (request: HttpRequest) => {
  parseQuery(request, noQuery);
  await requireEmptyBody(request);
  const config = getConfig();
  return consolePage(
    { authMode: config.auth.mode, ...(config.console ? { entra: config.console } : {}) },
    new URL(request.url).pathname,
  );
});

/** GET console/redirect: where Microsoft sends the admin back in Entra mode (MSAL Browser's redirect bridge). */
export const consoleRedirect = pageHandler('consoleRedirect', async (request: HttpRequest) => {
  // The authorization response arrives in the query or fragment; MSAL reads it in the browser, not us.
  await requireEmptyBody(request);
  const config = getConfig();
  return consolePage(
    { authMode: config.auth.mode, ...(config.console ? { entra: config.console } : {}) },
    new URL(request.url).pathname,
    'redirect',
  );
});

/** GET console/assets/{name}: the console's script and stylesheet, built by tools/build.ts. */
export const consoleAssets = apiHandler('consoleAsset', async (request: HttpRequest) => {
  const { name } = parseParams(request, assetParams);
  parseQuery(request, noQuery);
  return consoleAsset(name, request.headers.get('if-none-match'));
});

app.http('console', {
  methods: ['GET'],
  route: 'console',
  authLevel: 'anonymous',
  handler: consoleShell,
});
app.http('consoleRedirect', {
  methods: ['GET'],
  route: 'console/redirect',
  authLevel: 'anonymous',
  handler: consoleRedirect,
});
app.http('consoleAsset', {
  methods: ['GET'],
  route: 'console/assets/{name}',
  authLevel: 'anonymous',
  handler: consoleAssets,
});

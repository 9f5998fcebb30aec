import { app } from '@azure/functions';
import { z } from 'zod';
import { apiHandler } from '../shared/functionKit.ts';
import { jsonResponse, parseQuery, requireEmptyBody } from '../shared/http.ts';
import { getRuntime } from '../shared/runtime.ts';

const noQuery = z.object({}).strict();

/**
 * GET manage/providers: the providers a connection may name, with their default scopes, so the console (or any
 * admin tool) can offer them. Read-only and admin-only like the rest of the manage API; no client id, secret
 * or endpoint is listed.
 */
export const listProviders = apiHandler('manageProviders', async (request) => {
  parseQuery(request, noQuery, { functionKeyInQuery: true });
  await requireEmptyBody(request);
  const runtime = await getRuntime();
  await runtime.auth.authenticate(request, 'admin');
  const providers = Object.values(runtime.config.providers).map((p) => ({
    name: p.name,
    kind: p.kind,
    defaultScopes: [...p.defaultScopes],
  }));
  providers.sort((a, b) => a.name.localeCompare(b.name));
  return jsonResponse(200, { providers });
});

app.http('manageProviders', {
  methods: ['GET'],
  route: 'manage/providers',
  authLevel: 'function',
  handler: listProviders,
});

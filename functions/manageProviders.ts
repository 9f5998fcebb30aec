import { app } from '@azure/functions';
import { z } from 'zod';
import { apiHandler } from '../shared/functionKit.ts';
import { jsonResponse, parseQuery, requireEmptyBody } from '../shared/http.ts';
import { PRESET_NAMES, presetFor } from '../shared/oauth/presets.ts';
import { getRuntime } from '../shared/runtime.ts';

const noQuery = z.object({}).strict();

/**
 * GET manage/providers: the providers a connection may name, with their default scopes, so the console (or any
 * admin tool) can offer them, and the presets not configured yet (what BROKER_PROVIDERS could add). Read-only
 * and admin-only like the rest of the manage API; no client id, secret or endpoint is listed.
 */
export const listProviders = apiHandler('manageProviders', async (request) => {
  parseQuery(request, noQuery, { functionKeyInQuery: true });
  await requireEmptyBody(request);
  const runtime = await getRuntime();
  await runtime.auth.authenticate(request, 'admin');
  const configured = Object.values(runtime.config.providers);
  const providers = configured.map((p) => ({
    name: p.name,
    kind: p.kind,
    ...(p.kind === 'oauth2' && p.preset ? { preset: p.preset } : {}),
    defaultScopes: [...p.defaultScopes],
  }));
  providers.sort((a, b) => a.name.localeCompare(b.name));
  const used = new Set(configured.map((p) => (p.kind === 'oauth2' ? p.preset : undefined)));
  const presets = PRESET_NAMES.filter((name) => !used.has(name)).map((name) => ({
    name,
    defaultScopes: [...presetFor(name).defaultScopes],
    requiresIssuer: presetFor(name).requiresIssuer === true,
  }));
  return jsonResponse(200, { providers, presets });
});

app.http('manageProviders', {
  methods: ['GET'],
  route: 'manage/providers',
  authLevel: 'function',
  handler: listProviders,
});

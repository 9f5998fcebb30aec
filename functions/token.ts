import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { apiHandler } from '../shared/functionKit.ts';
import { jsonResponse, parseParams, parseQuery, requireEmptyBody } from '../shared/http.ts';
import { parseScopeParam } from '../shared/oauth/scopes.ts';
import { getRuntime } from '../shared/runtime.ts';
import { connectionParams, scopeQueryValue } from '../shared/schemas.ts';

const query = z.object({ scope: scopeQueryValue.optional() }).strict();

/** Hands a current access token for one connection to an authenticated server-side caller. */
export const token = apiHandler('token', async (request: HttpRequest) => {
  const { connection } = parseParams(request, connectionParams);
  const { scope } = parseQuery(request, query, { functionKeyInQuery: true });
  await requireEmptyBody(request);
  const { broker, auth } = await getRuntime();
  const caller = await auth.authenticate(request, 'caller');
  const body = await broker.getAccessToken(connection, caller, scope ? parseScopeParam(scope) : undefined);
  return jsonResponse(200, body);
});

app.http('token', {
  methods: ['GET'],
  route: 'connections/{connection}/token',
  authLevel: 'function',
  handler: token,
});

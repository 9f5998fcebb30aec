import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { apiHandler } from '../shared/functionKit.ts';
import {
  jsonResponse,
  parseJsonBody,
  parseOptionalJsonBody,
  parseParams,
  parseQuery,
  requireEmptyBody,
} from '../shared/http.ts';
import { getRuntime } from '../shared/runtime.ts';
import {
  connectionName,
  connectionParams,
  connectionSettingsBody,
  importBody,
  linkBody,
} from '../shared/schemas.ts';

const noQuery = z.object({}).strict();
const actionParams = z
  .object({ connection: connectionName, action: z.enum(['link', 'refresh', 'import']) })
  .strict();

async function admin(request: HttpRequest) {
  parseQuery(request, noQuery, { functionKeyInQuery: true });
  const runtime = await getRuntime();
  await runtime.auth.authenticate(request, 'admin');
  return runtime.broker;
}

/** GET manage/connections: every connection's status (no tokens). */
export const listConnections = apiHandler('manageList', async (request) => {
  await requireEmptyBody(request);
  const broker = await admin(request);
  return jsonResponse(200, { connections: await broker.listConnections() });
});

/** GET/PUT/DELETE manage/connections/{connection}. */
export const manageConnection = apiHandler('manageConnection', async (request) => {
  const { connection } = parseParams(request, connectionParams);
  const broker = await admin(request);
  switch (request.method) {
    case 'PUT': {
      const settings = await parseJsonBody(request, connectionSettingsBody);
      const { created, view } = await broker.upsertConnection(connection, settings);
      return jsonResponse(created ? 201 : 200, view);
    }
    case 'DELETE':
      await requireEmptyBody(request);
      await broker.deleteConnection(connection);
      return { status: 204 };
    default:
      await requireEmptyBody(request);
      return jsonResponse(200, await broker.getConnection(connection));
  }
});

/** POST manage/connections/{connection}/{link|refresh|import}. */
export const connectionAction = apiHandler('manageAction', async (request) => {
  const { connection, action } = parseParams(request, actionParams);
  const broker = await admin(request);
  switch (action) {
    case 'link': {
      // optional body, decided from the bytes read: a chunked {"ttlSeconds":60} has no Content-Length
      const body = (await parseOptionalJsonBody(request, linkBody)) ?? {};
      return jsonResponse(201, await broker.createLink(connection, body.ttlSeconds));
    }
    case 'refresh':
      await requireEmptyBody(request);
      return jsonResponse(200, await broker.forceRefresh(connection));
    case 'import': {
      const { refreshToken } = await parseJsonBody(request, importBody);
      return jsonResponse(200, await broker.importRefreshToken(connection, refreshToken));
    }
  }
});

app.http('manageList', {
  methods: ['GET'],
  route: 'manage/connections',
  authLevel: 'function',
  handler: listConnections,
});
app.http('manageConnection', {
  methods: ['GET', 'PUT', 'DELETE'],
  route: 'manage/connections/{connection}',
  authLevel: 'function',
  handler: manageConnection,
});
app.http('manageAction', {
  methods: ['POST'],
  route: 'manage/connections/{connection}/{action}',
  authLevel: 'function',
  handler: connectionAction,
});

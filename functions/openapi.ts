import { app, type HttpResponseInit } from '@azure/functions';
import { openApiDocument } from '../shared/openapi/document.ts';

/** The OpenAPI 3.1 description of this API; public, like the routes it describes. */
export function openapi(): HttpResponseInit {
  return {
    status: 200,
    jsonBody: openApiDocument(),
    headers: { 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' },
  };
}

app.http('openapi', { methods: ['GET'], route: 'openapi.json', authLevel: 'anonymous', handler: openapi });

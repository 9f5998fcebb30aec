/**
 * @module openapi/document
 * The OpenAPI 3.1 description of the broker's HTTP API, generated from the same zod schemas that validate
 * requests (zod 4's JSON Schema output is JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Served at
 * `GET /api/openapi.json`, linted by Redocly in CI, and used by the contract test and the typed client.
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';
import {
  connectConsentForm,
  connectionName,
  connectionSettingsBody,
  importBody,
  linkBody,
} from '../schemas.ts';
import { BROKER_VERSION } from '../version.ts';
import {
  accessTokenSchema,
  connectionListSchema,
  connectionSummarySchema,
  connectionViewSchema,
  healthSchema,
  linkSchema,
  problemSchema,
  providerListSchema,
} from './responses.ts';
import { type Auth, type Operation, OPERATIONS } from './operations.ts';

type Json = Record<string, unknown>;

const SECURITY: Record<Auth, Json[] | undefined> = {
  none: [],
  link: [],
  cookie: [],
  // Entra mode asks for the bearer on top of the key; both requirement sets are listed.
  admin: [{ functionKey: [] }, { functionKey: [], entraBearer: ['Connections.Manage'] }],
  caller: [{ functionKey: [] }, { functionKey: [], entraBearer: ['Tokens.Read'] }],
};

function components(): Json {
  const toSchemas = (entries: Record<string, z.ZodType>, io: 'input' | 'output'): Json => {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(entries)) registry.add(schema, { id });
    const { schemas } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` }) as {
      schemas: Record<string, Json>;
    };
    for (const schema of Object.values(schemas)) {
      delete schema.$schema;
      delete schema.$id;
    }
    return schemas;
  };
  return {
    ...toSchemas(
      {
        ConnectionSettings: connectionSettingsBody,
        LinkRequest: linkBody,
        ImportRequest: importBody,
        ConnectConsentForm: connectConsentForm,
      },
      'input',
    ),
    ...toSchemas(
      {
        ConnectionView: connectionViewSchema,
        ConnectionSummary: connectionSummarySchema,
        ConnectionList: connectionListSchema,
        AccessToken: accessTokenSchema,
        ConnectLink: linkSchema,
        ProviderList: providerListSchema,
        Health: healthSchema,
        Problem: problemSchema,
      },
      'output',
    ),
    OpenApiDocument: { type: 'object', description: 'An OpenAPI 3.1 document' },
  };
}

function schemaOf(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { io: 'input' }) as Json;
  delete json.$schema;
  return json;
}

function successResponse(status: number, kind: string): Json {
  if (kind === 'empty') return { description: 'No content' };
  if (kind === 'redirect')
    return {
      description: 'Redirect to the provider’s sign-in',
      headers: { Location: { schema: { type: 'string' } } },
    };
  if (kind === 'asset')
    return {
      description: 'A static file of the console',
      content: {
        'text/javascript': { schema: { type: 'string' } },
        'text/css': { schema: { type: 'string' } },
      },
    };
  if (kind === 'html')
    return { description: 'A page for people', content: { 'text/html': { schema: { type: 'string' } } } };
  return {
    description: status === 201 ? 'Created' : 'OK',
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${kind}` } } },
  };
}

/** Problem answers by status; page routes answer a browser (Accept: text/html) with an error page instead. */
function errorResponses(codes: readonly ErrorCode[], page: boolean): Record<string, Json> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of codes) {
    const status = ERROR_CODES[code];
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code));
  }
  const out: Record<string, Json> = {};
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) {
    const list = [...set].sort();
    out[String(status)] = {
      description: `Problem: ${list.join(', ')}`,
      ...(status === 503 ? { headers: { 'Retry-After': { schema: { type: 'integer' } } } } : {}),
      content: {
        'application/problem+json': {
          schema: {
            allOf: [
              { $ref: '#/components/schemas/Problem' },
              { type: 'object', properties: { code: { enum: list }, status: { const: status } } },
            ],
          },
        },
        ...(page ? { 'text/html': { schema: { type: 'string' } } } : {}),
      },
    };
  }
  return out;
}

function operation(op: Operation): Json {
  const parameters: Json[] = [...op.path.matchAll(/\{(\w+)\}/g)].map(([, name]) =>
    name === 'connection'
      ? {
          name,
          in: 'path',
          required: true,
          description: 'The connection name: the parameter name callers use',
          schema: schemaOf(connectionName),
        }
      : { name, in: 'path', required: true, schema: { type: 'string' } },
  );
  for (const [name, q] of Object.entries(op.query ?? {}))
    parameters.push({
      name,
      in: 'query',
      required: q.required ?? false,
      description: q.description,
      schema: schemaOf(q.schema),
    });
  const responses: Record<string, Json> = {};
  for (const [status, kind] of Object.entries(op.ok))
    responses[status] = successResponse(Number(status), kind);
  Object.assign(responses, errorResponses(op.errors, op.auth === 'link' || op.auth === 'cookie'));
  if (op.auth === 'admin' || op.auth === 'caller') {
    const entra = responses['401'];
    const description = 'The function key is missing or wrong: the host answers without a body.';
    responses['401'] = entra
      ? { ...entra, description: `${description} Entra mode: ${String(entra.description)}` }
      : { description };
  }
  return {
    operationId: op.operationId,
    summary: op.summary,
    tags: [
      op.auth === 'admin'
        ? 'manage'
        : op.auth === 'caller'
          ? 'tokens'
          : op.auth === 'none'
            ? 'meta'
            : 'connect',
    ],
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: op.body.required,
            content: {
              [op.body.media ?? 'application/json']: {
                schema: { $ref: `#/components/schemas/${op.body.ref}` },
              },
            },
          },
        }
      : {}),
    responses,
    security: SECURITY[op.auth],
  };
}

let cached: Json | undefined;

/** The document, built once per process. */
export function openApiDocument(): Json {
  if (cached) return cached;
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operation(op);
  cached = Object.freeze({
    openapi: '3.1.0',
    info: {
      title: 'Token broker',
      version: BROKER_VERSION,
      description:
        'OAuth 2.0 token broker on Azure Functions: connect an account once, then read a current access token. Errors are application/problem+json with a stable `code`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/api', description: 'This broker' }],
    tags: [
      { name: 'tokens', description: 'For server-side callers' },
      { name: 'manage', description: 'For admins' },
      { name: 'connect', description: 'The browser flow of the account owner' },
      { name: 'meta', description: 'Health and this document' },
    ],
    paths,
    components: {
      schemas: components(),
      securitySchemes: {
        functionKey: {
          type: 'apiKey',
          in: 'header',
          name: 'x-functions-key',
          description: 'An Azure Functions key (function or host key). `?code=` in the query works too.',
        },
        entraBearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'Microsoft Entra ID access token for the broker’s API (when BROKER_AUTH_AUDIENCE is set), with app role Tokens.Read (callers) or Connections.Manage (admins)',
        },
      },
    },
  });
  return cached;
}

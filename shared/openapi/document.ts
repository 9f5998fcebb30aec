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
  connectLinkValue,
  connectionName,
  connectionSettingsBody,
  importBody,
  linkBody,
  scopeQueryValue,
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

type Json = Record<string, unknown>;
type Auth = 'none' | 'admin' | 'caller' | 'link' | 'cookie';

interface Operation {
  method: 'get' | 'put' | 'post' | 'delete';
  path: string;
  operationId: string;
  summary: string;
  auth: Auth;
  query?: Record<string, { schema: z.ZodType; description: string; required?: boolean }>;
  body?: { ref: string; required: boolean; media?: string };
  /** Success answers: a component name, `html` (a page for people), `asset`, `redirect` or `empty`. */
  ok: Record<number, string>;
  errors: ErrorCode[];
}

// Codes any route behind the function key can answer besides its own.
const KEYED: ErrorCode[] = [
  'invalid_request',
  'unauthorized',
  'invalid_token',
  'forbidden',
  'insufficient_scope',
  'store_unavailable',
  'config_error',
  'internal_error',
];
const REFRESHING: ErrorCode[] = [
  'unknown_connection',
  'connection_not_connected',
  'connection_needs_reauth',
  'connection_error',
  'secret_disabled',
  'provider_unavailable',
  'provider_error',
  'provider_misconfigured',
  'lock_timeout',
  'record_too_large',
];
const BODY: ErrorCode[] = ['payload_too_large', 'unsupported_media_type', 'length_required'];

const CONNECTION = '/manage/connections/{connection}';
const OPERATIONS: Operation[] = [
  {
    method: 'get',
    path: '/health',
    operationId: 'health',
    summary: 'Liveness: answers 200 when the app is loaded',
    auth: 'none',
    ok: { 200: 'Health' },
    errors: [],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document',
    auth: 'none',
    ok: { 200: 'OpenApiDocument' },
    errors: [],
  },
  {
    method: 'get',
    path: '/manage/connections',
    operationId: 'listConnections',
    summary: "Every connection's status (no tokens)",
    auth: 'admin',
    ok: { 200: 'ConnectionList' },
    errors: KEYED,
  },
  {
    method: 'get',
    path: '/manage/providers',
    operationId: 'listProviders',
    summary: 'The providers a connection may name, with their default scopes',
    auth: 'admin',
    ok: { 200: 'ProviderList' },
    errors: KEYED,
  },
  {
    method: 'get',
    path: CONNECTION,
    operationId: 'getConnection',
    summary: "One connection's status: scopes, granted scopes, identity, last error, times",
    auth: 'admin',
    ok: { 200: 'ConnectionView' },
    errors: [...KEYED, 'unknown_connection'],
  },
  {
    method: 'put',
    path: CONNECTION,
    operationId: 'putConnection',
    summary: 'Create (201) or update (200) a connection’s settings',
    auth: 'admin',
    body: { ref: 'ConnectionSettings', required: true },
    ok: { 200: 'ConnectionView', 201: 'ConnectionView' },
    errors: [...KEYED, ...BODY, 'identity_mismatch', 'record_too_large'],
  },
  {
    method: 'delete',
    path: CONNECTION,
    operationId: 'deleteConnection',
    summary: 'Delete a connection and its tokens (Key Vault: soft delete)',
    auth: 'admin',
    ok: { 204: 'empty' },
    errors: [...KEYED, 'unknown_connection'],
  },
  {
    method: 'post',
    path: `${CONNECTION}/link`,
    operationId: 'createLink',
    summary: 'Mint a signed, expiring connect link for the account owner',
    auth: 'admin',
    body: { ref: 'LinkRequest', required: false },
    ok: { 201: 'ConnectLink' },
    errors: [...KEYED, ...BODY, 'unknown_connection'],
  },
  {
    method: 'post',
    path: `${CONNECTION}/refresh`,
    operationId: 'refreshConnection',
    summary: 'Refresh now, ignoring backoff; answers the status after the attempt',
    auth: 'admin',
    ok: { 200: 'ConnectionView' },
    errors: [...KEYED, ...REFRESHING],
  },
  {
    method: 'post',
    path: `${CONNECTION}/import`,
    operationId: 'importRefreshToken',
    summary: 'Store a refresh token obtained elsewhere, after proving it with one refresh',
    auth: 'admin',
    body: { ref: 'ImportRequest', required: true },
    ok: { 200: 'ConnectionView' },
    errors: [...KEYED, ...BODY, ...REFRESHING, 'identity_mismatch', 'provider_denied'],
  },
  {
    method: 'get',
    path: '/connections/{connection}/token',
    operationId: 'getAccessToken',
    summary: 'A current access token for the connection (refreshed first when due)',
    auth: 'caller',
    query: {
      scope: {
        schema: scopeQueryValue,
        description:
          'Scopes of another resource the account consented to (space-separated); the answer is a token for them',
      },
    },
    ok: { 200: 'AccessToken' },
    errors: [...KEYED, ...REFRESHING, 'scope_not_granted', 'resource_needs_reauth', 'identity_mismatch'],
  },
  {
    method: 'get',
    path: '/connect/{connection}',
    operationId: 'openConnectLink',
    summary: 'Where a connect link leads the account owner (a page for people, not for programs)',
    auth: 'link',
    query: { link: { schema: connectLinkValue, description: 'The signed link value', required: true } },
    ok: { 200: 'html' },
    errors: ['invalid_request', 'invalid_link', 'unknown_connection', 'config_error', 'internal_error'],
  },
  {
    method: 'post',
    path: '/connect/{connection}',
    operationId: 'continueConnect',
    summary:
      'The consent page’s Continue: checks its CSRF token, then sends the browser to the provider’s sign-in',
    auth: 'link',
    body: { ref: 'ConnectConsentForm', required: true, media: 'application/x-www-form-urlencoded' },
    ok: { 303: 'redirect' },
    errors: [
      'invalid_request',
      'invalid_state',
      'invalid_link',
      'unknown_connection',
      ...BODY,
      'config_error',
      'internal_error',
    ],
  },
  {
    method: 'get',
    path: '/console',
    operationId: 'console',
    summary: 'The admin console (a page; it signs in and calls the manage API from the browser)',
    auth: 'none',
    ok: { 200: 'html' },
    errors: ['invalid_request'],
  },
  {
    method: 'get',
    path: '/console/redirect',
    operationId: 'consoleRedirect',
    summary: 'Entra mode: where Microsoft sends the console’s sign-in back (runs MSAL’s redirect bridge)',
    auth: 'none',
    ok: { 200: 'html' },
    errors: ['invalid_request'],
  },
  {
    method: 'get',
    path: '/console/assets/{name}',
    operationId: 'consoleAsset',
    summary: 'The console’s script and style sheet',
    auth: 'none',
    ok: { 200: 'asset', 304: 'empty' },
    errors: ['invalid_request'],
  },
  {
    method: 'get',
    path: '/callback',
    operationId: 'callback',
    summary: 'Where the provider sends the browser back (a page for people, not for programs)',
    auth: 'cookie',
    ok: { 200: 'html' },
    errors: [
      'invalid_request',
      'invalid_state',
      'provider_denied',
      'identity_mismatch',
      'provider_error',
      'provider_misconfigured',
      'provider_unavailable',
      'store_unavailable',
      'record_too_large',
      'config_error',
      'internal_error',
    ],
  },
];

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

/**
 * @module openapi/operations
 * Every operation of the HTTP API as data: path, method, who may call it, its inputs (zod schemas the functions
 * validate with), its success answers and the problem codes it can answer. document.ts turns this into OpenAPI.
 */
import type { z } from 'zod';
import type { ErrorCode } from '../errors.ts';
import { connectLinkValue, scopeQueryValue } from '../schemas.ts';

export type Auth = 'none' | 'admin' | 'caller' | 'link' | 'cookie';

export interface Operation {
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
export const OPERATIONS: Operation[] = [
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

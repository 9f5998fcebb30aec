/**
 * @module openapi/responses
 * zod descriptions of what the API answers. They exist for the OpenAPI document (and the contract test that
 * checks real answers against it); the compile-time checks at the end keep them in step with the TypeScript
 * types the broker builds its answers from, so a field added to a view fails the typecheck until it is here.
 */
import { z } from 'zod';
import type { AccessTokenResponse } from '../broker/broker.ts';
import type { ConnectionSummary, ConnectionView } from '../broker/views.ts';
import { ERROR_CODES } from '../errors.ts';

const isoTime = z.iso.datetime({ offset: true }).describe('RFC 3339 time');
const status = z
  .enum(['pending', 'active', 'needs_reauth', 'error'])
  .describe(
    'pending: created, not connected yet; active: serving tokens; needs_reauth: the account must sign in again; error: a configuration or provider error an admin must fix',
  );
const identity = z
  .object({
    username: z.string().optional(),
    tenantId: z.string().optional(),
    objectId: z.string().optional(),
  })
  .strict();

export const connectionViewSchema = z
  .object({
    connection: z.string(),
    provider: z.string(),
    status,
    scopes: z.array(z.string()),
    description: z.string().optional(),
    grantedScopes: z.array(z.string()).optional(),
    identity: identity.optional(),
    expectedIdentity: identity.optional(),
    allowedCallers: z.array(z.string()).optional(),
    createdAt: isoTime,
    updatedAt: isoTime,
    connectedAt: isoTime.optional(),
    refreshedAt: isoTime.optional(),
    accessTokenExpiresAt: isoTime.optional(),
    grantExpiresAt: isoTime
      .optional()
      .describe(
        'When the grant ends, if the provider stated it (refresh_token_expires_in): reconnect before',
      ),
    failures: z.number().int().min(0),
    nextAttemptAt: isoTime.optional(),
    lastError: z
      .object({
        code: z.string(),
        providerError: z.string().optional(),
        providerCodes: z.array(z.number().int()).optional(),
        cause: z
          .enum(['revoked', 'interaction', 'consent'])
          .optional()
          .describe(
            'needs_reauth only: revoked and consent withhold a still-valid token; interaction (MFA, Conditional Access) serves it until it expires',
          ),
        at: isoTime,
      })
      .strict()
      .optional(),
    claimsChallenge: z
      .boolean()
      .optional()
      .describe('Microsoft sent a claims challenge; the next connect link carries it to the sign-in'),
  })
  .strict()
  .describe("One connection's status. Never contains a token.");

export const connectionSummarySchema = z
  .object({
    connection: z.string(),
    provider: z.string(),
    status,
    accessTokenExpiresAt: isoTime.optional(),
    grantExpiresAt: isoTime.optional(),
    refreshedAt: isoTime.optional(),
    failures: z.number().int().min(0),
  })
  .strict();

export const connectionListSchema = z.object({ connections: z.array(connectionSummarySchema) }).strict();

export const accessTokenSchema = z
  .object({
    access_token: z.string().describe('The current access token. Treat it as a secret.'),
    token_type: z.string(),
    expires_at: isoTime,
    expires_in: z.number().int().describe('Seconds until expires_at, at the time of the answer'),
    scope: z.string().describe('The scopes this token carries, space-separated'),
    connection: z.string(),
  })
  .strict();

export const linkSchema = z
  .object({
    url: z
      .url()
      .describe('The connect link: give it to the account owner; it works once per sign-in until expiresAt'),
    expiresAt: isoTime,
  })
  .strict();

export const providerListSchema = z
  .object({
    providers: z.array(
      z
        .object({
          name: z.string(),
          kind: z.string(),
          preset: z.string().optional(),
          defaultScopes: z.array(z.string()),
        })
        .strict()
        .describe('A provider connections may name; no client id, secret or endpoint'),
    ),
    presets: z.array(
      z
        .object({ name: z.string(), defaultScopes: z.array(z.string()), requiresIssuer: z.boolean() })
        .strict()
        .describe('A provider preset not configured yet (BROKER_PROVIDERS can add it)'),
    ),
  })
  .strict();

export const healthSchema = z.object({ status: z.literal('ok'), version: z.string() }).strict();

const errorCodes = Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]];

export const problemSchema = z
  .object({
    type: z.string().describe('urn:token-broker:problem:{code}'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().describe('A message for people; never contains secrets or echoed input values'),
    code: z.enum(errorCodes).describe('Stable machine-readable error code'),
  })
  .strict()
  .describe('RFC 9457 problem details, media type application/problem+json');

// Compile-time drift checks: each schema's output type and the broker's answer type must be mutually assignable.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const inStep: [
  Same<z.output<typeof connectionViewSchema>, ConnectionView>,
  Same<z.output<typeof connectionSummarySchema>, ConnectionSummary>,
  Same<z.output<typeof accessTokenSchema>, AccessTokenResponse>,
] = [true, true, true];
void inStep;

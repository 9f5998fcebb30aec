/**
 * @module schemas
 * Input schemas shared by several functions. Every schema is strict: unknown fields are an error.
 */
import { z } from 'zod';
import { CONNECTION_NAME_PATTERN } from './store/types.ts';

export const connectionName = z
  .string()
  .regex(CONNECTION_NAME_PATTERN, 'must be 1-63 lower-case letters, digits or inner hyphens');

export const connectionParams = z.object({ connection: connectionName }).strict();

const guid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a GUID');
/** Visible ASCII without quote or backslash, as RFC 6749 §3.3 allows in scope tokens. */
const scopeToken = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token');

export const connectionSettingsBody = z
  .object({
    provider: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a provider name')
      .default('microsoft'),
    scopes: z.array(scopeToken).max(50).default([]),
    description: z.string().max(500).optional(),
    expectedIdentity: z
      .object({
        tenantId: guid.optional(),
        objectId: guid.optional(),
        username: z.string().min(1).max(256).optional(),
      })
      .strict()
      .optional(),
    allowedCallers: z
      .array(
        z
          .string()
          .min(1)
          .max(128)
          .regex(/^[A-Za-z0-9._:/-]+$/, 'must be an app id'),
      )
      .max(50)
      .optional(),
  })
  .strict();

export const scopeQueryValue = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, 'must be space-separated scope tokens');

/** The value of a connect link's `link` parameter (a signed token; checked by the broker, not here). */
export const connectLinkValue = z.string().min(10).max(2048);

/** `POST connect/{connection}`: the consent page's Continue (the link and the page's CSRF token). */
export const connectConsentForm = z
  .object({ link: connectLinkValue, consent: z.string().min(10).max(1024) })
  .strict();

/** `POST manage/connections/{connection}/link`: how long the link lives (default 15 minutes). */
export const linkBody = z
  .object({
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
  })
  .strict();

/** `POST manage/connections/{connection}/import`: a refresh token obtained elsewhere. */
export const importBody = z.object({ refreshToken: z.string().min(1).max(16_384) }).strict();

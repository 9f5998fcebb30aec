/**
 * The answer schemas the OpenAPI document and the contract test use: real answers fit, and what the broker must
 * never answer (extra fields, negative counts, a time without its offset, an unknown code) does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accessTokenSchema,
  connectionListSchema,
  connectionSummarySchema,
  connectionViewSchema,
  healthSchema,
  linkSchema,
  problemSchema,
  providerListSchema,
} from '../../../shared/openapi/responses.ts';

const T = '2026-11-29T12:00:00.000Z';
const view = {
  connection: 'sales',
  provider: 'microsoft',
  status: 'needs_reauth',
  scopes: ['Mail.Send'],
  identity: { username: 'adele@demo.example', tenantId: 't', objectId: 'o' },
  expectedIdentity: { username: 'adele@demo.example' },
  createdAt: T,
  updatedAt: '2026-11-29T13:00:00+01:00',
  failures: 2,
  lastError: {
    code: 'connection_needs_reauth',
    providerError: 'invalid_grant',
    providerCodes: [70008],
    cause: 'revoked',
    at: T,
  },
};
const summary = { connection: 'sales', provider: 'microsoft', status: 'active', failures: 3 };

const fits = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) =>
  schema.safeParse(value).success;

describe('answer schemas', () => {
  it('accept the answers the broker gives, times with any offset included', () => {
    assert.ok(fits(connectionViewSchema, view));
    assert.ok(fits(connectionSummarySchema, summary));
    assert.ok(fits(connectionListSchema, { connections: [summary] }));
    assert.ok(
      fits(accessTokenSchema, {
        access_token: 'x',
        token_type: 'Bearer',
        expires_at: T,
        expires_in: 3599,
        scope: 'Mail.Send',
        connection: 'sales',
      }),
    );
    assert.ok(fits(linkSchema, { url: 'https://broker.test/api/connect/sales?link=x', expiresAt: T }));
    assert.ok(
      fits(providerListSchema, {
        providers: [{ name: 'microsoft', kind: 'microsoft', defaultScopes: ['offline_access'] }],
        presets: [{ name: 'google', defaultScopes: [], requiresIssuer: false }],
      }),
    );
    assert.ok(fits(healthSchema, { status: 'ok', version: '1.0.0' }));
    assert.ok(
      fits(problemSchema, {
        type: 'urn:token-broker:problem:invalid_request',
        title: 'Bad Request',
        status: 400,
        detail: 'd',
        code: 'invalid_request',
      }),
    );
  });

  it('refuse what the broker must never answer', () => {
    const refused: [string, unknown, unknown][] = [
      ['a token in the view', connectionViewSchema, { ...view, refreshToken: 'x' }],
      ['an unknown identity field', connectionViewSchema, { ...view, identity: { upn: 'x' } }],
      ['a wrong identity field type', connectionViewSchema, { ...view, identity: { username: 1 } }],
      [
        'an unknown cause',
        connectionViewSchema,
        { ...view, lastError: { ...view.lastError, cause: 'other' } },
      ],
      ['an error without its code', connectionViewSchema, { ...view, lastError: { at: T } }],
      ['negative failures', connectionViewSchema, { ...view, failures: -1 }],
      ['a time without offset', connectionViewSchema, { ...view, createdAt: '2026-11-29T12:00:00' }],
      ['negative summary failures', connectionSummarySchema, { ...summary, failures: -1 }],
      ['a summary without a status', connectionSummarySchema, { ...summary, status: undefined }],
      ['a list without connections', connectionListSchema, {}],
      ['a list of non-summaries', connectionListSchema, { connections: [{ connection: 'x' }] }],
      ['a token answer without a token', accessTokenSchema, { token_type: 'Bearer', expires_at: T }],
      ['a link that is not a URL', linkSchema, { url: 'not a url', expiresAt: T }],
      ['a link without expiry', linkSchema, { url: 'https://broker.test/' }],
      [
        'a provider with a secret',
        providerListSchema,
        { providers: [{ name: 'm', kind: 'm', defaultScopes: [], clientSecret: 'x' }], presets: [] },
      ],
      [
        'a provider without a kind',
        providerListSchema,
        { providers: [{ name: 'm', defaultScopes: [] }], presets: [] },
      ],
      [
        'a preset without requiresIssuer',
        providerListSchema,
        { providers: [], presets: [{ name: 'g', defaultScopes: [] }] },
      ],
      ['health without a version', healthSchema, { status: 'ok' }],
      [
        'an unknown problem code',
        problemSchema,
        { type: 't', title: 't', status: 400, detail: 'd', code: 'nope' },
      ],
      [
        'a problem without a title',
        problemSchema,
        { type: 't', status: 400, detail: 'd', code: 'invalid_request' },
      ],
    ];
    for (const [label, schema, value] of refused)
      assert.equal(fits(schema as typeof healthSchema, value), false, label);
  });
});

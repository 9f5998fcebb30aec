import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBasicAuth, registerClient, stableGuid, toDemoUser } from '../../../tools/demo-idp/directory.ts';
import {
  DEMO_TENANT,
  OTHER_TENANT,
  formatTimestamp,
  mapProviderError,
  microsoftErrorBody,
  parseScopes,
  resolveTenantSegment,
  shapeTokenSuccess,
  splitScope,
} from '../../../tools/demo-idp/microsoft.ts';
import { PARAM_AUTO_CONSENT, PARAM_ERROR } from '../../../tools/demo-idp/provider.ts';
import { DEFAULT_RESOURCES, ResourceRegistry } from '../../../tools/demo-idp/resources.ts';
import { rewriteAuthorizeParams } from '../../../tools/demo-idp/rewrite.ts';

const tenants = [DEMO_TENANT, OTHER_TENANT];
const registry = new ResourceRegistry(DEFAULT_RESOURCES);

void describe('tenant path segments', () => {
  void it('maps aliases to the home tenant with Microsoft’s issuer kinds', () => {
    assert.deepEqual(resolveTenantSegment('common', tenants), {
      tenant: DEMO_TENANT,
      issuerKind: 'template',
      authorityKey: 'common',
    });
    assert.equal(resolveTenantSegment('Organizations', tenants)?.issuerKind, 'template');
    assert.equal(resolveTenantSegment('consumers', tenants)?.issuerKind, 'concrete');
  });

  void it('maps GUIDs and domains case-insensitively to the same authority', () => {
    const byGuid = resolveTenantSegment(OTHER_TENANT.tenantId.toUpperCase(), tenants);
    const byDomain = resolveTenantSegment('OTHER.example', tenants);
    assert.equal(byGuid?.tenant, OTHER_TENANT);
    assert.equal(byGuid?.authorityKey, byDomain?.authorityKey);
    assert.equal(resolveTenantSegment('unknown.example', tenants), undefined);
  });
});

void describe('scopes', () => {
  void it('splits resource-prefixed scopes and treats short names as Graph', () => {
    assert.deepEqual(splitScope('https://graph.microsoft.com/Mail.Send'), {
      resource: 'https://graph.microsoft.com',
      name: 'Mail.Send',
    });
    assert.deepEqual(splitScope('Mail.Send'), { resource: 'https://graph.microsoft.com', name: 'Mail.Send' });
    assert.deepEqual(splitScope('api://token-broker/.default'), {
      resource: 'api://token-broker',
      name: '.default',
    });
    assert.deepEqual(splitScope('HTTPS://Graph.Microsoft.com/Mail.Send'), {
      resource: 'https://graph.microsoft.com',
      name: 'Mail.Send',
    });
    assert.equal(splitScope('https://graph.microsoft.com/'), undefined);
    assert.equal(splitScope('a/b'), undefined);
  });

  void it('groups a multi-resource scope string by resource in request order', () => {
    const parsed = parseScopes(
      'openid  Profile offline_access https://ads.microsoft.com/msads.manage Mail.Send Mail.Send a/b',
    );
    assert.deepEqual(parsed.oidc, ['openid', 'profile', 'offline_access']);
    assert.deepEqual(parsed.resources, ['https://ads.microsoft.com', 'https://graph.microsoft.com']);
    assert.deepEqual(parsed.byResource.get('https://graph.microsoft.com'), ['Mail.Send']);
    assert.deepEqual(parsed.invalid, ['a/b']);
  });

  void it('knows canonical scope names and consent texts', () => {
    assert.equal(registry.canonicalName('https://graph.microsoft.com', 'mail.send'), 'Mail.Send');
    assert.equal(registry.canonicalName('https://graph.microsoft.com', 'Mail.Nope'), undefined);
    assert.equal(registry.describe('https://graph.microsoft.com/Mail.Send'), 'Send mail as you');
    assert.match(registry.describe('offline_access'), /^Stay signed in/);
  });
});

void describe('authorize request rewriting', () => {
  const deps = { resources: registry, clients: new Map(), tenantName: 'Demo Identity' };

  void it('turns prefixes into resource parameters and keeps offline_access through prompt=consent', () => {
    const params = new URLSearchParams({
      scope: 'openid offline_access mail.send https://ads.microsoft.com/msads.manage',
      prompt: 'select_account',
    });
    rewriteAuthorizeParams(params, deps);
    assert.equal(
      params.get('scope'),
      'openid offline_access https://graph.microsoft.com/Mail.Send https://ads.microsoft.com/msads.manage',
    );
    assert.deepEqual(params.getAll('resource'), ['https://graph.microsoft.com', 'https://ads.microsoft.com']);
    assert.equal(params.get('prompt'), 'login consent');
    assert.equal(params.get(PARAM_AUTO_CONSENT), '1');
    assert.equal(params.get(PARAM_ERROR), null);
  });

  void it('leaves prompt=none alone and drops injected control parameters', () => {
    const params = new URLSearchParams({
      scope: 'openid offline_access Mail.Send',
      prompt: 'none',
      [PARAM_ERROR]: 'x|y',
      [PARAM_AUTO_CONSENT]: '1',
    });
    rewriteAuthorizeParams(params, deps);
    assert.equal(params.get('prompt'), 'none');
    assert.equal(params.get(PARAM_ERROR), null);
    assert.equal(params.get(PARAM_AUTO_CONSENT), null);
  });

  void it('records Microsoft errors for unknown scopes, /.default and resource=', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ scope: 'openid Mail.Nope' }, /^invalid_client\|AADSTS650053: /],
      [{ scope: 'openid https://graph.microsoft.com/.default' }, /^invalid_scope\|AADSTS70011: /],
      [{ scope: 'openid', resource: 'https://graph.microsoft.com' }, /^invalid_request\|AADSTS901002: /],
      [{ scope: 'openid https://nope.example/x' }, /^invalid_resource\|AADSTS500011: /],
    ];
    for (const [input, expected] of cases) {
      const params = new URLSearchParams(input);
      rewriteAuthorizeParams(params, deps);
      assert.match(params.get(PARAM_ERROR) ?? '', expected);
      assert.equal(params.get('resource'), null);
    }
  });
});

void describe('errors', () => {
  void it('maps oidc-provider errors to Microsoft’s codes', () => {
    const cases: [Parameters<typeof mapProviderError>[0], number, string, number][] = [
      [
        { error: 'invalid_client', detail: 'invalid secret provided', tenantName: 'T' },
        401,
        'invalid_client',
        7000215,
      ],
      [
        { error: 'invalid_client', detail: 'client not found', tenantName: 'T' },
        400,
        'unauthorized_client',
        700016,
      ],
      [
        { error: 'invalid_grant', detail: 'authorization code already consumed', tenantName: 'T' },
        400,
        'invalid_grant',
        54005,
      ],
      [
        { error: 'invalid_grant', detail: 'code_verifier does not match code_challenge', tenantName: 'T' },
        400,
        'invalid_grant',
        501481,
      ],
      [
        { error: 'invalid_grant', detail: 'refresh token is expired', tenantName: 'T' },
        400,
        'invalid_grant',
        700082,
      ],
      [
        { error: 'invalid_grant', detail: 'refresh token not found', tenantName: 'T', revoked: true },
        400,
        'invalid_grant',
        50173,
      ],
      [{ error: 'invalid_scope', grantType: 'refresh_token', tenantName: 'T' }, 400, 'invalid_grant', 65001],
      [
        { error: 'invalid_scope', grantType: 'client_credentials', tenantName: 'T' },
        400,
        'invalid_scope',
        1002012,
      ],
      [
        { error: 'invalid_request', detail: "missing required parameter 'code'", tenantName: 'T' },
        400,
        'invalid_request',
        900144,
      ],
      [
        { error: 'unsupported_grant_type', grantType: 'password', tenantName: 'T' },
        400,
        'unsupported_grant_type',
        70003,
      ],
    ];
    for (const [input, status, error, code] of cases) {
      const out = mapProviderError(input);
      assert.deepEqual([out.status, out.error, out.code], [status, error, code], JSON.stringify(input));
    }
    assert.equal(mapProviderError({ error: 'invalid_target', tenantName: 'T' }).suberror, 'consent_required');
  });

  void it('builds the Microsoft body with trace and correlation ids', () => {
    const now = new Date('2025-01-31T09:15:02.123Z');
    const body = microsoftErrorBody(
      {
        status: 400,
        error: 'invalid_grant',
        code: 65001,
        message: 'No consent.',
        suberror: 'consent_required',
      },
      'http://127.0.0.1:1',
      { traceId: 't', correlationId: 'c', now },
      [7],
    );
    assert.deepEqual(body, {
      error: 'invalid_grant',
      error_description:
        'AADSTS65001: No consent.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2025-01-31 09:15:02Z',
      error_codes: [65001, 7],
      timestamp: '2025-01-31 09:15:02Z',
      trace_id: 't',
      correlation_id: 'c',
      error_uri: 'http://127.0.0.1:1/error?code=65001',
      suberror: 'consent_required',
    });
    assert.equal(formatTimestamp(now), '2025-01-31 09:15:02Z');
  });

  void it('carries a Conditional Access claims challenge in the body, as text', () => {
    // v2-oauth2-auth-code-flow: `claims` comes with interaction_required; MSAL reads it as a string.
    const claims = '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}';
    const body = microsoftErrorBody(
      { status: 400, error: 'interaction_required', code: 53003, message: 'Blocked.', claims },
      'http://127.0.0.1:1',
    );
    assert.equal(body.claims, claims);
    assert.equal(body.error_codes[0], 53003);
    const none = microsoftErrorBody({ status: 400, error: 'invalid_grant', code: 70000, message: 'x' }, 'o');
    assert.equal('claims' in none, false);
  });

  void it('shapes success responses like Microsoft’s', () => {
    const raw = {
      access_token: 'a',
      expires_in: 60,
      id_token: 'i',
      refresh_token: 'r',
      scope: 's',
      token_type: 'Bearer',
    };
    assert.deepEqual(
      Object.keys(shapeTokenSuccess(raw, { grantType: 'refresh_token', refreshInSeconds: 30 })),
      [
        'token_type',
        'scope',
        'expires_in',
        'ext_expires_in',
        'refresh_in',
        'access_token',
        'refresh_token',
        'id_token',
      ],
    );
    const cc = shapeTokenSuccess(
      { access_token: 'a', expires_in: 60, scope: 's' },
      { grantType: 'client_credentials', refreshInSeconds: 90 },
    );
    assert.deepEqual(cc, { token_type: 'Bearer', expires_in: 60, ext_expires_in: 60, access_token: 'a' });
  });
});

void describe('directory', () => {
  void it('derives stable GUID object ids', () => {
    const a = toDemoUser({ username: 'Adele@Demo.Example', password: 'demo' });
    assert.equal(a.username, 'adele@demo.example');
    assert.equal(a.objectId, toDemoUser({ username: 'adele@demo.example', password: 'x' }).objectId);
    assert.match(stableGuid('x'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  void it('decodes form-encoded Basic credentials', () => {
    const header = `Basic ${Buffer.from('my%20app:s%2Bcret%3A1').toString('base64')}`;
    assert.deepEqual(parseBasicAuth(header), { clientId: 'my app', clientSecret: 's+cret:1' });
    assert.equal(parseBasicAuth('Bearer x'), undefined);
    assert.equal(parseBasicAuth(undefined), undefined);
  });

  void it('registers clients with Microsoft-like defaults and refuses incomplete ones', () => {
    const secret = registerClient({
      clientId: 'c',
      clientSecret: 's',
      redirectUris: ['http://localhost/cb', 'http://127.0.0.1/cb'],
    });
    assert.equal(secret.authMethod, 'client_secret_post');
    assert.deepEqual(secret.metadata.grant_types, [
      'authorization_code',
      'refresh_token',
      'client_credentials',
    ]);
    assert.equal(secret.metadata.subject_type, 'pairwise');
    assert.equal(typeof secret.metadata.sector_identifier_uri, 'string');
    assert.equal(registerClient({ clientId: 'p', redirectUris: ['http://localhost/cb'] }).authMethod, 'none');
    assert.throws(
      () => registerClient({ clientId: 'b', redirectUris: [], authMethod: 'client_secret_basic' }),
      /needs clientSecret/,
    );
  });
});

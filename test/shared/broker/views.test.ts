import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionView, summaryView } from '../../../shared/broker/views.ts';
import type { ConnectionRecord } from '../../../shared/store/types.ts';
import { toMetadata } from '../../../shared/store/types.ts';
import { activeRecord, T0 } from './fixture.ts';

const iso = (ms: number) => new Date(ms).toISOString();

// Views are built field by field so that no token can slip into a manage answer: every field a record may
// carry is shown exactly as below, absent ones are left out (not null, not empty), and no secret appears.
describe('connectionView', () => {
  it('shows every field of a full record, and no token', () => {
    const base = activeRecord({
      connectedAt: T0 - 10,
      refreshedAt: T0 - 5,
      nextAttemptAt: T0 + 5_000,
      failures: 2,
      identity: { username: 'adele@contoso.example', tenantId: 'tid-1', objectId: 'oid-1' },
      lastError: {
        code: 'connection_needs_reauth',
        providerError: 'invalid_grant',
        providerCodes: [50173],
        cause: 'revoked',
        at: T0 - 1,
      },
      claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}',
    });
    const record: ConnectionRecord = {
      ...base,
      settings: {
        ...base.settings,
        description: 'Sales mailbox',
        expectedIdentity: { username: 'adele@contoso.example' },
        allowedCallers: ['app-a'],
      },
      tokens: { ...base.tokens!, refreshTokenExpiresAt: T0 + 86_400_000 },
    };
    const view = connectionView(record);
    assert.deepEqual(view, {
      connection: 'sales-mailbox',
      provider: 'microsoft',
      status: 'active',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
      description: 'Sales mailbox',
      grantedScopes: ['https://graph.microsoft.com/Mail.Send'],
      identity: { username: 'adele@contoso.example', tenantId: 'tid-1', objectId: 'oid-1' },
      expectedIdentity: { username: 'adele@contoso.example' },
      allowedCallers: ['app-a'],
      createdAt: iso(T0),
      updatedAt: iso(T0),
      connectedAt: iso(T0 - 10),
      refreshedAt: iso(T0 - 5),
      accessTokenExpiresAt: iso(T0 + 3_600_000),
      grantExpiresAt: iso(T0 + 86_400_000),
      failures: 2,
      nextAttemptAt: iso(T0 + 5_000),
      lastError: {
        code: 'connection_needs_reauth',
        providerError: 'invalid_grant',
        providerCodes: [50173],
        cause: 'revoked',
        at: iso(T0 - 1),
      },
      claimsChallenge: true,
    });
    const text = JSON.stringify(view);
    assert.ok(!text.includes('rt-seed') && !text.includes('at-seed') && !text.includes('acrs'));
    // Copies, not the record's own arrays and objects.
    view.scopes.push('x');
    view.allowedCallers?.push('x');
    assert.deepEqual(record.settings.scopes, ['https://graph.microsoft.com/Mail.Send']);
    assert.deepEqual(record.settings.allowedCallers, ['app-a']);
  });

  it('leaves out what a pending record does not have', () => {
    const pending: ConnectionRecord = {
      v: 1,
      connection: 'new-one',
      settings: { provider: 'microsoft', scopes: [] },
      status: 'pending',
      createdAt: T0,
      updatedAt: T0 + 1,
      failures: 0,
      revision: 1,
    };
    assert.deepEqual(connectionView(pending), {
      connection: 'new-one',
      provider: 'microsoft',
      status: 'pending',
      scopes: [],
      createdAt: iso(T0),
      updatedAt: iso(T0 + 1),
      failures: 0,
    });
  });

  it('shows a last error without optional details as code and time only', () => {
    const view = connectionView(activeRecord({ lastError: { code: 'provider_unavailable', at: T0 } }));
    assert.deepEqual(view.lastError, { code: 'provider_unavailable', at: iso(T0) });
  });

  it('shows only the identity parts that were verified, each on its own', () => {
    for (const identity of [{ objectId: 'oid-1' }, { tenantId: 'tid-1' }, { username: 'a@contoso.com' }]) {
      assert.deepEqual(connectionView(activeRecord({ identity })).identity, identity);
    }
  });

  it('a token set without a primary token shows no access token expiry', () => {
    const record = activeRecord();
    delete record.tokens!.primary;
    const view = connectionView(record);
    assert.equal('accessTokenExpiresAt' in view, false);
    assert.deepEqual(view.grantedScopes, record.tokens?.grantedScopes);
  });
});

describe('summaryView', () => {
  it('lists times when known and leaves them out otherwise', () => {
    const meta = toMetadata(activeRecord({ refreshedAt: T0 - 5 }));
    assert.deepEqual(summaryView({ ...meta, grantExpiresAt: T0 + 9 }), {
      connection: 'sales-mailbox',
      provider: 'microsoft',
      status: 'active',
      failures: 0,
      accessTokenExpiresAt: iso(T0 + 3_600_000),
      refreshedAt: iso(T0 - 5),
      grantExpiresAt: iso(T0 + 9),
    });
    const bare = { ...meta };
    delete bare.accessExpiresAt;
    delete bare.refreshedAt;
    delete bare.grantExpiresAt;
    assert.deepEqual(summaryView(bare), {
      connection: 'sales-mailbox',
      provider: 'microsoft',
      status: 'active',
      failures: 0,
    });
  });
});

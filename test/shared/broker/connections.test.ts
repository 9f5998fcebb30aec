import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Connections, settingsApplied } from '../../../shared/broker/connections.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { ProviderClient } from '../../../shared/oauth/provider.ts';
import { ScriptedProvider } from '../../support/scriptedProvider.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

describe('settingsApplied', () => {
  it('creates a pending record at revision 1', () => {
    const r = settingsApplied(undefined, 'new-one', { provider: 'microsoft', scopes: ['a'] }, T0);
    assert.deepEqual(r, {
      v: 1,
      connection: 'new-one',
      settings: { provider: 'microsoft', scopes: ['a'] },
      status: 'pending',
      createdAt: T0,
      updatedAt: T0,
      failures: 0,
      revision: 1,
    });
  });

  it('keeps tokens for the same provider and drops tokens and identity for another', () => {
    const existing = { ...activeRecord(), identity: { username: 'a@b' } };
    const same = settingsApplied(existing, 'sales-mailbox', { provider: 'microsoft', scopes: ['x'] }, T0 + 1);
    assert.equal(same.tokens?.refreshToken, existing.tokens?.refreshToken);
    assert.equal(same.status, 'active');
    assert.equal(same.revision, 2);
    assert.equal(same.createdAt, T0);
    const other = settingsApplied(existing, 'sales-mailbox', { provider: 'acme', scopes: [] }, T0 + 1);
    assert.equal(other.tokens, undefined);
    assert.equal(other.identity, undefined);
    assert.equal(other.status, 'pending');
  });
});

describe('Connections', () => {
  it('fills default scopes, refuses unknown providers, forgets cached tokens on save', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    const { created, view } = await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    assert.equal(created, true);
    assert.deepEqual(view.scopes, ['https://graph.microsoft.com/Mail.Send']);
    await assert.rejects(admin.upsert('x', { provider: 'nope', scopes: [] }), code('invalid_request'));
    h.ctx.cache.remember(
      'sales-mailbox',
      '',
      {
        entry: { accessToken: 'a', tokenType: 'Bearer', expiresAt: T0 + 3_600_000, scope: '' },
        allowedCallers: undefined,
      },
      T0,
      0,
    );
    assert.equal(
      (await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: ['y'] })).created,
      false,
    );
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined);
  });

  it('lists sorted summaries; deleting an unknown connection is unknown_connection', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await h.store.put(activeRecord({ connection: 'b-one' }));
    await h.store.put(activeRecord({ connection: 'a-one' }));
    assert.deepEqual(
      (await admin.list()).map((s) => s.connection),
      ['a-one', 'b-one'],
    );
    await admin.delete('a-one');
    await assert.rejects(admin.delete('a-one'), code('unknown_connection'));
    await assert.rejects(admin.get('a-one'), code('unknown_connection'));
  });

  it('imports a refresh token only after the provider accepted it', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    h.provider.queue.push({ fail: { httpStatus: 400, body: { error: 'invalid_grant' } } });
    await assert.rejects(
      admin.importRefreshToken('sales-mailbox', 'rt-imported-xxxxxxxxxxxx'),
      code('invalid_request'),
    );
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
    const view = await admin.importRefreshToken('sales-mailbox', 'rt-imported-xxxxxxxxxxxx');
    assert.equal(view.status, 'active');
    assert.equal(h.provider.calls[1]?.refreshToken, 'rt-imported-xxxxxxxxxxxx');
    assert.equal(h.store.records.get('sales-mailbox')?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(h.store.records.get('sales-mailbox')?.connectedAt, T0);
  });

  it('an import whose connection is deleted meanwhile stores nothing', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const gate = h.provider.hold();
    const importing = admin.importRefreshToken('sales-mailbox', 'rt-imported-xxxxxxxxxxxx');
    await gate.entered;
    await admin.delete('sales-mailbox');
    gate.release();
    await assert.rejects(importing, code('unknown_connection'));
    assert.equal(h.store.records.has('sales-mailbox'), false);
  });

  it('an import whose connection was deleted and created again meanwhile stores nothing', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const gate = h.provider.hold();
    const importing = admin.importRefreshToken('sales-mailbox', 'rt-imported-xxxxxxxxxxxx');
    await gate.entered;
    await admin.delete('sales-mailbox');
    h.clock.now += 1;
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    gate.release();
    await assert.rejects(importing, code('invalid_request'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.createdAt, T0 + 1);
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
  });

  it('an import whose connection changed provider meanwhile stores nothing', async () => {
    const h = harness();
    (h.ctx.providers as Map<string, ProviderClient>).set('generic', new ScriptedProvider());
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const gate = h.provider.hold();
    const importing = admin.importRefreshToken('sales-mailbox', 'rt-imported-xxxxxxxxxxxx');
    await gate.entered;
    await admin.upsert('sales-mailbox', { provider: 'generic', scopes: ['mail'] });
    gate.release();
    await assert.rejects(importing, code('invalid_request'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.settings.provider, 'generic');
    assert.equal(stored?.tokens, undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Connections, pinHeld, settingsApplied } from '../../../shared/broker/connections.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { ProviderClient, TokenResult } from '../../../shared/oauth/provider.ts';
import type { ConnectedIdentity, ExpectedIdentity } from '../../../shared/store/types.ts';
import { ScriptedProvider } from '../../support/scriptedProvider.ts';
import { activeRecord, GatedProvider, HOUR, harness, T0 } from './fixture.ts';

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

/** A gated provider that records the options of each refresh and, when asked to prove the identity, answers
 * with `identity` as a verified id_token would. */
class IdentityProvider extends GatedProvider {
  readonly options: ({ identity?: boolean } | undefined)[] = [];
  identity: ConnectedIdentity | undefined = {
    tenantId: 'tid-a',
    objectId: 'oid-a',
    username: 'a@contoso.com',
  };

  override async refresh(
    refreshToken: string,
    scopes: readonly string[],
    opts?: { identity?: boolean },
  ): Promise<TokenResult> {
    this.options.push(opts);
    const result = await super.refresh(refreshToken, scopes);
    if (opts?.identity && this.identity) result.identity = this.identity;
    return result;
  }
}

function pinHarness() {
  const provider = new IdentityProvider();
  const h = harness({ providers: new Map([['microsoft', provider]]) });
  return { ...h, provider, admin: new Connections(h.ctx) };
}

/** Imports for a connection pinned to `before` while the pin changes to `after` mid-answer; the import is refused. */
async function importWhilePinChanges(before: string, after: string) {
  const h = pinHarness();
  const pin = (username: string) =>
    h.admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [], expectedIdentity: { username } });
  await pin(before);
  const gate = h.provider.hold();
  const importing = h.admin.importRefreshToken('sales-mailbox', RT);
  await gate.entered;
  await pin(after);
  gate.release();
  await assert.rejects(importing, code('identity_mismatch'));
  return h;
}

const RT = 'rt-imported-xxxxxxxxxxxx';
const cached = (h: ReturnType<typeof harness>) =>
  h.ctx.cache.remember(
    'sales-mailbox',
    '',
    {
      entry: { accessToken: 'a', tokenType: 'Bearer', expiresAt: T0 + HOUR, scope: '' },
      allowedCallers: undefined,
    },
    T0,
    0,
  );

describe('Connections: names, scopes and log lines', () => {
  it('an invalid name is invalid_request on save and delete, and nothing is stored', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await assert.rejects(
      admin.upsert('Bad Name', { provider: 'microsoft', scopes: [] }),
      code('invalid_request'),
    );
    assert.equal(h.store.records.size, 0);
    assert.equal(h.lock.acquisitions, 0);
    await assert.rejects(admin.delete('Bad Name'), code('invalid_request'));
    // Refused before the lock (a lease named after it) is asked for.
    assert.equal(h.lock.acquisitions, 0);
  });

  it('scopes given on save are kept as given; the default scopes fill only an empty list', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    const { view } = await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: ['Mail.Read'] });
    assert.deepEqual(view.scopes, ['Mail.Read']);
    assert.deepEqual(h.store.records.get('sales-mailbox')?.settings.scopes, ['Mail.Read']);
  });

  it('logs connection.saved (created, then updated) and connection.deleted with the connection name', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: ['y'] });
    await admin.delete('sales-mailbox');
    assert.deepEqual(h.logs, [
      'connection.saved connection=sales-mailbox provider=microsoft outcome=created',
      'connection.saved connection=sales-mailbox provider=microsoft outcome=updated',
      'connection.deleted connection=sales-mailbox',
    ]);
  });

  it('deleting forgets the cached token', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await h.store.put(activeRecord());
    cached(h);
    await admin.delete('sales-mailbox');
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined);
  });
});

describe('Connections.importRefreshToken', () => {
  it('a rejected token is invalid_request with the provider fields, stores nothing', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    h.provider.queue.push({
      fail: { httpStatus: 400, body: { error: 'invalid_grant', trace_id: 'trace-1' } },
    });
    await assert.rejects(admin.importRefreshToken('sales-mailbox', RT), (e: unknown) => {
      assert.ok(e instanceof BrokerError);
      assert.equal(e.code, 'invalid_request');
      assert.equal(e.detail, 'import refresh rejected');
      assert.equal(e.fields.providerError, 'invalid_grant');
      assert.equal(e.fields.providerHttpStatus, 400);
      return true;
    });
  });

  it('a provider outage passes through as provider_unavailable, not as a rejected token', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    await assert.rejects(admin.importRefreshToken('sales-mailbox', RT), code('provider_unavailable'));
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });

  it('an unexpected error from the provider client passes through unchanged', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const boom = new TypeError('socket gone');
    h.provider.refresh = () => Promise.reject(boom);
    await assert.rejects(admin.importRefreshToken('sales-mailbox', RT), (e) => e === boom);
  });

  it('an accepted import forgets the cached token and logs connection.imported', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await h.store.put(activeRecord());
    cached(h);
    await admin.importRefreshToken('sales-mailbox', RT);
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined);
    assert.deepEqual(h.logs, ['connection.imported connection=sales-mailbox provider=microsoft']);
  });

  it('an import on a connection changed meanwhile names the connection in the error', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const gate = h.provider.hold();
    const importing = admin.importRefreshToken('sales-mailbox', RT);
    await gate.entered;
    await admin.delete('sales-mailbox');
    h.clock.now += 1;
    await admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    gate.release();
    await assert.rejects(importing, (e: unknown) => {
      assert.ok(e instanceof BrokerError);
      assert.equal(e.code, 'invalid_request');
      assert.equal(e.detail, 'connection changed during import');
      assert.deepEqual(e.fields, { connection: 'sales-mailbox' });
      return true;
    });
  });

  for (const pin of [
    { tenantId: 'tid-a' },
    { objectId: 'oid-a' },
    { username: 'A@contoso.com' },
  ] satisfies ExpectedIdentity[]) {
    it(`a connection pinned by ${Object.keys(pin)[0]} asks the provider to prove the identity and keeps it`, async () => {
      const h = pinHarness();
      await h.admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [], expectedIdentity: pin });
      const view = await h.admin.importRefreshToken('sales-mailbox', RT);
      assert.equal(view.status, 'active');
      assert.deepEqual(h.provider.options, [{ identity: true }]);
      assert.deepEqual(h.store.records.get('sales-mailbox')?.identity, h.provider.identity);
    });
  }

  it('an unpinned connection (or an empty pin) does not ask for an identity proof', async () => {
    const h = pinHarness();
    await h.admin.upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    await h.admin.upsert('other-mailbox', { provider: 'microsoft', scopes: [], expectedIdentity: {} });
    await h.admin.importRefreshToken('sales-mailbox', RT);
    await h.admin.importRefreshToken('other-mailbox', RT);
    assert.deepEqual(h.provider.options, [{}, {}]);
    assert.equal(h.store.records.get('sales-mailbox')?.identity, undefined);
  });

  it("a token proven to be another account's is identity_mismatch before the lock is taken, stores nothing", async () => {
    const h = pinHarness();
    await h.admin.upsert('sales-mailbox', {
      provider: 'microsoft',
      scopes: [],
      expectedIdentity: { username: 'b@contoso.com' },
    });
    const locks = h.lock.acquisitions;
    await assert.rejects(h.admin.importRefreshToken('sales-mailbox', RT), code('identity_mismatch'));
    assert.equal(h.lock.acquisitions, locks);
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });

  it('an import that did not match the pin when asked stays refused even if the pin changes to it meanwhile', async () => {
    const h = await importWhilePinChanges('b@contoso.com', 'a@contoso.com');
    assert.equal(h.store.records.get('sales-mailbox')?.tokens, undefined);
  });

  it('a pin set while the provider answered is checked before the token is stored', async () => {
    const h = await importWhilePinChanges('a@contoso.com', 'b@contoso.com');
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.tokens, undefined);
    assert.equal(stored?.status, 'pending');
  });
});

describe('pinHeld', () => {
  const pinned = (pin: ExpectedIdentity | undefined, identity?: ConnectedIdentity) => {
    const r = activeRecord({ nextAttemptAt: T0 + HOUR });
    r.settings = { ...r.settings, expectedIdentity: pin };
    if (identity) r.identity = identity;
    return r;
  };

  it('a connected account that does not match the pin loses its tokens at once: needs_reauth, identity_mismatch', () => {
    for (const pin of [{ tenantId: 't' }, { objectId: 'o' }, { username: 'u@x' }]) {
      const r = pinned(pin, { tenantId: 'other', objectId: 'other', username: 'other@x' });
      const { tokens: _t, nextAttemptAt: _n, ...rest } = r;
      assert.deepEqual(pinHeld(r, T0 + 5), {
        ...rest,
        status: 'needs_reauth',
        lastError: { code: 'identity_mismatch', cause: 'revoked', at: T0 + 5 },
      });
    }
  });

  it('an account never verified (an import before the pin) is withheld too', () => {
    const held = pinHeld(pinned({ username: 'u@x' }), T0);
    assert.equal(held.status, 'needs_reauth');
    assert.equal(held.tokens, undefined);
  });

  it('a matching account, no pin, an empty pin or no tokens leave the record as it is', () => {
    const matching = pinned({ username: 'U@x' }, { username: 'u@x' });
    assert.equal(pinHeld(matching, T0), matching);
    const none = pinned(undefined);
    assert.equal(pinHeld(none, T0), none);
    const empty = pinned({});
    assert.equal(pinHeld(empty, T0), empty);
    const pending = { ...pinned({ username: 'u@x' }), status: 'pending' as const };
    delete pending.tokens;
    assert.equal(pinHeld(pending, T0), pending);
  });

  it('saving a pin the connected account does not match withholds its tokens', async () => {
    const h = harness();
    const admin = new Connections(h.ctx);
    await h.store.put(activeRecord({ identity: { username: 'a@contoso.com' } }));
    const { view } = await admin.upsert('sales-mailbox', {
      provider: 'microsoft',
      scopes: [],
      expectedIdentity: { username: 'b@contoso.com' },
    });
    assert.equal(view.status, 'needs_reauth');
    assert.equal(h.store.records.get('sales-mailbox')?.tokens, undefined);
  });
});

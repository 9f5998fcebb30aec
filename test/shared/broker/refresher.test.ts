import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { ConnectionLock } from '../../../shared/lock/types.ts';
import { activeRecord, barrier, harness, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

describe('Refresher', () => {
  it('collapses concurrent refreshes of one connection into one lock acquisition and one provider call', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const held = h.provider.hold();
    const refresher = new Refresher(h.ctx);
    const all = Array.from({ length: 20 }, () =>
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
    );
    await held.entered;
    held.release();
    const records = await Promise.all(all);
    assert.equal(h.lock.acquisitions, 1);
    assert.equal(h.provider.calls.length, 1);
    assert.equal(new Set(records.map((r) => r.tokens?.primary?.accessToken)).size, 1);
  });

  it('re-reads after the lock: a refresh another instance finished meanwhile is not repeated', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const inLock = barrier();
    const goOn = barrier();
    // A lock held by "another instance" that refreshes while we wait for it.
    const lock: ConnectionLock = {
      kind: 'other-instance',
      withLock: async (_c, fn) => {
        inLock.open();
        await goOn.promise;
        return fn();
      },
    };
    const refresher = new Refresher({ ...h.ctx, lock });
    const pending = refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' });
    await inLock.promise;
    await h.store.put(activeRecord({ revision: 2 }, 3_600_000));
    goOn.open();
    const record = await pending;
    assert.equal(record.revision, 2);
    assert.equal(h.provider.calls.length, 0);
  });

  it('stores the rotated refresh token before answering and forgets cached tokens', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const record = await new Refresher(h.ctx).refresh('sales-mailbox', undefined, {
      force: false,
      reason: 'expired',
    });
    assert.equal(h.store.records.get('sales-mailbox')?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(record.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(record.refreshedAt, T0);
    assert.match(h.logs.join('\n'), /refresh\.succeeded connection=sales-mailbox .*outcome=rotated/);
  });

  it('inside backoff: refuses without calling the provider; force bypasses backoff and status', async () => {
    const h = harness();
    await h.store.put(activeRecord({ nextAttemptAt: T0 + 10_000, status: 'error' }, 0));
    const refresher = new Refresher(h.ctx);
    await assert.rejects(
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
      code('connection_error'),
    );
    h.store.records.set('sales-mailbox', activeRecord({ nextAttemptAt: T0 + 10_000 }, 0));
    await assert.rejects(
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
      code('provider_unavailable'),
    );
    assert.equal(h.provider.calls.length, 0);
    await refresher.refresh('sales-mailbox', undefined, { force: true, reason: 'manual' });
    assert.equal(h.provider.calls.length, 1);
  });

  it('does not refresh a fresh primary token unless forced; refuses an unconnected record', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    await refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expiring' });
    assert.equal(h.provider.calls.length, 0);
    await h.store.put(activeRecord({ connection: 'pending-one', status: 'pending' }));
    await assert.rejects(
      refresher.refresh('pending-one', undefined, { force: true, reason: 'manual' }),
      code('connection_not_connected'),
    );
  });

  it('refreshes an extra-scope token on its own key and keeps the primary one', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    h.clock.now = T0 + 1000;
    const scopes = ['https://ads.microsoft.com/msads.manage'];
    const record = await new Refresher(h.ctx).refresh('sales-mailbox', scopes, {
      force: false,
      reason: 'no_access_token',
    });
    assert.deepEqual(h.provider.calls[0]?.scopes, scopes);
    assert.equal(record.tokens?.primary?.accessToken, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(
      record.tokens?.extra?.['https://ads.microsoft.com/msads.manage']?.accessToken.startsWith('at-1-'),
      true,
    );
    assert.equal(record.refreshedAt, T0, 'refreshedAt is the primary token refresh time only');
  });
});

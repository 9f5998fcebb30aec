import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { sweep } from '../../../shared/broker/sweep.ts';
import type { RecordMetadata } from '../../../shared/store/types.ts';
import { activeRecord, barrier, harness, HOUR, T0 } from './fixture.ts';

describe('sweep', () => {
  it('refreshes due connections with at most sweepConcurrency refreshes at once', async () => {
    const h = harness({ sweepConcurrency: 3 });
    for (let i = 0; i < 10; i++) await h.store.put(activeRecord({ connection: `c-${i}` }, 0));
    await h.store.put(activeRecord({ connection: 'fresh' }, HOUR));
    let running = 0;
    let peak = 0;
    const refresh = h.provider.refresh.bind(h.provider);
    h.provider.refresh = async (rt, scopes) => {
      peak = Math.max(peak, ++running);
      await Promise.resolve();
      try {
        return await refresh(rt, scopes);
      } finally {
        running--;
      }
    };
    const result = await sweep(h.ctx, new Refresher(h.ctx));
    assert.deepEqual(result, { listed: 11, due: 10, refreshed: 10, failed: 0, skipped: 0 });
    assert.equal(peak, 3);
    assert.match(h.logs.at(-1) ?? '', /^refresh\.sweep count=11 due=10 refreshed=10 failed=0 skipped=0$/);
  });

  it('starts on the first page before the listing ends', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connection: 'first' }, 0));
    await h.store.put(activeRecord({ connection: 'second' }, 0));
    const metas = await h.store.listMetadata();
    const held = h.provider.hold();
    const secondPage = barrier();
    const store = Object.assign(Object.create(h.store) as typeof h.store, {
      async *listMetadataPages(): AsyncGenerator<RecordMetadata[]> {
        yield metas.filter((m) => m.connection === 'first');
        await secondPage.promise;
        yield metas.filter((m) => m.connection === 'second');
      },
    });
    const running = sweep({ ...h.ctx, store }, new Refresher({ ...h.ctx, store }));
    // The first refresh reaches the provider while the listing still waits for its second page.
    await held.entered;
    held.release();
    secondPage.open();
    assert.deepEqual(await running, { listed: 2, due: 2, refreshed: 2, failed: 0, skipped: 0 });
  });

  it('counts a connection another instance refreshed meanwhile as skipped, and logs unlogged failures once', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connection: 'refreshed-elsewhere' }, 0));
    await h.store.put(activeRecord({ connection: 'gone' }, 0));
    const metas = await h.store.listMetadata();
    await h.store.put(activeRecord({ connection: 'refreshed-elsewhere', revision: 2 }, HOUR));
    await h.store.delete('gone');
    const store = Object.assign(Object.create(h.store) as typeof h.store, {
      listMetadata: () => Promise.resolve(metas),
    });
    h.clock.now += 1000;
    const result = await sweep({ ...h.ctx, store }, new Refresher({ ...h.ctx, store }));
    assert.deepEqual(result, { listed: 2, due: 2, refreshed: 0, failed: 1, skipped: 1 });
    assert.equal(
      h.logs.filter((l) => /^refresh\.failed connection=gone .*code=unknown_connection/.test(l)).length,
      1,
    );
  });
});

describe('sweep: warnings, listing failures and what each refresh logs', () => {
  const DAY = 24 * HOUR;
  const withGrantEnd = (
    connection: string,
    end: number | undefined,
    status: 'active' | 'needs_reauth' = 'active',
  ) => {
    const r = activeRecord({ connection, status }, HOUR);
    if (end !== undefined) r.tokens!.refreshTokenExpiresAt = end;
    return r;
  };

  it('warns once per sweep about active grants that end within three days or have ended', async () => {
    const h = harness();
    await h.store.put(withGrantEnd('ends-tomorrow', T0 + DAY));
    await h.store.put(withGrantEnd('ended', T0 - 1));
    await h.store.put(withGrantEnd('ends-in-ten-days', T0 + 10 * DAY));
    await h.store.put(withGrantEnd('open-ended', undefined));
    await h.store.put(withGrantEnd('already-reauth', T0 - 1, 'needs_reauth'));
    const result = await sweep(h.ctx, new Refresher(h.ctx));
    assert.deepEqual(result, { listed: 5, due: 0, refreshed: 0, failed: 0, skipped: 0 });
    assert.deepEqual(h.logs.slice(0, -1), [
      `refresh.grant_expiring connection=ends-tomorrow reason=expiring detail="grant ends ${new Date(T0 + DAY).toISOString()}; open a new connect link"`,
      `refresh.grant_expiring connection=ended reason=expired detail="grant ends ${new Date(T0 - 1).toISOString()}; open a new connect link"`,
    ]);
  });

  it('a listing that fails midway still refreshes what was listed, then reports and rethrows', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connection: 'first' }, 0));
    const [meta] = await h.store.listMetadata();
    const broken = new Error('listing broke');
    const store = Object.assign(Object.create(h.store) as typeof h.store, {
      async *listMetadataPages(): AsyncGenerator<RecordMetadata[]> {
        yield [meta!];
        await Promise.reject(broken);
      },
    });
    await assert.rejects(sweep({ ...h.ctx, store }, new Refresher({ ...h.ctx, store })), (e) => e === broken);
    assert.equal(h.provider.calls.length, 1);
    assert.equal(
      h.logs.at(-1),
      'refresh.sweep count=1 due=1 refreshed=1 failed=0 skipped=0 outcome=listing_failed',
    );
  });

  it('each refresh is logged with the reason the sweep decided', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connection: 'expiring' }, 60_000));
    await sweep(h.ctx, new Refresher(h.ctx));
    assert.match(
      h.logs[0] ?? '',
      /^refresh\.succeeded connection=expiring provider=microsoft reason=expiring /,
    );
  });

  it('failures already logged where they happened are not logged again; others are, by kind', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connection: 'revoked' }, 0));
    await h.store.put(activeRecord({ connection: 'reauth-meanwhile' }, 0));
    await h.store.put(activeRecord({ connection: 'store-broke' }, 0));
    const metas = await h.store.listMetadata();
    // After the listing: one connection needs a sign-in (another instance found out), one read breaks.
    await h.store.put(
      activeRecord(
        {
          connection: 'reauth-meanwhile',
          status: 'needs_reauth',
          revision: 2,
          lastError: { code: 'connection_needs_reauth', at: T0, providerError: 'invalid_grant' },
        },
        0,
      ),
    );
    h.provider.queue.push({ fail: { httpStatus: 400, body: { error: 'invalid_grant' } } });
    const get = h.store.get.bind(h.store);
    const store = Object.assign(Object.create(h.store) as typeof h.store, {
      listMetadata: () => Promise.resolve(metas),
      get: (name: string) => (name === 'store-broke' ? Promise.reject(new TypeError('boom')) : get(name)),
    });
    const result = await sweep({ ...h.ctx, store }, new Refresher({ ...h.ctx, store }));
    assert.deepEqual(result, { listed: 3, due: 3, refreshed: 0, failed: 3, skipped: 0 });
    assert.deepEqual(h.logs.slice(0, -1).sort(), [
      'refresh.failed connection=store-broke reason=expired code=internal_error',
      'refresh.needs_reauth connection=reauth-meanwhile reason=expired code=connection_needs_reauth providerError=invalid_grant',
      'refresh.needs_reauth connection=revoked reason=expired code=connection_needs_reauth status=needs_reauth providerError=invalid_grant providerHttpStatus=400',
    ]);
  });
});

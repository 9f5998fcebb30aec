import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { sweep } from '../../../shared/broker/sweep.ts';
import type { RecordMetadata } from '../../../shared/store/types.ts';
import { activeRecord, barrier, harness, HOUR } from './fixture.ts';

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

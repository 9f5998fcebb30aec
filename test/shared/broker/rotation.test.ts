// The refresher's guarantees for rotated refresh tokens and bounded records (shared/broker/refresher.ts,
// shared/broker/extraScopes.ts), pinned with barriers and an in-memory store whose writes can fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_EXTRA_TOKENS } from '../../../shared/broker/extraScopes.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { sweep } from '../../../shared/broker/sweep.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { AccessTokenEntry, ConnectionRecord } from '../../../shared/store/types.ts';
import { activeRecord, HOUR, harness, MemoryStore, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;
const NAME = 'sales-mailbox';
const refresh = (r: Refresher, force = false) =>
  r.refresh(NAME, undefined, { force, reason: force ? 'manual' : 'expired' });

/** The next `failPuts` writes fail as Key Vault's would after the store's own retries. */
class FlakyStore extends MemoryStore {
  failPuts = 0;
  /** The next `failGets` reads fail the same way. */
  failGets = 0;
  /** What a failing write throws (default: the store's own store_unavailable). */
  putError: () => Error = () =>
    new BrokerError('store_unavailable', 'Key Vault is unavailable; try again later.');
  override put(record: ConnectionRecord): Promise<void> {
    if (this.failPuts > 0) {
      this.failPuts--;
      return Promise.reject(this.putError());
    }
    return super.put(record);
  }
  override get(connection: string): Promise<ConnectionRecord | undefined> {
    if (this.failGets > 0) {
      this.failGets--;
      return Promise.reject(
        new BrokerError('store_unavailable', 'Key Vault is unavailable; try again later.'),
      );
    }
    return super.get(connection);
  }
}

function setup(over: Parameters<typeof harness>[0] = {}) {
  const store = new FlakyStore();
  const h = harness({ store, ...over });
  return { ...h, store, refresher: new Refresher(h.ctx) };
}

describe('no rotation lost while the process lives', () => {
  it('a rotated token whose write failed is kept, written before the next refresh, and is what it presents', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    assert.equal(h.provider.calls.length, 1);
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(h.refresher.unwrittenCount(), 1);

    // The kept record holds a fresh token: the next refresh writes it and needs no provider call.
    const after = await refresh(h.refresher);
    assert.equal(h.provider.calls.length, 1);
    assert.equal(after.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(h.refresher.unwrittenCount(), 0);
    assert.ok(h.logs.some((l) => l.startsWith('refresh.unwritten_saved')));

    // A forced refresh presents the rotated token, never the superseded one.
    await refresh(h.refresher, true);
    assert.equal(h.provider.calls[1]?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
  });

  it('while the kept record cannot be written, the provider is not asked with the superseded token', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 2;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    await assert.rejects(refresh(h.refresher, true), code('store_unavailable'));
    assert.equal(h.provider.calls.length, 1, 'no second provider call');
    await refresh(h.refresher, true);
    assert.deepEqual(
      h.provider.calls.map((c) => c.refreshToken),
      ['rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz', 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy'],
    );
  });

  it('the sweep writes kept rotations first', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    await h.refresher.saveUnwritten();
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(h.refresher.unwrittenCount(), 0);
  });

  it('the sweep writes a kept rotation even when the connection is not due (an extra-scope refresh rotated it)', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, HOUR)); // primary token fresh: the sweep has nothing to refresh
    h.store.failPuts = 1;
    await assert.rejects(
      h.refresher.refresh(NAME, [SCOPE(1)], { force: false, reason: 'no_access_token' }),
      code('store_unavailable'),
    );
    const result = await sweep(h.ctx, h.refresher);
    assert.equal(result.due, 0);
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
  });

  it('writes only while the lock is held: a lease lost before the write keeps the rotation for later', async () => {
    let held = true;
    const inner = harness().lock;
    const lock = { kind: 'lease', withLock: inner.withLock.bind(inner), held: () => held };
    const h = setup({ lock });
    await h.store.put(activeRecord({}, 0));
    const puts = h.store.puts;
    held = false; // the lease expires while the provider works
    await assert.rejects(refresh(h.refresher), code('lock_timeout'));
    assert.equal(h.store.puts, puts, 'nothing written without the lease');
    assert.equal(h.provider.calls.length, 1);
    held = true;
    const after = await refresh(h.refresher);
    assert.equal(after.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(h.provider.calls.length, 1);
  });

  it('a late writer never overwrites a newer record (revision compared right before the write)', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    const held = h.provider.hold();
    const pending = refresh(h.refresher);
    await held.entered;
    // Meanwhile someone else (a new sign-in, or an instance that took over the lease) stored a newer record.
    const newer = activeRecord({
      revision: 2,
      tokens: { ...activeRecord().tokens!, refreshToken: 'rt-newer' },
    });
    await h.store.put(newer);
    held.release();
    const result = await pending;
    assert.equal(result.revision, 2);
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-newer');
    assert.equal(h.refresher.unwrittenCount(), 0);
    assert.ok(h.logs.some((l) => l.startsWith('refresh.superseded')));
  });

  it('a kept rotation older than the store is dropped, not written over it', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    await h.store.put(activeRecord({ revision: 5 }, HOUR)); // reconnected meanwhile
    const after = await refresh(h.refresher);
    assert.equal(after.revision, 5);
    assert.equal(h.refresher.unwrittenCount(), 0);
  });
});

const SCOPE = (i: number) => `https://api${i}.example/.default`;
function extraEntry(i: number, issuedAt: number, size = 40): AccessTokenEntry {
  return {
    accessToken: `at-extra-${i}-${'e'.repeat(size)}`,
    tokenType: 'Bearer',
    expiresAt: issuedAt + HOUR,
    scope: SCOPE(i),
    ...({ issuedAt } as object),
  };
}

describe('bounded records: extra-scope tokens', () => {
  it(`keeps at most ${MAX_EXTRA_TOKENS} extra tokens, dropping the least recently used, before the provider call`, async () => {
    const h = setup();
    const base = activeRecord({}, HOUR);
    const extra = Object.fromEntries(
      Array.from({ length: MAX_EXTRA_TOKENS }, (_, i) => [SCOPE(i), extraEntry(i, T0 - (i + 1) * 60_000)]),
    );
    await h.store.put({ ...base, tokens: { ...base.tokens!, extra } });
    const after = await h.refresher.refresh(NAME, [SCOPE(99)], { force: false, reason: 'no_access_token' });
    const keys = Object.keys(after.tokens?.extra ?? {});
    assert.equal(keys.length, MAX_EXTRA_TOKENS);
    assert.ok(keys.includes(SCOPE(99)));
    assert.ok(!keys.includes(SCOPE(MAX_EXTRA_TOKENS - 1)), 'the one used longest ago went');
    assert.ok(h.logs.some((l) => l.startsWith('refresh.extra_tokens_dropped') && l.includes('count=1')));
  });

  it('checks the size before the provider call: no room at all → record_too_large, provider not asked', async () => {
    const h = setup();
    const base = activeRecord({}, HOUR);
    // A primary token so large that the record plus another of its size cannot fit in 25 KiB.
    const big = { ...base.tokens!.primary!, accessToken: `at-${'p'.repeat(13_000)}` };
    await h.store.put({ ...base, tokens: { ...base.tokens!, primary: big } });
    await assert.rejects(
      h.refresher.refresh(NAME, [SCOPE(1)], { force: false, reason: 'no_access_token' }),
      code('record_too_large'),
    );
    assert.equal(h.provider.calls.length, 0);
  });

  it('extra-scope failures back off that scope only; the record and its primary token are untouched', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    const before = structuredClone(h.store.records.get(NAME));
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    await assert.rejects(
      h.refresher.refresh(NAME, [SCOPE(1)], { force: false, reason: 'no_access_token' }),
      code('provider_unavailable'),
    );
    const record = h.store.records.get(NAME);
    assert.equal(record?.failures, before?.failures);
    assert.equal(record?.nextAttemptAt, undefined);
    assert.equal(record?.revision, before?.revision, 'nothing written');
    // The same scope waits out its backoff without asking the provider.
    await assert.rejects(
      h.refresher.refresh(NAME, [SCOPE(1)], { force: false, reason: 'no_access_token' }),
      code('provider_unavailable'),
    );
    assert.equal(h.provider.calls.length, 1);
    // The primary token still refreshes.
    await refresh(h.refresher);
    assert.equal(h.provider.calls.length, 2);
  });

  it("extra-scope refreshes respect the connection's backoff", async () => {
    const h = setup();
    await h.store.put(activeRecord({ failures: 2, nextAttemptAt: T0 + 60_000 }, HOUR));
    await assert.rejects(
      h.refresher.refresh(NAME, [SCOPE(1)], { force: false, reason: 'no_access_token' }),
      code('provider_unavailable'),
    );
    assert.equal(h.provider.calls.length, 0);
  });
});

describe('kept rotations: what is logged, forgotten and dropped', () => {
  const cache = (h: ReturnType<typeof setup>) => {
    const entry = activeRecord().tokens!.primary!;
    h.ctx.cache.remember(NAME, '', { entry, allowedCallers: undefined }, T0, 0);
  };

  it('a deferred write is logged with its connection, reason and code; saving it later says so', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    assert.deepEqual(h.logs, [
      'refresh.write_deferred connection=sales-mailbox reason=expired code=store_unavailable',
    ]);
    await h.refresher.saveUnwritten();
    assert.deepEqual(h.logs.slice(1), ['refresh.unwritten_saved connection=sales-mailbox']);
  });

  it('a write failing with something other than a broker error is logged as internal_error and kept', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    h.store.putError = () => new TypeError('socket hang up');
    await assert.rejects(refresh(h.refresher), TypeError);
    assert.deepEqual(h.logs, [
      'refresh.write_deferred connection=sales-mailbox reason=expired code=internal_error',
    ]);
    assert.equal(h.refresher.unwrittenCount(), 1);
  });

  it('a kept rotation dropped for a newer record is not reported as saved, and the cache is forgotten', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    await h.store.put(activeRecord({ revision: 5 }, HOUR));
    cache(h);
    await h.refresher.saveUnwritten();
    assert.equal(h.refresher.unwrittenCount(), 0);
    assert.ok(!h.logs.some((l) => l.startsWith('refresh.unwritten_saved')), h.logs.join('\n'));
    assert.equal(h.ctx.cache.fresh(NAME, '', T0, 0), undefined);
  });

  it('a connection deleted meanwhile drops its kept rotation', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    await h.store.delete(NAME);
    await assert.rejects(refresh(h.refresher), code('unknown_connection'));
    assert.equal(h.refresher.unwrittenCount(), 0);
  });

  it('a failed read keeps the rotation for the next try', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    h.store.failPuts = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    h.store.failGets = 1;
    await assert.rejects(refresh(h.refresher), code('store_unavailable'));
    assert.equal(h.refresher.unwrittenCount(), 1);
    await refresh(h.refresher);
    assert.equal(h.store.records.get(NAME)?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
  });

  it('a refresh overtaken by a newer record answers with that record and logs no success', async () => {
    const h = setup();
    await h.store.put(activeRecord({}, 0));
    const held = h.provider.hold();
    const pending = refresh(h.refresher);
    await held.entered;
    await h.store.put(activeRecord({ revision: 5 }, HOUR));
    cache(h);
    held.release();
    const result = await pending;
    assert.equal(result.revision, 5);
    assert.ok(!h.logs.some((l) => l.startsWith('refresh.succeeded')), h.logs.join('\n'));
    assert.equal(h.ctx.cache.fresh(NAME, '', T0, 0), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenCache } from '../../../shared/broker/tokenCache.ts';
import type { AccessTokenEntry } from '../../../shared/store/types.ts';

const MARGIN = 5 * 60_000;
const HOUR_MS = 3_600_000;
const entry = (expiresAt: number): AccessTokenEntry => ({
  accessToken: 'at',
  tokenType: 'Bearer',
  expiresAt,
  scope: 's',
});

describe('TokenCache', () => {
  it('keeps and serves only fresh tokens', () => {
    const cache = new TokenCache();
    cache.remember('a', '', { entry: entry(1_000_000), allowedCallers: ['x'] }, 0, MARGIN);
    assert.deepEqual(cache.fresh('a', '', 0, MARGIN)?.allowedCallers, ['x']);
    // Inside the margin it is due: not served from the cache any more.
    assert.equal(cache.fresh('a', '', 1_000_000 - MARGIN, MARGIN), undefined);
    const due = cache.remember('b', '', { entry: entry(MARGIN), allowedCallers: undefined }, 0, MARGIN);
    assert.equal(due.entry.expiresAt, MARGIN, 'returned even when not kept');
    assert.equal(cache.fresh('b', '', 0, MARGIN), undefined);
  });

  it('a token that is not fresh is not kept and does not displace the fresh one held for that key', () => {
    const cache = new TokenCache();
    const held = { entry: entry(HOUR_MS), allowedCallers: undefined };
    cache.remember('a', '', held, 0, MARGIN);
    cache.remember('a', '', { entry: entry(MARGIN), allowedCallers: ['late'] }, 0, MARGIN);
    assert.equal(cache.fresh('a', '', 0, MARGIN), held);
  });

  it('forgets every scope of one connection and nothing of another', () => {
    const cache = new TokenCache();
    const value = { entry: entry(1_000_000), allowedCallers: undefined };
    cache.remember('a', '', value, 0, MARGIN);
    cache.remember('a', 'https://ads/x', value, 0, MARGIN);
    cache.remember('a-b', '', value, 0, MARGIN);
    cache.forget('a');
    assert.equal(cache.fresh('a', '', 0, MARGIN), undefined);
    assert.equal(cache.fresh('a', 'https://ads/x', 0, MARGIN), undefined);
    assert.ok(cache.fresh('a-b', '', 0, MARGIN));
  });
});

describe('TokenCache coherence bound', () => {
  it('trusts an entry for the bound after its store read, not a millisecond longer', () => {
    const cache = new TokenCache(10_000);
    cache.remember('a', '', { entry: entry(HOUR_MS), allowedCallers: undefined }, 1_000, MARGIN);
    assert.ok(cache.fresh('a', '', 1_000 + 9_999, MARGIN));
    assert.equal(cache.fresh('a', '', 1_000 + 10_000, MARGIN), undefined);
    assert.equal(cache.fresh('a', '', 999, MARGIN), undefined, 'a clock that went back is not trusted');
  });

  it('within the bound, a token that has become due is not served', () => {
    const cache = new TokenCache(HOUR_MS);
    cache.remember('a', '', { entry: entry(20 * 60_000), allowedCallers: undefined }, 0, MARGIN);
    assert.ok(cache.fresh('a', '', 15 * 60_000 - 1, MARGIN));
    assert.equal(
      cache.fresh('a', '', 15 * 60_000, MARGIN),
      undefined,
      'due from the margin on, bound or not',
    );
  });

  it('keeps nothing with a bound of 0', () => {
    const cache = new TokenCache(0);
    cache.remember('a', '', { entry: entry(HOUR_MS), allowedCallers: undefined }, 0, MARGIN);
    assert.equal(cache.fresh('a', '', 0, MARGIN), undefined);
  });
});

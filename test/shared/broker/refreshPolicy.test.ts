import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffMs,
  effectiveMarginMs,
  GRANT_WARNING_MS,
  grantState,
  KEEP_ALIVE_MS,
  MAX_MARGIN_FRACTION,
  REFRESH_MARGIN_MS,
  renewAt,
  shouldRefresh,
  tokenFreshness,
} from '../../../shared/broker/refreshPolicy.ts';
import { parseConfig } from '../../../shared/config.ts';
import type { RecordMetadata } from '../../../shared/store/types.ts';

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const policy = { marginMs: 5 * 60_000, keepAliveMs: 7 * 24 * 3600_000 };
const meta = (over: Partial<RecordMetadata>): RecordMetadata => ({
  connection: 'c',
  provider: 'microsoft',
  status: 'active',
  failures: 0,
  revision: 1,
  updatedAt: NOW,
  accessExpiresAt: NOW + 3600_000,
  refreshedAt: NOW - 3600_000,
  ...over,
});

describe('shouldRefresh', () => {
  const cases: [string, Partial<RecordMetadata>, { refresh: boolean; reason: string }][] = [
    ['fresh token', {}, { refresh: false, reason: 'fresh' }],
    ['inside the 5 min margin', { accessExpiresAt: NOW + 4 * 60_000 }, { refresh: true, reason: 'expiring' }],
    ['exactly at the margin', { accessExpiresAt: NOW + 5 * 60_000 }, { refresh: true, reason: 'expiring' }],
    [
      'just outside the margin',
      { accessExpiresAt: NOW + 5 * 60_000 + 1 },
      { refresh: false, reason: 'fresh' },
    ],
    ['expired', { accessExpiresAt: NOW - 1 }, { refresh: true, reason: 'expired' }],
    ['expiring this instant', { accessExpiresAt: NOW }, { refresh: true, reason: 'expired' }],
    ['refresh_in passed', { refreshAt: NOW - 1 }, { refresh: true, reason: 'refresh_in_passed' }],
    ['refresh_in reached this instant', { refreshAt: NOW }, { refresh: true, reason: 'refresh_in_passed' }],
    ['refresh_in still ahead', { refreshAt: NOW + 1 }, { refresh: false, reason: 'fresh' }],
    [
      'no refresh time recorded: kept alive now rather than never',
      { refreshedAt: undefined },
      { refresh: true, reason: 'keep_alive' },
    ],
    ['idle for 7 days', { refreshedAt: NOW - 7 * 24 * 3600_000 }, { refresh: true, reason: 'keep_alive' }],
    [
      'idle just under 7 days',
      { refreshedAt: NOW - 7 * 24 * 3600_000 + 1 },
      { refresh: false, reason: 'fresh' },
    ],
    ['no access token yet', { accessExpiresAt: undefined }, { refresh: true, reason: 'no_access_token' }],
    ['pending', { status: 'pending' }, { refresh: false, reason: 'not_connected' }],
    [
      'needs re-auth is never retried by the sweep',
      { status: 'needs_reauth', accessExpiresAt: NOW - 1 },
      { refresh: false, reason: 'needs_reauth' },
    ],
    ['configuration error', { status: 'error' }, { refresh: false, reason: 'error_status' }],
    [
      'in backoff',
      { accessExpiresAt: NOW - 1, nextAttemptAt: NOW + 1 },
      { refresh: false, reason: 'backoff' },
    ],
    ['backoff over', { accessExpiresAt: NOW - 1, nextAttemptAt: NOW }, { refresh: true, reason: 'expired' }],
  ];
  for (const [title, over, expected] of cases) {
    it(title, () => assert.deepEqual(shouldRefresh(meta(over), NOW, policy), expected));
  }
});

describe('tokenFreshness', () => {
  const entry = { accessToken: 'a', tokenType: 'Bearer', scope: 's', expiresAt: NOW + 600_000 };
  it('fresh, due, expired', () => {
    assert.equal(tokenFreshness(entry, NOW, policy.marginMs), 'fresh');
    assert.equal(tokenFreshness(entry, NOW + 300_000, policy.marginMs), 'due');
    assert.equal(tokenFreshness({ ...entry, refreshAt: NOW - 1 }, NOW, policy.marginMs), 'due');
    assert.equal(tokenFreshness(entry, NOW + 600_000, policy.marginMs), 'expired');
  });
});

describe('refresh window follows the token lifetime', () => {
  const margin = policy.marginMs; // 300 s, longer than the short tokens below
  const issued = (ttlSeconds: number, over: object = {}) => ({
    accessToken: 'a',
    tokenType: 'Bearer',
    scope: 's',
    issuedAt: NOW,
    expiresAt: NOW + ttlSeconds * 1000,
    ...over,
  });
  for (const ttl of [60, 120]) {
    it(`a ${ttl} s token is fresh for the first ${MAX_MARGIN_FRACTION * 100}% of its life, then due once`, () => {
      const entry = issued(ttl);
      const due = NOW + ttl * 1000 * (1 - MAX_MARGIN_FRACTION);
      assert.equal(renewAt(entry, margin), due);
      assert.equal(tokenFreshness(entry, NOW, margin), 'fresh');
      assert.equal(tokenFreshness(entry, due - 1, margin), 'fresh');
      assert.equal(tokenFreshness(entry, due, margin), 'due');
      assert.equal(tokenFreshness(entry, NOW + ttl * 1000, margin), 'expired');
    });
    it(`30 sequential reads of a ${ttl} s token within 10 s all find it fresh`, () => {
      const entry = issued(ttl);
      const reads = Array.from({ length: 30 }, (_, i) => tokenFreshness(entry, NOW + i * 333, margin));
      assert.deepEqual(new Set(reads), new Set(['fresh']));
    });
    it(`the sweep leaves a just-refreshed ${ttl} s token alone`, () => {
      const m = meta({ refreshedAt: NOW, accessExpiresAt: NOW + ttl * 1000 });
      assert.deepEqual(shouldRefresh(m, NOW + 1000, policy), { refresh: false, reason: 'fresh' });
      assert.deepEqual(shouldRefresh(m, NOW + (ttl * 1000) / 2, policy), {
        refresh: true,
        reason: 'expiring',
      });
    });
  }
  it('long-lived tokens keep the configured margin', () => {
    assert.equal(effectiveMarginMs(issued(3600), margin), margin);
    assert.equal(renewAt(issued(3600), margin), NOW + 3300_000);
  });
  it('a margin as long as the lifetime (BROKER_REFRESH_MARGIN_SECONDS=3600) renews at half-life', () => {
    assert.equal(renewAt(issued(3600), 3600_000), NOW + 1800_000);
  });
  it('an earlier refresh_in wins; a later one does not postpone the margin', () => {
    assert.equal(renewAt(issued(120, { refreshAt: NOW + 10_000 }), margin), NOW + 10_000);
    assert.equal(renewAt(issued(120, { refreshAt: NOW + 100_000 }), margin), NOW + 60_000);
  });
  it('records written before issue times were kept use the configured margin until their next refresh', () => {
    const legacy = { accessToken: 'a', tokenType: 'Bearer', scope: 's', expiresAt: NOW + 120_000 };
    assert.equal(tokenFreshness(legacy, NOW, margin), 'due');
  });
});

describe('grantState', () => {
  it('open-ended without a stated end; flagged from three days before it; expired after', () => {
    assert.equal(GRANT_WARNING_MS, 3 * 24 * 3600_000, 'three days ahead');
    assert.equal(grantState(undefined, NOW), 'open_ended');
    assert.equal(grantState(NOW + GRANT_WARNING_MS + 1, NOW), 'ok');
    assert.equal(grantState(NOW + GRANT_WARNING_MS, NOW), 'expiring');
    assert.equal(grantState(NOW, NOW), 'expired');
  });
});

describe('backoffMs', () => {
  // Microsoft's resilience guidance: the first retry after a 5xx or timeout waits at least 5 s
  // (https://learn.microsoft.com/en-us/entra/architecture/resilience-client-app). Asserted against that floor.
  const FIRST_RETRY_FLOOR_MS = 5_000;
  it('never retries sooner than the documented 5 s floor, whatever the jitter', () => {
    for (const r of [0, 0.25, 0.5, 0.999, 1]) {
      assert.ok(backoffMs(1, undefined, () => r) >= FIRST_RETRY_FLOOR_MS, `random ${r}`);
    }
  });
  it('starts at 5–7.5 s, grows, caps at 15 min, honours Retry-After', () => {
    assert.equal(
      backoffMs(1, undefined, () => 1),
      7_500,
    );
    assert.equal(
      backoffMs(1, undefined, () => 0),
      5_000,
    );
    assert.equal(
      backoffMs(3, undefined, () => 1),
      30_000,
    );
    assert.equal(
      backoffMs(30, undefined, () => 1),
      15 * 60_000,
    );
    assert.equal(
      backoffMs(1, 60, () => 0),
      60_000,
    );
  });
});

describe('policy constants', () => {
  // bench/stampede.ts measures with these; they must be the margin and keep-alive the product runs with by default.
  it('REFRESH_MARGIN_MS and KEEP_ALIVE_MS are the configured defaults', () => {
    const config = parseConfig({});
    assert.equal(REFRESH_MARGIN_MS, config.refreshMarginMs);
    assert.equal(KEEP_ALIVE_MS, config.keepAliveMs);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs, shouldRefresh, tokenFreshness } from '../../../shared/broker/refreshPolicy.ts';
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
    ['refresh_in passed', { refreshAt: NOW - 1 }, { refresh: true, reason: 'refresh_in_passed' }],
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

describe('backoffMs', () => {
  it('starts at 5 s or more, grows, caps at 15 min, honours Retry-After', () => {
    assert.equal(
      backoffMs(1, undefined, () => 1),
      5_000,
    );
    assert.equal(
      backoffMs(1, undefined, () => 0),
      2_500,
    );
    assert.equal(
      backoffMs(3, undefined, () => 1),
      20_000,
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

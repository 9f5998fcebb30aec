import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONNECTION_NAME_PATTERN, toMetadata, type ConnectionRecord } from '../../../shared/store/types.ts';
import { sampleRecord } from './contract.ts';

function bare(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    v: 1,
    connection: 'bare',
    settings: { provider: 'google', scopes: [] },
    status: 'pending',
    createdAt: 5,
    updatedAt: 10,
    failures: 1,
    revision: 2,
    ...overrides,
  };
}

void describe('record metadata', () => {
  void test('the metadata of a full record carries every summary field and nothing secret', () => {
    const record = sampleRecord('full', { refreshedAt: 11, nextAttemptAt: 12, readAt: 13, failures: 4 });
    record.tokens!.refreshTokenExpiresAt = 14;
    assert.deepEqual(toMetadata(record), {
      connection: 'full',
      provider: 'microsoft',
      status: 'active',
      failures: 4,
      revision: 1,
      updatedAt: record.updatedAt,
      accessExpiresAt: record.tokens!.primary!.expiresAt,
      refreshAt: record.tokens!.primary!.refreshAt,
      refreshedAt: 11,
      nextAttemptAt: 12,
      grantExpiresAt: 14,
      readAt: 13,
    });
  });

  void test('a pending record without tokens has only the required fields', () => {
    assert.deepEqual(toMetadata(bare()), {
      connection: 'bare',
      provider: 'google',
      status: 'pending',
      failures: 1,
      revision: 2,
      updatedAt: 10,
    });
  });

  void test('an access token without refreshAt gives accessExpiresAt only; zero times are kept', () => {
    const record = bare({
      tokens: {
        refreshToken: 'r',
        grantedScopes: [],
        primary: { accessToken: 'a', tokenType: 'Bearer', expiresAt: 0, scope: '' },
      },
      refreshedAt: 0,
      nextAttemptAt: 0,
      readAt: 0,
    });
    assert.deepEqual(toMetadata(record), {
      ...toMetadata(bare()),
      accessExpiresAt: 0,
      refreshedAt: 0,
      nextAttemptAt: 0,
      readAt: 0,
    });
    record.tokens!.primary!.refreshAt = 0;
    record.tokens!.refreshTokenExpiresAt = 0;
    assert.equal(toMetadata(record).refreshAt, 0);
    assert.equal(toMetadata(record).grantExpiresAt, 0);
  });

  void test('tokens without a primary access token give no access times', () => {
    const meta = toMetadata(
      bare({ tokens: { refreshToken: 'r', grantedScopes: [], refreshTokenExpiresAt: 9 } }),
    );
    assert.equal('accessExpiresAt' in meta, false);
    assert.equal('refreshAt' in meta, false);
    assert.equal(meta.grantExpiresAt, 9);
  });

  void test('the connection name rule', () => {
    for (const ok of ['a', 'a1', 'a-1', 'x'.repeat(63)]) assert.ok(CONNECTION_NAME_PATTERN.test(ok), ok);
    for (const bad of ['', '-a', 'a-', 'A', 'x'.repeat(64)])
      assert.ok(!CONNECTION_NAME_PATTERN.test(bad), bad);
  });
});

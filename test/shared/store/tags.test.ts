import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BrokerError } from '../../../shared/errors.ts';
import { isBrokerError } from '../../../shared/errors.ts';
import { MAX_TAGS, MAX_TAG_LENGTH, metadataFromTags, toTags } from '../../../shared/store/tags.ts';
import { toMetadata, type ConnectionRecord } from '../../../shared/store/types.ts';
import { sampleRecord } from './contract.ts';

function refused(record: ConnectionRecord, extra?: Record<string, string>): BrokerError {
  try {
    toTags(record, extra);
  } catch (err) {
    assert.ok(isBrokerError(err), `expected a BrokerError, got ${String(err)}`);
    assert.equal(err.code, 'invalid_request');
    assert.deepEqual(err.fields, { connection: record.connection });
    return err;
  }
  assert.fail('expected toTags to refuse the record');
}

const MALFORMED = 'provider empty, status unknown or a counter/time is not a non-negative integer';

/** A record with no tokens and none of the optional times. */
function bare(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    v: 1,
    connection: 'bare',
    settings: { provider: 'google', scopes: [] },
    status: 'pending',
    createdAt: 5,
    updatedAt: 10,
    failures: 0,
    revision: 0,
    ...overrides,
  };
}

/** Every optional time set, each to a distinct value. */
function full(): ConnectionRecord {
  const record = sampleRecord('full', {
    status: 'needs_reauth',
    failures: 3,
    revision: 42,
    updatedAt: 1000,
    refreshedAt: 1001,
    nextAttemptAt: 1002,
    readAt: 1003,
  });
  record.tokens!.primary!.expiresAt = 1004;
  record.tokens!.primary!.refreshAt = 1005;
  record.tokens!.refreshTokenExpiresAt = 1006;
  return record;
}

const FULL_TAGS = {
  connection: 'full',
  provider: 'microsoft',
  status: 'needs_reauth',
  failures: '3',
  revision: '42',
  updatedAt: '1000',
  accessExpiresAt: '1004',
  refreshAt: '1005',
  refreshedAt: '1001',
  nextAttemptAt: '1002',
  grantExpiresAt: '1006',
  readAt: '1003',
};

void describe('Key Vault tags of a connection', () => {
  void test('tags are exactly the metadata fields as decimal strings', () => {
    assert.deepEqual(toTags(full()), FULL_TAGS);
  });

  void test('a record without tokens or optional times gets only the six required tags', () => {
    assert.deepEqual(toTags(bare()), {
      connection: 'bare',
      provider: 'google',
      status: 'pending',
      failures: '0',
      revision: '0',
      updatedAt: '10',
    });
  });

  void test('store-internal extra tags are added', () => {
    assert.deepEqual(toTags(bare(), { writtenAt: '77' }), { ...toTags(bare()), writtenAt: '77' });
  });

  void test('every status is accepted; an unknown one, an empty provider or a bad number is refused', () => {
    for (const status of ['pending', 'active', 'needs_reauth', 'error'] as const)
      assert.equal(toTags(bare({ status })).status, status);
    const bad = [
      bare({ status: 'gone' as ConnectionRecord['status'] }),
      bare({ settings: { provider: '', scopes: [] } }),
      bare({ failures: -1 }),
      bare({ revision: 0.5 }),
      bare({ updatedAt: Number.MAX_SAFE_INTEGER + 2 }),
      bare({ refreshedAt: -1 }),
      bare({ nextAttemptAt: 2.5 }),
      bare({ readAt: Number.NaN }),
    ];
    for (const record of bad) assert.equal(refused(record).detail, MALFORMED);
  });

  void test('an optional time of 0 is kept as a tag', () => {
    assert.equal(toTags(bare({ readAt: 0 })).readAt, '0');
  });

  void test(`${MAX_TAGS} tags are accepted, ${MAX_TAGS + 1} are refused`, () => {
    assert.equal(MAX_TAGS, 15);
    const extra = { x1: '1', x2: '2', x3: '3' };
    assert.equal(Object.keys(toTags(full(), extra)).length, 15);
    const err = refused(full(), { ...extra, x4: '4' });
    assert.equal(err.detail, '16 tags, limit 15');
  });

  void test(`a tag name or value of ${MAX_TAG_LENGTH} characters is accepted, one more is refused`, () => {
    assert.equal(MAX_TAG_LENGTH, 256);
    const at = 'k'.repeat(256);
    assert.equal(toTags(bare(), { [at]: at })[at], at);
    assert.equal(
      refused(bare(), { ['k'.repeat(257)]: 'v' }).detail,
      `tag ${'k'.repeat(257)} is 1 characters, limit 256`,
    );
    assert.equal(refused(bare(), { name: 'v'.repeat(257) }).detail, 'tag name is 257 characters, limit 256');
    const provider = 'p'.repeat(257);
    assert.equal(
      refused(bare({ settings: { provider, scopes: [] } })).detail,
      'tag provider is 257 characters, limit 256',
    );
  });
});

void describe('metadata read back from tags', () => {
  void test('round trip: tags of a record read back as its metadata', () => {
    for (const record of [full(), bare(), bare({ readAt: 0 })])
      assert.deepEqual(metadataFromTags(toTags(record, { writtenAt: '9' })), toMetadata(record));
  });

  void test('no tags, a missing or invalid connection, no provider or an unknown status: undefined', () => {
    assert.equal(metadataFromTags(undefined), undefined);
    assert.equal(metadataFromTags({}), undefined);
    const drop = (key: string) => Object.fromEntries(Object.entries(FULL_TAGS).filter(([k]) => k !== key));
    for (const key of ['connection', 'provider', 'status', 'failures', 'revision', 'updatedAt'])
      assert.equal(metadataFromTags(drop(key)), undefined, `without ${key}`);
    for (const [key, value] of [
      ['connection', 'Not-Valid'] as const,
      ['connection', ''],
      ['provider', ''],
      ['status', 'gone'],
    ])
      assert.equal(metadataFromTags({ ...FULL_TAGS, [key]: value }), undefined, `${key}=${value}`);
  });

  void test('each number must be a plain non-negative decimal integer within the safe range', () => {
    const numeric = [
      'failures',
      'revision',
      'updatedAt',
      'accessExpiresAt',
      'refreshAt',
      'refreshedAt',
      'nextAttemptAt',
      'grantExpiresAt',
      'readAt',
    ];
    for (const key of numeric) {
      for (const value of ['', '-1', '1.5', '01', '1e3', ' 1', 'x', '9'.repeat(16), '1'.repeat(17)])
        assert.equal(metadataFromTags({ ...FULL_TAGS, [key]: value }), undefined, `${key}=${value}`);
      assert.equal(metadataFromTags({ ...FULL_TAGS, [key]: '0' })?.[key as 'failures'], 0, `${key}=0`);
      assert.equal(
        metadataFromTags({ ...FULL_TAGS, [key]: '9007199254740991' })?.[key as 'failures'],
        9007199254740991,
      );
    }
  });

  void test('optional times that are absent stay absent; unknown tags are ignored', () => {
    const meta = metadataFromTags({
      connection: 'bare',
      provider: 'google',
      status: 'error',
      failures: '2',
      revision: '3',
      updatedAt: '4',
      writtenAt: 'not a number',
    });
    assert.deepEqual(meta, {
      connection: 'bare',
      provider: 'google',
      status: 'error',
      failures: 2,
      revision: 3,
      updatedAt: 4,
    });
  });
});

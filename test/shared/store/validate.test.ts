import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BrokerError } from '../../../shared/errors.ts';
import { isBrokerError, type ErrorCode } from '../../../shared/errors.ts';
import type { ConnectionRecord } from '../../../shared/store/types.ts';
import { MAX_RECORD_BYTES, assertConnectionName, serializeRecord } from '../../../shared/store/validate.ts';
import { sampleRecord } from './contract.ts';

function caught(fn: () => unknown): BrokerError {
  try {
    fn();
  } catch (err) {
    assert.ok(isBrokerError(err), `expected a BrokerError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a throw');
}

function expectCode(fn: () => unknown, code: ErrorCode): BrokerError {
  const err = caught(fn);
  assert.equal(err.code, code);
  return err;
}

/** A record whose JSON is exactly `bytes` long (padding in the description). */
function recordOfSize(bytes: number): ConnectionRecord {
  const record = sampleRecord('sized', { settings: { provider: 'microsoft', scopes: [], description: '' } });
  const base = Buffer.byteLength(JSON.stringify(record), 'utf8');
  record.settings.description = 'x'.repeat(bytes - base);
  assert.equal(Buffer.byteLength(JSON.stringify(record), 'utf8'), bytes);
  return record;
}

void describe('store validation', () => {
  void test('connection names: 1-63 lowercase letters, digits or dashes, alphanumeric at both ends', () => {
    for (const ok of ['a', '0', 'sales', 'a-b', 'a'.repeat(63)]) assertConnectionName(ok);
    for (const bad of ['', 'A', '-a', 'a-', 'a'.repeat(64), 'a_b', 'a.b']) {
      const err = expectCode(() => assertConnectionName(bad), 'invalid_request');
      // The value itself is never echoed, only its length.
      assert.equal(err.detail, `invalid connection name (length ${bad.length})`);
    }
  });

  void test('a non-string connection name is invalid_request, its detail saying n/a for the length', () => {
    for (const bad of [undefined, null, 42, { length: 3 }]) {
      const err = expectCode(() => assertConnectionName(bad), 'invalid_request');
      assert.equal(err.detail, 'invalid connection name (length n/a)');
    }
  });

  void test('a valid record serializes to its JSON', () => {
    const record = sampleRecord('sales');
    assert.equal(serializeRecord(record), JSON.stringify(record));
  });

  void test('a record with a bad name is refused before anything else is looked at', () => {
    const err = expectCode(() => serializeRecord(sampleRecord('Bad Name')), 'invalid_request');
    assert.equal(err.detail, 'invalid connection name (length 8)');
  });

  void test('an envelope other than v1, or without integer revision or string provider, is refused', () => {
    const cases: ConnectionRecord[] = [
      sampleRecord('env', { v: 2 as 1 }),
      sampleRecord('env', { revision: 1.5 }),
      sampleRecord('env', { revision: Number.MAX_SAFE_INTEGER + 1 }),
      sampleRecord('env', { revision: '1' as unknown as number }),
      sampleRecord('env', { settings: { provider: 7 as unknown as string, scopes: [] } }),
      sampleRecord('env', { settings: undefined as unknown as ConnectionRecord['settings'] }),
    ];
    for (const record of cases) {
      const err = expectCode(() => serializeRecord(record), 'invalid_request');
      assert.equal(err.detail, 'record envelope is not v1 or lacks revision/provider');
      assert.deepEqual(err.fields, { connection: 'env' });
    }
  });

  void test('tag limits are checked too, so both stores accept exactly the same records', () => {
    const err = expectCode(() => serializeRecord(sampleRecord('tags', { failures: -1 })), 'invalid_request');
    assert.deepEqual(err.fields, { connection: 'tags' });
  });

  void test(`a record of exactly ${MAX_RECORD_BYTES} UTF-8 bytes is accepted; one byte more is record_too_large`, () => {
    assert.equal(MAX_RECORD_BYTES, 25_600);
    const limit = recordOfSize(MAX_RECORD_BYTES);
    assert.equal(serializeRecord(limit), JSON.stringify(limit));
    const over = recordOfSize(MAX_RECORD_BYTES + 1);
    const err = expectCode(() => serializeRecord(over), 'record_too_large');
    assert.equal(err.status, 507);
    assert.equal(err.detail, `serialized record is ${MAX_RECORD_BYTES + 1} bytes, limit ${MAX_RECORD_BYTES}`);
    assert.deepEqual(err.fields, { connection: 'sized', count: MAX_RECORD_BYTES + 1 });
  });

  void test('the size limit counts UTF-8 bytes, not characters', () => {
    const record = recordOfSize(MAX_RECORD_BYTES);
    // Replace 2 ASCII characters with one 3-byte character: one character fewer, one byte more.
    record.settings.description = `€${record.settings.description!.slice(2)}`;
    assert.ok(JSON.stringify(record).length < MAX_RECORD_BYTES);
    expectCode(() => serializeRecord(record), 'record_too_large');
  });
});

/**
 * @module store/validate
 * Checks every store applies before touching its backend, so that a record accepted by the embedded file store
 * is also accepted by Key Vault (same limits locally and in Azure) and bad input changes nothing.
 */
import { BrokerError } from '../errors.ts';
import { CONNECTION_NAME_PATTERN, type ConnectionRecord } from './types.ts';
import { toTags } from './tags.ts';

/** Key Vault's value limit (25k; the service message says 25600 characters). Applied to the UTF-8 bytes. */
export const MAX_RECORD_BYTES = 25 * 1024;

/** Throws `invalid_request` unless `connection` follows the connection name rule. The value is not echoed. */
export function assertConnectionName(connection: unknown): asserts connection is string {
  if (typeof connection !== 'string' || !CONNECTION_NAME_PATTERN.test(connection)) {
    throw new BrokerError(
      'invalid_request',
      'A connection name is 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit.',
      {
        detail: `invalid connection name (length ${typeof connection === 'string' ? connection.length : 'n/a'})`,
      },
    );
  }
}

/** Validates a record for writing and returns its serialized envelope. */
export function serializeRecord(record: ConnectionRecord): string {
  assertConnectionName(record.connection);
  if (
    record.v !== 1 ||
    !Number.isSafeInteger(record.revision) ||
    typeof record.settings?.provider !== 'string'
  ) {
    throw new BrokerError('invalid_request', 'The connection record has an unsupported format.', {
      detail: 'record envelope is not v1 or lacks revision/provider',
      fields: { connection: record.connection },
    });
  }
  // Tags are Key Vault's concept, but checking them here keeps both stores accepting exactly the same records.
  toTags(record);
  const json = JSON.stringify(record);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_RECORD_BYTES) {
    throw new BrokerError('record_too_large', 'The connection record is too large to store.', {
      detail: `serialized record is ${bytes} bytes, limit ${MAX_RECORD_BYTES}`,
      fields: { connection: record.connection, count: bytes },
    });
  }
  return json;
}

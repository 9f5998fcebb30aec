/**
 * @module store/tags
 * The non-secret Key Vault tags of a connection secret: exactly the {@link RecordMetadata} fields, so the sweep
 * and the admin listing never read secret values. Numbers are decimal strings of epoch milliseconds.
 */
import { BrokerError } from '../errors.ts';
import {
  CONNECTION_NAME_PATTERN,
  toMetadata,
  type ConnectionRecord,
  type ConnectionStatus,
  type RecordMetadata,
} from './types.ts';

/** Key Vault limits: at most 15 tags per secret, each name and value at most 256 characters. */
export const MAX_TAGS = 15;
export const MAX_TAG_LENGTH = 256;

const STATUSES: readonly ConnectionStatus[] = ['pending', 'active', 'needs_reauth', 'error'];
const OPTIONAL_TIMES = [
  'accessExpiresAt',
  'refreshAt',
  'refreshedAt',
  'nextAttemptAt',
  'grantExpiresAt',
  'readAt',
] as const;
const INTEGER = /^(?:0|[1-9][0-9]{0,15})$/;

/** Tags for `record` (plus store-internal `extra` ones); throws `invalid_request` before anything is written
 * when they would break the limits. */
export function toTags(record: ConnectionRecord, extra: Record<string, string> = {}): Record<string, string> {
  const meta = toMetadata(record);
  const numbers = [meta.failures, meta.revision, meta.updatedAt, ...OPTIONAL_TIMES.map((k) => meta[k] ?? 0)];
  if (
    !meta.provider ||
    !STATUSES.includes(meta.status) ||
    !numbers.every((n) => Number.isSafeInteger(n) && n >= 0)
  ) {
    // The listing could not read such tags back, so the connection would silently vanish from the sweep.
    throw new BrokerError('invalid_request', 'The connection metadata is malformed.', {
      detail: 'provider empty, status unknown or a counter/time is not a non-negative integer',
      fields: { connection: record.connection },
    });
  }
  const tags: Record<string, string> = {
    connection: meta.connection,
    provider: meta.provider,
    status: meta.status,
    failures: String(meta.failures),
    revision: String(meta.revision),
    updatedAt: String(meta.updatedAt),
  };
  for (const key of OPTIONAL_TIMES) {
    const value = meta[key];
    if (value !== undefined) tags[key] = String(value);
  }
  Object.assign(tags, extra);
  const entries = Object.entries(tags);
  const tooLong = entries.find(([k, v]) => k.length > MAX_TAG_LENGTH || v.length > MAX_TAG_LENGTH);
  if (entries.length > MAX_TAGS || tooLong) {
    throw new BrokerError('invalid_request', 'The connection metadata exceeds the store limits.', {
      detail: tooLong
        ? `tag ${tooLong[0]} is ${tooLong[1].length} characters, limit ${MAX_TAG_LENGTH}`
        : `${entries.length} tags, limit ${MAX_TAGS}`,
      fields: { connection: record.connection },
    });
  }
  return tags;
}

/** Rebuilds metadata from tags; undefined when they are missing or malformed (e.g. edited by hand). */
export function metadataFromTags(tags: Record<string, string> | undefined): RecordMetadata | undefined {
  if (!tags) return undefined;
  const { connection, provider, status } = tags;
  if (!connection || !CONNECTION_NAME_PATTERN.test(connection) || !provider) return undefined;
  if (!STATUSES.includes(status as ConnectionStatus)) return undefined;
  const failures = int(tags.failures);
  const revision = int(tags.revision);
  const updatedAt = int(tags.updatedAt);
  if (failures === undefined || revision === undefined || updatedAt === undefined) return undefined;
  const meta: RecordMetadata = {
    connection,
    provider,
    status: status as ConnectionStatus,
    failures,
    revision,
    updatedAt,
  };
  for (const key of OPTIONAL_TIMES) {
    if (tags[key] === undefined) continue;
    const value = int(tags[key]);
    if (value === undefined) return undefined;
    meta[key] = value;
  }
  return meta;
}

function int(text: string | undefined): number | undefined {
  if (text === undefined || !INTEGER.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

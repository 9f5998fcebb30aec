/**
 * @module broker/extraScopes
 * Keeps a connection's record bounded before a token for another resource (`?scope=`) is asked for. Each such
 * token is stored beside the primary one, so without a cap a caller cycling through scope sets grows the record
 * until Key Vault refuses the write — after the provider has already rotated the refresh token. So the room is
 * made first, before the provider call: at most {@link MAX_EXTRA_TOKENS} extra tokens, the least recently used
 * dropped, and the record's size checked with room for the new token.
 */
import { BrokerError } from '../errors.ts';
import type { AccessTokenEntry, ConnectionRecord } from '../store/types.ts';
import { MAX_RECORD_BYTES } from '../store/validate.ts';

/** Extra-scope tokens kept per connection. */
export const MAX_EXTRA_TOKENS = 8;
/** Room assumed for the token about to be issued when the record holds none to measure. */
const MIN_ENTRY_ALLOWANCE = 4096;
/** A rotated refresh token may come back longer than the one it replaces. */
const REFRESH_TOKEN_SLACK = 1024;

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** When the entry was last used: an extra token is refreshed only when a caller reads it, so its issue time
 * (else its expiry) orders entries by use. */
function lastUsed(entry: AccessTokenEntry): number {
  const issued = (entry as AccessTokenEntry & { issuedAt?: number }).issuedAt;
  return issued ?? entry.expiresAt;
}

/**
 * The record to refresh `key` from: extra tokens beyond the cap, least recently used first, dropped, and more
 * dropped while the record with a new token of the largest size seen so far would exceed the store's limit.
 * Throws `record_too_large` (nothing asked of the provider, nothing written) when even that is not enough.
 */
export function withRoomFor(record: ConnectionRecord, key: string): ConnectionRecord {
  const tokens = record.tokens;
  if (!tokens) return record;
  const extra = { ...tokens.extra };
  delete extra[key]; // replaced by the new token
  const byAge = Object.entries(extra).sort(([, a], [, b]) => lastUsed(a) - lastUsed(b));
  const entries = [tokens.primary, ...Object.values(tokens.extra ?? {})].filter(
    (e): e is AccessTokenEntry => e !== undefined,
  );
  const allowance =
    Math.max(MIN_ENTRY_ALLOWANCE, ...entries.map((e) => bytes(e) + key.length)) + REFRESH_TOKEN_SLACK;
  const build = (kept: [string, AccessTokenEntry][]): ConnectionRecord => {
    const next = { ...record, tokens: { ...tokens } };
    const current = tokens.extra?.[key];
    const all = current ? [...kept, [key, current] as [string, AccessTokenEntry]] : kept;
    if (all.length > 0) next.tokens.extra = Object.fromEntries(all);
    else delete next.tokens.extra;
    return next;
  };
  let kept = byAge.slice(Math.max(0, byAge.length - (MAX_EXTRA_TOKENS - 1)));
  let next = build(kept);
  while (bytes(next) + allowance > MAX_RECORD_BYTES && kept.length > 0) {
    kept = kept.slice(1);
    next = build(kept);
  }
  if (bytes(next) + allowance > MAX_RECORD_BYTES) {
    throw new BrokerError('record_too_large', 'The connection record has no room for another token.', {
      detail: `record ${bytes(next)} bytes + ${allowance} for the new token exceeds ${MAX_RECORD_BYTES}`,
      fields: { connection: record.connection },
    });
  }
  return next;
}

/** The extra tokens `withRoomFor` dropped (for the log line). */
export function droppedCount(before: ConnectionRecord, after: ConnectionRecord): number {
  const had = Object.keys(before.tokens?.extra ?? {}).length;
  const has = Object.keys(after.tokens?.extra ?? {}).length;
  return Math.max(0, had - has);
}

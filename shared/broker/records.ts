/**
 * @module broker/records
 * Record reads and pure record transformations the broker parts share: look-ups that turn "absent" into the
 * right error, the usability check before a token is served, the record after a token response, and the
 * guarded write that refresh results and refresh failures both go through.
 */
import { BrokerError } from '../errors.ts';
import { OIDC_SCOPES } from '../oauth/scopes.ts';
import type { ProviderClient, TokenResult } from '../oauth/provider.ts';
import type {
  AccessTokenEntry,
  ConnectedIdentity,
  ConnectionRecord,
  TokenSet,
  TokenStore,
} from '../store/types.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { BrokerContext } from './context.ts';

export function unknownConnection(): BrokerError {
  return new BrokerError('unknown_connection', 'There is no connection with this name.');
}

export function notConnected(): BrokerError {
  return new BrokerError(
    'connection_not_connected',
    'No account has been connected yet: open a connect link first.',
  );
}

export async function mustGet(store: TokenStore, name: string): Promise<ConnectionRecord> {
  assertConnectionName(name);
  const record = await store.get(name);
  if (!record) throw unknownConnection();
  return record;
}

/**
 * Writes `next` to the store only while this process holds the connection's lock and the store has not moved
 * past it; the caller holds the lock and read `next`'s predecessor under it. Returns undefined when written, or
 * the newer stored record (then `next` is dropped, never written over it). Throws `lock_timeout` when the lease
 * was lost: another instance may hold the connection now. Under strict rotation a late write could otherwise put
 * back a refresh token that another writer has replaced.
 */
export async function putUnlessSuperseded(
  ctx: Pick<BrokerContext, 'store' | 'lock' | 'log'>,
  next: ConnectionRecord,
  reason: string,
): Promise<ConnectionRecord | undefined> {
  const name = next.connection;
  const latest = await ctx.store.get(name);
  if (latest && latest.revision >= next.revision) {
    ctx.log.warn('refresh.superseded', {
      connection: name,
      reason,
      detail: `store revision ${latest.revision} >= ${next.revision}; not overwritten`,
    });
    return latest;
  }
  // Right before the write: a lease lost meanwhile means another instance may hold the connection now.
  if (ctx.lock.held && !ctx.lock.held(name)) {
    throw new BrokerError('lock_timeout', 'The connection lock was lost; try again shortly.', {
      detail: 'lease lost before the store write',
      retryAfterSeconds: 1,
      fields: { connection: name, lock: ctx.lock.kind },
    });
  }
  await ctx.store.put(next);
  return undefined;
}

export function providerFor(providers: ReadonlyMap<string, ProviderClient>, name: string): ProviderClient {
  const provider = providers.get(name);
  if (!provider) {
    throw new BrokerError('invalid_request', `Unknown provider "${name.slice(0, 32)}". Configure it first.`, {
      detail: 'unknown provider',
    });
  }
  return provider;
}

/** Throws the answer a caller gets for a connection that cannot serve tokens. */
export function assertUsable(record: ConnectionRecord): void {
  if (record.status === 'pending') throw notConnected();
  // Before the token check: a pin mismatch drops the tokens and must still read as "sign in again".
  if (record.status === 'needs_reauth') {
    throw new BrokerError(
      'connection_needs_reauth',
      'The account must sign in again: open a new connect link.',
      {
        fields: { connection: record.connection, providerError: record.lastError?.providerError },
      },
    );
  }
  if (record.status === 'error') {
    throw new BrokerError(
      'connection_error',
      'The last refresh failed because of the broker configuration; an administrator must fix it.',
      { fields: { connection: record.connection, providerError: record.lastError?.providerError } },
    );
  }
  if (!record.tokens) throw notConnected();
}

export function withoutTokens(record: ConnectionRecord): ConnectionRecord {
  const copy = { ...record };
  delete copy.tokens;
  return copy;
}

/** The primary token (`key` ''), or the token stored for another scope set. */
export function pickEntry(record: ConnectionRecord, key: string): AccessTokenEntry | undefined {
  return key === '' ? record.tokens?.primary : record.tokens?.extra?.[key];
}

/**
 * The record after a successful token response. `key` undefined = the primary token. `consented`: scopes the
 * account agreed to at sign-in. Microsoft's token response lists only the scopes of the one resource the
 * token is for, so the other consented resources are recorded from the request.
 */
export function withTokens(
  record: ConnectionRecord,
  result: TokenResult,
  previousRefreshToken: string,
  key: string | undefined,
  now: number,
  consented: readonly string[] = [],
): ConnectionRecord {
  const entry: AccessTokenEntry = {
    accessToken: result.accessToken,
    tokenType: result.tokenType,
    expiresAt: now + result.expiresInSeconds * 1000,
    // With expiresAt, the lifetime granted: the refresh margin is bounded by it (refreshPolicy.ts).
    issuedAt: now,
    scope: result.scope,
  };
  if (result.refreshInSeconds !== undefined) entry.refreshAt = now + result.refreshInSeconds * 1000;
  const previous = record.tokens;
  const tokens: TokenSet = {
    // No refresh token in the response means the old one stays valid (RFC 6749 §6).
    refreshToken: result.refreshToken ?? previousRefreshToken,
    grantedScopes: previous?.grantedScopes ?? [],
    ...(previous?.primary ? { primary: previous.primary } : {}),
    ...(previous?.extra ? { extra: { ...previous.extra } } : {}),
  };
  // A stated end of the grant (`refresh_token_expires_in`) belongs to the refresh token it came with.
  if (result.refreshTokenExpiresInSeconds !== undefined)
    tokens.refreshTokenExpiresAt = now + result.refreshTokenExpiresInSeconds * 1000;
  else if (!result.refreshToken && previous?.refreshTokenExpiresAt !== undefined)
    tokens.refreshTokenExpiresAt = previous.refreshTokenExpiresAt;
  if (key === undefined) {
    tokens.primary = entry;
    tokens.grantedScopes = mergeGranted(
      [...tokens.grantedScopes, ...consented.filter((c) => !isOidc(c))],
      result.scope,
    );
  } else {
    tokens.extra = { ...tokens.extra, [key]: entry };
  }
  const next: ConnectionRecord = {
    ...record,
    tokens,
    updatedAt: now,
    revision: record.revision + 1,
    failures: 0,
    status: record.status === 'pending' ? 'pending' : 'active',
  };
  if (key === undefined) next.refreshedAt = now;
  delete next.nextAttemptAt;
  delete next.lastError;
  return next;
}

/** A freshly connected record (code redeemed or refresh token imported): old tokens and identity replaced;
 * `identity` is the verified one from the sign-in, undefined for an import. */
export function connected(
  latest: ConnectionRecord,
  result: TokenResult,
  refreshToken: string,
  now: number,
  consented: readonly string[],
  identity: ConnectedIdentity | undefined,
): ConnectionRecord {
  const next = withTokens(withoutTokens(latest), result, refreshToken, undefined, now, consented);
  next.status = 'active';
  next.connectedAt = now;
  // The sign-in answered any claims challenge it carried.
  delete next.claims;
  if (identity) next.identity = identity;
  else delete next.identity;
  return next;
}

function mergeGranted(previous: readonly string[], scope: string): string[] {
  return [...new Set([...previous, ...scope.split(' ').filter((s) => s.length > 0 && !isOidc(s))])];
}

function isOidc(scope: string): boolean {
  return OIDC_SCOPES.has(scope);
}

/**
 * @module broker/accessTokens
 * The caller-facing read. Hot path: a fresh cached token, no store call. Otherwise one collapsed slow path
 * per connection and scope: read the store, authorise the caller, refresh when due, serve.
 */
import { BrokerError } from '../errors.ts';
import { decideRequestedScopes, scopeKey } from '../oauth/scopes.ts';
import type { AccessTokenEntry, ConnectionRecord } from '../store/types.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { BrokerContext } from './context.ts';
import { servesAfterFailure, servesUntilExpiry } from './failures.ts';
import { assertUsable, mustGet, pickEntry } from './records.ts';
import type { Refresher } from './refresher.ts';
import { tokenFreshness } from './refreshPolicy.ts';
import { type CacheEntry, cacheKey } from './tokenCache.ts';

export interface Caller {
  /**
   * `function_key` callers carry no app id; Entra callers carry `azp`/`appid`. `broker` is the broker itself
   * (the owner mail reads its sending connection's token); no HTTP request can be this caller.
   */
  kind: 'function_key' | 'entra' | 'broker';
  appId?: string;
}

export interface AccessTokenResponse {
  access_token: string;
  token_type: string;
  expires_at: string;
  expires_in: number;
  scope: string;
  connection: string;
}

export class AccessTokens {
  readonly #ctx: BrokerContext;
  readonly #refresher: Refresher;

  constructor(ctx: BrokerContext, refresher: Refresher) {
    this.#ctx = ctx;
    this.#refresher = refresher;
  }

  async get(name: string, caller: Caller, scopes?: readonly string[]): Promise<AccessTokenResponse> {
    const ctx = this.#ctx;
    assertConnectionName(name);
    const key = scopes && scopes.length > 0 ? scopeKey(scopes) : '';
    const now = ctx.now();
    // Remembered in memory and written with the next refresh: the sweep keeps only used connections fresh.
    this.#refresher.noteRead(name, now);
    const cached = ctx.cache.fresh(name, key, now, ctx.policy.marginMs);
    if (cached) {
      authorizeCaller(cached.allowedCallers, caller, name);
      return tokenResponse(name, cached.entry, now);
    }
    // Authorise before anything that could refresh: a caller outside allowedCallers triggers no provider call.
    const record = await ctx.flights.run(`read:${name}`, () => mustGet(ctx.store, name));
    authorizeCaller(record.settings.allowedCallers, caller, name);
    const served = await ctx.flights.run(`token:${cacheKey(name, key)}`, () =>
      this.#slow(record, key, scopes),
    );
    return tokenResponse(name, served.entry, ctx.now());
  }

  async #slow(
    record: ConnectionRecord,
    key: string,
    scopes: readonly string[] | undefined,
  ): Promise<CacheEntry> {
    const ctx = this.#ctx;
    const name = record.connection;
    const held = pickEntry(record, key);
    if (
      held &&
      servesUntilExpiry(record) &&
      tokenFreshness(held, ctx.now(), ctx.policy.marginMs) !== 'expired'
    ) {
      // Refreshing is pointless until a person acts, but the token already issued stays good to its expiry.
      return this.#remember(record, key, held);
    }
    assertUsable(record);
    // What the provider is asked for: the requested scopes, or for `{resource}/.default` the scopes the
    // connection holds on that resource (docs/security.md, "The /.default rule"). Stored under that key.
    let providerScopes = scopes;
    let entryKey = key;
    if (scopes && key !== '') {
      const decision = decideRequestedScopes(scopes, record.tokens?.grantedScopes ?? []);
      if (!decision.ok) {
        // Only scopes the account consented to; anything else would need a new sign-in.
        throw new BrokerError(
          decision.code,
          decision.code === 'invalid_request'
            ? 'A /.default scope cannot be combined with other scopes.'
            : 'This connection was not granted those scopes. Reconnect with the wider scopes.',
          { detail: decision.reason, fields: { connection: name } },
        );
      }
      providerScopes = decision.scopes;
      entryKey = scopeKey(decision.scopes);
    }
    const current = pickEntry(record, entryKey);
    if (current && tokenFreshness(current, ctx.now(), ctx.policy.marginMs) === 'fresh') {
      return this.#remember(record, key, current);
    }
    try {
      const refreshed = await this.#refresher.refresh(name, key === '' ? undefined : providerScopes, {
        force: false,
        reason: current ? 'expiring' : 'no_access_token',
      });
      const entry = pickEntry(refreshed, entryKey);
      if (!entry) throw new BrokerError('provider_error', 'The provider returned no access token.');
      return this.#remember(refreshed, key, entry);
    } catch (err) {
      // A still-valid token is served even though its early refresh failed, unless the grant was revoked
      // (docs/security.md, "Provider failures: per-class policy"); an expired one never is.
      if (
        current &&
        tokenFreshness(current, ctx.now(), ctx.policy.marginMs) !== 'expired' &&
        servesAfterFailure(err)
      ) {
        ctx.log.warn('token.served_stale', { connection: name, code: (err as BrokerError).code });
        return { entry: current, allowedCallers: record.settings.allowedCallers };
      }
      throw err;
    }
  }

  #remember(record: ConnectionRecord, key: string, entry: AccessTokenEntry): CacheEntry {
    const value: CacheEntry = { entry, allowedCallers: record.settings.allowedCallers };
    return this.#ctx.cache.remember(
      record.connection,
      key,
      value,
      this.#ctx.now(),
      this.#ctx.policy.marginMs,
    );
  }
}

/** An empty or absent allow-list admits every authenticated caller; app ids compare case-insensitively. */
export function authorizeCaller(allowed: readonly string[] | undefined, caller: Caller, name: string): void {
  if (!allowed || allowed.length === 0 || caller.kind === 'broker') return;
  if (caller.appId && allowed.some((id) => id.toLowerCase() === caller.appId?.toLowerCase())) return;
  throw new BrokerError('forbidden', 'This caller may not read this connection.', {
    fields: { connection: name, caller: caller.appId ?? caller.kind },
  });
}

export function tokenResponse(name: string, entry: AccessTokenEntry, now: number): AccessTokenResponse {
  return {
    access_token: entry.accessToken,
    token_type: entry.tokenType,
    expires_at: new Date(entry.expiresAt).toISOString(),
    expires_in: Math.max(0, Math.floor((entry.expiresAt - now) / 1000)),
    scope: entry.scope,
    connection: name,
  };
}

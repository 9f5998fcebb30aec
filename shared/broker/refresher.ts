/**
 * @module broker/refresher
 * Refresh coordination for one connection: in-process single flight, then the cross-instance connection
 * lock, then a re-read of the store (another instance may have refreshed while we waited), then the policy
 * decision, and only then the provider. The rotated refresh token is stored before anyone is answered.
 */
import { announce } from './changes.ts';
import { ProviderFailure } from '../oauth/provider.ts';
import { scopeKey } from '../oauth/scopes.ts';
import { type ConnectionRecord, toMetadata } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { backoffError, recordProviderFailure } from './failures.ts';
import { assertUsable, mustGet, notConnected, pickEntry, providerFor, withTokens } from './records.ts';
import { type RefreshReason, shouldRefresh, tokenFreshness } from './refreshPolicy.ts';

export interface RefreshOptions {
  /** Admin-triggered: bypasses status, backoff and freshness. */
  force: boolean;
  reason: RefreshReason | 'manual';
}

export class Refresher {
  readonly #ctx: BrokerContext;

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
  }

  /** Refreshes one connection (primary token, or the token for `scopes`) and returns the record after it. */
  refresh(
    name: string,
    scopes: readonly string[] | undefined,
    opts: RefreshOptions,
  ): Promise<ConnectionRecord> {
    const ctx = this.#ctx;
    const key = scopes ? scopeKey(scopes) : '';
    return ctx.flights.run(`refresh:${name}\n${key}`, () =>
      ctx.lock.withLock(name, async () => {
        // Re-read after taking the lock: another instance may have refreshed while we waited.
        const record = await mustGet(ctx.store, name);
        if (record.status === 'pending' || !record.tokens) throw notConnected();
        if (!opts.force && !this.#due(record, key)) return record;
        return this.#callProvider(record, scopes, key, opts.reason);
      }),
    );
  }

  /** Whether the re-read record still needs the provider; throws when it may not be refreshed now. */
  #due(record: ConnectionRecord, key: string): boolean {
    const now = this.#ctx.now();
    assertUsable(record);
    if (key === '') {
      const decision = shouldRefresh(toMetadata(record), now, this.#ctx.policy);
      if (decision.reason === 'backoff') throw backoffError(record, now);
      return decision.refresh;
    }
    const entry = pickEntry(record, key);
    return !(entry && tokenFreshness(entry, now, this.#ctx.policy.marginMs) === 'fresh');
  }

  async #callProvider(
    record: ConnectionRecord,
    scopes: readonly string[] | undefined,
    key: string,
    reason: string,
  ): Promise<ConnectionRecord> {
    const ctx = this.#ctx;
    const name = record.connection;
    const provider = providerFor(ctx.providers, record.settings.provider);
    const tokens = record.tokens;
    if (!tokens) throw notConnected();
    const started = ctx.now();
    try {
      const result = await provider.refresh(tokens.refreshToken, scopes ?? record.settings.scopes);
      const now = ctx.now();
      const next = withTokens(record, result, tokens.refreshToken, key === '' ? undefined : key, now);
      // Persist the rotated refresh token before anyone is answered with the new access token.
      await ctx.store.put(next);
      ctx.cache.forget(name);
      await announce(ctx, record, next);
      ctx.log.info('refresh.succeeded', {
        connection: name,
        provider: provider.name,
        reason,
        durationMs: now - started,
        outcome: result.refreshToken ? 'rotated' : 'kept',
      });
      return next;
    } catch (err) {
      if (!(err instanceof ProviderFailure)) throw err;
      return recordProviderFailure(ctx, record, err, reason, key);
    }
  }
}

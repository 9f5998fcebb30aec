/**
 * @module broker/connections
 * Connection administration: create or change settings, read, list, delete, and import an existing refresh
 * token. Every write runs under the connection lock and forgets the connection's cached tokens.
 */
import { announce } from './changes.ts';
import { BrokerError } from '../errors.ts';
import { ProviderFailure, type TokenResult } from '../oauth/provider.ts';
import type { ConnectionRecord, ConnectionSettings } from '../store/types.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { BrokerContext } from './context.ts';
import { checkIdentity, identityMatches } from './connectFlow.ts';
import { connected, mustGet, providerFor, unknownConnection } from './records.ts';
import { type ConnectionSummary, type ConnectionView, connectionView, summaryView } from './views.ts';

export class Connections {
  readonly #ctx: BrokerContext;

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
  }

  async upsert(
    name: string,
    settings: ConnectionSettings,
  ): Promise<{ created: boolean; view: ConnectionView }> {
    const ctx = this.#ctx;
    assertConnectionName(name);
    const provider = providerFor(ctx.providers, settings.provider);
    const scopes = settings.scopes.length > 0 ? settings.scopes : [...provider.defaultScopes];
    const normalised: ConnectionSettings = { ...settings, scopes };
    // Not collapsed by single flight: two different PUTs must both apply, in lock order.
    return ctx.lock.withLock(name, async () => {
      const existing = await ctx.store.get(name);
      const record = pinHeld(settingsApplied(existing, name, normalised, ctx.now()), ctx.now());
      await ctx.store.put(record);
      ctx.cache.forget(name);
      await announce(ctx, existing, record);
      ctx.log.info('connection.saved', {
        connection: name,
        provider: normalised.provider,
        outcome: existing ? 'updated' : 'created',
      });
      return { created: !existing, view: connectionView(record) };
    });
  }

  async get(name: string): Promise<ConnectionView> {
    return connectionView(await mustGet(this.#ctx.store, name));
  }

  async list(): Promise<ConnectionSummary[]> {
    const list = await this.#ctx.store.listMetadata();
    return list.sort((a, b) => a.connection.localeCompare(b.connection)).map(summaryView);
  }

  async delete(name: string): Promise<void> {
    const ctx = this.#ctx;
    assertConnectionName(name);
    const before = await ctx.lock.withLock(name, async () => {
      const existing = await ctx.store.get(name);
      return (await ctx.store.delete(name)) ? existing : undefined;
    });
    ctx.cache.forget(name);
    if (!before) throw unknownConnection();
    await announce(ctx, before, undefined);
    ctx.log.info('connection.deleted', { connection: name });
  }

  /** Stores an existing refresh token (migration from a manual setup) after proving it works. */
  async importRefreshToken(name: string, refreshToken: string): Promise<ConnectionView> {
    const ctx = this.#ctx;
    const record = await mustGet(ctx.store, name);
    const provider = providerFor(ctx.providers, record.settings.provider);
    const pinned = isPinned(record.settings.expectedIdentity);
    let result: TokenResult;
    try {
      // A pinned connection takes only a grant that proves, by a verified id_token, to be the pinned account's.
      result = await provider.refresh(refreshToken, record.settings.scopes, pinned ? { identity: true } : {});
    } catch (err) {
      if (err instanceof ProviderFailure && err.failure.kind === 'reauth') {
        throw new BrokerError(
          'invalid_request',
          'The provider rejected this refresh token; nothing was stored.',
          {
            detail: 'import refresh rejected',
            fields: err.fields,
          },
        );
      }
      throw err;
    }
    checkIdentity(record.settings.expectedIdentity, result.identity, name);
    const updated = await ctx.lock.withLock(name, async () => {
      const latest = await ctx.store.get(name);
      // Deleted meanwhile: it stays deleted.
      if (!latest) throw unknownConnection();
      // Deleted and created again, or moved to another provider, while the provider answered: the token was
      // proven for a connection that is no longer there.
      if (latest.createdAt !== record.createdAt || latest.settings.provider !== record.settings.provider) {
        throw new BrokerError(
          'invalid_request',
          'The connection changed while the refresh token was checked; nothing was stored.',
          { detail: 'connection changed during import', fields: { connection: name } },
        );
      }
      // The pin may have changed while the provider answered.
      checkIdentity(latest.settings.expectedIdentity, result.identity, name);
      const next = connected(
        latest,
        result,
        refreshToken,
        ctx.now(),
        latest.settings.scopes,
        result.identity,
      );
      await ctx.store.put(next);
      return { before: latest, next };
    });
    ctx.cache.forget(name);
    await announce(ctx, updated.before, updated.next);
    ctx.log.info('connection.imported', { connection: name, provider: record.settings.provider });
    return connectionView(updated.next);
  }
}

function isPinned(pin: ConnectionSettings['expectedIdentity']): boolean {
  return Boolean(pin && (pin.tenantId || pin.objectId || pin.username));
}

/**
 * A pin holds at every moment: saving a pin that the connected account does not match (or a connection whose
 * account was never verified, e.g. an import before the pin) withholds its tokens at once — they are dropped,
 * the status says `needs_reauth` with `identity_mismatch`, and only a sign-in by the pinned account restores it.
 */
export function pinHeld(record: ConnectionRecord, now: number): ConnectionRecord {
  const pin = record.settings.expectedIdentity;
  if (!record.tokens || !isPinned(pin) || identityMatches(pin, record.identity)) return record;
  const next: ConnectionRecord = {
    ...record,
    status: 'needs_reauth',
    lastError: { code: 'identity_mismatch', cause: 'revoked', at: now },
  };
  delete next.tokens;
  delete next.nextAttemptAt;
  return next;
}

/** The record after an admin saves `settings`: new, or changed in place (a provider change drops tokens). */
export function settingsApplied(
  existing: ConnectionRecord | undefined,
  name: string,
  settings: ConnectionSettings,
  now: number,
): ConnectionRecord {
  if (!existing) {
    return {
      v: 1,
      connection: name,
      settings,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      failures: 0,
      revision: 1,
    };
  }
  const record: ConnectionRecord = { ...existing, settings, updatedAt: now, revision: existing.revision + 1 };
  if (existing.settings.provider !== settings.provider) {
    // Tokens from another provider are meaningless now: back to pending until someone connects.
    delete record.tokens;
    delete record.identity;
    record.status = 'pending';
  }
  return record;
}

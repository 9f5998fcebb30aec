/**
 * @module broker/refresher
 * Refresh coordination for one connection: in-process single flight, then the cross-instance connection
 * lock, then a re-read of the store (another instance may have refreshed while we waited), then the policy
 * decision, and only then the provider. The rotated refresh token is stored before anyone is answered.
 *
 * No rotation is lost while the process lives. Under strict rotation (reuse of a superseded refresh token
 * revokes the whole grant, RFC 9700 §4.14) the token the provider just issued is the only one that works, so:
 * - a rotated record whose write fails (store down, lease lost) is kept in memory and written before that
 *   connection refreshes again — the next refresh presents it, never the superseded one in the store;
 * - the write happens only while this process still holds the connection's lock (checked right before it);
 * - a late writer never overwrites a newer record: the store is re-read and its `revision` compared first.
 */
import { announce } from './changes.ts';
import { BrokerError, isBrokerError } from '../errors.ts';
import { ProviderFailure } from '../oauth/provider.ts';
import { scopeKey } from '../oauth/scopes.ts';
import { type ConnectionRecord, toMetadata } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { droppedCount, withRoomFor } from './extraScopes.ts';
import { backoffError, isResourceRefusal, recordProviderFailure } from './failures.ts';
import {
  assertUsable,
  mustGet,
  notConnected,
  pickEntry,
  providerFor,
  putUnlessSuperseded,
  withTokens,
} from './records.ts';
import { backoffMs, type RefreshReason, shouldRefresh, tokenFreshness } from './refreshPolicy.ts';

/** How long a resource refusal is answered from memory: MSAL.NET holds an answer that needs the user for 2 minutes
 * (https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/wiki/Client-Throttling). */
export const REFUSAL_HOLD_MS = 120_000;

export interface RefreshOptions {
  /** Admin-triggered: bypasses status, backoff and freshness. */
  force: boolean;
  reason: RefreshReason | 'manual';
}

export class Refresher {
  readonly #ctx: BrokerContext;
  /** Rotated records the store has not taken yet, by connection (see the module comment). */
  readonly #unwritten = new Map<string, ConnectionRecord>();
  /** Backoff of extra-scope (`?scope=`) tokens after transient failures, by connection and scope set: kept
   * apart from the record so one resource's failures do not back off the connection's primary token. */
  readonly #extraBackoff = new Map<string, { failures: number; until: number }>();
  /** Extra scopes Microsoft refused until a person acts (MFA, Conditional Access, consent): asking again cannot
   * succeed, so the same answer is given from memory for {@link REFUSAL_HOLD_MS}, or until a new sign-in. */
  readonly #refused = new Map<
    string,
    { until: number; connectedAt: number | undefined; answer: BrokerError }
  >();
  /** Last read of each connection through this process (written with the next refresh; see broker/idle.ts). */
  readonly #lastRead = new Map<string, number>();

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
  }

  /** A caller read a token of `name`: no write now, the next refresh records it as the record's `readAt`. */
  noteRead(name: string, now: number): void {
    this.#lastRead.set(name, now);
  }

  /** The last read of `name` through this process, if any. */
  lastReadOf(name: string): number | undefined {
    return this.#lastRead.get(name);
  }

  /** Connections holding a rotated token that is not in the store yet. */
  unwrittenCount(): number {
    return this.#unwritten.size;
  }

  /** Writes every kept rotation now (the sweep calls this first); failures stay kept for the next try. */
  async saveUnwritten(): Promise<void> {
    for (const name of [...this.#unwritten.keys()]) {
      await this.#ctx.lock
        .withLock(name, async () => {
          await this.#settle(await this.#read(name));
        })
        .catch(() => undefined); // logged where it failed; retried before the next refresh
    }
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
        // Re-read after taking the lock: another instance may have refreshed while we waited. A rotation
        // this process could not store yet goes in first: it is the only refresh token known to work.
        const record = await this.#settle(await this.#read(name));
        if (record.status === 'pending' || !record.tokens) throw notConnected();
        if (!opts.force && !this.#due(record, key)) return record;
        return this.#callProvider(record, scopes, key, opts.reason);
      }),
    );
  }

  async #read(name: string): Promise<ConnectionRecord> {
    try {
      return await mustGet(this.#ctx.store, name);
    } catch (err) {
      if (isBrokerError(err) && err.code === 'unknown_connection') this.#unwritten.delete(name);
      throw err;
    }
  }

  /** `stored` with the kept rotation of its connection written over it, if there is one and it is newer. */
  async #settle(stored: ConnectionRecord): Promise<ConnectionRecord> {
    const name = stored.connection;
    const kept = this.#unwritten.get(name);
    if (!kept) return stored;
    // When someone wrote after the rotation (a new sign-in, another instance), #write keeps the newer record.
    const current = await this.#write(kept, stored, 'unwritten');
    if (current === kept) this.#ctx.log.info('refresh.unwritten_saved', { connection: name });
    return current;
  }

  /**
   * Writes `next` (read as `before`) unless the lock is gone or the store moved past it, and returns the
   * connection's current record: `next`, or the newer stored one (then `next` is dropped, never written over
   * it). On a failure `next` is kept for {@link #settle} and the error thrown.
   */
  async #write(next: ConnectionRecord, before: ConnectionRecord, why: string): Promise<ConnectionRecord> {
    const ctx = this.#ctx;
    const name = next.connection;
    try {
      const newer = await putUnlessSuperseded(ctx, next, why);
      if (newer) {
        this.#unwritten.delete(name);
        ctx.cache.forget(name);
        return newer;
      }
    } catch (err) {
      this.#unwritten.set(name, next);
      ctx.log.warn('refresh.write_deferred', {
        connection: name,
        reason: why,
        code: isBrokerError(err) ? err.code : 'internal_error',
      });
      throw err;
    }
    this.#unwritten.delete(name);
    ctx.cache.forget(name);
    await announce(ctx, before, next);
    return next;
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
    if (entry && tokenFreshness(entry, now, this.#ctx.policy.marginMs) === 'fresh') return false;
    // The connection's backoff holds for every resource (the provider is failing for this grant), and so does
    // this resource's own.
    if (record.nextAttemptAt !== undefined && now < record.nextAttemptAt) throw backoffError(record, now);
    const own = this.#extraBackoff.get(`${record.connection}\n${key}`);
    if (own && now < own.until) throw backoffError({ ...record, nextAttemptAt: own.until }, now);
    const refused = this.#refused.get(`${record.connection}\n${key}`);
    if (refused && now < refused.until && refused.connectedAt === record.connectedAt) throw refused.answer;
    return true;
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
    // Room for another resource's token is made before the provider call, never after it.
    const base = key === '' ? record : withRoomFor(record, key);
    if (base !== record && droppedCount(record, base) > 0) {
      ctx.log.info('refresh.extra_tokens_dropped', { connection: name, count: droppedCount(record, base) });
    }
    try {
      const result = await provider.refresh(tokens.refreshToken, scopes ?? record.settings.scopes);
      const now = ctx.now();
      const next = withTokens(base, result, tokens.refreshToken, key === '' ? undefined : key, now);
      // Records from before reads were recorded start their idle clock at this write.
      next.readAt = Math.max(record.readAt ?? now, this.#lastRead.get(name) ?? 0);
      if (key !== '') {
        this.#extraBackoff.delete(`${name}\n${key}`);
        this.#refused.delete(`${name}\n${key}`);
      }
      // Persist the rotated refresh token before anyone is answered with the new access token.
      const current = await this.#write(next, record, reason);
      if (current !== next) return current;
      ctx.log.info('refresh.succeeded', {
        connection: name,
        provider: provider.name,
        reason,
        durationMs: now - started,
        outcome: result.refreshToken ? 'rotated' : 'kept',
        // Never silent: the provider sent no expires_in, so its configured default lifetime was assumed.
        ...(result.expiresInAssumed
          ? { detail: `no expires_in: assumed ${result.expiresInSeconds} s (provider setting)` }
          : {}),
      });
      return next;
    } catch (err) {
      if (!(err instanceof ProviderFailure)) throw err;
      const kind = err.failure.kind;
      if (key !== '' && (kind === 'transient' || kind === 'protocol'))
        return this.#extraFailure(record, key, err);
      return recordProviderFailure(ctx, record, err, reason, key).catch((answer: unknown) => {
        if (key !== '' && isResourceRefusal(answer)) {
          const until = ctx.now() + REFUSAL_HOLD_MS;
          this.#refused.set(`${name}\n${key}`, { until, connectedAt: record.connectedAt, answer });
        }
        throw answer;
      });
    }
  }

  /** A transient failure of one extra resource: backed off in memory, the record (and its failure count, which
   * drives the primary token's backoff) left alone. */
  #extraFailure(record: ConnectionRecord, key: string, err: ProviderFailure): never {
    const ctx = this.#ctx;
    const now = ctx.now();
    const id = `${record.connection}\n${key}`;
    const failures = (this.#extraBackoff.get(id)?.failures ?? 0) + 1;
    const until = now + backoffMs(failures, err.failure.retryAfterSeconds, ctx.random);
    this.#extraBackoff.set(id, { failures, until });
    ctx.log.warn('refresh.failed', {
      connection: record.connection,
      reason: 'extra_scope',
      code: err.code,
      attempt: failures,
      ...err.fields,
    });
    throw new BrokerError(
      'provider_unavailable',
      'The provider is unavailable right now; try again shortly.',
      {
        retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)),
        fields: { connection: record.connection, ...err.fields },
        cause: err,
      },
    );
  }
}

/**
 * @module broker/failures
 * What a failed provider refresh means for the connection and for the caller. {@link failureOutcome} is the
 * pure decision (next record, log event, answer); {@link recordProviderFailure} applies it: the race check
 * against the store, the write, the one log line.
 */
import { announce } from './changes.ts';
import { constantTimeEqual } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import type { ProviderFailure } from '../oauth/provider.ts';
import type { ConnectionRecord } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { backoffMs } from './refreshPolicy.ts';

export interface FailureOutcome {
  next: ConnectionRecord;
  event: 'refresh.needs_reauth' | 'refresh.failed';
  answer: BrokerError;
}

/** Errors already logged where they were recorded; the sweep must not log them again (the alert counts lines). */
const logged = new WeakSet<Error>();

export function wasLogged(err: unknown): boolean {
  return err instanceof Error && logged.has(err);
}

/** reauth → needs_reauth; config → error; anything else → counted, backed off, answered 503 with Retry-After. */
export function failureOutcome(
  record: ConnectionRecord,
  err: ProviderFailure,
  now: number,
  random?: () => number,
): FailureOutcome {
  const kind = err.failure.kind;
  const next: ConnectionRecord = { ...record, updatedAt: now, revision: record.revision + 1 };
  next.lastError = { code: err.code, at: now };
  if (err.failure.providerError) next.lastError.providerError = err.failure.providerError;
  if (err.failure.codes) next.lastError.providerCodes = err.failure.codes;
  if (kind === 'reauth') {
    next.status = 'needs_reauth';
    delete next.nextAttemptAt;
  } else if (kind === 'config') {
    next.status = 'error';
    delete next.nextAttemptAt;
  } else {
    next.failures = record.failures + 1;
    next.nextAttemptAt = now + backoffMs(next.failures, err.failure.retryAfterSeconds, random);
  }
  let answer: BrokerError = err;
  if (kind === 'reauth') {
    answer = new BrokerError(
      'connection_needs_reauth',
      'The account must sign in again: open a new connect link.',
      {
        detail: 'refresh token rejected',
        fields: err.fields,
        cause: err,
      },
    );
  } else if (kind === 'transient' || kind === 'protocol') {
    answer = new BrokerError(
      'provider_unavailable',
      'The provider is unavailable right now; try again shortly.',
      {
        retryAfterSeconds: secondsUntil(next.nextAttemptAt ?? now, now),
        fields: err.fields,
        cause: err,
      },
    );
  }
  return { next, event: kind === 'reauth' ? 'refresh.needs_reauth' : 'refresh.failed', answer };
}

/** Records a failed refresh of `record` (the state it was refreshed from) and throws the caller's answer. */
export async function recordProviderFailure(
  ctx: BrokerContext,
  record: ConnectionRecord,
  err: ProviderFailure,
  reason: string,
  key: string,
): Promise<never> {
  const name = record.connection;
  const now = ctx.now();
  if (key !== '' && isScopeRefusal(err)) {
    // The provider refused only the extra resource; the connection itself is fine.
    throw new BrokerError(
      'scope_not_granted',
      'The provider refused a token for those scopes; reconnect with consent for them.',
      { fields: { connection: name, ...err.fields } },
    );
  }
  if (err.failure.kind === 'reauth') {
    // A concurrent refresh elsewhere may have rotated the token we just used: if the store moved on, the
    // rejection says nothing about the connection.
    const latest = await ctx.store.get(name);
    if (latest?.tokens && !constantTimeEqual(latest.tokens.refreshToken, record.tokens?.refreshToken ?? '')) {
      ctx.log.info('refresh.raced', { connection: name, reason });
      throw new BrokerError('provider_unavailable', 'The connection was refreshed concurrently; try again.', {
        retryAfterSeconds: 1,
      });
    }
  }
  const { next, event, answer } = failureOutcome(record, err, now, ctx.random);
  await ctx.store.put(next);
  ctx.cache.forget(name);
  await announce(ctx, record, next);
  ctx.log.warn(event, { connection: name, reason, code: err.code, status: next.status, ...err.fields });
  logged.add(answer);
  throw answer;
}

/** The answer while a connection is inside its backoff window. */
export function backoffError(record: ConnectionRecord, now: number): BrokerError {
  return new BrokerError('provider_unavailable', 'The provider failed recently; the broker is backing off.', {
    retryAfterSeconds: secondsUntil(record.nextAttemptAt ?? now, now),
    fields: { connection: record.connection },
  });
}

/** Failures a still-valid token may be served through (the provider, lock or store is briefly away). */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof BrokerError &&
    (err.code === 'provider_unavailable' || err.code === 'lock_timeout' || err.code === 'store_unavailable')
  );
}

function isScopeRefusal(err: ProviderFailure): boolean {
  const f = err.failure;
  return (
    f.suberror === 'consent_required' ||
    f.providerError === 'consent_required' ||
    f.providerError === 'invalid_scope' ||
    f.providerError === 'invalid_resource' ||
    (f.codes ?? []).some((c) => c === 65001 || c === 70011 || c === 500011)
  );
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

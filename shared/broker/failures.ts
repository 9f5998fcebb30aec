/**
 * @module broker/failures
 * What a failed provider refresh means for the connection and for the caller. {@link failureOutcome} is the
 * pure decision (next record, log event, answer); {@link recordProviderFailure} applies it: the race check
 * against the store, the write, the one log line.
 */
import { announce } from './changes.ts';
import { constantTimeEqual } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import { codeHint } from '../oauth/classify.ts';
import type { ProviderFailure } from '../oauth/provider.ts';
import type { ConnectionRecord } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { putUnlessSuperseded } from './records.ts';
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

/** reauth → needs_reauth (with its cause, and a claims challenge to send with the next sign-in); config → error;
 * anything else → counted, backed off, answered 503 with Retry-After. */
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
    next.lastError.cause = err.failure.cause ?? 'revoked';
    if (err.failure.claims) next.claims = err.failure.claims;
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
    const cause = next.lastError.cause ?? 'revoked';
    const hint = codeHint(err.failure.codes);
    answer = new BrokerError(
      'connection_needs_reauth',
      cause === 'interaction'
        ? `Microsoft requires the account owner to complete a sign-in step${hint ? ` (${hint})` : ''}: open a new connect link.`
        : `The account must sign in again${hint ? ` (${hint})` : ''}: open a new connect link.`,
      {
        detail: `refresh token rejected (${cause})`,
        fields: { ...err.fields, reauthCause: cause },
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
  const refusal = key !== '' ? resourceRefusal(err) : undefined;
  if (refusal) {
    // Only this resource was refused (MFA or Conditional Access for it, consent, scope): the refresh token and
    // the connection's other tokens are fine. A claims challenge is kept for the next sign-in.
    if (err.failure.claims && err.failure.claims !== record.claims) {
      await putOrRaced(
        ctx,
        { ...record, claims: err.failure.claims, updatedAt: now, revision: record.revision + 1 },
        reason,
      );
      ctx.cache.forget(name);
    }
    ctx.log.warn('refresh.resource_refused', { connection: name, reason, code: refusal.code, ...err.fields });
    logged.add(refusal);
    throw refusal;
  }
  if (err.failure.kind === 'reauth') {
    // A concurrent refresh elsewhere may have rotated the token we just used: if the store moved on, the
    // rejection says nothing about the connection.
    const latest = await ctx.store.get(name);
    if (latest?.tokens && !constantTimeEqual(latest.tokens.refreshToken, record.tokens?.refreshToken ?? '')) {
      ctx.log.info('refresh.raced', { connection: name, reason });
      throw raced();
    }
  }
  const { next, event, answer } = failureOutcome(record, err, now, ctx.random);
  await putOrRaced(ctx, next, reason);
  ctx.cache.forget(name);
  await announce(ctx, record, next);
  ctx.log.warn(event, { connection: name, reason, code: err.code, status: next.status, ...err.fields });
  logged.add(answer);
  throw answer;
}

/** The answer when another writer changed the connection after `record` was read: the failure says nothing
 * about the connection as it is now, so the caller tries again. */
function raced(): BrokerError {
  return new BrokerError('provider_unavailable', 'The connection was refreshed concurrently; try again.', {
    retryAfterSeconds: 1,
  });
}

/** Writes a failure's record under the same guard as a refresh (lease held, store not moved past it); when the
 * store moved on nothing is written and the caller is answered as for a raced refresh. */
async function putOrRaced(ctx: BrokerContext, next: ConnectionRecord, reason: string): Promise<void> {
  if (await putUnlessSuperseded(ctx, next, reason)) {
    ctx.cache.forget(next.connection);
    throw raced();
  }
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

/** The answer when a failure concerns only the resource of a `?scope=` read, judged from the class (never from
 * AADSTS numbers); undefined when it concerns the whole connection (`bad_token`: the refresh token is dead). */
function resourceRefusal(err: ProviderFailure): BrokerError | undefined {
  const f = err.failure;
  const hint = codeHint(f.codes);
  const fields = { ...err.fields, reauthCause: f.cause };
  if (
    (f.kind === 'reauth' && f.cause === 'consent') ||
    (f.kind === 'config' && (f.providerError === 'invalid_scope' || f.providerError === 'invalid_resource'))
  ) {
    return new BrokerError(
      'scope_not_granted',
      `The provider refused a token for those scopes${hint ? ` (${hint})` : ''}; the account owner must reconnect and consent to them.`,
      { fields, cause: err },
    );
  }
  if (f.kind === 'reauth' && f.suberror !== 'bad_token') {
    return new BrokerError(
      'resource_needs_reauth',
      `Microsoft requires the account owner to sign in again for these scopes${hint ? ` (${hint})` : ''}: ` +
        "open a new connect link. The connection's other tokens keep working.",
      { fields, cause: err },
    );
  }
  return undefined;
}

/** An answer that concerns one `?scope=` resource only (see {@link resourceRefusal}). */
export function isResourceRefusal(err: unknown): err is BrokerError {
  return (
    err instanceof BrokerError && (err.code === 'resource_needs_reauth' || err.code === 'scope_not_granted')
  );
}

/** Whether a connection that cannot refresh may still serve an access token until it expires: a configuration
 * error says nothing about the grant, and an interaction demand (MFA, Conditional Access) concerns the next
 * token, not the one already issued. A revoked grant or withdrawn consent never serves. */
export function servesUntilExpiry(record: ConnectionRecord): boolean {
  return (
    record.status === 'error' ||
    (record.status === 'needs_reauth' && record.lastError?.cause === 'interaction')
  );
}

/** Whether a refresh answer still lets the caller have the token it already holds (see {@link servesUntilExpiry}). */
export function servesAfterFailure(err: unknown): boolean {
  if (!(err instanceof BrokerError)) return false;
  if (isTransient(err) || err.code === 'provider_misconfigured') return true;
  return (
    (err.code === 'connection_needs_reauth' || err.code === 'resource_needs_reauth') &&
    err.fields.reauthCause === 'interaction'
  );
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

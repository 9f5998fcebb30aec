/**
 * @module broker/refreshPolicy
 * Pure refresh decisions (README "How refresh works"). No I/O here: the sweep, the token endpoint and the tests all ask the
 * same functions, and the reasons they return are what the logs show.
 */
import type { AccessTokenEntry, RecordMetadata } from '../store/types.ts';

export const REFRESH_MARGIN_MS = 5 * 60_000;
/**
 * The margin never takes more than this fraction of the lifetime the provider granted. Without the bound a token
 * that lives no longer than the margin (120 s against 300 s) is due the moment it arrives and every read refreshes
 * it. Half is what Microsoft's `refresh_in` announces for long-lived tokens and what MSAL Python uses when it
 * computes `refresh_in` itself (https://github.com/AzureAD/microsoft-authentication-library-for-python/pull/321).
 */
export const MAX_MARGIN_FRACTION = 0.5;
export const KEEP_ALIVE_MS = 7 * 24 * 3600_000;
/** Microsoft: no fast retry loop; the first retry after a 5xx or timeout waits at least 5 s. */
export const BACKOFF_BASE_MS = 5_000;
export const BACKOFF_MAX_MS = 15 * 60_000;

export interface RefreshPolicy {
  marginMs: number;
  keepAliveMs: number;
  /** The sweep stops refreshing ahead connections nobody read for this long (0 or absent: never). */
  idleAfterMs?: number;
}

export type RefreshReason =
  | 'fresh'
  | 'not_connected'
  | 'needs_reauth'
  | 'error_status'
  | 'backoff'
  | 'no_access_token'
  | 'expired'
  | 'expiring'
  | 'refresh_in_passed'
  | 'keep_alive';

export interface RefreshDecision {
  refresh: boolean;
  reason: RefreshReason;
}

/** The lifetime facts of one access token; `issuedAt` is absent only in records written before it was kept. */
export interface TokenTimes {
  expiresAt: number;
  issuedAt?: number | undefined;
  refreshAt?: number | undefined;
}

/** The margin for one token: the configured one, but never more than {@link MAX_MARGIN_FRACTION} of its lifetime. */
export function effectiveMarginMs(times: TokenTimes, marginMs: number): number {
  if (times.issuedAt === undefined) return marginMs; // lifetime unknown; the next refresh records it
  const lifetime = Math.max(0, times.expiresAt - times.issuedAt);
  return Math.min(marginMs, Math.floor(lifetime * MAX_MARGIN_FRACTION));
}

/** When a token becomes due: its margin point, or the provider's `refresh_in` when that comes first. */
export function renewAt(times: TokenTimes, marginMs: number): number {
  const byMargin = times.expiresAt - effectiveMarginMs(times, marginMs);
  return times.refreshAt !== undefined ? Math.min(times.refreshAt, byMargin) : byMargin;
}

/** Whether the sweep should refresh a connection, from its non-secret metadata alone. The primary token is
 * written together with `refreshedAt` (both at the same instant), so `refreshedAt` is its issue time. */
export function shouldRefresh(meta: RecordMetadata, now: number, policy: RefreshPolicy): RefreshDecision {
  if (meta.status === 'pending') return { refresh: false, reason: 'not_connected' };
  if (meta.status === 'needs_reauth') return { refresh: false, reason: 'needs_reauth' };
  if (meta.status === 'error') return { refresh: false, reason: 'error_status' };
  if (meta.nextAttemptAt !== undefined && now < meta.nextAttemptAt)
    return { refresh: false, reason: 'backoff' };
  if (meta.accessExpiresAt === undefined) return { refresh: true, reason: 'no_access_token' };
  if (now >= meta.accessExpiresAt) return { refresh: true, reason: 'expired' };
  const times = { expiresAt: meta.accessExpiresAt, issuedAt: meta.refreshedAt };
  if (now >= meta.accessExpiresAt - effectiveMarginMs(times, policy.marginMs))
    return { refresh: true, reason: 'expiring' };
  if (meta.refreshAt !== undefined && now >= meta.refreshAt)
    return { refresh: true, reason: 'refresh_in_passed' };
  if (meta.refreshedAt === undefined || now - meta.refreshedAt >= policy.keepAliveMs) {
    return { refresh: true, reason: 'keep_alive' };
  }
  return { refresh: false, reason: 'fresh' };
}

/** How long before a grant with a stated end (`refresh_token_expires_in`) the sweep starts warning about it. */
export const GRANT_WARNING_MS = 3 * 24 * 3600_000;

export type GrantState = 'open_ended' | 'ok' | 'expiring' | 'expired';

/** Where a connection's grant stands when the provider said when it ends (Google time-based access, GitHub
 * apps): refreshing cannot extend it, only a new sign-in can, so the sweep flags it ahead of time. */
export function grantState(grantExpiresAt: number | undefined, now: number): GrantState {
  if (grantExpiresAt === undefined) return 'open_ended';
  if (now >= grantExpiresAt) return 'expired';
  if (now >= grantExpiresAt - GRANT_WARNING_MS) return 'expiring';
  return 'ok';
}

export type TokenFreshness = 'fresh' | 'due' | 'expired';

/** A cached access token is served while fresh; once due it is refreshed but may still be served if that
 * refresh fails; once expired it is never served. Due = past {@link renewAt}, so a token is due once per
 * lifetime, however short the lifetime and however many readers ask. */
export function tokenFreshness(entry: AccessTokenEntry, now: number, marginMs: number): TokenFreshness {
  if (now >= entry.expiresAt) return 'expired';
  if (now >= renewAt(entry, marginMs)) return 'due';
  return 'fresh';
}

/** Delay before the next attempt after `failures` consecutive transient failures: exponential, jittered,
 * bounded, and never shorter than the provider's Retry-After. The jitter only adds (100-150 %), so the first
 * retry keeps Microsoft's 5 s floor. */
export function backoffMs(
  failures: number,
  retryAfterSeconds: number | undefined,
  random: () => number = Math.random,
): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  const jittered = Math.min(BACKOFF_MAX_MS, Math.round(exp * (1 + random() / 2)));
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

/**
 * @module broker/idle
 * Writes grow with use, not with the number of connections: every refresh is a Key Vault secret write (300 per
 * 10 s per vault), so the sweep refreshes ahead only connections someone read recently. A connection nobody read
 * for `BROKER_IDLE_AFTER_HOURS` is still kept alive (refreshed every `BROKER_KEEPALIVE_DAYS`, so its refresh token
 * does not lapse), and its next read refreshes on demand. Pure decision, like refreshPolicy.ts.
 */
import type { RecordMetadata } from '../store/types.ts';
import { type RefreshDecision, type RefreshPolicy, shouldRefresh } from './refreshPolicy.ts';

export type SweepDecision = RefreshDecision | { refresh: false; reason: 'idle' };

/** The sweep's decision: {@link shouldRefresh}, except that an idle connection is only kept alive. `readHere`:
 * the last read through this process, not yet written to the record. */
export function sweepDecision(
  meta: RecordMetadata,
  now: number,
  policy: RefreshPolicy,
  readHere?: number,
): SweepDecision {
  const decision = shouldRefresh(meta, now, policy);
  if (!decision.refresh || decision.reason === 'keep_alive') return decision;
  const readAt = meta.readAt === undefined ? undefined : Math.max(meta.readAt, readHere ?? 0);
  if (!isIdle({ ...meta, ...(readAt === undefined ? {} : { readAt }) }, now, policy)) return decision;
  const keepAliveDue = meta.refreshedAt === undefined || now - meta.refreshedAt >= policy.keepAliveMs;
  return keepAliveDue ? { refresh: true, reason: 'keep_alive' } : { refresh: false, reason: 'idle' };
}

/** Idle: a read time is known and older than the policy's bound. Records written before reads were recorded
 * have none and count as used. */
export function isIdle(meta: RecordMetadata, now: number, policy: RefreshPolicy): boolean {
  const after = policy.idleAfterMs ?? 0;
  return after > 0 && meta.readAt !== undefined && now - meta.readAt >= after;
}

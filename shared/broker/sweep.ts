/**
 * @module broker/sweep
 * The timer sweep: refresh every connection that is due, judged from metadata only, with bounded concurrency.
 * Refreshes start on the first page of the listing instead of waiting for the whole vault to be listed, so the
 * Key Vault budget is not left idle while 10,000 connections page in (docs/perf.md, "Sweep at scale").
 */
import pLimit from 'p-limit';
import { BrokerError, ensureError } from '../errors.ts';
import type { RecordMetadata } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { wasLogged } from './failures.ts';
import type { Refresher } from './refresher.ts';
import { sweepDecision } from './idle.ts';
import { grantState, type RefreshReason } from './refreshPolicy.ts';

export interface SweepResult {
  listed: number;
  due: number;
  refreshed: number;
  failed: number;
  skipped: number;
}

export async function sweep(ctx: BrokerContext, refresher: Refresher): Promise<SweepResult> {
  const result: SweepResult = { listed: 0, due: 0, refreshed: 0, failed: 0, skipped: 0 };
  // Rotations this process could not store yet are written first (broker/refresher.ts).
  await refresher.saveUnwritten();
  // Refreshes start while later pages are still being listed; p-limit bounds how many run at once.
  const limit = pLimit(ctx.sweepConcurrency);
  const refreshes: Promise<void>[] = [];
  let listingError: Error | undefined;
  const pages = ctx.store.listMetadataPages?.() ?? onePage(ctx.store.listMetadata());
  try {
    for await (const page of pages) {
      const now = ctx.now();
      for (const meta of page) {
        result.listed++;
        const decision = sweepDecision(meta, now, ctx.policy, refresher.lastReadOf(meta.connection));
        if (decision.refresh) {
          result.due++;
          const item = { connection: meta.connection, reason: decision.reason };
          refreshes.push(limit(() => refreshOne(ctx, refresher, item, result)));
        }
        // A grant with a stated end cannot be extended by refreshing: say so while there is time to reconnect.
        const grant = grantState(meta.grantExpiresAt, now);
        if ((grant === 'expiring' || grant === 'expired') && meta.status === 'active')
          ctx.log.warn('refresh.grant_expiring', {
            connection: meta.connection,
            reason: grant,
            detail: `grant ends ${new Date(meta.grantExpiresAt ?? 0).toISOString()}; open a new connect link`,
          });
      }
    }
  } catch (err) {
    // What was listed is still refreshed; the listing failure is reported after.
    listingError = ensureError(err);
  }
  await Promise.all(refreshes);
  const fields = {
    count: result.listed,
    due: result.due,
    refreshed: result.refreshed,
    failed: result.failed,
    skipped: result.skipped,
  };
  if (listingError !== undefined) {
    ctx.log.warn('refresh.sweep', { ...fields, outcome: 'listing_failed' });
    throw listingError;
  }
  ctx.log.info('refresh.sweep', fields);
  return result;
}

/** Refreshes one due connection and counts the outcome; never throws (one failure must not end the sweep). */
async function refreshOne(
  ctx: BrokerContext,
  refresher: Refresher,
  item: { connection: string; reason: RefreshReason },
  result: SweepResult,
): Promise<void> {
  try {
    const before = ctx.now();
    const record = await refresher.refresh(item.connection, undefined, { force: false, reason: item.reason });
    if ((record.refreshedAt ?? 0) >= before) result.refreshed++;
    else result.skipped++;
  } catch (err) {
    result.failed++;
    if (wasLogged(err)) return;
    const code = err instanceof BrokerError ? err.code : 'internal_error';
    ctx.log.warn(code === 'connection_needs_reauth' ? 'refresh.needs_reauth' : 'refresh.failed', {
      connection: item.connection,
      reason: item.reason,
      code,
      ...(err instanceof BrokerError ? err.fields : {}),
    });
  }
}

async function* onePage(list: Promise<RecordMetadata[]>): AsyncGenerator<RecordMetadata[]> {
  yield await list;
}

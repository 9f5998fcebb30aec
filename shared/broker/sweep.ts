/**
 * @module broker/sweep
 * The timer sweep: refresh every connection that is due, judged from metadata only, with bounded concurrency.
 * Workers start on the first page of the listing instead of waiting for the whole vault to be listed, so the
 * Key Vault budget is not left idle while 10,000 connections page in (docs/perf.md, "Sweep at scale").
 */
import { BrokerError, ensureError } from '../errors.ts';
import type { RecordMetadata } from '../store/types.ts';
import type { BrokerContext } from './context.ts';
import { wasLogged } from './failures.ts';
import type { Refresher } from './refresher.ts';
import { grantState, type RefreshReason, shouldRefresh } from './refreshPolicy.ts';

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
  const due: { connection: string; reason: RefreshReason }[] = [];
  let next = 0;
  let listing = true;
  const idle: (() => void)[] = [];
  const wake = () => {
    for (const resume of idle.splice(0)) resume();
  };
  const pages = ctx.store.listMetadataPages?.() ?? onePage(ctx.store.listMetadata());
  const lister = (async () => {
    try {
      for await (const page of pages) {
        const now = ctx.now();
        for (const meta of page) {
          result.listed++;
          const decision = shouldRefresh(meta, now, ctx.policy);
          if (decision.refresh) due.push({ connection: meta.connection, reason: decision.reason });
          // A grant with a stated end cannot be extended by refreshing: say so while there is time to reconnect.
          const grant = grantState(meta.grantExpiresAt, now);
          if ((grant === 'expiring' || grant === 'expired') && meta.status === 'active')
            ctx.log.warn('refresh.grant_expiring', {
              connection: meta.connection,
              reason: grant,
              detail: `grant ends ${new Date(meta.grantExpiresAt ?? 0).toISOString()}; open a new connect link`,
            });
        }
        result.due = due.length;
        wake();
      }
    } finally {
      listing = false;
      wake();
    }
  })();
  const worker = async () => {
    for (;;) {
      const item = due[next];
      if (!item) {
        if (!listing) return;
        await new Promise<void>((resume) => idle.push(resume));
        continue;
      }
      next++;
      try {
        const before = ctx.now();
        const record = await refresher.refresh(item.connection, undefined, {
          force: false,
          reason: item.reason,
        });
        if ((record.refreshedAt ?? 0) >= before) result.refreshed++;
        else result.skipped++;
      } catch (err) {
        result.failed++;
        if (wasLogged(err)) continue;
        const code = err instanceof BrokerError ? err.code : 'internal_error';
        ctx.log.warn(code === 'connection_needs_reauth' ? 'refresh.needs_reauth' : 'refresh.failed', {
          connection: item.connection,
          reason: item.reason,
          code,
          ...(err instanceof BrokerError ? err.fields : {}),
        });
      }
    }
  };
  // Workers finish what was listed even when the listing fails part-way; the failure is reported after.
  const listed = lister.then(
    () => undefined,
    (err: unknown) => ensureError(err),
  );
  await Promise.all([listed, ...Array.from({ length: ctx.sweepConcurrency }, worker)]);
  const fields = {
    count: result.listed,
    due: result.due,
    refreshed: result.refreshed,
    failed: result.failed,
    skipped: result.skipped,
  };
  const listingError = await listed;
  if (listingError !== undefined) {
    ctx.log.warn('refresh.sweep', { ...fields, outcome: 'listing_failed' });
    throw listingError;
  }
  ctx.log.info('refresh.sweep', fields);
  return result;
}

async function* onePage(list: Promise<RecordMetadata[]>): AsyncGenerator<RecordMetadata[]> {
  yield await list;
}

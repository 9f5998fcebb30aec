/**
 * PROTOTYPE of a product change proposed by the sweep benchmark (not used by the broker itself): a sweep that
 * starts refreshing due connections while the Key Vault listing is still paging, instead of listing everything
 * first. At 10,000 connections the listing alone is 400 sequential pages (~15 s at 20-40 ms each) during which
 * `Broker.refreshDue()` leaves the vault's transaction budget idle.
 *
 * Decisions use the product's own `shouldRefresh()` on the same tags the store reads (`metadataFromTags`), and
 * each due connection goes through the public `Broker.forceRefresh()`, which performs exactly the store and IdP
 * calls the sweep's refresh does (re-read under the lock, token request, one write); it only skips the re-check
 * that another instance refreshed meanwhile, which costs no I/O. The listing must not be restarted by a 429 (the
 * SDK drops continuation tokens), so this prototype is meant to run behind the vault pacer.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import type { Broker, SweepResult } from '../../shared/broker/broker.ts';
import { type RefreshPolicy, shouldRefresh } from '../../shared/broker/refreshPolicy.ts';
import { metadataFromTags } from '../../shared/store/tags.ts';

export interface PipelinedSweepOptions {
  broker: Broker;
  /** A client for the same vault (sharing the store's pacer). */
  client: SecretClient;
  policy: RefreshPolicy;
  concurrency: number;
  now: () => number;
}

export async function pipelinedSweep(opts: PipelinedSweepOptions): Promise<SweepResult & { listMs: number }> {
  const result: SweepResult = { listed: 0, due: 0, refreshed: 0, failed: 0, skipped: 0 };
  const queue: string[] = [];
  let head = 0;
  let listing = true;
  const waiting: (() => void)[] = [];
  const wakeAll = () => waiting.splice(0).forEach((resolve) => resolve());
  const started = performance.now();
  let listMs = 0;

  const lister = (async () => {
    try {
      for await (const page of opts.client.listPropertiesOfSecrets().byPage({ maxPageSize: 25 })) {
        const now = opts.now();
        for (const properties of page) {
          if (!properties.name.startsWith('conn-')) continue;
          const meta = metadataFromTags(properties.tags);
          if (!meta) continue;
          result.listed++;
          if (shouldRefresh(meta, now, opts.policy).refresh) {
            result.due++;
            queue.push(meta.connection);
          }
        }
        wakeAll();
      }
    } finally {
      listing = false;
      listMs = performance.now() - started;
      wakeAll();
    }
  })();

  const worker = async () => {
    for (;;) {
      const name = queue[head];
      if (name === undefined) {
        if (!listing) return;
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      head++;
      try {
        await opts.broker.forceRefresh(name);
        result.refreshed++;
      } catch {
        result.failed++;
      }
    }
  };
  await Promise.all([lister, ...Array.from({ length: opts.concurrency }, worker)]);
  return { ...result, listMs };
}

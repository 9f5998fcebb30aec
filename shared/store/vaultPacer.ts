/**
 * @module store/vaultPacer
 * Keeps one process under Key Vault's transaction budget (4,000 per 10 s per vault) instead of discovering it
 * through 429s: a sliding window caps requests, and any 429 pauses every request of the process for a back-off
 * that doubles up to 8 s and resets on the next success. Without it a sweep's workers turn one throttle into a
 * burst of 429s that per-call retries cannot absorb, and a throttled listing restarts from page one (the SDK
 * keeps no continuation token). Measured in docs/perf.md ("Sweep at scale").
 */
import type { SecretClientOptions } from '@azure/keyvault-secrets';

type PolicyConfig = NonNullable<SecretClientOptions['additionalPolicies']>[number];

export interface VaultPacerOptions {
  /** Requests per window for this process; default 3,600 (90 % of the vault's budget, the rest for others). */
  limit?: number;
  windowMs?: number;
  /** Shared pause after a 429, doubling per consecutive 429 up to `maxPauseMs`. The store passes its own
   * retry backoff here, so pacing and per-call retries agree. Defaults 1 s and 8 s. */
  initialPauseMs?: number;
  maxPauseMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createVaultPacerPolicy(opts: VaultPacerOptions = {}): PolicyConfig {
  const limit = opts.limit ?? 3600;
  const windowMs = opts.windowMs ?? 10_000;
  const initialPauseMs = opts.initialPauseMs ?? 1000;
  const maxPauseMs = opts.maxPauseMs ?? 8000;
  const sent: number[] = [];
  let head = 0;
  let pausedUntil = 0;
  let pauseMs = initialPauseMs;

  async function slot(): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (head < sent.length && (sent[head] as number) <= now - windowMs) head++;
      if (head > 4096) {
        sent.splice(0, head);
        head = 0;
      }
      if (now < pausedUntil) {
        await sleep(pausedUntil - now);
        continue;
      }
      if (sent.length - head < limit) {
        sent.push(now);
        return;
      }
      await sleep((sent[head] as number) + windowMs - now + 1);
    }
  }

  return {
    position: 'perRetry',
    policy: {
      name: 'tokenBrokerVaultPacer',
      async sendRequest(request, next) {
        await slot();
        const response = await next(request);
        if (response.status === 429) {
          pausedUntil = Math.max(pausedUntil, Date.now() + pauseMs);
          pauseMs = Math.min(maxPauseMs, pauseMs * 2);
        } else if (response.status < 500) {
          pauseMs = initialPauseMs;
        }
        return response;
      },
    },
  };
}

/**
 * @module store/vaultPacer
 * Keeps one process under Key Vault's two transaction budgets per vault and 10 s — 300 secret writes ("CREATE
 * secret") and 4,000 for all other transactions (https://learn.microsoft.com/azure/key-vault/general/service-limits)
 * — instead of discovering them through 429s. Each budget has its own sliding window, and a 429 pauses every
 * request of that budget for a back-off that doubles up to 8 s and resets on the next success. Every refresh is a
 * secret write, so the write budget, not the 4,000, sets the pace of a sweep (30 refreshes/s per vault). Without
 * pacing, a sweep's workers turn one throttle into a burst of 429s that per-call retries cannot absorb, and a
 * throttled listing restarts from page one (the SDK keeps no continuation token). Measured in docs/perf.md.
 */
import type { SecretClientOptions } from '@azure/keyvault-secrets';

type PolicyConfig = NonNullable<SecretClientOptions['additionalPolicies']>[number];

/** The time source; tests pass a fake one. */
export interface PacerClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface VaultPacerOptions {
  /** Non-write requests per window for this process; default 3,600 (90 % of 4,000, the rest for others). */
  limit?: number;
  /** Secret writes (`PUT /secrets/{name}`) per window; default 285 (95 % of 300: every refresh is a write, so
   * this share sets the sweep's pace; the rest is for other instances' connect callbacks and on-demand refreshes). */
  writeLimit?: number;
  windowMs?: number;
  /** Pause after a 429, doubling per consecutive 429 of the same budget up to `maxPauseMs`. The store passes its
   * own retry backoff here, so pacing and per-call retries agree. Defaults 1 s and 8 s. */
  initialPauseMs?: number;
  maxPauseMs?: number;
  clock?: PacerClock;
}

export const DEFAULT_PACER = Object.freeze({ limit: 3600, writeLimit: 285, windowMs: 10_000 });

const realClock: PacerClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** `PUT /secrets/{name}` is what Key Vault counts as CREATE secret (each new version included). */
export function isSecretWrite(method: string, url: string): boolean {
  return method === 'PUT' && /^\/secrets\/[^/]+\/?$/.test(new URL(url).pathname);
}

interface Budget {
  limit: number;
  sent: number[];
  head: number;
  pausedUntil: number;
  pauseMs: number;
}

export function createVaultPacerPolicy(opts: VaultPacerOptions = {}): PolicyConfig {
  const windowMs = opts.windowMs ?? DEFAULT_PACER.windowMs;
  const initialPauseMs = opts.initialPauseMs ?? 1000;
  const maxPauseMs = opts.maxPauseMs ?? 8000;
  const clock = opts.clock ?? realClock;
  const budget = (limit: number): Budget => ({
    limit,
    sent: [],
    head: 0,
    pausedUntil: 0,
    pauseMs: initialPauseMs,
  });
  const reads = budget(opts.limit ?? DEFAULT_PACER.limit);
  const writes = budget(opts.writeLimit ?? DEFAULT_PACER.writeLimit);

  async function slot(b: Budget): Promise<void> {
    for (;;) {
      const now = clock.now();
      while (b.head < b.sent.length && (b.sent[b.head] as number) <= now - windowMs) b.head++;
      if (b.head > 4096) {
        b.sent.splice(0, b.head);
        b.head = 0;
      }
      if (now < b.pausedUntil) {
        await clock.sleep(b.pausedUntil - now);
        continue;
      }
      if (b.sent.length - b.head < b.limit) {
        b.sent.push(now);
        return;
      }
      await clock.sleep((b.sent[b.head] as number) + windowMs - now + 1);
    }
  }

  return {
    position: 'perRetry',
    policy: {
      name: 'tokenBrokerVaultPacer',
      async sendRequest(request, next) {
        const b = isSecretWrite(request.method, request.url) ? writes : reads;
        await slot(b);
        const response = await next(request);
        if (response.status === 429) {
          b.pausedUntil = Math.max(b.pausedUntil, clock.now() + b.pauseMs);
          b.pauseMs = Math.min(maxPauseMs, b.pauseMs * 2);
        } else if (response.status < 500) {
          b.pauseMs = initialPauseMs;
        }
        return response;
      },
    },
  };
}

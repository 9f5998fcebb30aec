/**
 * PROTOTYPE of a product change proposed by the sweep benchmark (not used by the broker itself): a Key Vault
 * pipeline policy that paces every request the process sends to one vault.
 *
 * - A sliding window keeps this process under `limit` requests per `windowMs` (Key Vault allows 4,000 per 10 s per
 *   vault; the default leaves 10 % for other instances and for the token path).
 * - A 429 pauses every request of the process (not just the one that failed) for a back-off that doubles up to
 *   8 s and resets on the next success, so a burst of workers does not turn into a burst of 429s that the
 *   store's per-call retry budget (4 attempts, ~7 s) cannot absorb.
 *
 * It plugs into `SecretClientOptions.additionalPolicies`, so it can be measured without touching shared code.
 */
import type { SecretClientOptions } from '@azure/keyvault-secrets';

type PolicyConfig = NonNullable<SecretClientOptions['additionalPolicies']>[number];

export interface VaultPacerOptions {
  limit?: number;
  windowMs?: number;
}

export interface VaultPacer {
  policy: PolicyConfig;
  stats: { sent: number; waitedMs: number; throttled: number; pauses: number };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createVaultPacer(opts: VaultPacerOptions = {}): VaultPacer {
  const limit = opts.limit ?? 3600;
  const windowMs = opts.windowMs ?? 10_000;
  const sent: number[] = [];
  let head = 0;
  let pausedUntil = 0;
  let backoffMs = 1000;
  const stats = { sent: 0, waitedMs: 0, throttled: 0, pauses: 0 };

  async function slot(): Promise<void> {
    const started = Date.now();
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
        stats.sent++;
        stats.waitedMs += now - started;
        return;
      }
      await sleep((sent[head] as number) + windowMs - now + 1);
    }
  }

  return {
    stats,
    policy: {
      position: 'perRetry',
      policy: {
        name: 'benchVaultPacer',
        async sendRequest(request, next) {
          await slot();
          const response = await next(request);
          if (response.status === 429) {
            stats.throttled++;
            const until = Date.now() + backoffMs;
            if (until > pausedUntil) {
              pausedUntil = until;
              stats.pauses++;
              backoffMs = Math.min(8000, backoffMs * 2);
            }
          } else if (response.status < 500) {
            backoffMs = 1000;
          }
          return response;
        },
      },
    },
  };
}

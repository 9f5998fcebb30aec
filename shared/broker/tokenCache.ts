/**
 * @module broker/tokenCache
 * The hot path's memory: the last access token served per connection and scope, with the caller allow-list
 * it was served under. Only fresh tokens are kept; any write to a connection on this instance forgets all of its
 * entries, so a changed allow-list or a revoked connection is never answered from here.
 *
 * Other instances write too (on Flex Consumption the sweep runs on instances that serve no HTTP, and any HTTP
 * instance may take a DELETE, a re-pin or a reconnect). An entry is therefore trusted for at most the coherence
 * bound after the store read that produced it: past it the next read goes back to the store (one read per
 * connection and scope set per bound on each instance, concurrent readers sharing it), so a change made anywhere
 * is honoured everywhere within the bound plus one store round trip — with no store call per token read.
 */
import type { AccessTokenEntry } from '../store/types.ts';
import { tokenFreshness } from './refreshPolicy.ts';

/** BROKER_CACHE_COHERENCE_SECONDS default. */
export const DEFAULT_COHERENCE_MS = 30_000;

export interface CacheEntry {
  entry: AccessTokenEntry;
  allowedCallers: readonly string[] | undefined;
}

interface Held {
  value: CacheEntry;
  /** When the store read behind this entry happened (this instance's clock). */
  readAt: number;
}

export class TokenCache {
  readonly #entries = new Map<string, Held>();
  readonly #coherenceMs: number;

  /** `coherenceMs` 0 keeps nothing: every read goes to the store. */
  constructor(coherenceMs: number = DEFAULT_COHERENCE_MS) {
    this.#coherenceMs = coherenceMs;
  }

  /** The cached entry for `connection` and scope key when it is still fresh and within the bound at `now`. */
  fresh(connection: string, key: string, now: number, marginMs: number): CacheEntry | undefined {
    const held = this.#entries.get(cacheKey(connection, key));
    if (!held) return undefined;
    // a clock that went backwards counts as "too old" rather than extending trust
    if (now - held.readAt >= this.#coherenceMs || now < held.readAt) return undefined;
    return tokenFreshness(held.value.entry, now, marginMs) === 'fresh' ? held.value : undefined;
  }

  /** Keeps `value`, read from the store at `now`, when its token is fresh; returns it either way. */
  remember(connection: string, key: string, value: CacheEntry, now: number, marginMs: number): CacheEntry {
    if (this.#coherenceMs > 0 && tokenFreshness(value.entry, now, marginMs) === 'fresh')
      this.#entries.set(cacheKey(connection, key), { value, readAt: now });
    return value;
  }

  forget(connection: string): void {
    const prefix = `${connection}\n`;
    for (const key of this.#entries.keys()) if (key.startsWith(prefix)) this.#entries.delete(key);
  }
}

export function cacheKey(connection: string, scopeKey: string): string {
  return `${connection}\n${scopeKey}`;
}

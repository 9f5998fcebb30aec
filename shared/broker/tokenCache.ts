/**
 * @module broker/tokenCache
 * The hot path's memory: the last access token served per connection and scope, with the caller allow-list
 * it was served under. Only fresh tokens are kept; any write to a connection forgets all of its entries, so
 * a changed allow-list or a revoked connection is never answered from here.
 */
import type { AccessTokenEntry } from '../store/types.ts';
import { tokenFreshness } from './refreshPolicy.ts';

export interface CacheEntry {
  entry: AccessTokenEntry;
  allowedCallers: readonly string[] | undefined;
}

export class TokenCache {
  readonly #entries = new Map<string, CacheEntry>();

  /** The cached entry for `connection` and scope key when it is still fresh at `now`. */
  fresh(connection: string, key: string, now: number, marginMs: number): CacheEntry | undefined {
    const cached = this.#entries.get(cacheKey(connection, key));
    return cached && tokenFreshness(cached.entry, now, marginMs) === 'fresh' ? cached : undefined;
  }

  /** Keeps `value` when its token is fresh at `now`; returns it either way. */
  remember(connection: string, key: string, value: CacheEntry, now: number, marginMs: number): CacheEntry {
    if (tokenFreshness(value.entry, now, marginMs) === 'fresh')
      this.#entries.set(cacheKey(connection, key), value);
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

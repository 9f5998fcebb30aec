/**
 * @module broker/context
 * What every broker part is built from: the injected adapters (store, lock, providers, keys, clock, logger)
 * and the per-process pieces the parts share (the token cache and the single-flight table). Built once by
 * the {@link Broker} facade; tests build parts with {@link createBrokerContext} and the same adapters.
 */
import type { Keyring } from '../crypto.ts';
import type { Logger } from '../log.ts';
import type { ConnectionLock } from '../lock/types.ts';
import type { ProviderClient } from '../oauth/provider.ts';
import type { TokenStore } from '../store/types.ts';
import type { ChangeListener } from './changes.ts';
import type { RefreshPolicy } from './refreshPolicy.ts';
import { SingleFlight } from './singleFlight.ts';
import { TokenCache } from './tokenCache.ts';

export interface BrokerDeps {
  store: TokenStore;
  lock: ConnectionLock;
  providers: ReadonlyMap<string, ProviderClient>;
  keyring: Keyring;
  log: Logger;
  publicBaseUrl: string;
  linkTtlSeconds: number;
  policy: RefreshPolicy;
  sweepConcurrency: number;
  /** How long a cached token is trusted without a store read (changes made by other instances), default 30 s. */
  cacheCoherenceMs?: number;
  now?: () => number;
  random?: () => number;
  /** Told of every stored change (notifications); see broker/changes.ts. */
  onChange?: ChangeListener;
}

export interface BrokerContext extends Readonly<BrokerDeps> {
  readonly now: () => number;
  /** Tokens served without a store read while fresh and within the coherence bound; local writes forget them. */
  readonly cache: TokenCache;
  /** In-process single flight: concurrent identical reads and refreshes share one promise. */
  readonly flights: SingleFlight;
}

export function createBrokerContext(deps: BrokerDeps): BrokerContext {
  return {
    ...deps,
    now: deps.now ?? Date.now,
    cache: new TokenCache(deps.cacheCoherenceMs),
    flights: new SingleFlight(),
  };
}

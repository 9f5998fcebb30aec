// What every broker part is built from (shared/broker/context.ts): the injected adapters as given, the clock
// (injected or the system's), one token cache honouring the coherence bound, one single-flight table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBrokerContext } from '../../../shared/broker/context.ts';
import { SingleFlight } from '../../../shared/broker/singleFlight.ts';
import { DEFAULT_COHERENCE_MS, TokenCache } from '../../../shared/broker/tokenCache.ts';
import { HOUR, harness, T0 } from './fixture.ts';

const value = {
  entry: { accessToken: 'a', tokenType: 'Bearer', expiresAt: T0 + HOUR, scope: '' },
  allowedCallers: undefined,
};

describe('createBrokerContext', () => {
  it('keeps the adapters as given and uses the injected clock', () => {
    const h = harness();
    assert.equal(h.ctx.store, h.store);
    assert.equal(h.ctx.lock, h.lock);
    assert.equal(h.ctx.providers.get('microsoft'), h.provider);
    assert.equal(h.ctx.publicBaseUrl, 'https://broker.example.com');
    h.clock.now = T0 + 42;
    assert.equal(h.ctx.now(), T0 + 42);
    assert.ok(h.ctx.cache instanceof TokenCache);
    assert.ok(h.ctx.flights instanceof SingleFlight);
    assert.equal(h.ctx.flights.size, 0);
  });

  it('without an injected clock it reads the system clock', () => {
    const { ctx } = harness();
    const system = createBrokerContext({
      store: ctx.store,
      lock: ctx.lock,
      providers: ctx.providers,
      keyring: ctx.keyring,
      log: ctx.log,
      publicBaseUrl: ctx.publicBaseUrl,
      linkTtlSeconds: ctx.linkTtlSeconds,
      policy: ctx.policy,
      sweepConcurrency: ctx.sweepConcurrency,
    });
    const before = Date.now();
    const now = system.now();
    assert.ok(now >= before && now <= Date.now());
  });

  it('the cache trusts an entry for the default 30 s bound, or the configured one; 0 keeps nothing', () => {
    const byDefault = harness().ctx.cache;
    byDefault.remember('c', '', value, T0, 0);
    assert.equal(byDefault.fresh('c', '', T0 + DEFAULT_COHERENCE_MS - 1, 0), value);
    assert.equal(byDefault.fresh('c', '', T0 + DEFAULT_COHERENCE_MS, 0), undefined);
    const short = harness({ cacheCoherenceMs: 1000 }).ctx.cache;
    short.remember('c', '', value, T0, 0);
    assert.equal(short.fresh('c', '', T0 + 999, 0), value);
    assert.equal(short.fresh('c', '', T0 + 1000, 0), undefined);
    const none = harness({ cacheCoherenceMs: 0 }).ctx.cache;
    none.remember('c', '', value, T0, 0);
    assert.equal(none.fresh('c', '', T0, 0), undefined);
  });

  it('each context has its own cache and single-flight table', () => {
    const a = harness().ctx;
    const b = harness().ctx;
    assert.notEqual(a.cache, b.cache);
    assert.notEqual(a.flights, b.flights);
    a.cache.remember('c', '', value, T0, 0);
    assert.equal(b.cache.fresh('c', '', T0, 0), undefined);
  });
});

// Cross-instance coherence of the token cache, with a controllable clock: two broker instances (two contexts)
// share one store, as the HTTP instances and the sweep instance of a Flex deployment share Key Vault. A change
// written by one (status, delete, reconnect) is honoured by the other within the bound, and the other reads the
// store once per connection per bound however many tokens it serves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessTokens } from '../../../shared/broker/accessTokens.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const BOUND = 10_000;
const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;
const fnKey = { kind: 'function_key' as const };

function twoInstances() {
  const first = harness({ cacheCoherenceMs: BOUND });
  const second = harness({ store: first.store, now: () => first.clock.now, cacheCoherenceMs: BOUND });
  const reader = new AccessTokens(first.ctx, new Refresher(first.ctx));
  return { clock: first.clock, store: first.store, reader, other: second };
}

describe('token cache coherence across instances', () => {
  it('another instance marking needs_reauth → 409 here within the bound', async () => {
    const t = twoInstances();
    await t.store.put(activeRecord());
    assert.equal((await t.reader.get('sales-mailbox', fnKey)).access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    await t.store.put(activeRecord({ status: 'needs_reauth' }));
    t.clock.now = T0 + BOUND - 1;
    await t.reader.get('sales-mailbox', fnKey); // may still be served: inside the bound
    t.clock.now = T0 + BOUND;
    await assert.rejects(t.reader.get('sales-mailbox', fnKey), code('connection_needs_reauth'));
  });

  it('another instance deleting the connection → 404 here within the bound', async () => {
    const t = twoInstances();
    await t.store.put(activeRecord());
    await t.reader.get('sales-mailbox', fnKey);
    await t.store.delete('sales-mailbox');
    t.clock.now = T0 + BOUND;
    await assert.rejects(t.reader.get('sales-mailbox', fnKey), code('unknown_connection'));
  });

  it('another instance reconnecting (new tokens) → the new token here within the bound', async () => {
    const t = twoInstances();
    await t.store.put(activeRecord());
    await t.reader.get('sales-mailbox', fnKey);
    const next = activeRecord();
    (next.tokens as NonNullable<typeof next.tokens>).primary = {
      accessToken: 'at-after-reconnect-zzzzzzzzzzzz',
      tokenType: 'Bearer',
      expiresAt: T0 + 2 * 3_600_000,
      scope: 'https://graph.microsoft.com/Mail.Send',
    };
    await t.store.put(next);
    t.clock.now = T0 + BOUND;
    assert.equal(
      (await t.reader.get('sales-mailbox', fnKey)).access_token,
      'at-after-reconnect-zzzzzzzzzzzz',
    );
  });

  it('costs one store read per connection per bound, however many reads are served', async () => {
    const t = twoInstances();
    await t.store.put(activeRecord());
    const before = t.store.gets;
    for (let window = 0; window < 3; window++) {
      t.clock.now = T0 + window * BOUND;
      await Promise.all(Array.from({ length: 50 }, () => t.reader.get('sales-mailbox', fnKey)));
      for (let i = 0; i < 50; i++) await t.reader.get('sales-mailbox', fnKey);
    }
    assert.equal(t.store.gets - before, 3);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffError,
  failureOutcome,
  isTransient,
  recordProviderFailure,
  wasLogged,
} from '../../../shared/broker/failures.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { classifyFailure, type FailureInput } from '../../../shared/oauth/classify.ts';
import { ProviderFailure } from '../../../shared/oauth/provider.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const failure = (input: FailureInput) => new ProviderFailure(classifyFailure(input), 'refresh');
const invalidGrant = () =>
  failure({ httpStatus: 400, body: { error: 'invalid_grant', error_codes: [50173] } });

describe('failureOutcome', () => {
  it('invalid_grant → needs_reauth, no backoff, answered connection_needs_reauth', () => {
    const { next, event, answer } = failureOutcome(
      activeRecord({ nextAttemptAt: T0 + 5 }),
      invalidGrant(),
      T0,
    );
    assert.equal(next.status, 'needs_reauth');
    assert.equal(next.nextAttemptAt, undefined);
    assert.equal(next.failures, 0);
    assert.equal(next.lastError?.code, 'connection_needs_reauth');
    assert.equal(next.lastError.at, T0);
    assert.equal(next.lastError.providerError, 'invalid_grant');
    assert.deepEqual(next.lastError.providerCodes, [50173]);
    assert.equal(next.revision, 2);
    assert.equal(event, 'refresh.needs_reauth');
    assert.equal(answer.code, 'connection_needs_reauth');
  });

  it('invalid_client → error status, answered with the provider failure itself', () => {
    const err = failure({ httpStatus: 401, body: { error: 'invalid_client' } });
    const { next, event, answer } = failureOutcome(activeRecord(), err, T0);
    assert.equal(next.status, 'error');
    assert.equal(event, 'refresh.failed');
    assert.equal(answer, err);
  });

  it('a 503 counts a failure and backs off, at least as long as Retry-After', () => {
    const { next, answer } = failureOutcome(
      activeRecord({ failures: 2 }),
      failure({ httpStatus: 503, retryAfterHeader: '120' }),
      T0,
      () => 0,
    );
    assert.equal(next.status, 'active');
    assert.equal(next.failures, 3);
    assert.equal(next.nextAttemptAt, T0 + 120_000);
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(answer.retryAfterSeconds, 120);
  });
});

describe('recordProviderFailure', () => {
  it('stores the outcome, logs one line, and marks the answer as logged', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    let thrown: unknown;
    await recordProviderFailure(h.ctx, record, invalidGrant(), 'expired', '').catch(
      (e: unknown) => (thrown = e),
    );
    assert.ok(wasLogged(thrown));
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'needs_reauth');
    assert.equal(h.logs.filter((l) => l.startsWith('refresh.needs_reauth')).length, 1);
  });

  it('a rejected token that the store already replaced says nothing about the connection', async () => {
    const h = harness();
    const record = activeRecord();
    const rotated = activeRecord();
    if (rotated.tokens) rotated.tokens.refreshToken = 'rt-rotated-elsewhere-xxxxxxxx';
    await h.store.put(rotated);
    const puts = h.store.puts;
    await assert.rejects(
      recordProviderFailure(h.ctx, record, invalidGrant(), 'expired', ''),
      (e) => e instanceof BrokerError && e.code === 'provider_unavailable' && !wasLogged(e),
    );
    assert.equal(h.store.puts, puts, 'nothing written');
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
  });

  it('a refused extra resource is scope_not_granted and leaves the connection alone', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    await assert.rejects(
      recordProviderFailure(
        h.ctx,
        record,
        failure({ httpStatus: 400, body: { error: 'invalid_scope' } }),
        'x',
        'k',
      ),
      (e) => e instanceof BrokerError && e.code === 'scope_not_granted',
    );
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
  });
});

describe('recordProviderFailure writes like a refresh (lease held, never over a newer revision)', () => {
  const unavailable = () => failure({ httpStatus: 503 });
  const rotated = () => {
    const r = activeRecord({ revision: 2 });
    if (r.tokens) r.tokens.refreshToken = 'rt-rotated-elsewhere-xxxxxxxx';
    return r;
  };

  it('a late failure does not put back the refresh token the store has replaced', async () => {
    const h = harness();
    await h.store.put(rotated());
    const puts = h.store.puts;
    await assert.rejects(
      recordProviderFailure(h.ctx, activeRecord(), unavailable(), 'expired', ''),
      (e) => e instanceof BrokerError && e.code === 'provider_unavailable' && e.retryAfterSeconds === 1,
    );
    assert.equal(h.store.puts, puts, 'nothing written');
    assert.equal(h.store.records.get('sales-mailbox')?.tokens?.refreshToken, 'rt-rotated-elsewhere-xxxxxxxx');
    assert.equal(h.store.records.get('sales-mailbox')?.failures, 0);
  });

  it("a refused resource's claims challenge is not written over a newer record", async () => {
    const h = harness();
    await h.store.put(rotated());
    const puts = h.store.puts;
    const refused = failure({
      httpStatus: 400,
      body: { error: 'invalid_grant', error_codes: [50076], suberror: 'basic_action', claims: '{"x":1}' },
    });
    await assert.rejects(recordProviderFailure(h.ctx, activeRecord(), refused, 'x', 'k'));
    assert.equal(h.store.puts, puts, 'nothing written');
    assert.equal(h.store.records.get('sales-mailbox')?.tokens?.refreshToken, 'rt-rotated-elsewhere-xxxxxxxx');
  });

  it('writes nothing once the lease is lost', async () => {
    const lock = { kind: 'lost', withLock: <T>(_c: string, fn: () => Promise<T>) => fn(), held: () => false };
    const h = harness({ lock });
    const record = activeRecord();
    await h.store.put(record);
    const puts = h.store.puts;
    await assert.rejects(
      recordProviderFailure(h.ctx, record, unavailable(), 'expired', ''),
      (e) => e instanceof BrokerError && e.code === 'lock_timeout',
    );
    assert.equal(h.store.puts, puts, 'nothing written');
    assert.equal(h.store.records.get('sales-mailbox')?.failures, 0);
  });
});

describe('backoffError and isTransient', () => {
  it('answers with the seconds left in the window, at least 1', () => {
    assert.equal(backoffError(activeRecord({ nextAttemptAt: T0 + 4_100 }), T0).retryAfterSeconds, 5);
    assert.equal(backoffError(activeRecord({ nextAttemptAt: T0 }), T0).retryAfterSeconds, 1);
  });

  it('only provider, lock and store outages are transient', () => {
    for (const code of ['provider_unavailable', 'lock_timeout', 'store_unavailable'] as const)
      assert.ok(isTransient(new BrokerError(code, 'x')));
    assert.ok(!isTransient(new BrokerError('connection_needs_reauth', 'x')));
    assert.ok(!isTransient(new Error('x')));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffError,
  failureOutcome,
  isResourceRefusal,
  isTransient,
  recordProviderFailure,
  servesAfterFailure,
  servesUntilExpiry,
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

const interaction = (claims?: string) =>
  failure({
    httpStatus: 400,
    body: {
      error: 'invalid_grant',
      error_codes: [50076],
      suberror: 'basic_action',
      ...(claims === undefined ? {} : { claims }),
    },
  });
const consent = () =>
  failure({
    httpStatus: 400,
    body: { error: 'invalid_grant', suberror: 'consent_required', error_codes: [65001] },
  });
const badToken = () => failure({ httpStatus: 400, body: { error: 'invalid_grant', suberror: 'bad_token' } });
const config = (error: string) => failure({ httpStatus: 400, body: { error } });

describe('failureOutcome: what is recorded and answered', () => {
  it('records only what the provider said: a network failure leaves no provider error or codes', () => {
    const { next } = failureOutcome(activeRecord(), failure({ network: true }), T0, () => 0);
    assert.deepEqual(next.lastError, { code: 'provider_unavailable', at: T0 });
  });

  it('an interaction demand is recorded and answered as such, with the hint and the claims challenge', () => {
    const err = interaction('{"access_token":{"acrs":{"essential":true}}}');
    const { next, event, answer } = failureOutcome(activeRecord(), err, T0);
    assert.equal(next.lastError?.cause, 'interaction');
    assert.equal(next.claims, '{"access_token":{"acrs":{"essential":true}}}');
    assert.equal(event, 'refresh.needs_reauth');
    assert.equal(answer.code, 'connection_needs_reauth');
    assert.equal(
      answer.message,
      'Microsoft requires the account owner to complete a sign-in step (AADSTS50076: multi-factor authentication is required): open a new connect link.',
    );
    assert.equal(answer.detail, 'refresh token rejected (interaction)');
    assert.equal(answer.fields.reauthCause, 'interaction');
    assert.equal(answer.fields.providerError, 'invalid_grant');
    assert.equal(answer.cause, err);
  });

  it('a revoked grant says the account must sign in again; without AADSTS numbers there is no hint', () => {
    const withHint = failureOutcome(activeRecord(), invalidGrant(), T0).answer;
    assert.equal(
      withHint.message,
      'The account must sign in again (AADSTS50173: the grant was revoked (password change or sessions revoked)): open a new connect link.',
    );
    assert.equal(withHint.fields.reauthCause, 'revoked');
    const plain = failureOutcome(activeRecord(), badToken(), T0).answer;
    assert.equal(plain.message, 'The account must sign in again: open a new connect link.');
    const mfa = failureOutcome(
      activeRecord(),
      failure({ httpStatus: 400, body: { error: 'interaction_required' } }),
      T0,
    );
    assert.equal(
      mfa.answer.message,
      'Microsoft requires the account owner to complete a sign-in step: open a new connect link.',
    );
  });

  it('a reauth class without a cause counts as revoked', () => {
    const err = new ProviderFailure({ kind: 'reauth' }, 'refresh');
    const { next, answer } = failureOutcome(activeRecord(), err, T0);
    assert.equal(next.lastError?.cause, 'revoked');
    assert.equal(answer.fields.reauthCause, 'revoked');
    assert.equal(answer.detail, 'refresh token rejected (revoked)');
  });

  it('a reauth without a claims challenge keeps the one already recorded', () => {
    const { next } = failureOutcome(activeRecord({ claims: '{"a":1}' }), invalidGrant(), T0);
    assert.equal(next.claims, '{"a":1}');
    const fresh = failureOutcome(activeRecord(), invalidGrant(), T0).next;
    assert.ok(!('claims' in fresh), 'no claims key written');
  });

  it('a protocol failure is answered provider_unavailable with the backoff as Retry-After', () => {
    const err = failure({ httpStatus: 400, body: { error: 'something_new' } });
    const { next, event, answer } = failureOutcome(activeRecord(), err, T0, () => 1);
    assert.equal(err.code, 'provider_error');
    assert.equal(next.failures, 1);
    assert.equal(next.nextAttemptAt, T0 + 7_500);
    assert.equal(event, 'refresh.failed');
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(answer.retryAfterSeconds, 8);
    assert.equal(answer.fields.providerError, 'something_new');
    assert.equal(answer.cause, err);
  });

  it('a transient failure is answered with the backoff window, not the provider default of 5 s', () => {
    const err = failure({ httpStatus: 503 });
    const { answer } = failureOutcome(activeRecord({ failures: 1 }), err, T0, () => 1);
    assert.equal(err.retryAfterSeconds, 5);
    assert.notEqual(answer, err);
    assert.equal(answer.retryAfterSeconds, 15);
    assert.equal(answer.fields.providerHttpStatus, 503);
  });
});

describe('recordProviderFailure: writes, cache and log lines', () => {
  const cached = (h: ReturnType<typeof harness>) => {
    const entry = activeRecord().tokens!.primary!;
    h.ctx.cache.remember('sales-mailbox', '', { entry, allowedCallers: undefined }, T0, 0);
    assert.ok(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), 'cached before');
  };
  const thrownBy = async (p: Promise<unknown>): Promise<BrokerError> => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof BrokerError);
      return e;
    }
    assert.fail('did not throw');
  };

  it('a failure is logged once with its connection, reason, code, status and provider fields', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    cached(h);
    await thrownBy(recordProviderFailure(h.ctx, record, invalidGrant(), 'expired', ''));
    assert.deepEqual(h.logs, [
      'refresh.needs_reauth connection=sales-mailbox reason=expired code=connection_needs_reauth status=needs_reauth providerError=invalid_grant providerCodes=50173 providerHttpStatus=400',
    ]);
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined, 'cache forgotten');
  });

  it('a transient failure reads the store only for the write guard (no race check)', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    const gets = h.store.gets;
    const answer = await thrownBy(
      recordProviderFailure(h.ctx, record, failure({ httpStatus: 503 }), 'expired', ''),
    );
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(h.store.gets - gets, 1);
    assert.equal(h.store.records.get('sales-mailbox')?.failures, 1);
  });

  it('a rejection the store already replaced is logged as raced and answered with Retry-After 1', async () => {
    const h = harness();
    const rotated = activeRecord();
    rotated.tokens!.refreshToken = 'rt-rotated-elsewhere-xxxxxxxx';
    await h.store.put(rotated);
    const answer = await thrownBy(
      recordProviderFailure(h.ctx, activeRecord(), invalidGrant(), 'expired', ''),
    );
    assert.equal(answer.retryAfterSeconds, 1);
    assert.deepEqual(h.logs, ['refresh.raced connection=sales-mailbox reason=expired']);
  });

  it('a rejection for a record without tokens while the store holds some is a race, not a crash', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const bare = activeRecord();
    delete bare.tokens;
    const answer = await thrownBy(recordProviderFailure(h.ctx, bare, invalidGrant(), 'expired', ''));
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
  });

  it('a rejection for a connection the store no longer holds is answered, not a crash', async () => {
    const h = harness();
    const answer = await thrownBy(
      recordProviderFailure(h.ctx, activeRecord(), invalidGrant(), 'expired', ''),
    );
    assert.equal(answer.code, 'connection_needs_reauth');
  });

  it('a failure written over a newer record is dropped and the cached token forgotten', async () => {
    const h = harness();
    await h.store.put(activeRecord({ revision: 3 }));
    cached(h);
    await thrownBy(recordProviderFailure(h.ctx, activeRecord(), failure({ httpStatus: 503 }), 'expired', ''));
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined);
  });
});

describe('recordProviderFailure: a refused extra resource', () => {
  it('keeps a new claims challenge on the record for the next sign-in, logs one line, marks it logged', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    const entry = activeRecord().tokens!.primary!;
    h.ctx.cache.remember('sales-mailbox', '', { entry, allowedCallers: undefined }, T0, 0);
    let thrown: unknown;
    await recordProviderFailure(h.ctx, record, interaction('{"x":1}'), 'no_access_token', 'k').catch(
      (e: unknown) => (thrown = e),
    );
    assert.ok(thrown instanceof BrokerError && thrown.code === 'resource_needs_reauth');
    assert.ok(wasLogged(thrown));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.claims, '{"x":1}');
    assert.equal(stored?.revision, 2);
    assert.equal(stored?.updatedAt, T0);
    assert.equal(stored?.status, 'active');
    assert.equal(h.ctx.cache.fresh('sales-mailbox', '', T0, 0), undefined, 'cache forgotten');
    assert.deepEqual(h.logs, [
      'refresh.resource_refused connection=sales-mailbox reason=no_access_token code=resource_needs_reauth providerError=invalid_grant providerCodes=50076 providerHttpStatus=400',
    ]);
  });

  it('writes nothing when the challenge is already recorded or there is none', async () => {
    const h = harness();
    const record = activeRecord({ claims: '{"x":1}' });
    await h.store.put(record);
    const puts = h.store.puts;
    await assert.rejects(recordProviderFailure(h.ctx, record, interaction('{"x":1}'), 'r', 'k'));
    await assert.rejects(recordProviderFailure(h.ctx, record, interaction(), 'r', 'k'));
    assert.equal(h.store.puts, puts);
  });

  it('consent, invalid_scope and invalid_resource are scope_not_granted, with the hint and the cause', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    const answers: BrokerError[] = [];
    for (const err of [consent(), config('invalid_scope'), config('invalid_resource')]) {
      await recordProviderFailure(h.ctx, record, err, 'r', 'k').catch((e: BrokerError) => answers.push(e));
      assert.equal(answers.at(-1)?.cause, err);
    }
    assert.deepEqual(
      answers.map((a) => a.code),
      ['scope_not_granted', 'scope_not_granted', 'scope_not_granted'],
    );
    assert.equal(
      answers[0]?.message,
      'The provider refused a token for those scopes (AADSTS65001: consent is missing for the requested scopes); the account owner must reconnect and consent to them.',
    );
    assert.equal(answers[0]?.fields.reauthCause, 'consent');
    assert.equal(answers[1]?.fields.providerError, 'invalid_scope');
    assert.equal(
      answers[1]?.message,
      'The provider refused a token for those scopes; the account owner must reconnect and consent to them.',
    );
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
  });

  it('an interaction demand or a revoked-for-this-resource answer is resource_needs_reauth with the hint', async () => {
    const h = harness();
    const record = activeRecord();
    await h.store.put(record);
    const err = interaction();
    const answer = await recordProviderFailure(h.ctx, record, err, 'r', 'k').catch((e: BrokerError) => e);
    assert.equal(answer.code, 'resource_needs_reauth');
    assert.equal(
      answer.message,
      "Microsoft requires the account owner to sign in again for these scopes (AADSTS50076: multi-factor authentication is required): open a new connect link. The connection's other tokens keep working.",
    );
    assert.equal(answer.fields.reauthCause, 'interaction');
    assert.equal(answer.fields.providerError, 'invalid_grant');
    assert.equal(answer.cause, err);
    const plain = await recordProviderFailure(
      h.ctx,
      record,
      failure({ httpStatus: 400, body: { error: 'login_required' } }),
      'r',
      'k',
    ).catch((e: BrokerError) => e);
    assert.equal(
      plain.message,
      "Microsoft requires the account owner to sign in again for these scopes: open a new connect link. The connection's other tokens keep working.",
    );
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
  });

  it('bad_token and a wrong client concern the whole connection even on a ?scope= read', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const dead = await recordProviderFailure(h.ctx, activeRecord(), badToken(), 'r', 'k').catch(
      (e: BrokerError) => e,
    );
    assert.equal(dead.code, 'connection_needs_reauth');
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'needs_reauth');
    const h2 = harness();
    await h2.store.put(activeRecord());
    const client = await recordProviderFailure(
      h2.ctx,
      activeRecord(),
      config('invalid_client'),
      'r',
      'k',
    ).catch((e: BrokerError) => e);
    assert.equal(client.code, 'provider_misconfigured');
    assert.equal(h2.store.records.get('sales-mailbox')?.status, 'error');
  });

  it('a 503 whose body says invalid_scope is an outage, not a refusal (the status decides)', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const answer = await recordProviderFailure(
      h.ctx,
      activeRecord(),
      failure({ httpStatus: 503, body: { error: 'invalid_scope' } }),
      'r',
      'k',
    ).catch((e: BrokerError) => e);
    assert.equal(answer.code, 'provider_unavailable');
  });

  it('an interaction demand whose error is invalid_scope still asks for a sign-in for this resource', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const err = failure({ httpStatus: 400, body: { error: 'invalid_scope', suberror: 'basic_action' } });
    const answer = await recordProviderFailure(h.ctx, activeRecord(), err, 'r', 'k').catch(
      (e: BrokerError) => e,
    );
    assert.equal(answer.code, 'resource_needs_reauth');
  });

  it('on the primary token the same refusals concern the whole connection', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const answer = await recordProviderFailure(h.ctx, activeRecord(), consent(), 'r', '').catch(
      (e: BrokerError) => e,
    );
    assert.equal(answer.code, 'connection_needs_reauth');
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'needs_reauth');
  });
});

describe('who may still serve a token after a failure', () => {
  it('isResourceRefusal: only resource_needs_reauth and scope_not_granted broker errors', () => {
    assert.ok(isResourceRefusal(new BrokerError('resource_needs_reauth', 'x')));
    assert.ok(isResourceRefusal(new BrokerError('scope_not_granted', 'x')));
    assert.ok(!isResourceRefusal(new BrokerError('connection_needs_reauth', 'x')));
    assert.ok(!isResourceRefusal(Object.assign(new Error('x'), { code: 'scope_not_granted' })));
  });

  it('servesUntilExpiry: a config error or an interaction demand serves; revoked, consent and active do not', () => {
    const withCause = (status: 'needs_reauth' | 'error', cause?: 'revoked' | 'interaction' | 'consent') =>
      activeRecord({
        status,
        ...(cause ? { lastError: { code: 'connection_needs_reauth', at: T0, cause } } : {}),
      });
    assert.equal(servesUntilExpiry(withCause('error')), true);
    assert.equal(servesUntilExpiry(withCause('needs_reauth', 'interaction')), true);
    assert.equal(servesUntilExpiry(withCause('needs_reauth', 'revoked')), false);
    assert.equal(servesUntilExpiry(withCause('needs_reauth', 'consent')), false);
    assert.equal(servesUntilExpiry(withCause('needs_reauth')), false);
    assert.equal(
      servesUntilExpiry(activeRecord({ lastError: { code: 'x', at: T0, cause: 'interaction' } } as never)),
      false,
    );
  });

  it('servesAfterFailure: outages, misconfiguration and interaction demands serve; the rest do not', () => {
    const err = (
      code: 'connection_needs_reauth' | 'resource_needs_reauth' | 'scope_not_granted',
      cause?: string,
    ) => new BrokerError(code, 'x', { fields: { reauthCause: cause } });
    assert.equal(servesAfterFailure(new BrokerError('provider_unavailable', 'x')), true);
    assert.equal(servesAfterFailure(new BrokerError('provider_misconfigured', 'x')), true);
    assert.equal(servesAfterFailure(err('connection_needs_reauth', 'interaction')), true);
    assert.equal(servesAfterFailure(err('resource_needs_reauth', 'interaction')), true);
    assert.equal(servesAfterFailure(err('connection_needs_reauth', 'revoked')), false);
    assert.equal(servesAfterFailure(err('resource_needs_reauth', 'consent')), false);
    assert.equal(servesAfterFailure(err('scope_not_granted', 'interaction')), false);
    assert.equal(servesAfterFailure(new BrokerError('provider_error', 'x')), false);
    assert.equal(servesAfterFailure(Object.assign(new Error('x'), { code: 'provider_unavailable' })), false);
    assert.equal(
      servesAfterFailure(Object.assign(new Error('x'), { code: 'provider_misconfigured' })),
      false,
    );
    assert.equal(servesAfterFailure(undefined), false);
  });

  it('backoffError names the connection', () => {
    assert.deepEqual(backoffError(activeRecord({ nextAttemptAt: T0 + 1 }), T0).fields, {
      connection: 'sales-mailbox',
    });
  });
});

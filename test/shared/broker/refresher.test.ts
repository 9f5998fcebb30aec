import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_EXTRA_TOKENS } from '../../../shared/broker/extraScopes.ts';
import { REFUSAL_HOLD_MS, Refresher } from '../../../shared/broker/refresher.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { ConnectionLock } from '../../../shared/lock/types.ts';
import { scopeKey } from '../../../shared/oauth/scopes.ts';
import { activeRecord, barrier, harness, HOUR, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

describe('Refresher', () => {
  it('collapses concurrent refreshes of one connection into one lock acquisition and one provider call', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const held = h.provider.hold();
    const refresher = new Refresher(h.ctx);
    const all = Array.from({ length: 20 }, () =>
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
    );
    await held.entered;
    held.release();
    const records = await Promise.all(all);
    assert.equal(h.lock.acquisitions, 1);
    assert.equal(h.provider.calls.length, 1);
    assert.equal(new Set(records.map((r) => r.tokens?.primary?.accessToken)).size, 1);
  });

  it('re-reads after the lock: a refresh another instance finished meanwhile is not repeated', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const inLock = barrier();
    const goOn = barrier();
    // A lock held by "another instance" that refreshes while we wait for it.
    const lock: ConnectionLock = {
      kind: 'other-instance',
      withLock: async (_c, fn) => {
        inLock.open();
        await goOn.promise;
        return fn();
      },
    };
    const refresher = new Refresher({ ...h.ctx, lock });
    const pending = refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' });
    await inLock.promise;
    await h.store.put(activeRecord({ revision: 2 }, 3_600_000));
    goOn.open();
    const record = await pending;
    assert.equal(record.revision, 2);
    assert.equal(h.provider.calls.length, 0);
  });

  it('stores the rotated refresh token before answering and forgets cached tokens', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const record = await new Refresher(h.ctx).refresh('sales-mailbox', undefined, {
      force: false,
      reason: 'expired',
    });
    assert.equal(h.store.records.get('sales-mailbox')?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(record.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(record.refreshedAt, T0);
    assert.match(h.logs.join('\n'), /refresh\.succeeded connection=sales-mailbox .*outcome=rotated/);
  });

  it('inside backoff: refuses without calling the provider; force bypasses backoff and status', async () => {
    const h = harness();
    await h.store.put(activeRecord({ nextAttemptAt: T0 + 10_000, status: 'error' }, 0));
    const refresher = new Refresher(h.ctx);
    await assert.rejects(
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
      code('connection_error'),
    );
    h.store.records.set('sales-mailbox', activeRecord({ nextAttemptAt: T0 + 10_000 }, 0));
    await assert.rejects(
      refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expired' }),
      code('provider_unavailable'),
    );
    assert.equal(h.provider.calls.length, 0);
    await refresher.refresh('sales-mailbox', undefined, { force: true, reason: 'manual' });
    assert.equal(h.provider.calls.length, 1);
  });

  it('does not refresh a fresh primary token unless forced; refuses an unconnected record', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    await refresher.refresh('sales-mailbox', undefined, { force: false, reason: 'expiring' });
    assert.equal(h.provider.calls.length, 0);
    await h.store.put(activeRecord({ connection: 'pending-one', status: 'pending' }));
    await assert.rejects(
      refresher.refresh('pending-one', undefined, { force: true, reason: 'manual' }),
      code('connection_not_connected'),
    );
  });

  it('refreshes an extra-scope token on its own key and keeps the primary one', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    h.clock.now = T0 + 1000;
    const scopes = ['https://ads.microsoft.com/msads.manage'];
    const record = await new Refresher(h.ctx).refresh('sales-mailbox', scopes, {
      force: false,
      reason: 'no_access_token',
    });
    assert.deepEqual(h.provider.calls[0]?.scopes, scopes);
    assert.equal(record.tokens?.primary?.accessToken, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(
      record.tokens?.extra?.['https://ads.microsoft.com/msads.manage']?.accessToken.startsWith('at-1-'),
      true,
    );
    assert.equal(record.refreshedAt, T0, 'refreshedAt is the primary token refresh time only');
  });
});

const NAME = 'sales-mailbox';
const ADS = 'https://ads.microsoft.com/msads.manage';
const extra = (r: Refresher, force = false) =>
  r.refresh(NAME, [ADS], { force, reason: force ? 'manual' : 'no_access_token' });
const primary = (r: Refresher, force = false) =>
  r.refresh(NAME, undefined, { force, reason: force ? 'manual' : 'expired' });
const rejection = async (p: Promise<unknown>): Promise<BrokerError> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BrokerError, String(e));
    return e;
  }
  return assert.fail('did not reject');
};
const mfa = {
  fail: {
    httpStatus: 400,
    body: { error: 'invalid_grant', suberror: 'basic_action', error_codes: [50076] },
  },
};
/** An extra token for ADS issued at `at` with a one-hour lifetime. */
const withExtra = (at: number) => {
  const r = activeRecord();
  r.tokens!.extra = {
    [scopeKey([ADS])]: {
      accessToken: 'at-ads-zzzzzzzzzzzzzzzzzzzzzzzzz',
      tokenType: 'Bearer',
      expiresAt: at + HOUR,
      issuedAt: at,
      scope: ADS,
    },
  };
  return r;
};

describe('Refresher: extra-scope (?scope=) tokens', () => {
  it('a fresh extra token is returned as stored, without asking the provider', async () => {
    const h = harness();
    await h.store.put(withExtra(T0));
    const record = await extra(new Refresher(h.ctx));
    assert.equal(h.provider.calls.length, 0);
    assert.equal(record.tokens?.extra?.[scopeKey([ADS])]?.accessToken, 'at-ads-zzzzzzzzzzzzzzzzzzzzzzzzz');
  });

  it("the connection's backoff ends exactly at nextAttemptAt for extra tokens too", async () => {
    const h = harness();
    await h.store.put(activeRecord({ failures: 1, nextAttemptAt: T0 + 10_000 }));
    const refresher = new Refresher(h.ctx);
    const inside = await rejection(extra(refresher));
    assert.equal(inside.retryAfterSeconds, 10);
    h.clock.now = T0 + 10_000;
    await extra(refresher);
    assert.equal(h.provider.calls.length, 1);
  });

  it('a transient failure backs off that scope: answer, log line, growing window, and its end', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push({ fail: { httpStatus: 503, body: { error: 'temporarily_unavailable' } } });
    const first = await rejection(extra(refresher));
    // random() = 1: 5 s * 1.5
    assert.equal(first.code, 'provider_unavailable');
    assert.equal(first.retryAfterSeconds, 8);
    assert.deepEqual(first.fields, {
      connection: NAME,
      providerError: 'temporarily_unavailable',
      providerCodes: undefined,
      traceId: undefined,
      correlationId: undefined,
      providerHttpStatus: 503,
    });
    assert.equal(first.cause instanceof BrokerError && first.cause.code, 'provider_unavailable');
    assert.deepEqual(h.logs, [
      'refresh.failed connection=sales-mailbox reason=extra_scope code=provider_unavailable attempt=1 providerError=temporarily_unavailable providerHttpStatus=503',
    ]);

    // Inside the window: answered from memory with the time left, naming the connection.
    h.clock.now = T0 + 1_000;
    const waiting = await rejection(extra(refresher));
    assert.equal(waiting.retryAfterSeconds, 7);
    assert.equal(waiting.fields.connection, NAME);
    h.clock.now = T0 + 7_499;
    await assert.rejects(extra(refresher), code('provider_unavailable'));
    assert.equal(h.provider.calls.length, 1);

    // The window ends at its last instant; a second failure doubles it.
    h.clock.now = T0 + 7_500;
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    const second = await rejection(extra(refresher));
    assert.equal(h.provider.calls.length, 2);
    assert.equal(second.retryAfterSeconds, 15);
    assert.match(h.logs.at(-1) ?? '', / attempt=2 /);
  });

  it('a protocol failure of an extra token is backed off in memory, the record untouched', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push({ fail: { httpStatus: 400, body: { error: 'something_new' } } });
    const answer = await rejection(extra(refresher));
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(answer.retryAfterSeconds, 8);
    const stored = h.store.records.get(NAME);
    assert.equal(stored?.revision, 1);
    assert.equal(stored?.failures, 0);
    await assert.rejects(extra(refresher), code('provider_unavailable'));
    assert.equal(h.provider.calls.length, 1);
  });

  it('a success clears the scope backoff: the next failure counts from one again', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    await assert.rejects(extra(refresher), code('provider_unavailable'));
    h.clock.now = T0 + 7_500;
    h.provider.queue.push({ ok: { ttlSeconds: 1 } });
    await extra(refresher);
    h.clock.now = T0 + 8_100; // the one-second token is due (half its lifetime)
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    const again = await rejection(extra(refresher));
    assert.equal(h.provider.calls.length, 3);
    assert.equal(again.retryAfterSeconds, 8);
    assert.match(h.logs.at(-1) ?? '', / attempt=1 /);
  });

  it('a resource refusal is answered from memory for two minutes, then the provider is asked again', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push(mfa);
    const refused = await rejection(extra(refresher));
    assert.equal(refused.code, 'resource_needs_reauth');
    h.clock.now = T0 + REFUSAL_HOLD_MS - 1;
    assert.equal(await rejection(extra(refresher)), refused, 'the same answer, from memory');
    assert.equal(h.provider.calls.length, 1);
    h.clock.now = T0 + REFUSAL_HOLD_MS;
    await extra(refresher);
    assert.equal(h.provider.calls.length, 2);
    assert.equal(h.store.records.get(NAME)?.status, 'active');
  });

  it('a new sign-in ends the hold of a refusal', async () => {
    const h = harness();
    await h.store.put(activeRecord({ connectedAt: T0 - HOUR }));
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push(mfa);
    await assert.rejects(extra(refresher), code('resource_needs_reauth'));
    await h.store.put(activeRecord({ connectedAt: T0 + 1, revision: 5 }));
    await extra(refresher);
    assert.equal(h.provider.calls.length, 2);
  });

  it('a success forgets a held refusal: once that token is due the provider is asked, not memory', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    h.provider.queue.push(mfa);
    await assert.rejects(extra(refresher), code('resource_needs_reauth'));
    h.provider.queue.push({ ok: { ttlSeconds: 1 } });
    await extra(refresher, true); // the owner signed in elsewhere; an admin forces a refresh
    h.clock.now = T0 + 600;
    await extra(refresher);
    assert.equal(h.provider.calls.length, 3);
  });

  it('a rejection raced by a rotation elsewhere is not held: the next read asks the provider', async () => {
    const h = harness();
    await h.store.put(activeRecord());
    const refresher = new Refresher(h.ctx);
    const held = h.provider.hold();
    h.provider.queue.push({
      fail: { httpStatus: 400, body: { error: 'invalid_grant', suberror: 'bad_token' } },
    });
    const pending = rejection(extra(refresher));
    await held.entered;
    const rotated = activeRecord({ revision: 2 });
    rotated.tokens!.refreshToken = 'rt-rotated-elsewhere-xxxxxxxx';
    await h.store.put(rotated);
    held.release();
    const answer = await pending;
    assert.equal(answer.code, 'provider_unavailable');
    assert.equal(answer.retryAfterSeconds, 1);
    await extra(refresher);
    assert.equal(h.provider.calls.length, 2);
    assert.equal(h.provider.calls[1]?.refreshToken, 'rt-rotated-elsewhere-xxxxxxxx');
  });

  it('no drop is logged when nothing was dropped', async () => {
    const h = harness();
    await h.store.put(withExtra(T0 - HOUR));
    await extra(new Refresher(h.ctx));
    assert.equal(h.provider.calls.length, 1);
    assert.ok(!h.logs.some((l) => l.startsWith('refresh.extra_tokens_dropped')), h.logs.join('\n'));
  });
});

describe('Refresher: the primary token', () => {
  it(`a primary refresh keeps all ${MAX_EXTRA_TOKENS} extra tokens and logs no drop`, async () => {
    const h = harness();
    const r = activeRecord({}, 0);
    r.tokens!.extra = Object.fromEntries(
      Array.from({ length: MAX_EXTRA_TOKENS }, (_, i) => [
        `https://api${i}.example/.default`,
        { accessToken: `at-x-${i}`, tokenType: 'Bearer', expiresAt: T0 + HOUR, issuedAt: T0, scope: 'x' },
      ]),
    );
    await h.store.put(r);
    const after = await primary(new Refresher(h.ctx));
    assert.equal(Object.keys(after.tokens?.extra ?? {}).length, MAX_EXTRA_TOKENS);
    assert.ok(!h.logs.some((l) => l.startsWith('refresh.extra_tokens_dropped')));
  });

  it('logs how long the provider took and that the lifetime was assumed when expires_in was missing', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const held = h.provider.hold();
    const scripted = h.provider.refresh.bind(h.provider);
    h.provider.refresh = async (rt, scopes) => ({ ...(await scripted(rt, scopes)), expiresInAssumed: true });
    const pending = primary(new Refresher(h.ctx));
    await held.entered;
    h.clock.now = T0 + 1_234;
    held.release();
    await pending;
    assert.deepEqual(h.logs, [
      'refresh.succeeded connection=sales-mailbox provider=microsoft reason=expired durationMs=1234 outcome=rotated detail="no expires_in: assumed 3600 s (provider setting)"',
    ]);
  });

  it('a kept refresh token is logged as kept, with no assumed-lifetime detail', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    h.provider.queue.push({ ok: { noRefreshToken: true } });
    await primary(new Refresher(h.ctx));
    assert.deepEqual(h.logs, [
      'refresh.succeeded connection=sales-mailbox provider=microsoft reason=expired durationMs=0 outcome=kept',
    ]);
  });

  it('a successful write forgets the cached tokens of the connection', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    const entry = activeRecord().tokens!.primary!;
    h.ctx.cache.remember(NAME, '', { entry, allowedCallers: undefined }, T0, 0);
    await primary(new Refresher(h.ctx));
    assert.equal(h.ctx.cache.fresh(NAME, '', T0, 0), undefined);
  });
});

describe('Refresher: primary-token decisions and reads', () => {
  it('a keep-alive refresh asks the provider although the access token is still fresh', async () => {
    const h = harness();
    await h.store.put(activeRecord({ refreshedAt: T0 - 8 * 24 * HOUR }));
    await new Refresher(h.ctx).refresh(NAME, undefined, { force: false, reason: 'keep_alive' });
    assert.equal(h.provider.calls.length, 1);
  });

  it('a transient failure of the primary token is recorded on the connection and backs it off', async () => {
    const h = harness();
    await h.store.put(activeRecord({}, 0));
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    const answer = await rejection(primary(new Refresher(h.ctx)));
    assert.equal(answer.code, 'provider_unavailable');
    const stored = h.store.records.get(NAME);
    assert.equal(stored?.failures, 1);
    assert.equal(stored?.nextAttemptAt, T0 + 7_500);
  });

  it('the next refresh records the latest read through this process as readAt', async () => {
    const h = harness();
    await h.store.put(activeRecord({ readAt: T0 - 2 * HOUR }, 0));
    const refresher = new Refresher(h.ctx);
    assert.equal(refresher.lastReadOf(NAME), undefined);
    refresher.noteRead(NAME, T0 - HOUR);
    assert.equal(refresher.lastReadOf(NAME), T0 - HOUR);
    assert.equal(refresher.lastReadOf('other'), undefined);
    await primary(refresher);
    assert.equal(h.store.records.get(NAME)?.readAt, T0 - HOUR);
  });

  it('a stored read later than any read here is kept; a record without one starts its idle clock now', async () => {
    const h = harness();
    await h.store.put(activeRecord({ readAt: T0 - HOUR }, 0));
    const refresher = new Refresher(h.ctx);
    refresher.noteRead(NAME, T0 - 2 * HOUR);
    await primary(refresher);
    assert.equal(h.store.records.get(NAME)?.readAt, T0 - HOUR);
    await h.store.put(activeRecord({ connection: 'never-read' }, 0));
    await new Refresher(h.ctx).refresh('never-read', undefined, { force: false, reason: 'expired' });
    assert.equal(h.store.records.get('never-read')?.readAt, T0);
  });
});

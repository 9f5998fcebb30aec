import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessTokens, authorizeCaller, tokenResponse } from '../../../shared/broker/accessTokens.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;
const fnKey = { kind: 'function_key' as const };

function reader() {
  const h = harness();
  return { ...h, tokens: new AccessTokens(h.ctx, new Refresher(h.ctx)) };
}

describe('authorizeCaller', () => {
  it('admits anyone without an allow-list, listed app ids case-insensitively, nobody else', () => {
    authorizeCaller(undefined, fnKey, 'c');
    authorizeCaller([], fnKey, 'c');
    authorizeCaller(['App-A'], { kind: 'entra', appId: 'app-a' }, 'c');
    assert.throws(() => authorizeCaller(['app-a'], fnKey, 'c'), code('forbidden'));
    assert.throws(
      () => authorizeCaller(['app-a'], { kind: 'entra', appId: 'app-b' }, 'c'),
      code('forbidden'),
    );
  });

  it('admits any one app of a longer allow-list, and names the refused caller in the log fields', () => {
    authorizeCaller(['app-a', 'APP-B', 'app-c'], { kind: 'entra', appId: 'app-b' }, 'c');
    assert.throws(
      () => authorizeCaller(['app-a', 'app-b'], { kind: 'entra', appId: 'app-z' }, 'c'),
      (e) => code('forbidden')(e) && (e as BrokerError).fields.caller === 'app-z',
    );
    assert.throws(
      () => authorizeCaller(['app-a'], fnKey, 'c'),
      (e) => code('forbidden')(e) && (e as BrokerError).fields.caller === 'function_key',
    );
  });

  it('admits the broker itself (the owner mail reads its sending connection) past an allow-list', () => {
    authorizeCaller(['app-a'], { kind: 'broker' }, 'mailer');
  });
});

describe('tokenResponse', () => {
  it('counts expires_in down from now and never below zero', () => {
    const entry = { accessToken: 'at', tokenType: 'Bearer', expiresAt: T0 + 90_500, scope: 's' };
    assert.deepEqual(tokenResponse('c', entry, T0), {
      access_token: 'at',
      token_type: 'Bearer',
      expires_at: new Date(T0 + 90_500).toISOString(),
      expires_in: 90,
      scope: 's',
      connection: 'c',
    });
    assert.equal(tokenResponse('c', entry, T0 + 100_000).expires_in, 0);
  });
});

describe('AccessTokens', () => {
  it('serves from the cache without a store read; a changed record is read again after a write forgets it', async () => {
    const h = reader();
    await h.store.put(activeRecord());
    await h.tokens.get('sales-mailbox', fnKey);
    const reads = h.store.gets;
    await h.tokens.get('sales-mailbox', fnKey);
    assert.equal(h.store.gets, reads);
    h.ctx.cache.forget('sales-mailbox');
    await h.store.put(
      activeRecord({ settings: { provider: 'microsoft', scopes: [], allowedCallers: ['app-a'] } }),
    );
    await assert.rejects(h.tokens.get('sales-mailbox', fnKey), code('forbidden'));
  });

  it('a cached token is still checked against the allow-list it was served under', async () => {
    const h = reader();
    await h.store.put(
      activeRecord({ settings: { provider: 'microsoft', scopes: [], allowedCallers: ['app-a'] } }),
    );
    await h.tokens.get('sales-mailbox', { kind: 'entra', appId: 'app-a' });
    const reads = h.store.gets;
    await assert.rejects(h.tokens.get('sales-mailbox', fnKey), code('forbidden'));
    assert.equal(h.store.gets, reads, 'refused from the cache');
  });

  it('serves a due but unexpired token when the refresh fails transiently; never an expired one', async () => {
    const h = reader();
    await h.store.put(activeRecord({}, 60_000));
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    const res = await h.tokens.get('sales-mailbox', fnKey);
    assert.equal(res.access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    assert.match(h.logs.join('\n'), /token\.served_stale connection=sales-mailbox code=provider_unavailable/);
    h.clock.now = T0 + 60_000;
    h.provider.queue.push({ fail: { httpStatus: 503 } });
    await assert.rejects(h.tokens.get('sales-mailbox', fnKey), code('provider_unavailable'));
  });

  it('refuses scopes the account did not consent to before any provider call', async () => {
    const h = reader();
    await h.store.put(activeRecord());
    await assert.rejects(
      h.tokens.get('sales-mailbox', fnKey, ['https://outlook.office.com/SMTP.Send']),
      code('scope_not_granted'),
    );
    assert.equal(h.provider.calls.length, 0);
  });
});

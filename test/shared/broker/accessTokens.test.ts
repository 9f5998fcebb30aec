import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessTokens, authorizeCaller, tokenResponse } from '../../../shared/broker/accessTokens.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { activeRecord, barrier, HOUR, harness, MemoryStore, T0 } from './fixture.ts';

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

describe('AccessTokens: what is refused, served and asked for', () => {
  const OUTLOOK = 'https://outlook.office.com/SMTP.Send';
  const withOutlook = (over: Parameters<typeof activeRecord>[0] = {}, ttl?: number) => {
    const r = activeRecord(over, ttl);
    r.tokens!.grantedScopes = [...r.tokens!.grantedScopes, OUTLOOK];
    return r;
  };

  it('an invalid connection name is invalid_request before it is noted as read or looked up', async () => {
    const h = harness();
    const refresher = new Refresher(h.ctx);
    const tokens = new AccessTokens(h.ctx, refresher);
    await assert.rejects(tokens.get('Bad Name', fnKey), code('invalid_request'));
    assert.equal(refresher.lastReadOf('Bad Name'), undefined);
    assert.equal(h.store.gets, 0);
  });

  it('notes each read for the idle sweep', async () => {
    const h = harness();
    const refresher = new Refresher(h.ctx);
    await h.store.put(activeRecord());
    h.clock.now = T0 + 7;
    await new AccessTokens(h.ctx, refresher).get('sales-mailbox', fnKey);
    assert.equal(refresher.lastReadOf('sales-mailbox'), T0 + 7);
  });

  it('a connection in error, or needing an interactive sign-in, serves its unexpired token without a provider call', async () => {
    for (const over of [
      { status: 'error' as const, lastError: { code: 'provider_error', at: T0 } },
      {
        status: 'needs_reauth' as const,
        lastError: { code: 'connection_needs_reauth', cause: 'interaction' as const, at: T0 },
      },
    ]) {
      const h = reader();
      await h.store.put(activeRecord(over, 60_000));
      const res = await h.tokens.get('sales-mailbox', fnKey);
      assert.equal(res.access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
      assert.equal(h.provider.calls.length, 0);
      h.ctx.cache.forget('sales-mailbox');
      h.clock.now = T0 + 60_000;
      await assert.rejects(h.tokens.get('sales-mailbox', fnKey), (e) => e instanceof BrokerError);
      assert.equal(h.provider.calls.length, 0);
    }
  });

  it('a /.default mixed with other scopes is invalid_request, saying why', async () => {
    const h = reader();
    await h.store.put(withOutlook());
    await assert.rejects(
      h.tokens.get('sales-mailbox', fnKey, ['https://outlook.office.com/.default', OUTLOOK]),
      (e: unknown) => {
        assert.ok(e instanceof BrokerError);
        assert.equal(e.code, 'invalid_request');
        assert.equal(e.message, 'A /.default scope cannot be combined with other scopes.');
        assert.equal(e.detail, '.default cannot be combined with other scopes');
        assert.deepEqual(e.fields, { connection: 'sales-mailbox' });
        return true;
      },
    );
  });

  it('scopes not consented to are scope_not_granted, naming the connection, with a hint to reconnect', async () => {
    const h = reader();
    await h.store.put(activeRecord());
    await assert.rejects(h.tokens.get('sales-mailbox', fnKey, [OUTLOOK]), (e: unknown) => {
      assert.ok(e instanceof BrokerError);
      assert.equal(e.code, 'scope_not_granted');
      assert.equal(
        e.message,
        'This connection was not granted those scopes. Reconnect with the wider scopes.',
      );
      assert.equal(e.detail, 'scope not granted');
      assert.deepEqual(e.fields, { connection: 'sales-mailbox' });
      return true;
    });
  });

  it('an empty scope list is the primary token: a due one is refreshed with the connection scopes, reason expiring', async () => {
    const h = reader();
    await h.store.put(activeRecord({}, 60_000));
    const res = await h.tokens.get('sales-mailbox', fnKey, []);
    assert.equal(res.access_token, `at-1-${'x'.repeat(24)}`);
    assert.deepEqual(h.provider.calls[0]?.scopes, ['https://graph.microsoft.com/Mail.Send']);
    assert.match(
      h.logs.join('\n'),
      /refresh\.succeeded connection=sales-mailbox provider=microsoft reason=expiring /,
    );
  });

  it('a token for another resource is fetched on first use (reason no_access_token) and then served from the record', async () => {
    const h = reader();
    await h.store.put(withOutlook());
    const first = await h.tokens.get('sales-mailbox', fnKey, [OUTLOOK]);
    assert.equal(first.scope, OUTLOOK);
    assert.deepEqual(h.provider.calls[0]?.scopes, [OUTLOOK]);
    assert.match(
      h.logs.join('\n'),
      /refresh\.succeeded connection=sales-mailbox provider=microsoft reason=no_access_token /,
    );
    h.ctx.cache.forget('sales-mailbox');
    const again = await h.tokens.get('sales-mailbox', fnKey, [OUTLOOK]);
    assert.equal(again.access_token, first.access_token);
    assert.equal(h.provider.calls.length, 1);
  });

  it('a refresh superseded by a newer record without that token is provider_error, never another token', async () => {
    const h = reader();
    await h.store.put(withOutlook());
    const gate = h.provider.hold();
    const reading = h.tokens.get('sales-mailbox', fnKey, [OUTLOOK]);
    await gate.entered;
    // Another writer (a new sign-in elsewhere) stored a newer record meanwhile.
    await h.store.put(withOutlook({ revision: 5 }));
    gate.release();
    await assert.rejects(reading, code('provider_error'));
  });
});

describe('AccessTokens: a refresh another instance already made', () => {
  it('a read that waited for the lock while the token was refreshed elsewhere serves that token, no provider call', async () => {
    const store = new MemoryStore();
    const firstRead = barrier();
    const get = store.get.bind(store);
    store.get = (name) => get(name).finally(firstRead.open);
    const h = harness({ store });
    const tokens = new AccessTokens(h.ctx, new Refresher(h.ctx));
    await store.put(activeRecord({}, 0));
    const elsewhere = activeRecord({ revision: 2 }, HOUR);
    elsewhere.tokens!.primary!.accessToken = 'at-elsewhere-zzzzzzzzzzzzzzzz';
    let reading: Promise<unknown> | undefined;
    await h.lock.withLock('sales-mailbox', async () => {
      reading = tokens.get('sales-mailbox', fnKey);
      await firstRead.promise;
      // Read the expired record; now another instance stores its refresh before this one gets the lock.
      await store.put(elsewhere);
    });
    const res = (await reading) as { access_token: string };
    assert.equal(res.access_token, 'at-elsewhere-zzzzzzzzzzzzzzzz');
    assert.equal(h.provider.calls.length, 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertUsable,
  connected,
  mustGet,
  pickEntry,
  providerFor,
  putUnlessSuperseded,
  withTokens,
} from '../../../shared/broker/records.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { TokenResult } from '../../../shared/oauth/provider.ts';
import { createMemoryLock } from '../../../shared/lock/memoryLock.ts';
import type { ConnectionLock } from '../../../shared/lock/types.ts';
import { activeRecord, harness, MemoryStore, T0 } from './fixture.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;
const result = (over: Partial<TokenResult> = {}): TokenResult => ({
  accessToken: 'at-new',
  tokenType: 'Bearer',
  expiresInSeconds: 600,
  scope: 'openid https://graph.microsoft.com/Mail.Send',
  ...over,
});

describe('withTokens', () => {
  it('primary: new entry, rotated refresh token, granted scopes without OIDC ones, failures cleared', () => {
    const before = activeRecord({ failures: 3, nextAttemptAt: T0 + 1, lastError: { code: 'x', at: T0 } });
    const next = withTokens(
      before,
      result({ refreshToken: 'rt-new', refreshInSeconds: 300 }),
      'rt-old',
      undefined,
      T0,
      ['offline_access', 'https://ads.microsoft.com/msads.manage'],
    );
    assert.equal(next.tokens?.refreshToken, 'rt-new');
    assert.deepEqual(next.tokens?.primary, {
      accessToken: 'at-new',
      tokenType: 'Bearer',
      expiresAt: T0 + 600_000,
      issuedAt: T0,
      refreshAt: T0 + 300_000,
      scope: 'openid https://graph.microsoft.com/Mail.Send',
    });
    assert.deepEqual(next.tokens?.grantedScopes, [
      'https://graph.microsoft.com/Mail.Send',
      'https://ads.microsoft.com/msads.manage',
    ]);
    assert.equal(next.failures, 0);
    assert.equal(next.nextAttemptAt, undefined);
    assert.equal(next.lastError, undefined);
    assert.equal(next.refreshedAt, T0);
    assert.equal(next.revision, before.revision + 1);
  });

  it('without a refresh token in the response the previous one stays; an extra key keeps the primary token', () => {
    const before = activeRecord({ refreshedAt: T0 - 5 });
    const next = withTokens(before, result(), 'rt-previous', 'k', T0);
    assert.equal(next.tokens?.refreshToken, 'rt-previous');
    assert.deepEqual(next.tokens?.primary, before.tokens?.primary);
    assert.equal(next.tokens?.extra?.k?.accessToken, 'at-new');
    assert.equal(next.refreshedAt, T0 - 5);
  });

  it('a stated grant end belongs to its refresh token: kept while the token is, dropped with a new one', () => {
    const stated = withTokens(
      activeRecord(),
      result({ refreshToken: 'rt-1', refreshTokenExpiresInSeconds: 3600 }),
      'rt-0',
      undefined,
      T0,
    );
    assert.equal(stated.tokens?.refreshTokenExpiresAt, T0 + 3_600_000);
    // A refresh answer without a refresh token (Google): the same grant, so the same end.
    const kept = withTokens(stated, result(), 'rt-1', undefined, T0 + 60_000);
    assert.equal(kept.tokens?.refreshTokenExpiresAt, T0 + 3_600_000);
    // A new refresh token without a stated end: the old end does not apply to it.
    const rotated = withTokens(stated, result({ refreshToken: 'rt-2' }), 'rt-1', undefined, T0 + 60_000);
    assert.equal(rotated.tokens?.refreshTokenExpiresAt, undefined);
  });

  it('granted scopes leave out every OIDC scope and empty pieces of a sloppy scope string', () => {
    const next = withTokens(
      activeRecord(),
      result({ scope: ' profile  email openid offline_access https://graph.microsoft.com/Mail.Send ' }),
      'rt',
      undefined,
      T0,
    );
    assert.deepEqual(next.tokens?.grantedScopes, ['https://graph.microsoft.com/Mail.Send']);
  });

  it('connected: replaces old tokens and identity, activates', () => {
    const before = { ...activeRecord({ status: 'needs_reauth' }), identity: { username: 'old' } };
    if (before.tokens)
      before.tokens.extra = { k: { accessToken: 'old', tokenType: 'Bearer', expiresAt: T0, scope: '' } };
    const imported = connected(before, result({ refreshToken: 'rt-new' }), 'rt-new', T0, [], undefined);
    assert.equal(imported.status, 'active');
    assert.equal(imported.identity, undefined);
    assert.equal(imported.tokens?.extra, undefined);
    assert.equal(imported.connectedAt, T0);
    const signedIn = connected(before, result(), 'rt-code', T0, [], { username: 'new' });
    assert.deepEqual(signedIn.identity, { username: 'new' });
  });
});

describe('assertUsable and providerFor', () => {
  it('pending, needs_reauth and error each have their answer', () => {
    assert.throws(() => assertUsable(activeRecord({ status: 'pending' })), code('connection_not_connected'));
    assert.throws(
      () => assertUsable(activeRecord({ status: 'needs_reauth' })),
      code('connection_needs_reauth'),
    );
    assert.throws(() => assertUsable(activeRecord({ status: 'error' })), code('connection_error'));
    assertUsable(activeRecord());
    assert.throws(
      () => providerFor(new Map(), 'x'.repeat(100)),
      (e) => code('invalid_request')(e) && !(e as Error).message.includes('x'.repeat(33)),
    );
  });
});

/** A lease lock (like the blob lock) whose lease is held, or already lost, at write time. */
function leaseLock(kind: string, held: boolean): ConnectionLock {
  const inner = createMemoryLock();
  return { kind, held: () => held, withLock: (c, fn) => inner.withLock(c, fn) };
}

describe('records: lookups, guarded writes and answers, in detail', () => {
  it('mustGet refuses an invalid name as invalid_request before any store read; a missing one is unknown_connection', async () => {
    const store = new MemoryStore();
    await assert.rejects(mustGet(store, 'Bad Name'), code('invalid_request'));
    assert.equal(store.gets, 0);
    await assert.rejects(mustGet(store, 'sales-mailbox'), code('unknown_connection'));
    await store.put(activeRecord());
    assert.equal((await mustGet(store, 'sales-mailbox')).connection, 'sales-mailbox');
  });

  it('a write the store has moved past is dropped, logged as refresh.superseded with both revisions', async () => {
    const h = harness();
    await h.store.put(activeRecord({ revision: 4 }));
    const newer = await putUnlessSuperseded(h.ctx, activeRecord({ revision: 4 }), 'expiring');
    assert.equal(newer?.revision, 4);
    assert.equal(h.store.puts, 1);
    assert.deepEqual(h.logs, [
      'refresh.superseded connection=sales-mailbox reason=expiring detail="store revision 4 >= 4; not overwritten"',
    ]);
    assert.equal(await putUnlessSuperseded(h.ctx, activeRecord({ revision: 5 }), 'expiring'), undefined);
    assert.equal(h.store.records.get('sales-mailbox')?.revision, 5);
  });

  it('a write after the lock lease was lost is lock_timeout, retry after 1 s, and writes nothing', async () => {
    const h = harness({ lock: leaseLock('blob', false) });
    await assert.rejects(putUnlessSuperseded(h.ctx, activeRecord(), 'expiring'), (e: unknown) => {
      assert.ok(e instanceof BrokerError);
      assert.equal(e.code, 'lock_timeout');
      assert.equal(e.retryAfterSeconds, 1);
      assert.equal(e.detail, 'lease lost before the store write');
      assert.deepEqual(e.fields, { connection: 'sales-mailbox', lock: 'blob' });
      return true;
    });
    assert.equal(h.store.puts, 0);
    const kept = harness({ lock: leaseLock('blob', true) });
    assert.equal(await putUnlessSuperseded(kept.ctx, activeRecord(), 'expiring'), undefined);
    assert.equal(kept.store.puts, 1);
  });

  it('an unknown provider is invalid_request with a private detail', () => {
    assert.throws(
      () => providerFor(new Map(), 'acme'),
      (e) => code('invalid_request')(e) && (e as BrokerError).detail === 'unknown provider',
    );
  });

  it('needs_reauth and error answers name the connection and the provider error', () => {
    const lastError = { code: 'x', providerError: 'invalid_grant', at: T0 };
    for (const [status, answer] of [
      ['needs_reauth', 'connection_needs_reauth'],
      ['error', 'connection_error'],
    ] as const) {
      assert.throws(
        () => assertUsable(activeRecord({ status, lastError })),
        (e) =>
          code(answer)(e) &&
          JSON.stringify((e as BrokerError).fields) ===
            JSON.stringify({ connection: 'sales-mailbox', providerError: 'invalid_grant' }),
      );
    }
  });

  it('an active record without tokens is not connected', () => {
    const bare = activeRecord();
    delete bare.tokens;
    assert.throws(() => assertUsable(bare), code('connection_not_connected'));
  });

  it('pickEntry: the primary token, an extra one, or nothing when none is stored for the key', () => {
    const r = activeRecord();
    assert.equal(pickEntry(r, ''), r.tokens?.primary);
    assert.equal(pickEntry(r, 'https://outlook.office.com/SMTP.Send'), undefined);
    const extra = { accessToken: 'x', tokenType: 'Bearer', expiresAt: T0, scope: 'k' };
    r.tokens!.extra = { k: extra };
    assert.equal(pickEntry(r, 'k'), extra);
    const bare = activeRecord();
    delete bare.tokens;
    assert.equal(pickEntry(bare, 'k'), undefined);
    assert.equal(pickEntry(bare, ''), undefined);
  });

  it('a first token on a record without tokens grants exactly the scopes of the answer', () => {
    const bare = { ...activeRecord(), status: 'pending' as const };
    delete bare.tokens;
    const next = withTokens(bare, result({ scope: 'openid  A B ' }), 'rt', undefined, T0);
    assert.deepEqual(next.tokens?.grantedScopes, ['A', 'B']);
    // A pending record stays pending until the sign-in completes; an extra token grants nothing new.
    assert.equal(next.status, 'pending');
    const extra = withTokens(bare, result({ scope: 'C' }), 'rt', 'C', T0);
    assert.deepEqual(extra.tokens?.grantedScopes, []);
  });

  it('connected without a verified identity leaves no identity field at all', () => {
    const before = activeRecord({ identity: { username: 'old' } });
    const next = connected(before, result(), 'rt', T0, [], undefined);
    assert.equal('identity' in next, false);
  });
});

describe('withTokens keeps what it does not replace', () => {
  const extraEntry = (scope: string) => ({
    accessToken: `at-${scope}`,
    tokenType: 'Bearer',
    expiresAt: T0,
    scope,
  });

  it('refreshing the primary token or one extra token keeps every other extra token', () => {
    const before = activeRecord();
    before.tokens!.extra = { a: extraEntry('a'), b: extraEntry('b') };
    const primary = withTokens(before, result(), 'rt', undefined, T0);
    assert.deepEqual(primary.tokens?.extra, before.tokens?.extra);
    const one = withTokens(before, result({ scope: 'a' }), 'rt', 'a', T0);
    assert.deepEqual(Object.keys(one.tokens?.extra ?? {}).sort(), ['a', 'b']);
    assert.deepEqual(one.tokens?.extra?.b, extraEntry('b'));
    assert.equal(one.tokens?.extra?.a?.accessToken, 'at-new');
    // The record it was built from is not changed.
    assert.deepEqual(before.tokens?.extra, { a: extraEntry('a'), b: extraEntry('b') });
  });

  it('an answer without refresh_in gives an entry without a refresh time', () => {
    const next = withTokens(activeRecord(), result(), 'rt', undefined, T0);
    assert.deepEqual(next.tokens?.primary, {
      accessToken: 'at-new',
      tokenType: 'Bearer',
      expiresAt: T0 + 600_000,
      issuedAt: T0,
      scope: 'openid https://graph.microsoft.com/Mail.Send',
    });
  });
});

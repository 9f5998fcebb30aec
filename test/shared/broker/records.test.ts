import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertUsable, connected, providerFor, withTokens } from '../../../shared/broker/records.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { TokenResult } from '../../../shared/oauth/provider.ts';
import { activeRecord, T0 } from './fixture.ts';

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

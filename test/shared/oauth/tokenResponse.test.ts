import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as oauth from 'oauth4webapi';
import { positiveSeconds, toTokenResult } from '../../../shared/oauth/tokenResponse.ts';

const base = { access_token: 'at', token_type: 'bearer' } as oauth.TokenEndpointResponse;
const requested = ['openid', 'https://graph.microsoft.com/Mail.Read'];

describe('toTokenResult', () => {
  it('uses the stated lifetime, as a number or a numeric string', () => {
    assert.equal(
      toTokenResult({ ...base, expires_in: 120 }, undefined, requested, 600).expiresInSeconds,
      120,
    );
    const fromString = { ...base, expires_in: '120' } as unknown as oauth.TokenEndpointResponse;
    assert.equal(toTokenResult(fromString, undefined, requested, 600).expiresInSeconds, 120);
  });
  it('without expires_in: the provider default, flagged as assumed (never a silent 3600)', () => {
    const r = toTokenResult(base, undefined, requested, 900);
    assert.equal(r.expiresInSeconds, 900);
    assert.equal(r.expiresInAssumed, true);
    assert.equal(
      toTokenResult({ ...base, expires_in: 60 }, undefined, requested, 900).expiresInAssumed,
      undefined,
    );
  });
  it('reads refresh_token_expires_in and refresh_in (numbers or strings); refresh_in only below the lifetime', () => {
    const res = { ...base, expires_in: 3600, refresh_in: '1800', refresh_token_expires_in: '604800' };
    const r = toTokenResult(res, undefined, requested, 600);
    assert.equal(r.refreshInSeconds, 1800);
    assert.equal(r.refreshTokenExpiresInSeconds, 604800);
    const late = { ...base, expires_in: 60, refresh_in: 60 } as unknown as oauth.TokenEndpointResponse;
    assert.equal(toTokenResult(late, undefined, requested, 600).refreshInSeconds, undefined);
  });
  it('no scope: the requested scopes; no refresh token: none (the broker keeps the old one)', () => {
    const r = toTokenResult({ ...base, expires_in: 60 }, undefined, requested, 600);
    assert.equal(r.scope, requested.join(' '));
    assert.equal(r.refreshToken, undefined);
    assert.equal(r.tokenType, 'Bearer');
  });
  it('a full answer: its scope, its refresh token, the token type as sent, the identity from the ID token', () => {
    const res = {
      access_token: 'at',
      token_type: 'DPoP',
      expires_in: 60,
      scope: 'https://graph.microsoft.com/Mail.Read',
      refresh_token: 'rt-new',
    } as oauth.TokenEndpointResponse;
    const claims = {
      tid: 'tid-1',
      oid: 'oid-1',
      sub: 'sub-1',
      iss: 'https://login.microsoftonline.com/tid-1/v2.0',
      email: 'adele@contoso.example',
      upn: 'upn@contoso.example',
    };
    assert.deepEqual(toTokenResult(res, claims, requested, 600), {
      accessToken: 'at',
      tokenType: 'DPoP',
      expiresInSeconds: 60,
      scope: 'https://graph.microsoft.com/Mail.Read',
      refreshToken: 'rt-new',
      identity: {
        tenantId: 'tid-1',
        objectId: 'oid-1',
        subject: 'sub-1',
        issuer: 'https://login.microsoftonline.com/tid-1/v2.0',
        username: 'adele@contoso.example',
      },
    });
    // preferred_username wins over email and upn; claims of the wrong type are left out; an empty scope and
    // an empty refresh token count as absent.
    const other = toTokenResult(
      { ...res, scope: '', refresh_token: '' },
      { preferred_username: 'adele', email: 'e', tid: 7, oid: null, sub: {}, iss: [] } as never,
      requested,
      600,
    );
    assert.deepEqual(other.identity, { username: 'adele' });
    assert.equal(other.scope, requested.join(' '));
    assert.equal(other.refreshToken, undefined);
    assert.deepEqual(toTokenResult(res, { upn: 'upn@x' }, requested, 600).identity, { username: 'upn@x' });
  });

  it('an ID token without a usable username claim gives an identity without username', () => {
    const res = { ...base, expires_in: 60 };
    assert.deepEqual(toTokenResult(res, { tid: 't1', sub: 's1' }, requested, 600).identity, {
      tenantId: 't1',
      subject: 's1',
    });
    assert.deepEqual(toTokenResult(res, { sub: 's1', preferred_username: 42 }, requested, 600).identity, {
      subject: 's1',
    });
  });

  it('positiveSeconds refuses what is not a positive finite number', () => {
    // true and [5] would become 1 and 5 if coerced: only numbers and numeric strings count.
    for (const v of [undefined, null, '', 'abc', -1, 0, Number.NaN, Number.POSITIVE_INFINITY, {}, true, [5]])
      assert.equal(positiveSeconds(v), undefined, JSON.stringify(v));
    assert.equal(positiveSeconds(' 42 '), 42);
    assert.equal(positiveSeconds('3599.9'), 3599, 'whole seconds, rounded down');
    assert.equal(positiveSeconds(3599.9), 3599);
    assert.equal(positiveSeconds('  '), undefined);
  });
});

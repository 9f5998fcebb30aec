import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeDataString, serializeCookie } from '../../../tools/devhost/cookies.ts';

void describe('cookie serialisation (ASP.NET Response.Cookies.Append)', () => {
  void it('escapes values like Uri.EscapeDataString, names untouched', () => {
    assert.equal(escapeDataString("a b;c/é!'()*~-._"), 'a%20b%3Bc%2F%C3%A9%21%27%28%29%2A~-._');
    assert.equal(serializeCookie({ name: 'n=x', value: 'v v' }), 'n=x=v%20v; path=/');
  });

  void it('adds path=/ when no path is given and keeps a given one', () => {
    assert.equal(serializeCookie({ name: 'a', value: '1' }), 'a=1; path=/');
    assert.equal(serializeCookie({ name: 'a', value: '1', path: { value: '/p' } }), 'a=1; path=/p');
  });

  void it('writes lower-case attributes in SetCookieHeaderValue order', () => {
    const cookie = serializeCookie({
      name: 'full',
      value: 'v',
      httpOnly: { value: true },
      sameSite: 'strict',
      secure: { value: true },
      path: { value: '/x' },
      domain: { value: 'example.com' },
      maxAge: { value: 60.9 },
      expires: { value: { seconds: Date.UTC(2030, 0, 2, 3, 4, 5) / 1000 } },
    });
    assert.equal(
      cookie,
      'full=v; expires=Wed, 02 Jan 2030 03:04:05 GMT; max-age=60; domain=example.com; path=/x; secure; samesite=strict; httponly',
    );
  });

  void it('maps SameSite: none = unspecified, explicitNone = samesite=none, lax', () => {
    assert.equal(serializeCookie({ name: 'a', value: '1', sameSite: 'none' }), 'a=1; path=/');
    assert.equal(
      serializeCookie({ name: 'a', value: '1', sameSite: 'explicitNone' }),
      'a=1; path=/; samesite=none',
    );
    assert.equal(serializeCookie({ name: 'a', value: '1', sameSite: 'lax' }), 'a=1; path=/; samesite=lax');
    assert.equal(serializeCookie({ name: 'a', value: '1', secure: { value: false } }), 'a=1; path=/');
  });
});

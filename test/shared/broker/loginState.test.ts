import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type LoginState, openLoginState, sealLoginState } from '../../../shared/broker/loginState.ts';
import { keyIdOf } from '../../../shared/config.ts';
import { encryptJwt, Keyring } from '../../../shared/crypto.ts';
import { legacyLoginCookie } from '../legacyFormats.ts';
import { T0 } from './fixture.ts';

const keyring = () => {
  const key = randomBytes(32);
  return new Keyring([{ kid: keyIdOf(key), key }]);
};
const NAME = '__Host-token-broker-login-abcdefghijklmnop';
const STATE: LoginState = {
  c: 'sales-mailbox',
  p: 'microsoft',
  t: T0 - 5000,
  s: 'state-value-0123456789',
  n: 'nonce-value-0123456789',
  v: 'verifier-value-0123456789012345678901234567890',
  exp: T0 + 600_000,
  scopes: ['openid', 'offline_access', 'https://graph.microsoft.com/Mail.Send'],
};

describe('sealLoginState / openLoginState', () => {
  const ring = keyring();

  it('opens to exactly what was sealed (no extra claims), exp to the millisecond', async () => {
    const cookie = await sealLoginState(ring, { ...STATE, exp: T0 + 600_001 }, NAME);
    assert.deepEqual(await openLoginState(ring, cookie, NAME, T0), { ...STATE, exp: T0 + 600_001 });
  });

  it('the content is encrypted: neither verifier, nonce nor state can be read from the cookie', async () => {
    const cookie = await sealLoginState(ring, STATE, NAME);
    for (const part of cookie.split('.')) {
      const text = Buffer.from(part, 'base64url').toString('latin1');
      for (const secret of [STATE.v, STATE.n, STATE.s]) assert.ok(!text.includes(secret));
    }
  });

  it('an expired cookie still opens with its expiry: the callback decides and says "took too long"', async () => {
    const cookie = await sealLoginState(ring, STATE, NAME);
    const later = await openLoginState(ring, cookie, NAME, STATE.exp + 60_000);
    assert.equal(later?.exp, STATE.exp);
    assert.equal(later?.s, STATE.s);
  });

  it('opens only under its own cookie name and a listed key', async () => {
    const cookie = await sealLoginState(ring, STATE, NAME);
    assert.equal(await openLoginState(ring, cookie, `${NAME}x`, T0), undefined);
    assert.equal(await openLoginState(keyring(), cookie, NAME, T0), undefined);
    assert.equal(await openLoginState(ring, 'not-a-cookie', NAME, T0), undefined);
  });

  it('a cookie without the connection instance (sealed before `t` existed) opens', async () => {
    const { t: _t, ...old } = STATE;
    const cookie = await sealLoginState(ring, old, NAME);
    const opened = await openLoginState(ring, cookie, NAME, T0);
    assert.ok(opened);
    assert.equal(opened.t, undefined);
    assert.equal(opened.s, STATE.s);
  });

  it('opens a cookie in the format used before jose, under its name only', async () => {
    const cookie = legacyLoginCookie(ring, STATE, NAME);
    assert.deepEqual(await openLoginState(ring, cookie, NAME, T0), STATE);
    assert.equal(await openLoginState(ring, cookie, `${NAME}x`, T0), undefined);
  });

  describe('authentic but malformed content is refused (undefined), in either format', () => {
    const { exp: _exp, ...claims } = STATE;
    const cases: [string, Record<string, unknown>][] = [
      ['state missing', { ...claims, s: undefined }],
      ['state not a string', { ...claims, s: 7 }],
      ['scopes missing', { ...claims, scopes: undefined }],
      ['scopes a string', { ...claims, scopes: 'openid' }],
      ['instance a string', { ...claims, t: String(STATE.t) }],
    ];
    for (const [label, content] of cases) {
      it(`${label} (JWE)`, async () => {
        const cookie = await encryptJwt({ keyring: ring, purpose: 'state-cookie' }, content, STATE.exp, NAME);
        assert.equal(await openLoginState(ring, cookie, NAME, T0), undefined);
      });
      it(`${label} (format used before jose)`, async () => {
        const cookie = legacyLoginCookie(ring, { ...content, exp: STATE.exp }, NAME);
        assert.equal(await openLoginState(ring, cookie, NAME, T0), undefined);
      });
    }
    it('expiry missing or not a number (format used before jose)', async () => {
      assert.equal(await openLoginState(ring, legacyLoginCookie(ring, claims, NAME), NAME, T0), undefined);
      const text = legacyLoginCookie(ring, { ...claims, exp: String(STATE.exp) }, NAME);
      assert.equal(await openLoginState(ring, text, NAME, T0), undefined);
    });
    it('a JSON null (format used before jose)', async () => {
      const cookie = legacyLoginCookie(ring, null as unknown as object, NAME);
      assert.equal(await openLoginState(ring, cookie, NAME, T0), undefined);
    });
  });
});

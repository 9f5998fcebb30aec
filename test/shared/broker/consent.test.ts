import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  checkConsent,
  CONSENT_COOKIE_PREFIX,
  CONSENT_MAX_AGE_SECONDS,
  consentCookieName,
  newConsent,
} from '../../../shared/broker/consent.ts';
import { keyIdOf } from '../../../shared/config.ts';
import { Keyring, signToken } from '../../../shared/crypto.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { T0 } from './fixture.ts';

const keyring = () => {
  const key = randomBytes(32);
  return new Keyring([{ kid: keyIdOf(key), key }]);
};
const refused = (detail: string) => (e: unknown) =>
  e instanceof BrokerError && e.code === 'invalid_state' && e.detail === detail;
const LINK = 'eyJhbGciOiJIUzI1NiJ9.link-for-sales-mailbox.sig';
const OTHER_LINK = 'eyJhbGciOiJIUzI1NiJ9.link-for-other.sig';

describe('consentCookieName', () => {
  it('is the prefix and 16 base64url characters, the same for one link and different for another', () => {
    const name = consentCookieName(LINK);
    assert.ok(name.startsWith(CONSENT_COOKIE_PREFIX));
    assert.match(name.slice(CONSENT_COOKIE_PREFIX.length), /^[A-Za-z0-9_-]{16}$/);
    assert.equal(consentCookieName(LINK), name);
    assert.notEqual(consentCookieName(OTHER_LINK), name);
  });
});

describe('newConsent / checkConsent', () => {
  const ring = keyring();

  it('the token checks out with its cookie, for its link, until the moment it expires', () => {
    const { cookieValue, token } = newConsent(ring, LINK, T0);
    checkConsent(ring, LINK, cookieValue, token, T0);
    checkConsent(ring, LINK, cookieValue, token, T0 + CONSENT_MAX_AGE_SECONDS * 1000 - 1);
    assert.throws(
      () => checkConsent(ring, LINK, cookieValue, token, T0 + CONSENT_MAX_AGE_SECONDS * 1000),
      refused('consent token expired'),
    );
  });

  it('each consent gets a fresh, unguessable cookie value', () => {
    const a = newConsent(ring, LINK, T0);
    const b = newConsent(ring, LINK, T0);
    assert.notEqual(a.cookieValue, b.cookieValue);
    assert.ok(a.cookieValue.length >= 32, 'at least 24 random bytes');
    // One browser's cookie does not vouch for another browser's form.
    assert.throws(
      () => checkConsent(ring, LINK, b.cookieValue, a.token, T0),
      refused('consent cookie mismatch'),
    );
  });

  it('refuses the token for another link, without the cookie, or with another cookie value', () => {
    const { cookieValue, token } = newConsent(ring, LINK, T0);
    assert.throws(
      () => checkConsent(ring, OTHER_LINK, cookieValue, token, T0),
      refused('consent token for another link'),
    );
    assert.throws(() => checkConsent(ring, LINK, undefined, token, T0), refused('consent cookie missing'));
    assert.throws(
      () => checkConsent(ring, LINK, `${cookieValue}x`, token, T0),
      refused('consent cookie mismatch'),
    );
  });

  it('refuses a token signed with another broker key, or altered', () => {
    const { cookieValue, token } = newConsent(ring, LINK, T0);
    assert.throws(
      () => checkConsent(keyring(), LINK, cookieValue, token, T0),
      refused('consent token invalid'),
    );
    assert.throws(
      () => checkConsent(ring, LINK, cookieValue, `${token.slice(0, -3)}AAA`, T0),
      refused('consent token invalid'),
    );
  });

  it('the refusal tells the user to open the link again, and never carries the cookie or the token', () => {
    const { cookieValue, token } = newConsent(ring, LINK, T0);
    try {
      checkConsent(ring, LINK, 'wrong', token, T0);
      assert.fail('accepted');
    } catch (e) {
      assert.ok(e instanceof BrokerError);
      assert.match(e.message, /Open the connect link again/);
      const text = `${e.message} ${e.detail ?? ''} ${JSON.stringify(e.fields)}`;
      assert.ok(!text.includes(cookieValue) && !text.includes(token));
    }
  });

  describe('a validly signed token with a malformed payload is refused, never trusted', () => {
    const sign = (payload: object) => signToken(ring, 'connect-consent', payload);
    const { cookieValue, token } = newConsent(ring, LINK, T0);
    const good = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      r: string;
      l: string;
      exp: number;
    };

    it('the genuine payload re-signed checks out (the cases below differ only in one field)', () => {
      checkConsent(ring, LINK, cookieValue, sign(good), T0);
    });

    for (const [label, payload] of [
      ['cookie hash missing', { l: good.l, exp: good.exp }],
      ['cookie hash not a string', { r: 1, l: good.l, exp: good.exp }],
      ['link hash missing', { r: good.r, exp: good.exp }],
      ['link hash not a string', { r: good.r, l: 2, exp: good.exp }],
      ['a JSON null', null],
    ] as const) {
      it(`${label}: consent token invalid`, () => {
        assert.throws(
          () => checkConsent(ring, LINK, cookieValue, sign(payload ?? (null as unknown as object)), T0),
          refused('consent token invalid'),
        );
      });
    }

    for (const [label, payload] of [
      ['expiry missing', { r: good.r, l: good.l }],
      ['expiry a string', { r: good.r, l: good.l, exp: String(T0 + 600_000) }],
    ] as const) {
      it(`${label}: consent token expired`, () => {
        assert.throws(
          () => checkConsent(ring, LINK, cookieValue, sign(payload), T0),
          refused('consent token expired'),
        );
      });
    }
  });
});

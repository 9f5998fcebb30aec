import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { STATE_COOKIE_NAME, stateCookieName } from '../../../shared/broker/stateCookie.ts';

describe('stateCookieName', () => {
  it('is the login cookie name, a dash and 16 base64url characters derived from the state', () => {
    const name = stateCookieName('state-one');
    assert.ok(name.startsWith(`${STATE_COOKIE_NAME}-`));
    assert.match(name.slice(STATE_COOKIE_NAME.length + 1), /^[A-Za-z0-9_-]{16}$/);
  });

  it('the callback finds the cookie again from the state; another sign-in gets its own cookie', () => {
    assert.equal(stateCookieName('state-one'), stateCookieName('state-one'));
    assert.notEqual(stateCookieName('state-two'), stateCookieName('state-one'));
  });

  it('does not reveal the state in the name', () => {
    const state = 'abcdefghijklmnopqrstuvwxyz012345';
    assert.ok(!stateCookieName(state).includes(state.slice(0, 8)));
  });
});

/**
 * Replays and clocks, in process against the demo IdP (a controllable clock, two broker instances sharing store
 * and keys): a code replayed to another instance, whose single-use set has never seen the state, must still be
 * refused (by the provider, which accepts a code once); concurrent callbacks with one state must redeem once;
 * sign-ins older than the cookie lifetime and links older than their TTL are refused without a provider call.
 * Extends test/integration/broker.microsoft.test.ts ("a replayed code is refused …") with what the replay must
 * not do: call the provider again on the same instance, or change the stored record on the other.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STATE_COOKIE_MAX_AGE_SECONDS } from '../../shared/broker/stateCookie.ts';
import { BrokerError } from '../../shared/errors.ts';
import { type IdpBrokerHarness, startIdpBroker } from '../support/idpBroker.ts';

let h: IdpBrokerHarness;
const errorCode = (err: unknown) => (err instanceof BrokerError ? err.code : String(err));
const GRAPH = 'https://graph.microsoft.com/Mail.Send';

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return errorCode(err);
  }
}

before(async () => {
  h = await startIdpBroker();
  await h.broker.upsertConnection('mailbox', { provider: 'microsoft', scopes: [GRAPH] });
});

after(() => h.closeAndScanLogs());

describe('replayed authorization responses', () => {
  it('a code replayed to a second instance is refused by the provider, and the stored tokens stay', async () => {
    const { params, cookie } = await h.connect(h.broker, 'mailbox');
    await h.broker.completeCallback(params, cookie);
    const stored = await h.store.get('mailbox');
    h.idp.stats.reset();
    // Instance B has its own (empty) single-use set: the state check passes, the provider refuses the code.
    assert.equal(await refusal(h.newBroker().completeCallback(params, cookie)), 'provider_error');
    assert.equal(h.idp.stats.authorizationCodeGrants, 1);
    assert.equal(h.idp.tokenLog.at(-1)?.error, 'invalid_grant');
    const after_ = await h.store.get('mailbox');
    assert.equal(after_?.revision, stored?.revision);
    assert.equal(after_?.tokens?.refreshToken, stored?.tokens?.refreshToken);
    // Instance A refuses it before calling the provider at all.
    h.idp.stats.reset();
    assert.equal(await refusal(h.broker.completeCallback(params, cookie)), 'invalid_state');
    assert.equal(h.idp.stats.authorizationCodeGrants, 0);
  });

  it('two concurrent callbacks with one state on one instance redeem the code once', async () => {
    const { params, cookie } = await h.connect(h.broker, 'mailbox');
    h.idp.stats.reset();
    const outcomes = await Promise.all(
      [1, 2, 3].map(() => refusal(h.broker.completeCallback(params, cookie))),
    );
    assert.deepEqual(outcomes.sort(), ['accepted', 'invalid_state', 'invalid_state']);
    assert.equal(h.idp.stats.authorizationCodeGrants, 1);
  });
});

describe('lifetimes on the broker’s clock', () => {
  it('a sign-in that outlives the login cookie (10 min) is refused without redeeming the code', async () => {
    const { params, cookie } = await h.connect(h.broker, 'mailbox');
    h.idp.stats.reset();
    h.clock.now += STATE_COOKIE_MAX_AGE_SECONDS * 1000 + 1;
    try {
      assert.equal(await refusal(h.broker.completeCallback(params, cookie)), 'invalid_state');
      assert.equal(h.idp.stats.authorizationCodeGrants, 0);
    } finally {
      h.clock.now -= STATE_COOKIE_MAX_AGE_SECONDS * 1000 + 1;
    }
  });

  it('a link works until its TTL and not a millisecond after', async () => {
    const { url } = await h.broker.createLink('mailbox', 120);
    const link = new URL(url).searchParams.get('link') ?? '';
    const start = h.clock.now;
    try {
      h.clock.now = start + 120_000 - 1;
      assert.equal(await refusal(h.broker.beginConnect('mailbox', link)), 'accepted');
      h.clock.now = start + 120_000;
      assert.equal(await refusal(h.broker.beginConnect('mailbox', link)), 'invalid_link');
    } finally {
      h.clock.now = start;
    }
  });

  it('a link names one connection: refused on another, and dead once that connection is deleted', async () => {
    await h.broker.upsertConnection('short-lived', { provider: 'microsoft', scopes: [GRAPH] });
    const { url } = await h.broker.createLink('short-lived');
    const link = new URL(url).searchParams.get('link') ?? '';
    assert.equal(await refusal(h.broker.beginConnect('mailbox', link)), 'invalid_link');
    await h.broker.deleteConnection('short-lived');
    assert.equal(await refusal(h.broker.beginConnect('short-lived', link)), 'unknown_connection');
  });
});

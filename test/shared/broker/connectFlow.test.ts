import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkIdentity, ConnectFlow } from '../../../shared/broker/connectFlow.ts';
import { Connections } from '../../../shared/broker/connections.ts';
import { mintLink } from '../../../shared/broker/links.ts';
import { openLoginState } from '../../../shared/broker/loginState.ts';
import { BrokerError } from '../../../shared/errors.ts';
import type { RedeemParams, TokenResult } from '../../../shared/oauth/provider.ts';
import { legacyLoginCookie } from '../legacyFormats.ts';
import { type Harness, harness, T0 } from './fixture.ts';
import { ScriptedProvider } from '../../support/scriptedProvider.ts';
import type { ProviderClient } from '../../../shared/oauth/provider.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

/** A started sign-in; `during` runs while the provider redeems the code (after the callback's first read). */
async function started(
  identity = { username: 'adele@demo.example', tenantId: 't1' },
  during: (h: Harness) => Promise<void> = () => Promise.resolve(),
) {
  const h = harness();
  const redeemed: RedeemParams[] = [];
  const redeemCode = async (params: RedeemParams): Promise<TokenResult> => {
    redeemed.push(params);
    await during(h);
    return Promise.resolve({
      accessToken: 'at-code-xxxxxxxxxxxxxxxx',
      refreshToken: 'rt-code-xxxxxxxxxxxxxxxx',
      tokenType: 'Bearer',
      expiresInSeconds: 3600,
      scope: 'https://graph.microsoft.com/Mail.Send',
      identity,
    });
  };
  Object.assign(h.provider, { redeemCode });
  await new Connections(h.ctx).upsert('sales-mailbox', {
    provider: 'microsoft',
    scopes: [],
    expectedIdentity: { username: 'Adele@demo.example' },
  });
  const record = h.store.records.get('sales-mailbox');
  assert.ok(record);
  const flow = new ConnectFlow(h.ctx);
  const start = await flow.begin('sales-mailbox', await mintLink(h.ctx.keyring, record, T0 + 60_000));
  const state = new URL(start.redirectUrl).searchParams.get('state') ?? '';
  const query = new URLSearchParams({ code: 'c0de-value-123456', state });
  return { h, flow, start, query, redeemed };
}

describe('ConnectFlow', () => {
  it('completes once: tokens stored, identity pinned, PKCE verifier and nonce from the cookie', async () => {
    const { h, flow, start, query, redeemed } = await started();
    const done = await flow.complete(query, start.cookie.value);
    assert.deepEqual(done, { connection: 'sales-mailbox', username: 'adele@demo.example' });
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.status, 'active');
    assert.equal(stored?.tokens?.refreshToken, 'rt-code-xxxxxxxxxxxxxxxx');
    assert.equal(stored?.identity?.tenantId, 't1');
    assert.equal(redeemed[0]?.expectedState, query.get('state'));
    assert.ok((redeemed[0]?.codeVerifier.length ?? 0) >= 43);
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    assert.equal(redeemed.length, 1, 'the replay never reaches the provider');
  });

  it('finishes a sign-in whose cookie was sealed in the format used before jose (one rotation later)', async () => {
    const { h, flow, start, query } = await started();
    const state = await openLoginState(h.ctx.keyring, start.cookie.value, start.cookie.name, T0);
    assert.ok(state);
    const legacy = legacyLoginCookie(h.ctx.keyring, state, start.cookie.name);
    assert.equal(legacy.split('.').length, 4);
    const done = await flow.complete(query, legacy);
    assert.equal(done.connection, 'sales-mailbox');
  });

  it('refuses an expired cookie, a foreign state and a changed provider', async () => {
    const { h, flow, start, query } = await started();
    await assert.rejects(
      flow.complete(new URLSearchParams({ state: 'x' }), start.cookie.value),
      code('invalid_state'),
    );
    await assert.rejects(flow.complete(query, `${start.cookie.value.slice(0, -2)}AA`), code('invalid_state'));
    h.clock.now += start.cookie.maxAgeSeconds * 1000;
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
  });

  it('refuses another account than the expected one and stores nothing', async () => {
    const { h, flow, start, query } = await started({ username: 'mallory@demo.example', tenantId: 't1' });
    await assert.rejects(flow.complete(query, start.cookie.value), code('identity_mismatch'));
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });
});

describe('ConnectFlow: the connection changes while the code is redeemed', () => {
  const admin = (h: Harness) => new Connections(h.ctx);

  it('a pin saved meanwhile holds: another account is refused and nothing is stored', async () => {
    const { h, flow, start, query } = await started(undefined, (h) =>
      admin(h)
        .upsert('sales-mailbox', {
          provider: 'microsoft',
          scopes: [],
          expectedIdentity: { username: 'megan@demo.example' },
        })
        .then(() => undefined),
    );
    await assert.rejects(flow.complete(query, start.cookie.value), code('identity_mismatch'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
    assert.equal(stored?.settings.expectedIdentity?.username, 'megan@demo.example');
  });

  it('a provider changed meanwhile: refused, nothing stored', async () => {
    const { h, flow, start, query } = await started(undefined, async (h) => {
      (h.ctx.providers as Map<string, ProviderClient>).set('generic', new ScriptedProvider());
      await admin(h).upsert('sales-mailbox', { provider: 'generic', scopes: ['mail'] });
    });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.settings.provider, 'generic');
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
  });

  it('deleted meanwhile: unknown_connection, the connection stays deleted', async () => {
    const { h, flow, start, query } = await started(undefined, (h) => admin(h).delete('sales-mailbox'));
    await assert.rejects(flow.complete(query, start.cookie.value), code('unknown_connection'));
    assert.equal(h.store.records.has('sales-mailbox'), false);
  });

  it('deleted and created again meanwhile: refused, the new connection stays pending', async () => {
    const { h, flow, start, query } = await started(undefined, async (h) => {
      await admin(h).delete('sales-mailbox');
      h.clock.now += 1;
      await admin(h).upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.createdAt, T0 + 1);
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
  });

  it('deleted and created again before the callback: refused before the code is redeemed', async () => {
    const { h, flow, start, query, redeemed } = await started();
    await admin(h).delete('sales-mailbox');
    h.clock.now += 1;
    await admin(h).upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    assert.equal(redeemed.length, 0);
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });
});

describe('checkIdentity', () => {
  it('checks only the parts that are set, case-insensitively, and needs a verified identity', () => {
    checkIdentity(undefined, undefined, 'c');
    checkIdentity({}, undefined, 'c');
    checkIdentity({ tenantId: 'T1' }, { tenantId: 't1', username: 'x' }, 'c');
    assert.throws(() => checkIdentity({ tenantId: 't1' }, undefined, 'c'), code('identity_mismatch'));
    assert.throws(
      () => checkIdentity({ tenantId: 't1', objectId: 'o' }, { tenantId: 't1' }, 'c'),
      code('identity_mismatch'),
    );
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { BrokerError } from '../../shared/errors.ts';
import { type IdpBrokerHarness, startIdpBroker } from '../support/idpBroker.ts';

const code = (e: unknown) => (e instanceof BrokerError ? e.code : String(e));
const caller = { kind: 'function_key' as const };
const GRAPH = 'https://graph.microsoft.com/Mail.Send';
const ADS = 'https://ads.microsoft.com/msads.manage';
const HOUR = 3600_000;

let h: IdpBrokerHarness;
before(async () => {
  h = await startIdpBroker();
});
after(async () => {
  // Every token the store ever held, plus what the harness saw, must be absent from all log lines.
  for (const meta of await h.store.listMetadata()) {
    const r = await h.store.get(meta.connection);
    h.secrets.add(`${meta.connection} refresh token`, r?.tokens?.refreshToken);
    h.secrets.add(`${meta.connection} access token`, r?.tokens?.primary?.accessToken);
  }
  // Close first, assert after: a failed scan must not leave the demo IdP running until the runner's timeout.
  const logs = h.logs.join('\n');
  await h.close();
  h.secrets.assertAbsent(logs, 'broker logs');
});

describe('broker against the demo IdP (Microsoft-shaped)', () => {
  it('connects with auth code + PKCE and pins the verified identity', async () => {
    await h.broker.upsertConnection('sales-mailbox', { provider: 'microsoft', scopes: [GRAPH, ADS] });
    const { params, cookie } = await h.connect(h.broker, 'sales-mailbox');
    const res = await h.broker.completeCallback(params, cookie);
    assert.equal(res.username, 'adele@demo.example');
    const r = await h.store.get('sales-mailbox');
    assert.equal(r?.status, 'active');
    assert.equal(r?.identity?.tenantId, h.idp.tenantId);
    assert.equal(r?.identity?.issuer, h.idp.issuer);
    assert.match(r?.identity?.objectId ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(r?.tokens?.refreshToken);
    assert.equal(decodeJwt(r?.tokens?.primary?.accessToken ?? '').aud, 'https://graph.microsoft.com');
    const sent = h.idp.tokenLog.at(-1);
    assert.equal(sent?.grantType, 'authorization_code');
    assert.equal(sent?.scope, `${GRAPH} offline_access`);
  });

  it('refreshes with rotation once the token is due, and persists the new refresh token', async () => {
    const before = await h.store.get('sales-mailbox');
    h.idp.stats.reset();
    h.clock.now += 2 * HOUR;
    const token = await h.broker.getAccessToken('sales-mailbox', caller);
    assert.equal(h.idp.stats.refreshGrants, 1);
    const after = await h.store.get('sales-mailbox');
    assert.notEqual(after?.tokens?.refreshToken, before?.tokens?.refreshToken);
    assert.equal(after?.tokens?.primary?.accessToken, token.access_token);
    h.secrets.add('old refresh token', before?.tokens?.refreshToken);
  });

  it('gets a token for a second consented resource with ?scope= and caches it separately', async () => {
    h.idp.stats.reset();
    const ads = await h.broker.getAccessToken('sales-mailbox', caller, [ADS]);
    assert.equal(decodeJwt(ads.access_token).aud, 'https://ads.microsoft.com');
    const again = await h.broker.getAccessToken('sales-mailbox', caller, [ADS]);
    assert.equal(again.access_token, ads.access_token);
    const graph = await h.broker.getAccessToken('sales-mailbox', caller);
    assert.equal(decodeJwt(graph.access_token).aud, 'https://graph.microsoft.com');
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.equal(h.idp.tokenLog.at(-1)?.scope, `${ADS} offline_access`);
    // A second instance reads the stored token for that resource without calling the IdP.
    const other = h.newBroker();
    assert.equal((await other.getAccessToken('sales-mailbox', caller, [ADS])).access_token, ads.access_token);
    assert.equal(h.idp.stats.refreshGrants, 1);
  });

  it('collapses concurrent stale reads into exactly one refresh at the IdP', async () => {
    h.idp.stats.reset();
    h.clock.now += 2 * HOUR;
    const all = await Promise.all(
      Array.from({ length: 200 }, () => h.broker.getAccessToken('sales-mailbox', caller)),
    );
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.equal(new Set(all.map((t) => t.access_token)).size, 1);
  });

  it('marks needs_reauth after revocation (invalid_grant) and keeps the record', async () => {
    await h.idp.revokeUser('adele@demo.example');
    h.clock.now += 2 * HOUR;
    await assert.rejects(
      h.broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'connection_needs_reauth',
    );
    const r = await h.store.get('sales-mailbox');
    assert.equal(r?.status, 'needs_reauth');
    assert.equal(r?.lastError?.providerError, 'invalid_grant');
    assert.ok(r?.tokens?.refreshToken);
  });

  it('reconnects in place through a new link', async () => {
    const { params, cookie } = await h.connect(h.broker, 'sales-mailbox');
    await h.broker.completeCallback(params, cookie);
    const r = await h.store.get('sales-mailbox');
    assert.equal(r?.status, 'active');
    assert.equal(r?.lastError, undefined);
    const token = await h.broker.getAccessToken('sales-mailbox', caller);
    assert.equal(token.connection, 'sales-mailbox');
  });

  it('imports an existing refresh token after proving it works', async () => {
    await h.broker.upsertConnection('imported', { provider: 'microsoft', scopes: [GRAPH] });
    await h.broker.upsertConnection('donor', { provider: 'microsoft', scopes: [GRAPH] });
    const { params, cookie } = await h.connect(h.broker, 'donor');
    await h.broker.completeCallback(params, cookie);
    const donorRt = (await h.store.get('donor'))?.tokens?.refreshToken ?? '';
    const view = await h.broker.importRefreshToken('imported', donorRt);
    assert.equal(view.status, 'active');
    const r = await h.store.get('imported');
    assert.notEqual(r?.tokens?.refreshToken, donorRt);
    await assert.rejects(
      h.broker.importRefreshToken('imported', 'not-a-real-refresh-token-123'),
      (e) => code(e) === 'invalid_request',
    );
    assert.equal((await h.store.get('imported'))?.tokens?.refreshToken, r?.tokens?.refreshToken);
  });

  it('refuses an account other than the pinned one and stores nothing', async () => {
    await h.broker.upsertConnection('pinned', {
      provider: 'microsoft',
      scopes: [GRAPH],
      expectedIdentity: { username: 'megan@demo.example' },
    });
    const { params, cookie } = await h.connect(h.broker, 'pinned', { username: 'adele@demo.example' });
    await assert.rejects(h.broker.completeCallback(params, cookie), (e) => code(e) === 'identity_mismatch');
    assert.equal((await h.store.get('pinned'))?.status, 'pending');
    const ok = await h.connect(h.broker, 'pinned', { username: 'megan@demo.example' });
    await h.broker.completeCallback(ok.params, ok.cookie);
    assert.equal((await h.store.get('pinned'))?.identity?.username, 'megan@demo.example');
  });

  it('reports a denied consent as provider_denied', async () => {
    await h.broker.upsertConnection('denied', { provider: 'microsoft', scopes: [GRAPH] });
    const { params, cookie } = await h.connect(h.broker, 'denied', { decision: 'deny' });
    assert.equal(params.get('error'), 'access_denied');
    await assert.rejects(h.broker.completeCallback(params, cookie), (e) => code(e) === 'provider_denied');
    assert.equal((await h.store.get('denied'))?.status, 'pending');
  });

  it('a replayed code is refused: by our state check, and by the IdP on another instance', async () => {
    await h.broker.upsertConnection('replay', { provider: 'microsoft', scopes: [GRAPH] });
    const { params, cookie } = await h.connect(h.broker, 'replay');
    await h.broker.completeCallback(params, cookie);
    await assert.rejects(h.broker.completeCallback(params, cookie), (e) => code(e) === 'invalid_state');
    await assert.rejects(h.newBroker().completeCallback(params, cookie), (e) => code(e) === 'provider_error');
  });
});

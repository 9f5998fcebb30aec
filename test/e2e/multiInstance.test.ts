import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { TokenStore } from '../../shared/store/types.ts';
import type { DemoIdp } from '../../tools/demo-idp/server.ts';
import type { BrokerHost } from '../support/brokerHost.ts';
import type { KeyVaultDouble } from '../support/keyVaultDouble.ts';
import { type TwoInstances, startTwoInstances } from '../support/twoInstances.ts';

let t: TwoInstances;
let kv: KeyVaultDouble;
let idp: DemoIdp;
let store: TokenStore;
let a: BrokerHost;
let b: BrokerHost;

before(async () => {
  t = await startTwoInstances({ accessTokenTtlSeconds: 304 });
  ({ kv, idp, store, a, b } = t);
});

after(async () => {
  await a?.assertNoSecretsInLogs();
  await b?.assertNoSecretsInLogs();
  await t?.close();
});

describe('two instances sharing Key Vault and blob leases', () => {
  it('connect through one instance is visible to the other', async () => {
    await a.createConnection('shared-mailbox');
    const out = await a.connect('shared-mailbox');
    assert.equal(out.callback.status, 200);
    const view = (await (await b.api('GET', 'manage/connections/shared-mailbox')).json()) as {
      status: string;
    };
    assert.equal(view.status, 'active');
  });

  it('200 concurrent stale token requests across both → one refresh at the IdP, same token, rotated RT stored', async () => {
    const before = await store.get('shared-mailbox');
    await sleep(4_300); // the 304 s token is now inside the 300 s margin
    idp.stats.reset();
    kv.resetCounters();
    const all = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await (i % 2 === 0 ? a : b).api('GET', 'connections/shared-mailbox/token');
        assert.equal(res.status, 200);
        return ((await res.json()) as { access_token: string }).access_token;
      }),
    );
    assert.equal(idp.stats.refreshGrants, 1);
    assert.equal(new Set(all).size, 1);
    const stored = await store.get('shared-mailbox');
    assert.notEqual(stored?.tokens?.refreshToken, before?.tokens?.refreshToken);
    assert.equal(stored?.tokens?.primary?.accessToken, all[0]);
    assert.equal(kv.counters().set, 1, 'exactly one Key Vault write for the refresh');
    a.secrets.add('pre-refresh refresh token', before?.tokens?.refreshToken);
    b.secrets.add('pre-refresh refresh token', before?.tokens?.refreshToken);
  });

  it('the stored (rotated) refresh token works: a forced refresh through the other instance succeeds', async () => {
    idp.stats.reset();
    const res = await b.api('POST', 'manage/connections/shared-mailbox/refresh');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'active');
    assert.equal(idp.stats.refreshGrants, 1);
  });

  it('a fresh token is served from memory with no Key Vault call', async () => {
    await a.api('GET', 'connections/shared-mailbox/token');
    kv.resetCounters();
    for (let i = 0; i < 20; i++)
      assert.equal((await a.api('GET', 'connections/shared-mailbox/token')).status, 200);
    assert.equal(kv.counters().total, 0);
  });
});

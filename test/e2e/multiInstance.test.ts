// One deployment as Flex Consumption runs it (test/support/twoInstances.ts): instances `a` and `b` in group `http`,
// one instance in group `function:refresh` running the sweep, sharing Key Vault (the double, real SDK), blob
// leases (Azurite) and BROKER_KEYS.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { renewAt } from '../../shared/broker/refreshPolicy.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import type { DemoIdp } from '../../tools/demo-idp/server.ts';
import type { BrokerHost } from '../support/brokerHost.ts';
import { REPO_ROOT } from '../support/devhost.ts';
import type { KeyVaultDouble } from '../support/keyVaultDouble.ts';
import { type TwoInstances, startTwoInstances } from '../support/twoInstances.ts';

/** BROKER_CACHE_COHERENCE_SECONDS of the HTTP instances: short, so the tests wait out a real bound. */
const BOUND_SECONDS = 3;
/** Access tokens of 10 s: due 5 s after issue (the margin is capped at half the lifetime), expired at 10 s. */
const SHORT_TTL_SECONDS = 10;

const token = async (host: BrokerHost, name: string) => host.api('GET', `connections/${name}/token`);

describe('two http instances under a token stampede', () => {
  let t: TwoInstances;
  let kv: KeyVaultDouble;
  let idp: DemoIdp;
  let store: TokenStore;
  let a: BrokerHost;
  let b: BrokerHost;

  before(async () => {
    t = await startTwoInstances({ accessTokenTtlSeconds: SHORT_TTL_SECONDS }, { withTimer: false });
    ({ kv, idp, store, a, b } = t);
  });
  after(async () => {
    // Close first, assert after: a failed scan must not leave both instances and their peers running.
    const logs = { a: '', b: '' };
    try {
      if (a) logs.a = await a.collectSecrets();
      if (b) logs.b = await b.collectSecrets();
    } finally {
      await t?.close();
    }
    a?.secrets.assertAbsent(logs.a, 'instance a logs');
    b?.secrets.assertAbsent(logs.b, 'instance b logs');
  });

  it('connect through one instance is visible to the other', async () => {
    await a.createConnection('shared-mailbox');
    const out = await a.connect('shared-mailbox');
    assert.equal(out.callback.status, 200);
    const view = (await (await b.api('GET', 'manage/connections/shared-mailbox')).json()) as {
      status: string;
    };
    assert.equal(view.status, 'active');
  });

  it('200 concurrent due token requests across both → one refresh at the IdP, same token, rotated RT stored', async () => {
    const before = await store.get('shared-mailbox');
    const primary = before?.tokens?.primary;
    assert.ok(primary);
    // wait until the token is due by the broker's own rule (not yet expired)
    await sleep(Math.max(0, renewAt(primary, 300_000) - Date.now()) + 200);
    idp.stats.reset();
    kv.resetCounters();
    const all = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await token(i % 2 === 0 ? a : b, 'shared-mailbox');
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
});

describe('one deployment as Flex runs it: two http instances, one function:refresh instance', () => {
  let t: TwoInstances;
  let kv: KeyVaultDouble;
  let idp: DemoIdp;
  let store: TokenStore;
  let a: BrokerHost;
  let b: BrokerHost;

  before(async () => {
    t = await startTwoInstances(
      {},
      {
        env: { BROKER_CACHE_COHERENCE_SECONDS: String(BOUND_SECONDS) },
        // the sweep instance's clock runs 2 h ahead (a controllable clock): every token it looks at is expired,
        // while a and b, on the real clock, hold the same token as fresh for an hour
        timerEnv: {
          NODE_OPTIONS: `--import=${join(REPO_ROOT, 'test', 'support', 'clockSkew.ts')}`,
          TEST_CLOCK_SKEW_MS: String(2 * 3600_000),
        },
      },
    );
    ({ kv, idp, store, a, b } = t);
  });
  after(async () => {
    // Close first, assert after: a failed scan must not leave both instances and their peers running.
    const logs = { a: '', b: '' };
    try {
      if (a) logs.a = await a.collectSecrets();
      if (b) logs.b = await b.collectSecrets();
    } finally {
      await t?.close();
    }
    a?.secrets.assertAbsent(logs.a, 'instance a logs');
    b?.secrets.assertAbsent(logs.b, 'instance b logs');
  });

  it('the instances run as Flex groups: HTTP only on the http group, the timer only on its own', async () => {
    const timer = t.timer as BrokerHost;
    assert.equal((await timer.api('GET', 'health', { key: null })).status, 404);
    assert.match(timer.host.logs(), /FUNCTIONS_TARGET_GROUP=function:refresh/);
    assert.match(a.host.logs(), /function refresh: timer .*\[not in group http: not listening\]/);
    assert.equal((await a.api('GET', 'health', { key: null })).status, 200);
  });

  it('a fresh token is served from memory: at most one Key Vault read per coherence bound', async () => {
    await a.createConnection('memo');
    await a.connect('memo');
    await token(a, 'memo');
    kv.resetCounters();
    const started = Date.now();
    for (let i = 0; i < 20; i++) assert.equal((await token(a, 'memo')).status, 200);
    const windows = Math.ceil((Date.now() - started) / (BOUND_SECONDS * 1000));
    assert.ok(
      kv.counters().total <= windows,
      `${kv.counters().total} Key Vault calls in ${windows} bound(s)`,
    );
  });

  it('DELETE on one instance → 404 on the other within the bound', async () => {
    await a.createConnection('doomed');
    await a.connect('doomed');
    assert.equal((await token(b, 'doomed')).status, 200); // b now holds the token in memory
    assert.equal((await a.api('DELETE', 'manage/connections/doomed')).status, 204);
    await sleep(BOUND_SECONDS * 1000);
    const res = await token(b, 'doomed');
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'unknown_connection');
  });

  it('the sweep (on its own instance) marks needs_reauth → both HTTP instances answer 409 within the bound', async () => {
    await a.createConnection('revoked');
    await b.connect('revoked');
    for (const host of [a, b]) assert.equal((await token(host, 'revoked')).status, 200); // both cache it
    await idp.revokeUser('adele@demo.example');
    await t.runSweep();
    assert.equal((await store.get('revoked'))?.status, 'needs_reauth', 'the sweep marked it');
    await sleep(BOUND_SECONDS * 1000);
    for (const host of [a, b]) {
      const res = await token(host, 'revoked');
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { code: string }).code, 'connection_needs_reauth');
    }
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createTokenStore } from '../../shared/store/index.ts';
import type { TokenFault } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { type KeyVaultDouble, startKeyVaultDouble } from '../support/keyVaultDouble.ts';

// The token path's fault answers over HTTP, through the dev host running the production bundle with the Key
// Vault store (the double, real SDK, the store's product retry policy) and BROKER_HTTP_TIMEOUT_MS at its floor.
// Access tokens live 4 s: the refresh margin is capped at half a token's lifetime (shared/broker/refreshPolicy.ts),
// so a token is due 2 s after it was issued and expired 2 s later. Every read goes to the store
// (BROKER_CACHE_COHERENCE_SECONDS=0), so Key Vault faults on the read reach the caller.

const TTL_MS = 4_000;
const NAME = 'mailbox';

interface HttpCase {
  name: string;
  fault: Omit<TokenFault, 'grantType' | 'count'>;
  retryAfter?: number;
}

const CASES: HttpCase[] = [
  { name: '503', fault: { status: 503 } },
  { name: '429 with Retry-After', fault: { status: 429, retryAfterSeconds: 120 }, retryAfter: 120 },
  { name: '429 without Retry-After', fault: { status: 429 } },
  { name: 'slow past BROKER_HTTP_TIMEOUT_MS', fault: { delayMs: 1_600, status: 503 } },
  { name: 'connection reset', fault: { reset: true } },
  { name: 'HTML instead of JSON', fault: { status: 502, body: 'html' } },
];

let kv: KeyVaultDouble;
let h: BrokerHost;
let tmp: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'reliability-http-'));
  kv = await startKeyVaultDouble({ throttle: false });
  const caFile = join(tmp, 'kv-ca.pem');
  await writeFile(caFile, kv.ca);
  h = await startBrokerHost({
    idp: { accessTokenTtlSeconds: TTL_MS / 1000 },
    store: createTokenStore(
      { kind: 'keyvault', vaultUrl: kv.vaultUrl },
      { credential: kv.credential, secretClientOptions: kv.secretClientOptions() },
    ),
    env: {
      KEY_VAULT_URL: kv.vaultUrl,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      KEY_VAULT_TEST_BEARER_TOKEN: kv.token,
      NODE_EXTRA_CA_CERTS: caFile,
      BROKER_LOCK: 'memory',
      BROKER_HTTP_TIMEOUT_MS: '1000',
      BROKER_CACHE_COHERENCE_SECONDS: '0',
    },
  });
  await h.createConnection(NAME);
  const out = await h.connect(NAME);
  assert.equal(out.callback.status, 200);
});
after(async () => {
  // Close first, assert after: a failed scan must not leave the dev host and the vault double running.
  let logs = '';
  try {
    if (h) logs = await h.collectSecrets();
  } finally {
    await h?.close();
    await kv?.close();
    await rm(tmp, { recursive: true, force: true });
  }
  h?.secrets.assertAbsent(logs, 'dev host logs');
});
beforeEach(() => {
  h.idp.clearFaults();
  h.idp.stats.reset();
  kv.clearFaults();
  kv.resetCounters();
});

async function token() {
  const res = await h.api('GET', `connections/${NAME}/token`);
  const body = (await res.json()) as { code?: string; access_token?: string };
  h.secrets.add('served access token', body.access_token);
  return { res, body };
}

async function view() {
  const res = await h.api('GET', `manage/connections/${NAME}`);
  return (await res.json()) as { status: string; failures: number; nextAttemptAt?: string };
}

/** Waits until the stored access token is due (past its renewal point) but still valid. */
async function untilDue() {
  const t = (await h.record(NAME))?.tokens?.primary;
  const renewAt = (t?.expiresAt ?? 0) - ((t?.expiresAt ?? 0) - (t?.issuedAt ?? 0)) / 2;
  await sleep(Math.max(0, renewAt - Date.now()) + 50);
}

/** Waits until the stored access token has expired. */
async function untilExpired() {
  const r = await h.record(NAME);
  await sleep(Math.max(0, (r?.tokens?.primary?.expiresAt ?? 0) - Date.now()) + 50);
}

/** Forced refresh (the admin action bypasses the backoff) succeeds with the stored refresh token. */
async function assertRefreshTokenWorks() {
  h.idp.clearFaults();
  h.idp.stats.reset();
  const res = await h.api('POST', `manage/connections/${NAME}/refresh`);
  assert.equal(res.status, 200);
  const v = (await res.json()) as { status: string; failures: number };
  assert.deepEqual([v.status, v.failures], ['active', 0]);
  assert.equal(h.idp.stats.refreshGrants, 1);
}

void describe('token path over HTTP: IdP faults', () => {
  for (const c of CASES) {
    void it(`${c.name}: expired token → 503 provider_unavailable + Retry-After, once at the IdP, then backoff`, async () => {
      await untilExpired();
      h.idp.injectTokenFault({ ...c.fault, grantType: 'refresh_token' });
      const first = await token();
      assert.equal(first.res.status, 503);
      assert.equal(first.res.headers.get('content-type'), 'application/problem+json');
      assert.equal(first.body.code, 'provider_unavailable');
      assert.ok(Number(first.res.headers.get('retry-after')) >= Math.max(3, c.retryAfter ?? 0));
      assert.equal(h.idp.stats.refreshGrants, 1);
      const second = await token();
      assert.deepEqual([second.res.status, second.body.code], [503, 'provider_unavailable']);
      assert.ok(Number(second.res.headers.get('retry-after')) >= 1);
      assert.equal(h.idp.stats.refreshGrants, 1, 'backing off: no second request');
      const v = await view();
      assert.deepEqual([v.status, v.failures], ['active', 1]);
      assert.ok(v.nextAttemptAt);
      await assertRefreshTokenWorks();
      assert.equal((await token()).res.status, 200);
    });
  }

  void it('a still-valid token is served when its early refresh fails', async () => {
    await assertRefreshTokenWorks();
    const stored = await h.record(NAME);
    await untilDue();
    h.idp.stats.reset();
    h.idp.injectTokenFault({ status: 503, grantType: 'refresh_token' });
    const served = await token();
    assert.equal(served.res.status, 200);
    assert.equal(served.body.access_token, stored?.tokens?.primary?.accessToken);
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.equal((await view()).failures, 1);
    await assertRefreshTokenWorks();
  });
});

void describe('token path over HTTP: Key Vault faults', () => {
  void it('429 without Retry-After twice on the read: the store retries, the caller gets 200', async () => {
    await assertRefreshTokenWorks();
    kv.resetCounters();
    kv.failNext(2, { status: 429 }, ['get']);
    const res = await token();
    assert.equal(res.res.status, 200);
    const c = kv.counters();
    assert.equal(c.faulted, 2);
    assert.equal(c.throttled, 0);
    assert.ok(c.get >= 3, `get attempts: ${c.get}`);
  });

  void it('persistent 503 on the read: 503 store_unavailable with Retry-After after 4 attempts', async () => {
    kv.failNext(50, { status: 503 }, ['get']);
    const res = await token();
    assert.equal(res.res.status, 503);
    assert.equal(res.body.code, 'store_unavailable');
    assert.ok(Number(res.res.headers.get('retry-after')) >= 1);
    assert.equal(kv.counters().get, 4);
    assert.equal(h.idp.stats.refreshGrants, 0);
    kv.clearFaults();
    await assertRefreshTokenWorks();
  });
});

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import type { Fault, OpKind } from '../support/keyVaultDouble.ts';
import {
  failure,
  type ReliabilityHarness,
  STORE_ATTEMPTS,
  STORE_TIMEOUT_MS,
  startReliabilityHarness,
} from './harness.ts';

// The Key Vault fault matrix on the refresh (timer sweep), token and callback paths. What Key Vault does wrong
// (docs/keyvault-double.md; https://learn.microsoft.com/azure/key-vault/general/overview-throttling): 429 WITHOUT Retry-After (the SDK would not retry it; the store does), 503,
// requests that hang past the per-attempt timeout, and the 409 a soft-deleted name answers. The store retries
// transient faults up to STORE_ATTEMPTS times in total; the counters of the double show every attempt.

const THROTTLED: Fault = { status: 429 };
const UNAVAILABLE: Fault = { status: 503 };
const HANGS: Fault = { delayMs: STORE_TIMEOUT_MS * 3 };
const SOFT_DELETED: Fault = {
  status: 409,
  code: 'Conflict',
  innerCode: 'ObjectIsDeletedButRecoverable',
  message: 'Secret is currently in a deleted but recoverable state, and its name cannot be reused.',
};
const caller = { kind: 'function_key' as const };

/** Microsoft rotation semantics: a refresh token superseded at the IdP still works. */
let ms: ReliabilityHarness;
/** Strict rotation (oidc-provider default): a superseded refresh token revokes the family. */
let strict: ReliabilityHarness;
let n = 0;

before(async () => {
  [ms, strict] = await Promise.all([
    startReliabilityHarness({ reuse: 'allow' }),
    startReliabilityHarness({ reuse: 'revoke-family' }),
  ]);
});
after(async () => {
  // Close first, assert after: a failed scan must not leave the doubles running until the runner's timeout.
  const [msLogs = '', strictLogs = ''] = [ms, strict].map((h) => h.logs.join('\n'));
  await Promise.all([ms, strict].map((h) => h.close()));
  ms.secrets.assertAbsent(msLogs, 'broker and store logs');
  strict.secrets.assertAbsent(strictLogs, 'broker and store logs');
});
beforeEach(() => {
  for (const h of [ms, strict]) {
    h.kv.reset();
    h.kv.setThrottle(false);
    h.calm();
    h.clock.now = Date.now();
  }
});

async function freshConnection(h: ReliabilityHarness): Promise<string> {
  const name = `kv-${++n}`;
  await h.connect(name);
  h.calm();
  return name;
}

function fail(h: ReliabilityHarness, count: number, fault: Fault, op: OpKind) {
  h.kv.failNext(count, fault, [op]);
}

/** After the faults are gone, the stored refresh token still refreshes (and rotates). */
async function assertRefreshTokenWorks(h: ReliabilityHarness, name: string) {
  h.calm();
  const before = await h.record(name);
  if (before.nextAttemptAt) h.clock.now = before.nextAttemptAt + 1;
  await h.broker.forceRefresh(name);
  const r = await h.record(name);
  assert.equal(h.idp.stats.refreshGrants, 1);
  assert.equal(r.status, 'active');
  assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken);
}

void describe('Key Vault faults on the timer sweep', () => {
  for (const [label, fault, times] of [
    ['429 without Retry-After', THROTTLED, 2],
    ['503', UNAVAILABLE, 2],
    ['a read that hangs past the timeout', HANGS, 1],
  ] as const) {
    void it(`${label} on the re-read under the lock: retried by the store, refreshed once`, async () => {
      const h = strict;
      const name = await freshConnection(h);
      await h.makeDue(name, false);
      const before = await h.record(name);
      h.calm();
      fail(h, times, fault, 'get');
      const result = await h.broker.refreshDue();
      assert.deepEqual(result, { listed: 1, due: 1, refreshed: 1, failed: 0, skipped: 0 });
      const c = h.kv.counters();
      assert.equal(c.faulted, times);
      assert.equal(
        c.get,
        2 + times,
        'the faulted attempts, the one that worked, the revision check before the write',
      );
      assert.equal(c.set, 1);
      assert.equal(h.idp.stats.refreshGrants, 1);
      const r = await h.record(name);
      assert.equal(r.status, 'active');
      assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken);
      await assertRefreshTokenWorks(h, name);
    });
  }

  void it('503 on the write after the IdP rotated: the write is retried, the IdP is not asked twice', async () => {
    const h = strict;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    const before = await h.record(name);
    h.calm();
    fail(h, 2, UNAVAILABLE, 'set');
    const result = await h.broker.refreshDue();
    assert.equal(result.refreshed, 1);
    assert.equal(h.kv.counters().set, 3);
    assert.equal(h.idp.stats.refreshGrants, 1);
    // Strict rotation would revoke the family had the broker kept the old token: it must hold the new one.
    assert.notEqual((await h.record(name)).tokens?.refreshToken, before.tokens?.refreshToken);
    await assertRefreshTokenWorks(h, name);
  });

  void it('persistent 429 on the re-read: gives up after the store budget, the IdP is never called', async () => {
    const h = strict;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    const before = await h.record(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, THROTTLED, 'get');
    const result = await h.broker.refreshDue();
    assert.deepEqual(result, { listed: 1, due: 1, refreshed: 0, failed: 1, skipped: 0 });
    assert.equal(h.kv.counters().get, STORE_ATTEMPTS);
    assert.equal(h.idp.stats.refreshGrants, 0);
    const r = await h.record(name);
    assert.equal(r.revision, before.revision, 'nothing written');
    assert.equal(r.status, 'active');
    assert.equal(r.failures, 0, 'a store outage is not the provider failing');
    assert.ok(h.logs.some((l) => l.startsWith('refresh.failed ') && l.includes('code=store_unavailable')));
    await assertRefreshTokenWorks(h, name);
  });

  void it('persistent 503 on the listing: the sweep fails as a whole with store_unavailable, nothing is refreshed', async () => {
    const h = strict;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    h.calm();
    fail(h, STORE_ATTEMPTS, UNAVAILABLE, 'list');
    const answer = await failure(() => h.broker.refreshDue());
    assert.deepEqual([answer.status, answer.code], [503, 'store_unavailable']);
    assert.ok((answer.retryAfter ?? 0) >= 1);
    assert.equal(h.kv.counters().list, STORE_ATTEMPTS);
    assert.equal(h.idp.stats.refreshGrants, 0);
    // The next sweep lists again and catches up.
    h.calm();
    assert.equal((await h.broker.refreshDue()).refreshed, 1);
  });

  void it('a spurious 409 ObjectIsDeletedButRecoverable on the write: the store recovers and writes', async () => {
    const h = strict;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    h.calm();
    fail(h, 1, SOFT_DELETED, 'set');
    const result = await h.broker.refreshDue();
    assert.equal(result.refreshed, 1);
    const c = h.kv.counters();
    // Re-read, revision check; then the recover poller reads the secret: it exists, so no recover request.
    assert.deepEqual([c.set, c.get, c.recover], [2, 3, 0]);
    assert.equal(h.idp.stats.refreshGrants, 1);
    await assertRefreshTokenWorks(h, name);
  });

  void it('persistent 429 on the write after the IdP rotated (Microsoft: the old refresh token still works)', async () => {
    const h = ms;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    const before = await h.record(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, THROTTLED, 'set');
    const result = await h.broker.refreshDue();
    assert.equal(result.failed, 1);
    assert.equal(h.kv.counters().set, STORE_ATTEMPTS);
    assert.equal(h.idp.stats.refreshGrants, 1);
    const r = await h.record(name);
    assert.equal(r.revision, before.revision);
    assert.equal(r.tokens?.refreshToken, before.tokens?.refreshToken, 'not in the store yet: kept in memory');
    await assertRefreshTokenWorks(h, name);
  });

  void it('Key Vault write fails after the IdP rotated, under strict rotation: kept, written by the next sweep, 0 lost', async () => {
    // The new refresh token is the only one that works (reuse of the superseded one revokes the family). The
    // failed write keeps it in memory; the next sweep writes it before anything else, and it is what the next
    // refresh presents.
    const h = strict;
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    const before = await h.record(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, THROTTLED, 'set');
    assert.equal((await h.broker.refreshDue()).failed, 1);
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.equal((await h.record(name)).revision, before.revision, 'the write failed');
    h.calm();
    await h.broker.refreshDue();
    const r = await h.record(name);
    assert.equal(r.revision, before.revision + 1, 'the kept rotation was written');
    assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken);
    assert.equal(h.idp.stats.refreshGrants, 0, 'its fresh access token needed no new grant');
    assert.equal(h.kv.counters().set, 1);
    await assertRefreshTokenWorks(h, name);
    assert.ok(!h.idp.tokenLog.some((t) => t.errorCodes?.includes(70000)), 'no reuse of a superseded token');
  });

  void it('a 429 storm on the writes, several connections and sweeps, strict rotation: 0 connections lost', async () => {
    const h = strict;
    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push(await freshConnection(h));
    for (let round = 0; round < 3; round++) {
      // Every connection due; most writes throttled (each write has STORE_ATTEMPTS tries).
      const expiries = await Promise.all(
        names.map(async (n) => (await h.record(n)).tokens?.primary?.expiresAt ?? 0),
      );
      h.clock.now = Math.max(h.clock.now, ...expiries) - 60_000;
      h.calm();
      h.kv.failRate(0.8, THROTTLED, ['set']);
      await h.broker.refreshDue();
    }
    h.calm();
    await h.broker.refreshDue(); // writes what is still kept
    for (const name of names) {
      assert.equal((await h.record(name)).status, 'active', name);
      await assertRefreshTokenWorks(h, name);
      h.calm();
    }
    assert.ok(!h.idp.tokenLog.some((t) => t.errorCodes?.includes(70000)), 'no reuse of a superseded token');
  });
});

void describe('the connection lock and the write (strict rotation)', () => {
  let held = true;
  let h: ReliabilityHarness;
  before(async () => {
    const inner = createMemoryLock();
    // A lease that can be lost while the refresh runs (the blob lease after a refused renewal).
    const lock = { kind: 'lease', withLock: inner.withLock.bind(inner), held: () => held };
    h = await startReliabilityHarness({ reuse: 'revoke-family', lock });
  });
  after(async () => {
    // Close first, assert after.
    const logs = h.logs.join('\n');
    await h.close();
    h.secrets.assertAbsent(logs, 'broker and store logs');
  });

  void it('the lease expires during the refresh: no write without it; the rotation is written once it is held again', async () => {
    const name = await freshConnection(h);
    await h.makeDue(name, false);
    const before = await h.record(name);
    h.calm();
    held = false;
    assert.equal((await h.broker.refreshDue()).failed, 1);
    assert.equal(h.kv.counters().set, 0, 'nothing written without the lease');
    assert.equal(h.idp.stats.refreshGrants, 1);
    assert.ok(h.logs.some((l) => l.startsWith('refresh.write_deferred') && l.includes('code=lock_timeout')));
    held = true;
    h.calm();
    await h.broker.refreshDue();
    const r = await h.record(name);
    assert.equal(r.revision, before.revision + 1);
    assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken);
    await assertRefreshTokenWorks(h, name);
  });

  void it('a token read after a failed write serves the kept rotation: written first, no new grant', async () => {
    const name = await freshConnection(h);
    await h.makeDue(name, true);
    h.calm();
    fail(h, STORE_ATTEMPTS, THROTTLED, 'set');
    const answer = await failure(() => h.broker.getAccessToken(name, caller));
    assert.deepEqual([answer.status, answer.code], [503, 'store_unavailable']);
    assert.equal(h.idp.stats.refreshGrants, 1);
    h.calm();
    const token = await h.broker.getAccessToken(name, caller);
    assert.equal(h.idp.stats.refreshGrants, 0, 'the kept rotation carried a fresh token');
    assert.equal((await h.record(name)).tokens?.primary?.accessToken, token.access_token);
    await assertRefreshTokenWorks(h, name);
  });
});

void describe('Key Vault faults on the token path', () => {
  void it('429 without Retry-After twice on a cache-miss read: 200 after the store retried', async () => {
    const h = strict;
    const name = await freshConnection(h);
    fail(h, 2, THROTTLED, 'get');
    const token = await h.broker.getAccessToken(name, caller);
    assert.equal(h.kv.counters().get, 3, 'two throttled attempts, then the one that worked');
    const r = await h.record(name);
    assert.equal(token.access_token, r.tokens?.primary?.accessToken);
    assert.equal(r.status, 'active');
    // Now cached: no further Key Vault call.
    h.kv.resetCounters();
    await h.broker.getAccessToken(name, caller);
    assert.equal(h.kv.counters().total, 0);
    await assertRefreshTokenWorks(h, name);
  });

  void it('persistent 503 on the read: 503 store_unavailable with Retry-After; nothing changes', async () => {
    const h = strict;
    const name = await freshConnection(h);
    const before = await h.record(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, UNAVAILABLE, 'get');
    const answer = await failure(() => h.broker.getAccessToken(name, caller));
    assert.deepEqual([answer.status, answer.code], [503, 'store_unavailable']);
    assert.ok((answer.retryAfter ?? 0) >= 1);
    assert.equal(h.kv.counters().get, STORE_ATTEMPTS);
    assert.equal(h.idp.stats.refreshGrants, 0);
    assert.equal((await h.record(name)).revision, before.revision);
    await assertRefreshTokenWorks(h, name);
  });

  for (const [label, fault, times] of [
    ['503', UNAVAILABLE, 2],
    ['a write that hangs past the timeout', HANGS, 1],
    ['a spurious 409 ObjectIsDeletedButRecoverable', SOFT_DELETED, 1],
  ] as const) {
    void it(`${label} on the refresh-on-read write: retried, one IdP request, the new token served`, async () => {
      const h = strict;
      const name = await freshConnection(h);
      await h.makeDue(name, true);
      const before = await h.record(name);
      h.calm();
      fail(h, times, fault, 'set');
      const token = await h.broker.getAccessToken(name, caller);
      assert.notEqual(token.access_token, before.tokens?.primary?.accessToken);
      assert.equal(h.kv.counters().set, 1 + times);
      assert.equal(h.idp.stats.refreshGrants, 1);
      const r = await h.record(name);
      assert.equal(r.tokens?.primary?.accessToken, token.access_token, 'served what was stored');
      await assertRefreshTokenWorks(h, name);
    });
  }

  void it('persistent 429 on the refresh-on-read write: 503 store_unavailable, record unchanged (Microsoft semantics)', async () => {
    const h = ms;
    const name = await freshConnection(h);
    await h.makeDue(name, true);
    const before = await h.record(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, THROTTLED, 'set');
    const answer = await failure(() => h.broker.getAccessToken(name, caller));
    assert.deepEqual([answer.status, answer.code], [503, 'store_unavailable']);
    assert.ok((answer.retryAfter ?? 0) >= 1);
    assert.equal(h.idp.stats.refreshGrants, 1);
    const r = await h.record(name);
    assert.equal(r.revision, before.revision);
    assert.equal(r.status, 'active');
    await assertRefreshTokenWorks(h, name);
  });
});

void describe('Key Vault faults on the callback path', () => {
  for (const [label, fault, times] of [
    ['503 twice', UNAVAILABLE, 2],
    ['429 without Retry-After twice', THROTTLED, 2],
    ['a hang past the timeout', HANGS, 1],
  ] as const) {
    void it(`${label} on the token write: the callback completes, the code was redeemed once`, async () => {
      const h = strict;
      const name = `kv-${++n}`;
      await h.broker.upsertConnection(name, {
        provider: 'microsoft',
        scopes: ['https://graph.microsoft.com/Mail.Send'],
      });
      const { params, cookie } = await h.beginConnect(name);
      h.calm();
      fail(h, times, fault, 'set');
      const result = await h.broker.completeCallback(params, cookie);
      assert.equal(result.connection, name);
      assert.equal(h.kv.counters().set, 1 + times);
      assert.equal(h.idp.stats.authorizationCodeGrants, 1);
      assert.equal((await h.record(name)).status, 'active');
      await assertRefreshTokenWorks(h, name);
    });
  }

  void it('429 twice on the initial read: the callback completes', async () => {
    const h = strict;
    const name = `kv-${++n}`;
    await h.broker.upsertConnection(name, {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    const { params, cookie } = await h.beginConnect(name);
    h.calm();
    fail(h, 2, THROTTLED, 'get');
    await h.broker.completeCallback(params, cookie);
    assert.equal(h.kv.counters().faulted, 2);
    assert.equal((await h.record(name)).status, 'active');
    await assertRefreshTokenWorks(h, name);
  });

  void it('persistent 503 on the token write: 503 store_unavailable, still pending, a new sign-in works', async () => {
    const h = strict;
    const name = `kv-${++n}`;
    await h.broker.upsertConnection(name, {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    const before = await h.record(name);
    const { params, cookie } = await h.beginConnect(name);
    h.calm();
    fail(h, STORE_ATTEMPTS, UNAVAILABLE, 'set');
    const answer = await failure(() => h.broker.completeCallback(params, cookie));
    assert.deepEqual([answer.status, answer.code], [503, 'store_unavailable']);
    assert.ok((answer.retryAfter ?? 0) >= 1);
    assert.equal(h.kv.counters().set, STORE_ATTEMPTS);
    assert.equal(h.idp.stats.authorizationCodeGrants, 1);
    const r = await h.record(name);
    assert.equal(r.status, 'pending');
    assert.equal(r.revision, before.revision);
    assert.equal(r.tokens, undefined);
    h.calm();
    const retry = await h.beginConnect(name);
    await h.broker.completeCallback(retry.params, retry.cookie);
    assert.equal((await h.record(name)).status, 'active');
    await assertRefreshTokenWorks(h, name);
  });

  void it('a spurious 409 ObjectIsDeletedButRecoverable on the token write: recovered and written', async () => {
    const h = strict;
    const name = `kv-${++n}`;
    await h.broker.upsertConnection(name, {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    const { params, cookie } = await h.beginConnect(name);
    h.calm();
    fail(h, 1, SOFT_DELETED, 'set');
    await h.broker.completeCallback(params, cookie);
    assert.equal(h.kv.counters().set, 2);
    assert.equal((await h.record(name)).status, 'active');
    await assertRefreshTokenWorks(h, name);
  });

  void it('re-connecting a deleted connection: the soft-deleted secret is recovered, then connected again', async () => {
    const h = strict;
    const name = await freshConnection(h);
    await h.broker.deleteConnection(name);
    assert.equal(h.kv.inspect(`conn-${name}`)?.state, 'deleted');
    h.calm();
    await h.broker.upsertConnection(name, {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    const c = h.kv.counters();
    assert.equal(c.recover, 1, 'the real 409 was answered by recovering the name');
    assert.equal(c.set, 2, 'the refused write, then the write after the recovery');
    const pending = await h.record(name);
    assert.equal(pending.status, 'pending');
    assert.equal(pending.tokens, undefined, 'the deleted tokens do not come back');
    const { params, cookie } = await h.beginConnect(name);
    await h.broker.completeCallback(params, cookie);
    assert.equal((await h.record(name)).status, 'active');
    await assertRefreshTokenWorks(h, name);
  });
});

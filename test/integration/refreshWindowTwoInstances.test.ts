// The refresh window across processes: two dev-host instances of one deployment (Key Vault double through the
// real SDK, blob leases on Azurite, one demo IdP) and 60 s / 120 s access tokens. Instead of waiting half a
// lifetime, the stored token is moved back in time (the record written as the broker would have written it that
// long ago), so the test needs no sleeps and no timing luck.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { renewAt } from '../../shared/broker/refreshPolicy.ts';
import type { ConnectionRecord } from '../../shared/store/types.ts';
import { type TwoInstances, startTwoInstances } from '../support/twoInstances.ts';

for (const ttl of [60, 120]) {
  describe(`refresh window across two instances, ${ttl} s tokens`, () => {
    let t: TwoInstances;
    before(async () => {
      // Coherence bound 0: every read consults the store, so the aged record below is what both instances see.
      t = await startTwoInstances(
        { accessTokenTtlSeconds: ttl },
        { withTimer: false, env: { BROKER_CACHE_COHERENCE_SECONDS: '0' } },
      );
    });
    after(async () => {
      const logs = [await t.a.collectSecrets(), await t.b.collectSecrets()];
      await t.close();
      // Closed first, asserted after.
      t.a.secrets.assertAbsent(logs.join('\n'), 'instance logs');
    });

    const read = async (i: number) => {
      const res = await (i % 2 ? t.b : t.a).api('GET', 'connections/window/token');
      assert.equal(res.status, 200);
      return ((await res.json()) as { access_token: string }).access_token;
    };

    /** Rewrites the stored record as if its token had been issued `ageMs` ago. */
    const age = async (ageMs: number) => {
      const record = (await t.store.get('window')) as ConnectionRecord;
      const primary = record.tokens?.primary;
      assert.ok(primary?.issuedAt !== undefined && record.refreshedAt !== undefined);
      const shifted: ConnectionRecord = {
        ...record,
        refreshedAt: record.refreshedAt - ageMs,
        revision: record.revision + 1,
        updatedAt: Date.now(),
        tokens: {
          ...record.tokens,
          refreshToken: record.tokens?.refreshToken ?? '',
          grantedScopes: record.tokens?.grantedScopes ?? [],
          primary: { ...primary, issuedAt: primary.issuedAt - ageMs, expiresAt: primary.expiresAt - ageMs },
        },
      };
      await t.store.put(shifted);
      return shifted.tokens?.primary;
    };

    it('30 sequential reads cause no refresh; 100 overlapping readers on both instances past the window cause one', async () => {
      await t.a.createConnection('window');
      const out = await t.a.connect('window');
      assert.equal(out.callback.status, 200);

      t.idp.stats.reset();
      const first = new Set<string>();
      for (let i = 0; i < 30; i++) first.add(await read(i));
      assert.equal(t.idp.stats.refreshGrants, 0, 'a fresh token is served, not refreshed');
      assert.equal(first.size, 1);

      // Half the lifetime and one second later: due by the broker's own rule, still valid.
      const primary = await age((ttl / 2 + 1) * 1000);
      assert.ok(primary && renewAt(primary, 300_000) < Date.now() && primary.expiresAt > Date.now());
      const all = await Promise.all(Array.from({ length: 100 }, (_, i) => read(i)));
      assert.equal(t.idp.stats.refreshGrants, 1, 'one refresh for 100 overlapping readers on two instances');
      assert.equal(new Set(all).size, 1, 'every reader got the same new token');
      assert.ok(!first.has(all[0] ?? ''));

      // The next window is quiet on both instances.
      for (let i = 0; i < 30; i++) await read(i);
      assert.equal(t.idp.stats.refreshGrants, 1, 'no refresh inside the new window');
    });
  });
}

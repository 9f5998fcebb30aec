/**
 * The TokenStore contract, run unchanged against every store (file store on a temp dir, Key Vault store on the
 * HTTPS double with the real SDK). Store-specific behaviour lives in each store's own test file.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { isBrokerError, type ErrorCode } from '../../../shared/errors.ts';
import { toMetadata, type ConnectionRecord, type TokenStore } from '../../../shared/store/types.ts';

export interface ContractHarness {
  store: TokenStore;
  /** A second, independent store over the same backend (another instance). */
  other(): TokenStore;
  /** Fingerprint of everything written to the backend: equal before/after = nothing was written. */
  fingerprint(): Promise<string>;
  /** Lines logged by the stores during the test. */
  logs: string[];
  close?(): Promise<void>;
}

/** Every token value handed out by {@link sampleRecord}; no log line may contain one. */
export const issuedSecrets = new Set<string>();

const BASE_TIME = 1_760_000_000_000;

export function sampleRecord(
  connection: string,
  overrides: Partial<ConnectionRecord> = {},
): ConnectionRecord {
  const refreshToken = `rt-${randomUUID()}-${randomUUID()}`;
  const accessToken = `at-${randomUUID()}.${randomUUID()}`;
  issuedSecrets.add(refreshToken);
  issuedSecrets.add(accessToken);
  return {
    v: 1,
    connection,
    settings: {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send', 'offline_access', 'openid'],
      description: 'Sales mailbox',
      allowedCallers: ['11111111-2222-3333-4444-555555555555'],
    },
    status: 'active',
    tokens: {
      refreshToken,
      primary: {
        accessToken,
        tokenType: 'Bearer',
        expiresAt: BASE_TIME + 3600_000,
        refreshAt: BASE_TIME + 1800_000,
        scope: 'https://graph.microsoft.com/Mail.Send',
      },
      grantedScopes: ['https://graph.microsoft.com/Mail.Send', 'offline_access', 'openid'],
    },
    identity: {
      tenantId: '9188040d-6c67-4c5b-b112-36a304b66dad',
      objectId: randomUUID(),
      username: 'sales@contoso.com',
    },
    createdAt: BASE_TIME - 60_000,
    updatedAt: BASE_TIME,
    connectedAt: BASE_TIME - 60_000,
    refreshedAt: BASE_TIME,
    failures: 0,
    revision: 1,
    ...overrides,
  };
}

export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isBrokerError(err), `expected a BrokerError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function runTokenStoreContract(makeHarness: () => Promise<ContractHarness>): void {
  void describe('TokenStore contract', () => {
    let current: ContractHarness | undefined;
    const harness = async () => {
      current = await makeHarness();
      return current;
    };

    afterEach(async () => {
      const h = current;
      current = undefined;
      if (!h) return;
      await h.close?.();
      for (const line of h.logs) {
        for (const secret of issuedSecrets)
          assert.ok(!line.includes(secret), `token value leaked into log: ${line}`);
      }
    });

    void test('unknown connection: get is undefined, delete is false', async () => {
      const { store } = await harness();
      assert.equal(await store.get('nobody-here'), undefined);
      assert.equal(await store.delete('nobody-here'), false);
    });

    void test('put then get returns the same record', async () => {
      const { store } = await harness();
      const record = sampleRecord(unique('sales'));
      await store.put(record);
      assert.deepEqual(await store.get(record.connection), record);
    });

    void test('put overwrites the previous record', async () => {
      const { store } = await harness();
      const first = sampleRecord(unique('bing'));
      await store.put(first);
      const second = sampleRecord(first.connection, {
        revision: 2,
        updatedAt: first.updatedAt + 1,
        failures: 1,
      });
      await store.put(second);
      assert.deepEqual(await store.get(first.connection), second);
      const listed = (await store.listMetadata()).filter((m) => m.connection === first.connection);
      assert.deepEqual(listed, [toMetadata(second)]);
    });

    void test('listMetadata equals toMetadata of what was put', async () => {
      const { store } = await harness();
      const active = sampleRecord(unique('a'));
      const reauth = sampleRecord(unique('b'), {
        status: 'needs_reauth',
        failures: 3,
        nextAttemptAt: BASE_TIME + 5000,
        lastError: {
          code: 'invalid_grant',
          providerError: 'invalid_grant',
          providerCodes: [70008],
          at: BASE_TIME,
        },
        revision: 7,
      });
      const pending = sampleRecord(unique('c'), { status: 'pending', revision: 0 });
      delete pending.tokens;
      delete pending.refreshedAt;
      delete pending.connectedAt;
      const noRefreshIn = sampleRecord(unique('d'));
      if (noRefreshIn.tokens?.primary) delete noRefreshIn.tokens.primary.refreshAt;
      const records = [active, reauth, pending, noRefreshIn];
      for (const r of records) await store.put(r);
      const expected = records.map(toMetadata).sort((x, y) => x.connection.localeCompare(y.connection));
      assert.deepEqual(await store.listMetadata(), expected);
    });

    void test('a second instance sees the writes of the first', async () => {
      const h = await harness();
      const record = sampleRecord(unique('shared'));
      await h.store.put(record);
      const other = h.other();
      assert.deepEqual(await other.get(record.connection), record);
      assert.deepEqual(
        (await other.listMetadata()).find((m) => m.connection === record.connection),
        toMetadata(record),
      );
    });

    void test('delete removes the record; a second delete returns false', async () => {
      const { store } = await harness();
      const record = sampleRecord(unique('gone'));
      await store.put(record);
      assert.equal(await store.delete(record.connection), true);
      assert.equal(await store.get(record.connection), undefined);
      assert.ok(!(await store.listMetadata()).some((m) => m.connection === record.connection));
      assert.equal(await store.delete(record.connection), false);
    });

    void test('a deleted connection can be created again', async () => {
      const { store } = await harness();
      const old = sampleRecord(unique('again'), { revision: 4 });
      await store.put(old);
      await store.delete(old.connection);
      const fresh = sampleRecord(old.connection, { revision: 1, status: 'pending' });
      await store.put(fresh);
      assert.deepEqual(await store.get(old.connection), fresh);
      assert.deepEqual(
        (await store.listMetadata()).filter((m) => m.connection === old.connection),
        [toMetadata(fresh)],
      );
    });

    void test('invalid connection names are rejected and nothing is written', async () => {
      const h = await harness();
      const before = await h.fingerprint();
      const names = [
        '',
        'Upper',
        '-lead',
        'trail-',
        'a'.repeat(64),
        'under_score',
        '../escape',
        'a/b',
        'a.b',
        'sp ace',
      ];
      for (const name of names) {
        await rejectsWith(h.store.get(name), 'invalid_request');
        await rejectsWith(h.store.put(sampleRecord(name)), 'invalid_request');
        await rejectsWith(h.store.delete(name), 'invalid_request');
      }
      assert.equal(await h.fingerprint(), before);
    });

    void test('an oversize record is rejected with record_too_large and nothing is written', async () => {
      const h = await harness();
      const record = sampleRecord(unique('big'));
      await h.store.put(record);
      const before = await h.fingerprint();
      const huge = sampleRecord(record.connection, {
        revision: 2,
        settings: { ...record.settings, description: 'x'.repeat(26 * 1024) },
      });
      await rejectsWith(h.store.put(huge), 'record_too_large');
      assert.equal(await h.fingerprint(), before);
      assert.deepEqual(await h.store.get(record.connection), record);
    });

    void test('metadata beyond the tag limits or malformed is rejected before writing', async () => {
      const h = await harness();
      const before = await h.fingerprint();
      const connection = unique('tags');
      const longProvider = sampleRecord(connection);
      longProvider.settings.provider = 'p'.repeat(257);
      await rejectsWith(h.store.put(longProvider), 'invalid_request');
      await rejectsWith(h.store.put(sampleRecord(connection, { failures: -1 })), 'invalid_request');
      await rejectsWith(h.store.put(sampleRecord(connection, { updatedAt: 1.5 })), 'invalid_request');
      await rejectsWith(
        h.store.put(sampleRecord(connection, { status: 'weird' as ConnectionRecord['status'] })),
        'invalid_request',
      );
      assert.equal(await h.fingerprint(), before);
      assert.equal(await h.store.get(connection), undefined);
    });

    void test('20 parallel puts to one connection (two instances) leave one complete record', async () => {
      const h = await harness();
      const other = h.other();
      const connection = unique('race');
      const records = Array.from({ length: 20 }, (_, i) =>
        sampleRecord(connection, { revision: i + 1, updatedAt: BASE_TIME + i }),
      );
      await Promise.all(records.map((r, i) => (i % 2 === 0 ? h.store : other).put(r)));
      const stored = await h.store.get(connection);
      const match = records.find((r) => r.revision === stored?.revision);
      assert.ok(match, 'the stored record is one of those written');
      assert.deepEqual(stored, match);
      assert.deepEqual(
        (await h.store.listMetadata()).filter((m) => m.connection === connection),
        [toMetadata(match)],
      );
    });

    void test('20 parallel puts to different connections all land', async () => {
      const { store } = await harness();
      const records = Array.from({ length: 20 }, (_, i) => sampleRecord(unique(`many${i}`)));
      await Promise.all(records.map((r) => store.put(r)));
      const listed = await store.listMetadata();
      for (const r of records) {
        assert.deepEqual(
          listed.find((m) => m.connection === r.connection),
          toMetadata(r),
        );
        assert.deepEqual(await store.get(r.connection), r);
      }
    });
  });
}

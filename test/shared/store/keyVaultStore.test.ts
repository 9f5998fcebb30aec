import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, beforeEach, describe, test } from 'node:test';
import { SecretClient } from '@azure/keyvault-secrets';
import { isBrokerError } from '../../../shared/errors.ts';
import { createLogger } from '../../../shared/log.ts';
import { createTokenStore } from '../../../shared/store/index.ts';
import {
  createKeyVaultStore,
  secretNameOf,
  type KeyVaultStoreOptions,
} from '../../../shared/store/keyVaultStore.ts';
import { toTags } from '../../../shared/store/tags.ts';
import { toMetadata } from '../../../shared/store/types.ts';
import { startKeyVaultDouble, type KeyVaultDouble } from '../../support/keyVaultDouble.ts';
import { issuedSecrets, rejectsWith, runTokenStoreContract, sampleRecord, unique } from './contract.ts';

let kv: KeyVaultDouble;
before(async () => {
  kv = await startKeyVaultDouble();
});
after(async () => {
  await kv.close();
});

/** Fast timings for tests; the retry rule itself is unchanged. */
const FAST = { retry: { baseDelayMs: 5, maxDelayMs: 40 }, pollIntervalMs: 10, timeoutMs: 2000 };

function capture() {
  const logs: string[] = [];
  return { logs, logger: createLogger({}, (_level, line) => logs.push(line)) };
}

function storeFor(double: KeyVaultDouble, extra: Partial<KeyVaultStoreOptions> = {}) {
  const { logs, logger } = capture();
  const store = createKeyVaultStore({
    vaultUrl: double.vaultUrl,
    credential: double.credential,
    secretClientOptions: double.secretClientOptions(),
    logger,
    ...FAST,
    ...extra,
  });
  return { store, logs };
}

function assertNoSecrets(logs: string[]) {
  for (const line of logs) for (const s of issuedSecrets) assert.ok(!line.includes(s), `leak: ${line}`);
}

const doublePath = fileURLToPath(new URL('../../support/keyVaultDouble.ts', import.meta.url));

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const WRITES = ['set', 'update', 'delete', 'purge', 'recover', 'restore'] as const;

runTokenStoreContract(() => {
  kv.reset();
  const { logs, logger } = capture();
  const options = {
    credential: kv.credential,
    secretClientOptions: kv.secretClientOptions(),
    logger,
    ...FAST,
  };
  return Promise.resolve({
    // Built through the factory, as the runtime does.
    store: createTokenStore({ kind: 'keyvault', vaultUrl: kv.vaultUrl }, options),
    other: () => createTokenStore({ kind: 'keyvault', vaultUrl: kv.vaultUrl }, options),
    logs,
    fingerprint: () => {
      const counts = kv.counters();
      return Promise.resolve(JSON.stringify(WRITES.map((w) => counts[w])));
    },
  });
});

void describe('Key Vault store specifics', () => {
  beforeEach(() => kv.reset());

  void test('one secret per connection: conn-{name}, JSON value, application/json, metadata tags', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('layout'));
    await store.put(record);
    const secret = kv.inspect(secretNameOf(record.connection));
    assert.equal(secret?.state, 'active');
    const latest = secret?.versions.at(-1);
    assert.equal(latest?.contentType, 'application/json');
    assert.deepEqual(JSON.parse(latest?.value ?? ''), record);
    const { writtenAt, ...metadataTags } = latest?.tags ?? {};
    assert.deepEqual(metadataTags, toTags(record));
    assert.ok(Math.abs(Number(writtenAt) - Date.now()) < 60_000, 'writtenAt orders versions within a second');
    assert.ok(Object.keys(latest?.tags ?? {}).length <= 15);
  });

  void test('listMetadata pages by 25, reads tags only (no getSecret) and skips foreign or damaged secrets', async () => {
    const { store, logs } = storeFor(kv);
    const records = Array.from({ length: 30 }, (_, i) => sampleRecord(unique(`page${i}`)));
    await Promise.all(records.map((r) => store.put(r)));
    const raw = new SecretClient(kv.vaultUrl, kv.credential, kv.secretClientOptions());
    await raw.setSecret('BrokerKeys', 'not-a-connection');
    await raw.setSecret('conn-hand-made', '{}', { tags: { connection: 'hand-made', status: 'weird' } });
    kv.resetCounters();

    const listed = await store.listMetadata();

    assert.deepEqual(
      listed,
      records.map(toMetadata).sort((a, b) => a.connection.localeCompare(b.connection)),
    );
    const counts = kv.counters();
    assert.equal(counts.get, 0, 'no secret value read');
    assert.equal(counts.list, 2, '32 secrets at 25 per page');
    assert.ok(logs.some((l) => l.startsWith('store.record_unreadable') && l.includes('code=bad_tags')));
  });

  void test('a transient failure while listing restarts the listing (the SDK drops page tokens)', async () => {
    const { store } = storeFor(kv);
    const records = Array.from({ length: 27 }, (_, i) => sampleRecord(unique(`relist${i}`)));
    await Promise.all(records.map((r) => store.put(r)));
    kv.resetCounters();
    kv.failNext(1, { status: 503 }, ['list']);
    assert.equal((await store.listMetadata()).length, 27);
    assert.equal(kv.counters().list, 3);
  });

  void test('listMetadataPages yields pages as Key Vault answers, tags only, restarting after a transient failure', async () => {
    const { store } = storeFor(kv);
    const prefix = unique('paged');
    const records = Array.from({ length: 27 }, (_, i) => sampleRecord(`${prefix}-${i}`));
    await Promise.all(records.map((r) => store.put(r)));
    kv.resetCounters();
    kv.failNext(1, { status: 503 }, ['list']);
    const seen: string[] = [];
    for await (const page of store.listMetadataPages()) {
      assert.ok(page.length > 0 && page.length <= 25);
      seen.push(...page.map((m) => m.connection).filter((c) => c.startsWith(prefix)));
    }
    assert.equal(seen.length, 27);
    assert.equal(new Set(seen).size, 27, 'no connection yielded twice');
    assert.equal(kv.counters().get, 0, 'no secret value read');
  });

  void test('history comes from the version list: no secret value is read', async () => {
    const { store } = storeFor(kv);
    const connection = unique('versions');
    for (let revision = 1; revision <= 3; revision++) await store.put(sampleRecord(connection, { revision }));
    kv.resetCounters();
    const history = await store.history(connection);
    assert.deepEqual(
      history.map((v) => v.metadata?.revision),
      [3, 2, 1],
    );
    assert.equal(kv.counters().get, 0);
    assert.equal(kv.counters().listVersions, 1);
  });

  void test('delete is a soft delete; putting the connection again recovers the secret and writes over it', async () => {
    const { store, logs } = storeFor(kv);
    const old = sampleRecord(unique('soft'));
    await store.put(old);
    assert.equal(await store.delete(old.connection), true);
    assert.equal(kv.inspect(secretNameOf(old.connection))?.state, 'deleted');

    const fresh = sampleRecord(old.connection, { revision: 1, status: 'pending' });
    await store.put(fresh);

    assert.deepEqual(await store.get(old.connection), fresh);
    const secret = kv.inspect(secretNameOf(old.connection));
    assert.equal(secret?.state, 'active');
    assert.equal(secret?.versions.length, 2, 'the recovered history is kept');
    const counts = kv.counters();
    assert.equal(counts.recover, 1);
    assert.equal(counts.purge, 0, 'never purges');
    assert.ok(logs.some((l) => l.startsWith('store.recover_deleted')));
    assertNoSecrets(logs);
  });

  void test('recovery works under purge protection; the pollers wait for slow server-side delete and recover', async () => {
    kv.setPurgeProtection(true);
    kv.setTiming({ deleteMs: 150, recoverMs: 150 });
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('slow'));
    await store.put(record);
    let started = Date.now();
    assert.equal(await store.delete(record.connection), true);
    assert.ok(Date.now() - started >= 140, 'delete polled until the deleted secret appeared');
    started = Date.now();
    await store.put({ ...record, revision: 2 });
    assert.ok(Date.now() - started >= 140, 'recover polled until the secret was back');
    assert.equal((await store.get(record.connection))?.revision, 2);
    assert.equal(kv.counters().purge, 0);
  });

  void test('the transient 409s ObjectIsBeingDeleted / ObjectIsBeingRecovered are retried', async () => {
    const { store, logs } = storeFor(kv);
    const record = sampleRecord(unique('busy'));
    kv.failNext(1, { status: 409, code: 'Conflict', innerCode: 'ObjectIsBeingDeleted' }, ['set']);
    kv.failNext(1, { status: 409, code: 'Conflict', innerCode: 'ObjectIsBeingRecovered' }, ['set']);
    await store.put(record);
    assert.deepEqual(await store.get(record.connection), record);
    assert.equal(kv.counters().set, 3);
    assert.ok(logs.some((l) => l.includes('code=ObjectIsBeingDeleted')));
    assert.ok(logs.some((l) => l.includes('code=ObjectIsBeingRecovered')));
  });

  void test('a plain 409 Conflict is not retried', async () => {
    const { store } = storeFor(kv);
    kv.failNext(1, { status: 409, code: 'Conflict' }, ['set']);
    await rejectsWith(store.put(sampleRecord(unique('conflict'))), 'store_unavailable');
    assert.equal(kv.counters().set, 1);
  });

  void test('429 without Retry-After (which the SDK does not retry) is retried by the store', async () => {
    const { store, logs } = storeFor(kv);
    const record = sampleRecord(unique('throttled'));
    await store.put(record);
    kv.resetCounters();
    kv.failNext(2, { status: 429, retryAfter: false }, ['get']);
    assert.deepEqual(await store.get(record.connection), record);
    assert.equal(kv.counters().get, 3);
    assert.equal(logs.filter((l) => l.startsWith('store.retry') && l.includes('httpStatus=429')).length, 2);
  });

  void test('503 and a reset connection are retried; so is a response slower than the timeout', async () => {
    const { store } = storeFor(kv, { timeoutMs: 300 });
    const record = sampleRecord(unique('flaky'));
    kv.failNext(3, { status: 503 }, ['set']);
    await store.put(record);
    assert.equal(kv.counters().set, 4);

    kv.failNext(1, { reset: true }, ['get']);
    assert.deepEqual(await store.get(record.connection), record);

    kv.failNext(1, { delayMs: 1500 }, ['get']);
    const started = Date.now();
    assert.deepEqual(await store.get(record.connection), record);
    assert.ok(Date.now() - started < 1400, 'did not wait for the slow answer');
  });

  void test('Retry-After is honoured; one beyond the bound fails at once with retryAfterSeconds', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('later'));
    await store.put(record);

    kv.failNext(1, { status: 429, retryAfter: 1 }, ['get']);
    let started = Date.now();
    assert.deepEqual(await store.get(record.connection), record);
    assert.ok(Date.now() - started >= 950, 'waited for Retry-After');

    kv.resetCounters();
    kv.failNext(1, { status: 429, retryAfter: 30 }, ['get']);
    started = Date.now();
    await assert.rejects(store.get(record.connection), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'store_unavailable');
      assert.equal(err.retryAfterSeconds, 30);
      return true;
    });
    assert.ok(Date.now() - started < 1000);
    assert.equal(kv.counters().get, 1);
  });

  void test('persistent failure ends as store_unavailable after the bounded attempts', async () => {
    const { store } = storeFor(kv);
    kv.failNext(10, { status: 503 });
    await assert.rejects(store.get(unique('down')), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'store_unavailable');
      assert.ok((err.retryAfterSeconds ?? 0) >= 1);
      return true;
    });
    assert.equal(kv.counters().get, 4);
  });

  void test('a spent transaction budget: backoff rides it out, or fails with the Retry-After the vault gives', async () => {
    const { store } = storeFor(kv, { retry: { baseDelayMs: 200, maxDelayMs: 2000 } });
    const records = Array.from({ length: 8 }, () => sampleRecord(unique('budget')));
    await Promise.all(records.map((r) => store.put(r)));

    kv.setThrottle({ limit: 4, windowMs: 500, retryAfter: false });
    kv.resetCounters();
    const got = await Promise.all(records.map((r) => store.get(r.connection)));
    assert.deepEqual(got, records);
    assert.ok(kv.counters().throttled > 0, 'the budget was exceeded');

    kv.setThrottle({ limit: 1, windowMs: 60_000, retryAfter: true });
    assert.deepEqual(await store.get(records[0]!.connection), records[0]);
    await assert.rejects(store.get(records[1]!.connection), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'store_unavailable');
      assert.ok((err.retryAfterSeconds ?? 0) >= 50);
      return true;
    });
  });

  void test('budget exhausted without Retry-After: bounded attempts, then store_unavailable with retryAfterSeconds', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('spent'));
    await store.put(record);
    kv.setThrottle({ limit: 0, windowMs: 60_000, retryAfter: false });
    kv.resetCounters();
    await assert.rejects(store.get(record.connection), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'store_unavailable');
      assert.ok((err.retryAfterSeconds ?? 0) >= 1);
      return true;
    });
    assert.equal(kv.counters().throttled, 4);
  });

  void test('a disabled secret reads as secret_disabled but stays listed; a new version fixes it', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('disabled'));
    await store.put(record);
    const raw = new SecretClient(kv.vaultUrl, kv.credential, kv.secretClientOptions());
    await raw.updateSecretProperties(secretNameOf(record.connection), '', { enabled: false });

    await assert.rejects(store.get(record.connection), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'secret_disabled');
      assert.equal(err.status, 409);
      return true;
    });
    assert.deepEqual(await store.listMetadata(), [toMetadata(record)]);
    assert.equal((await store.history(record.connection))[0]?.enabled, false);

    const next = { ...record, revision: 2 };
    await store.put(next);
    assert.deepEqual(await store.get(record.connection), next);
  });

  void test('other service errors map to store_unavailable without URLs, bodies or retries', async () => {
    const { store } = storeFor(kv);
    kv.failNext(1, {
      status: 403,
      innerCode: 'ForbiddenByRbac',
      message: `Caller is not authorized to perform action on resource. Resource: '${kv.vaultUrl}/secrets/conn-x'`,
    });
    await assert.rejects(store.get(unique('rbac')), (err: unknown) => {
      assert.ok(isBrokerError(err));
      assert.equal(err.code, 'store_unavailable');
      assert.ok(!`${err.message} ${err.detail}`.includes('https://'));
      assert.match(err.detail ?? '', /403 Forbidden\/ForbiddenByRbac/);
      assert.equal(Object.hasOwn(err, 'cause'), false, 'the RestError (request body = secret) is not kept');
      return true;
    });
    assert.equal(kv.counters().get, 1);
  });

  void test('a secret value that is not our envelope is store_unavailable, not a crash', async () => {
    const { store } = storeFor(kv);
    const raw = new SecretClient(kv.vaultUrl, kv.credential, kv.secretClientOptions());
    await raw.setSecret('conn-foreign', 'plain text');
    await rejectsWith(store.get('foreign'), 'store_unavailable');
  });

  void test('one client per store: a single 401 challenge, then bearer tokens for the vault scope', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('challenge'));
    await store.put(record);
    await store.get(record.connection);
    await store.listMetadata();
    assert.equal(kv.counters().challenge, 1);
    assert.deepEqual(kv.tokenRequests()[0]?.scopes, ['https://vault.azure.net/.default']);
  });

  void test('test-only settings are refused for a non-loopback vault', () => {
    assert.throws(
      () =>
        createTokenStore({
          kind: 'keyvault',
          vaultUrl: 'https://contoso.vault.azure.net',
          disableChallengeResourceVerification: true,
        }),
      (err: unknown) => isBrokerError(err) && err.code === 'config_error',
    );
  });

  void test('CLI double in one process, broker store in another: env settings and NODE_EXTRA_CA_CERTS only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kv-cli-'));
    const caFile = join(dir, 'ca.pem');
    const server = spawn(process.execPath, [doublePath, '--port', '0', '--ca-file', caFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(createInterface({ input: server.stdout }), 'line')) as [string];
      const info = JSON.parse(line) as { vaultUrl: string; token: string; controlUrl: string };
      const storeModule = new URL('../../../shared/store/index.ts', import.meta.url).href;
      const script = `
        import { createTokenStore } from ${JSON.stringify(storeModule)};
        const store = createTokenStore({ kind: 'keyvault', vaultUrl: process.env.KEY_VAULT_URL,
          disableChallengeResourceVerification: process.env.KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION === 'true',
          staticBearerToken: process.env.KEY_VAULT_TEST_BEARER_TOKEN });
        const record = { v: 1, connection: 'cross-process', settings: { provider: 'microsoft', scopes: [] },
          status: 'pending', createdAt: 1, updatedAt: 1, failures: 0, revision: 1 };
        await store.put(record);
        process.stdout.write(JSON.stringify(await store.get('cross-process')));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: caFile,
          KEY_VAULT_URL: info.vaultUrl,
          KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
          KEY_VAULT_TEST_BEARER_TOKEN: info.token,
        },
      });
      assert.equal((JSON.parse(stdout) as { connection: string }).connection, 'cross-process');
      const counters = JSON.parse(
        await httpsGet(`${info.controlUrl}counters`, await readFile(caFile, 'utf8')),
      ) as {
        set: number;
        get: number;
        challenge: number;
      };
      assert.deepEqual([counters.set, counters.get, counters.challenge], [1, 1, 1]);
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
      await rm(dir, { recursive: true, force: true });
    }
  });

  void test('the factory talks to the double with the test-only settings alone (what another process would use)', async () => {
    const store = createTokenStore(
      {
        kind: 'keyvault',
        vaultUrl: kv.vaultUrl,
        disableChallengeResourceVerification: true,
        staticBearerToken: kv.token,
      },
      { secretClientOptions: { tlsOptions: { ca: kv.ca } }, ...FAST },
    );
    const record = sampleRecord(unique('env'));
    await store.put(record);
    assert.deepEqual(await store.get(record.connection), record);
  });
});

/** A clock for the double that moves only when told (the SDK still runs on real time). */
function frozenClock(start = Date.now()) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

void describe('the double models the three behaviours Azure showed (by default)', () => {
  void test('two budgets: the 301st secret write in 10 s is throttled with the service body while reads go on', async () => {
    const clock = frozenClock();
    const double = await startKeyVaultDouble({ clock: clock.now });
    try {
      const raw = new SecretClient(
        double.vaultUrl,
        double.credential,
        double.secretClientOptions({ retryOptions: { maxRetries: 0 } }),
      );
      for (let i = 0; i < 300; i += 30) {
        await Promise.all(Array.from({ length: 30 }, (_, j) => raw.setSecret(`w${i + j}`, 'v')));
      }
      const err = await raw.setSecret('w300', 'v').then(
        () => undefined,
        (e: unknown) =>
          e as {
            statusCode?: number;
            code?: string;
            message?: string;
            response?: { headers: { get(n: string): string | undefined } };
          },
      );
      assert.equal(err?.statusCode, 429);
      assert.equal(err?.code, 'Throttled');
      assert.match(err?.message ?? '', /Reason: VaultRequestTypeLimitReached$/);
      assert.equal(err?.response?.headers.get('retry-after'), undefined, 'no Retry-After, as captured');
      assert.equal((await raw.getSecret('w0')).value, 'v', 'other transactions have their own 4,000');
      assert.deepEqual([double.counters().throttled, double.counters().throttledWrites], [1, 1]);
      clock.advance(10_001);
      await raw.setSecret('w300', 'v');
    } finally {
      await double.close();
    }
  });

  void test('soft delete is asynchronous: the deleted secret is 404 until the delete window has passed', async () => {
    const clock = frozenClock();
    const double = await startKeyVaultDouble({ clock: clock.now });
    try {
      const raw = new SecretClient(double.vaultUrl, double.credential, double.secretClientOptions());
      await raw.setSecret('gone', 'v');
      const poller = await raw.beginDeleteSecret('gone', { intervalInMs: 5 });
      assert.equal(poller.isDone(), false, 'the first poll saw 404');
      await assert.rejects(raw.getDeletedSecret('gone'), { statusCode: 404, code: 'SecretNotFound' });
      clock.advance(1999);
      await assert.rejects(raw.getDeletedSecret('gone'), { statusCode: 404 });
      clock.advance(1);
      assert.equal((await raw.getDeletedSecret('gone')).name, 'gone');
    } finally {
      await double.close();
    }
  });

  void test('soft-deleted secrets take list slots: empty pages that still carry a nextLink', async () => {
    const double = await startKeyVaultDouble({ timing: { deleteMs: 0 } });
    try {
      const raw = new SecretClient(double.vaultUrl, double.credential, double.secretClientOptions());
      for (let i = 0; i < 50; i++) await raw.setSecret(`a${String(i).padStart(2, '0')}`, 'v');
      await raw.setSecret('z-live', 'v');
      for (let i = 0; i < 50; i++) {
        await (
          await raw.beginDeleteSecret(`a${String(i).padStart(2, '0')}`, { intervalInMs: 1 })
        ).pollUntilDone();
      }
      double.resetCounters();
      const sizes: number[] = [];
      for await (const page of raw.listPropertiesOfSecrets().byPage({ maxPageSize: 25 })) {
        sizes.push(page.length);
      }
      // The SDK followed the nextLink of both empty pages (it hides the link itself).
      assert.deepEqual(sizes, [0, 0, 1]);
      assert.equal(double.counters().list, 3);
    } finally {
      await double.close();
    }
  });
});

void describe('Key Vault store at the real limits', () => {
  beforeEach(() => kv.reset());

  void test('secret writes are paced under the write budget: no 429 even when many refreshes write at once', async () => {
    // Scaled budgets so the test takes seconds: the double allows 20 writes per second, the store paces at 10.
    const double = await startKeyVaultDouble({ throttle: { writeLimit: 20, windowMs: 1000 } });
    try {
      // The per-attempt timeout includes the time a request waits for its slot: 30 writes at 10/s need 3 s.
      const { store } = storeFor(double, { pacer: { writeLimit: 10, windowMs: 1000 }, timeoutMs: 10_000 });
      const records = Array.from({ length: 30 }, (_, i) => sampleRecord(unique(`paced${i}`)));
      await Promise.all(records.map((r) => store.put(r)));
      const counts = double.counters();
      assert.equal(counts.set, 30);
      assert.equal(counts.throttledWrites, 0, 'the pacer kept writes under their own budget');
      assert.deepEqual(await store.get(records[29]!.connection), records[29]);
    } finally {
      await double.close();
    }
  });

  void test('a retried DELETE inside the soft-delete window still reports the delete (the answer was lost)', async () => {
    const { store } = storeFor(kv);
    const record = sampleRecord(unique('lostdelete'));
    await store.put(record);
    kv.failNext(1, { lostResponse: true }, ['delete']);
    assert.equal(await store.delete(record.connection), true);
    assert.equal(kv.counters().delete, 2, 'the DELETE was sent again and answered 404');
    assert.equal(kv.inspect(secretNameOf(record.connection))?.state, 'deleted');
    // And connecting the name again works right away (recover, then a new version).
    await store.put({ ...record, revision: 7 });
    assert.equal((await store.get(record.connection))?.revision, 7);
  });

  void test('a soft delete slower than one attempt timeout completes: DELETE and the wait are not one attempt', async () => {
    kv.setTiming({ deleteMs: 900 });
    const { store, logs } = storeFor(kv, { timeoutMs: 400 });
    const record = sampleRecord(unique('slowdelete'));
    await store.put(record);
    kv.resetCounters();
    assert.equal(await store.delete(record.connection), true);
    assert.equal(kv.counters().delete, 1, 'one DELETE, no retry');
    assert.ok(kv.counters().getDeleted >= 2, 'polled until the deleted secret appeared');
    assert.ok(!logs.some((l) => l.startsWith('store.retry')), logs.join('\n'));
  });

  void test('a DELETE retried for a secret that never existed answers false after the settle window', async () => {
    const { store } = storeFor(kv, { deleteSettleMs: 200 });
    kv.failNext(1, { status: 503 }, ['delete']);
    assert.equal(await store.delete(unique('never')), false);
  });

  void test('empty list pages with a nextLink (soft-deleted secrets) do not end the listing', async () => {
    kv.setTiming({ deleteMs: 0 });
    const { store } = storeFor(kv);
    const dead = Array.from({ length: 50 }, (_, i) => sampleRecord(`aa-dead-${String(i).padStart(2, '0')}`));
    await Promise.all(dead.map((r) => store.put(r)));
    for (const r of dead) assert.equal(await store.delete(r.connection), true);
    const live = Array.from({ length: 3 }, (_, i) => sampleRecord(`zz-live-${i}`));
    await Promise.all(live.map((r) => store.put(r)));
    kv.resetCounters();

    assert.deepEqual(await store.listMetadata(), live.map(toMetadata));
    assert.equal(kv.counters().list, 3, 'two empty pages, then the one with the live secrets');

    const paged: string[] = [];
    for await (const page of store.listMetadataPages()) paged.push(...page.map((m) => m.connection));
    assert.deepEqual(
      paged,
      live.map((r) => r.connection),
    );
  });
});

/**
 * The Key Vault store's own rules, each pinned on its own against the HTTPS double with the real SDK client: the
 * retry arithmetic and its log line, the error mapping, envelope checks, version ordering, listing filters and
 * the delete wait. Soft delete is instant here unless a test sets a window, so the whole file runs in a few
 * seconds (the contract and the Azure-limit scenarios are in keyVaultStore.test.ts).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { SecretClient } from '@azure/keyvault-secrets';
import type { BrokerError } from '../../../shared/errors.ts';
import { isBrokerError } from '../../../shared/errors.ts';
import { createLogger } from '../../../shared/log.ts';
import {
  createKeyVaultStore,
  secretNameOf,
  type KeyVaultStoreOptions,
} from '../../../shared/store/keyVaultStore.ts';
import { toTags } from '../../../shared/store/tags.ts';
import { toMetadata } from '../../../shared/store/types.ts';
import { startKeyVaultDouble, type KeyVaultDouble } from '../../support/keyVaultDouble.ts';
import { issuedSecrets, rejectsWith, sampleRecord } from './contract.ts';

let kv: KeyVaultDouble;
before(async () => {
  kv = await startKeyVaultDouble({ throttle: false, timing: { deleteMs: 0 } });
});
after(async () => {
  await kv.close();
});

let allLogs: string[] = [];
beforeEach(() => {
  kv.reset();
  kv.setTiming({ deleteMs: 0 });
  allLogs = [];
});
afterEach(() => {
  for (const line of allLogs)
    for (const s of issuedSecrets) assert.ok(!line.includes(s), `token value leaked into log: ${line}`);
});

function storeFor(extra: Partial<KeyVaultStoreOptions> = {}) {
  const logs: string[] = [];
  const logger = createLogger({}, (_level, line) => {
    logs.push(line);
    allLogs.push(line);
  });
  const store = createKeyVaultStore({
    vaultUrl: kv.vaultUrl,
    credential: kv.credential,
    secretClientOptions: kv.secretClientOptions(),
    logger,
    pollIntervalMs: 10,
    timeoutMs: 2000,
    ...extra,
    retry: { baseDelayMs: 5, maxDelayMs: 40, ...extra.retry },
  });
  return { store, logs };
}

function raw(): SecretClient {
  return new SecretClient(kv.vaultUrl, kv.credential, kv.secretClientOptions());
}

async function caught(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isBrokerError(err), `expected a BrokerError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

function retryLines(logs: string[]): string[] {
  return logs.filter((l) => l.startsWith('store.retry '));
}

/** Runs `fn` with Math.random fixed, so the backoff jitter is known. */
async function withRandom<T>(value: number, fn: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = () => value;
  try {
    return await fn();
  } finally {
    Math.random = original;
  }
}

void describe('Key Vault store: retry rule', () => {
  void test('backoff doubles from baseDelayMs up to maxDelayMs, times 0.5-1 jitter, and each retry is logged', async () => {
    const retry = { maxAttempts: 5, baseDelayMs: 8, maxDelayMs: 20 };
    for (const [random, expected] of [
      [1, [8, 16, 20, 20]],
      [0, [4, 8, 10, 10]],
    ] as const) {
      kv.reset();
      const { store, logs } = storeFor({ retry });
      kv.failNext(4, { status: 503 }, ['get']);
      assert.equal(await withRandom(random, () => store.get('backoff')), undefined);
      assert.equal(kv.counters().get, 5);
      assert.deepEqual(
        retryLines(logs),
        expected.map(
          (ms, i) =>
            `store.retry store=keyvault connection=backoff reason=get httpStatus=503 code=ServiceUnavailable attempt=${i + 1} durationMs=${ms}`,
        ),
      );
    }
  });

  void test('the inner Key Vault code names the retry in the log when there is one', async () => {
    const { store, logs } = storeFor();
    kv.failNext(1, { status: 409, code: 'Conflict', innerCode: 'ObjectIsBeingDeleted' }, ['get']);
    await store.get('inner');
    assert.match(retryLines(logs)[0] ?? '', / code=ObjectIsBeingDeleted /);
  });

  void test('after maxAttempts the call fails with store_unavailable naming operation, attempts and status', async () => {
    const { store } = storeFor({ retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 5 } });
    kv.failNext(5, { status: 503 }, ['get']);
    const err = await caught(store.get('down'));
    assert.equal(err.code, 'store_unavailable');
    assert.equal(err.detail, 'get failed after 3 attempt(s): HTTP 503 ServiceUnavailable');
    assert.deepEqual(err.fields, { store: 'keyvault', connection: 'down', httpStatus: 503, attempt: 3 });
    assert.equal(err.retryAfterSeconds, 1);
    assert.equal(kv.counters().get, 3);
  });

  void test('a Retry-After of 0 still tells the caller to wait at least one second', async () => {
    const { store } = storeFor({ retry: { maxAttempts: 1 } });
    kv.failNext(1, { status: 429, retryAfterMs: 0 }, ['get']);
    const err = await caught(store.get('zero'));
    assert.equal(err.retryAfterSeconds, 1);
    assert.equal(kv.counters().get, 1, 'the SDK does not retry on its own (maxRetries 0)');
  });

  void test('a Retry-After equal to the bound is waited for; one above fails at once, rounded up to seconds', async () => {
    const { store, logs } = storeFor({ retry: { maxRetryAfterMs: 60 } });
    kv.failNext(1, { status: 429, retryAfterMs: 60 }, ['get']);
    assert.equal(await store.get('bound'), undefined);
    assert.equal(kv.counters().get, 2);
    assert.match(retryLines(logs)[0] ?? '', / durationMs=60$/);

    kv.resetCounters();
    kv.failNext(1, { status: 429, retryAfterMs: 1500 }, ['get']);
    const err = await caught(store.get('bound'));
    assert.equal(err.code, 'store_unavailable');
    assert.equal(err.retryAfterSeconds, 2);
    assert.match(err.detail ?? '', /^get failed after 1 attempt\(s\)/);
    assert.equal(kv.counters().get, 1);
  });

  void test('a 503 is not retried by the SDK underneath: one request per attempt', async () => {
    const { store } = storeFor({ retry: { maxAttempts: 2 } });
    kv.failNext(5, { status: 503 });
    await rejectsWith(store.put(sampleRecord('once')), 'store_unavailable');
    assert.equal(kv.counters().set, 2);
  });

  void test('an answer slower than timeoutMs is abandoned and retried (get, list, history)', async () => {
    const { store } = storeFor({ timeoutMs: 150 });
    const record = sampleRecord('slow');
    await store.put(record);
    kv.resetCounters();
    kv.failNext(1, { delayMs: 700 }, ['get']);
    assert.deepEqual(await store.get('slow'), record);
    kv.failNext(1, { delayMs: 700 }, ['list']);
    assert.deepEqual(await store.listMetadata(), [toMetadata(record)]);
    kv.failNext(1, { delayMs: 700 }, ['listVersions']);
    assert.equal((await store.history('slow')).length, 1);
    kv.failNext(1, { delayMs: 700 }, ['list']);
    const pages: unknown[] = [];
    for await (const page of store.listMetadataPages()) pages.push(page);
    assert.deepEqual(pages, [[toMetadata(record)]]);
    const c = kv.counters();
    assert.deepEqual([c.get, c.list, c.listVersions], [2, 4, 2]);
  });
});

void describe('Key Vault store: errors and envelopes', () => {
  void test('403 SecretDisabled is secret_disabled; another 403 or SecretDisabled on another status is not', async () => {
    const { store } = storeFor();
    kv.failNext(1, { status: 403, code: 'Forbidden', innerCode: 'SecretDisabled' }, ['get']);
    const disabled = await caught(store.get('dis'));
    assert.equal(disabled.code, 'secret_disabled');
    assert.equal(disabled.detail, 'get: HTTP 403 Forbidden/SecretDisabled');
    assert.deepEqual(disabled.fields, { store: 'keyvault', connection: 'dis', httpStatus: 403 });

    kv.failNext(1, { status: 403, code: 'Forbidden', innerCode: 'ForbiddenByPolicy' }, ['set']);
    const other = await caught(store.put(sampleRecord('dis')));
    assert.equal(other.code, 'store_unavailable');
    assert.equal(other.detail, 'set: HTTP 403 Forbidden/ForbiddenByPolicy');
    assert.deepEqual(other.fields, { store: 'keyvault', connection: 'dis', httpStatus: 403 });

    kv.failNext(1, { status: 400, code: 'BadParameter', innerCode: 'SecretDisabled' }, ['get']);
    assert.equal((await caught(store.get('dis'))).code, 'store_unavailable');
  });

  void test('a listing failure is store_unavailable without a connection', async () => {
    const { store } = storeFor();
    kv.failNext(1, { status: 401, code: 'Unauthorized' }, ['list']);
    const err = await caught(store.listMetadata());
    assert.equal(err.code, 'store_unavailable');
    assert.equal(err.detail, 'list: HTTP 401 Unauthorized');
    assert.deepEqual(err.fields, { store: 'keyvault', connection: undefined, httpStatus: 401 });
  });

  void test('a value that is not the v1 envelope of this connection is store_unavailable', async () => {
    const { store } = storeFor();
    const client = raw();
    const good = sampleRecord('env');
    for (const value of [
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, connection: 'other' }),
      JSON.stringify({ ...good, revision: '1' }),
      '',
      'null',
    ]) {
      await client.setSecret('conn-env', value);
      const err = await caught(store.get('env'));
      assert.equal(err.code, 'store_unavailable', value);
      assert.deepEqual(err.fields, { store: 'keyvault', connection: 'env' });
    }
    await client.setSecret('conn-env', JSON.stringify(good));
    assert.deepEqual(await store.get('env'), good);
  });

  void test('without the test-only flag the double (challenge for vault.azure.net on 127.0.0.1) is refused', async () => {
    const options = kv.secretClientOptions();
    delete options.disableChallengeResourceVerification;
    const strict = storeFor({ secretClientOptions: options, retry: { maxAttempts: 1 } }).store;
    await rejectsWith(strict.get('strict'), 'store_unavailable');
    assert.equal(kv.counters().get, 0, 'no bearer request reached the vault');
    const relaxed = storeFor({
      secretClientOptions: options,
      disableChallengeResourceVerification: true,
    }).store;
    assert.equal(await relaxed.get('strict'), undefined);
  });
});

void describe('Key Vault store: versions', () => {
  void test('writtenAt orders versions written within the same second and is never before the write', async () => {
    const { store } = storeFor();
    const started = Date.now();
    for (let revision = 1; revision <= 5; revision++) await store.put(sampleRecord('order', { revision }));
    const written = kv.inspect(secretNameOf('order'))!.versions.map((v) => Number(v.tags?.writtenAt));
    assert.equal(written.length, 5);
    assert.ok(written[0]! >= started, `${written[0]} >= ${started}`);
    for (let i = 1; i < written.length; i++) assert.ok(written[i]! > written[i - 1]!, written.join(','));
    // Writes started in the same millisecond still get distinct, increasing writtenAt values.
    await Promise.all([6, 7, 8, 9, 10].map((revision) => store.put(sampleRecord('order', { revision }))));
    const burst = kv
      .inspect(secretNameOf('order'))!
      .versions.slice(5)
      .map((v) => Number(v.tags?.writtenAt));
    assert.equal(new Set(burst).size, 5, burst.join(','));
    assert.ok(Math.min(...burst) > written[4]!);
    const history = (await store.history('order')).slice(5);
    assert.deepEqual(
      history.map((h) => [h.createdAt, h.metadata?.revision]),
      written.map((w, i) => [w, i + 1]).reverse(),
    );
  });

  void test('history: hand-made versions fall back to the Key Vault time, ties by revision, disabled flagged', async () => {
    const { store } = storeFor();
    const client = raw();
    const name = secretNameOf('hist');
    const tags = (revision: number, writtenAt?: string) => ({
      ...toTags(sampleRecord('hist', { revision })),
      ...(writtenAt === undefined ? {} : { writtenAt }),
    });
    const a = await client.setSecret(name, 'a', { tags: tags(1, '5') });
    const b = await client.setSecret(name, 'b', { tags: tags(3, '5') });
    const c = await client.setSecret(name, 'c', { tags: tags(2, '5') });
    const d = await client.setSecret(name, 'd', { tags: tags(4) });
    const e = await client.setSecret(name, 'e', { tags: { ...tags(5), writtenAt: '0' } });
    const f = await client.setSecret(name, 'f', { tags: { foreign: 'x' } });
    await client.updateSecretProperties(name, c.properties.version!, { enabled: false });

    const history = await store.history('hist');
    const kvTime = d.properties.createdOn!.getTime();
    assert.ok(kvTime > 5);
    assert.equal(e.properties.createdOn!.getTime() >= kvTime, true);
    // d, e, f carry Key Vault's (second) time; a, b, c share writtenAt 5 and are ordered by revision.
    assert.deepEqual(
      history.slice(3).map((h) => [h.version, h.createdAt, h.enabled, h.metadata?.revision]),
      [
        [b.properties.version, 5, true, 3],
        [c.properties.version, 5, false, 2],
        [a.properties.version, 5, true, 1],
      ],
    );
    const rest = history.slice(0, 3);
    assert.deepEqual(
      new Set(rest.map((h) => h.version)),
      new Set([d, e, f].map((s) => s.properties.version)),
    );
    for (const h of rest) {
      assert.equal(h.createdAt % 1000, 0, 'a Key Vault time (seconds)');
      assert.ok(h.createdAt >= kvTime);
    }
    assert.equal(rest.find((h) => h.version === f.properties.version)?.metadata, undefined);
    assert.equal(
      rest.find((h) => h.version === e.properties.version)?.metadata?.revision,
      5,
      'writtenAt 0 falls back to the Key Vault time but keeps the metadata',
    );
    for (const h of history) assert.match(h.version, /^[0-9a-f]{32}$/);
  });

  void test('history of a connection never written is empty; a bad name is invalid_request', async () => {
    const { store } = storeFor();
    assert.deepEqual(await store.history('nothing'), []);
    await rejectsWith(store.history('Bad'), 'invalid_request');
    assert.equal(kv.counters().total, 1);
  });
});

/** Reverses the items of every list page, as Key Vault may answer in any order. */
const reverseListPages: PipelinePolicy = {
  name: 'reverse-list-pages',
  sendRequest: async (request, next) => {
    const response = await next(request);
    if (request.method === 'GET' && new URL(request.url).pathname === '/secrets' && response.bodyAsText) {
      const body = JSON.parse(response.bodyAsText) as { value?: unknown[] };
      body.value?.reverse();
      response.bodyAsText = JSON.stringify(body);
    }
    return response;
  },
};

void describe('Key Vault store: listing', () => {
  void test('listMetadata is sorted by connection whatever order the vault lists in', async () => {
    const { store } = storeFor({
      secretClientOptions: kv.secretClientOptions({
        additionalPolicies: [{ policy: reverseListPages, position: 'perCall' }],
      }),
    });
    const records = ['alpha', 'bravo', 'charlie'].map((c) => sampleRecord(c));
    for (const r of records) await store.put(r);
    assert.deepEqual(await store.listMetadata(), records.map(toMetadata));
  });

  void test('secret names are case-insensitive; conn- secrets with tags of another or an invalid name are skipped with a warning', async () => {
    const { store, logs } = storeFor();
    const client = raw();
    const upper = sampleRecord('upper');
    await client.setSecret('CONN-Upper', JSON.stringify(upper), { tags: toTags(upper) });
    await client.setSecret('conn-mismatch', '{}', { tags: toTags(sampleRecord('other')) });
    await client.setSecret('conn--lead', '{}', { tags: toTags(sampleRecord('lead')) });
    await client.setSecret('connx-near', '{}', { tags: toTags(sampleRecord('near')) });
    await client.setSecret('other-upper', '{}', { tags: toTags(sampleRecord('upper')) });

    assert.deepEqual(await store.listMetadata(), [toMetadata(upper)]);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('store.record_unreadable')).map((l) => l.replace(/ detail=.*/, '')),
      [
        'store.record_unreadable store=keyvault code=bad_tags',
        'store.record_unreadable store=keyvault connection=mismatch code=bad_tags',
      ],
    );
  });

  void test('listMetadataPages never yields an empty page nor a connection twice across a restart', async () => {
    const { store } = storeFor();
    const client = raw();
    // 25 foreign secrets sort before conn-*: the first page holds none of ours.
    for (let i = 0; i < 25; i++) await client.setSecret(`aaa-${String(i).padStart(2, '0')}`, 'x');
    const records = Array.from({ length: 30 }, (_, i) => sampleRecord(`c${String(i).padStart(2, '0')}`));
    for (const r of records) await store.put(r);

    const pages: string[][] = [];
    let listed = 0;
    for await (const page of store.listMetadataPages()) {
      pages.push(page.map((m) => m.connection));
      if (++listed === 1) kv.failNext(1, { status: 503 }, ['list']);
    }
    assert.ok(
      pages.every((p) => p.length > 0),
      JSON.stringify(pages),
    );
    assert.deepEqual(
      pages.flat(),
      records.map((r) => r.connection),
    );
    assert.equal(kv.counters().faulted, 1);
  });

  void test('a permanent listing error ends the pages with store_unavailable', async () => {
    const { store } = storeFor();
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['list']);
    const iterate = async () => {
      for await (const page of store.listMetadataPages())
        assert.fail(`unexpected page ${JSON.stringify(page)}`);
    };
    await rejectsWith(iterate(), 'store_unavailable');
  });
});

void describe('Key Vault store: delete and recover', () => {
  void test('delete answers true once, then false; putting again recovers the secret and logs it', async () => {
    const { store, logs } = storeFor();
    const record = sampleRecord('gone');
    await store.put(record);
    assert.equal(await store.delete('gone'), true);
    assert.equal(await store.delete('gone'), false);
    assert.equal(await store.get('gone'), undefined);
    const next = sampleRecord('gone', { revision: 2 });
    await store.put(next);
    assert.deepEqual(await store.get('gone'), next);
    assert.ok(logs.includes('store.recover_deleted store=keyvault connection=gone'), logs.join('\n'));
    assert.equal(kv.inspect(secretNameOf('gone'))?.versions.length, 2);
  });

  void test('delete waits until the vault lists the secret as deleted, polling at pollIntervalMs', async () => {
    kv.setTiming({ deleteMs: 300 });
    const { store, logs } = storeFor({ deleteSettleMs: 5000, pollIntervalMs: 20 });
    await store.put(sampleRecord('settle'));
    kv.resetCounters();
    assert.equal(await store.delete('settle'), true);
    assert.ok(kv.counters().getDeleted >= 2, 'polled until the soft delete completed');
    assert.deepEqual(
      logs.filter((l) => l.startsWith('store.delete_unsettled')),
      [],
    );
    assert.equal(kv.inspect(secretNameOf('settle'))?.state, 'deleted');
  });

  void test('a delete that does not settle within deleteSettleMs still answers true, with a warning', async () => {
    kv.setTiming({ deleteMs: 5000 });
    const { store, logs } = storeFor({ deleteSettleMs: 60, pollIntervalMs: 20 });
    await store.put(sampleRecord('unsettled'));
    assert.equal(await store.delete('unsettled'), true);
    const warn = logs.filter((l) => l.startsWith('store.delete_unsettled'));
    assert.equal(warn.length, 1);
    assert.match(warn[0]!, /^store\.delete_unsettled store=keyvault connection=unsettled durationMs=60 /);
  });

  void test('a DELETE whose answer was lost counts as done once the vault lists it as deleted', async () => {
    kv.setTiming({ deleteMs: 150 });
    const { store, logs } = storeFor({ deleteSettleMs: 5000, pollIntervalMs: 20 });
    await store.put(sampleRecord('lost'));
    kv.failNext(1, { lostResponse: true }, ['delete']);
    assert.equal(await store.delete('lost'), true);
    assert.equal(kv.counters().delete, 2);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('store.delete_unsettled')),
      [],
    );
  });

  void test('a retried DELETE for a secret that never existed answers false after the settle window', async () => {
    const { store } = storeFor({ deleteSettleMs: 60, pollIntervalMs: 20 });
    kv.failNext(1, { status: 503 }, ['delete']);
    assert.equal(await store.delete('never'), false);
    assert.ok(kv.counters().getDeleted >= 2, 'kept looking until the window ended');
    kv.resetCounters();
    assert.equal(await store.delete('never'), false);
    assert.equal(kv.counters().getDeleted, 0, 'a first-attempt 404 is final');
  });
});

/** Records the path and query of every request the store sends. */
function recorder() {
  const urls: URL[] = [];
  const policy: PipelinePolicy = {
    name: 'record-urls',
    sendRequest: (request, next) => {
      urls.push(new URL(request.url));
      return next(request);
    },
  };
  return { urls, options: kv.secretClientOptions({ additionalPolicies: [{ policy, position: 'perCall' }] }) };
}

/** After the first list page has come back, the next list request the double sees gets `fault`. */
function faultAfterFirstPage(fault: Parameters<KeyVaultDouble['failNext']>[1]) {
  let armed = false;
  const policy: PipelinePolicy = {
    name: 'fault-after-first-page',
    sendRequest: async (request, next) => {
      const response = await next(request);
      if (!armed && new URL(request.url).pathname === '/secrets') {
        armed = true;
        kv.failNext(1, fault, ['list']);
      }
      return response;
    },
  };
  return kv.secretClientOptions({ additionalPolicies: [{ policy, position: 'perCall' }] });
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

void describe('Key Vault store: client setup', () => {
  void test('without client options the store is still built (the SDK defaults apply)', () => {
    const store = createKeyVaultStore({
      vaultUrl: 'https://contoso.vault.azure.net',
      credential: kv.credential,
    });
    assert.equal(store.kind, 'keyvault');
  });

  void test('defaults: 4 attempts in all, Retry-After waited up to 10 s', async () => {
    const logs: string[] = [];
    const store = createKeyVaultStore({
      vaultUrl: kv.vaultUrl,
      credential: kv.credential,
      secretClientOptions: kv.secretClientOptions(),
      logger: createLogger({}, (_l, line) => logs.push(line)),
    });
    kv.failNext(10, { status: 503, retryAfterMs: 1 }, ['get']);
    const err = await caught(store.get('defaults'));
    assert.equal(err.detail, 'get failed after 4 attempt(s): HTTP 503 ServiceUnavailable');
    assert.equal(kv.counters().get, 4);
    kv.clearFaults();
    kv.resetCounters();
    kv.failNext(1, { status: 503, retryAfterMs: 10_001 }, ['get']);
    assert.equal((await caught(store.get('defaults'))).retryAfterSeconds, 11);
    assert.equal(kv.counters().get, 1);
  });

  void test("the caller's pipeline policies run alongside the store's pacer", async () => {
    const { urls, options } = recorder();
    let clockReads = 0;
    const { store } = storeFor({
      secretClientOptions: options,
      pacer: { clock: { now: () => (clockReads++, Date.now()), sleep: () => Promise.resolve() } },
    });
    await store.get('policies');
    assert.ok(urls.length >= 1);
    assert.ok(clockReads >= 1);
  });

  void test('a 429 pauses the pacer for the retry base delay, doubling up to the retry max delay', async () => {
    let t = Date.now();
    const sleeps: number[] = [];
    const { store } = storeFor({
      retry: { baseDelayMs: 7, maxDelayMs: 9, maxAttempts: 5 },
      pacer: {
        clock: {
          now: () => t,
          sleep: (ms) => {
            sleeps.push(ms);
            t += ms;
            return Promise.resolve();
          },
        },
      },
    });
    kv.failNext(3, { status: 429, retryAfter: false }, ['get']);
    assert.equal(await store.get('paced'), undefined);
    assert.deepEqual(sleeps, [7, 9, 9]);
  });

  void test('list requests ask for 25 items per page (the most Key Vault sends)', async () => {
    const { urls, options } = recorder();
    const { store } = storeFor({ secretClientOptions: options });
    await store.put(sampleRecord('paged'));
    await store.listMetadata();
    for await (const page of store.listMetadataPages()) assert.equal(page.length, 1);
    await store.history('paged');
    const lists = urls.filter((u) => u.pathname === '/secrets' || u.pathname.endsWith('/versions'));
    assert.equal(lists.length, 3);
    for (const u of lists) assert.equal(u.searchParams.get('maxresults'), '25', u.href);
  });
});

void describe('Key Vault store: timeouts are per page and leave no timer behind', () => {
  void test('a listing slower in total than timeoutMs but quick per page is not restarted', async () => {
    // Two pages of 150 ms: more than the 280 ms timeout in total, well under it each.
    const { store } = storeFor({ timeoutMs: 280 });
    for (let i = 0; i < 30; i++) await store.put(sampleRecord(`p${String(i).padStart(2, '0')}`));
    for (let i = 0; i < 30; i++) await store.put(sampleRecord('p00', { revision: i + 2 }));
    kv.setLatency({ fixedMs: 150 });
    kv.resetCounters();
    assert.equal((await store.listMetadata()).length, 30);
    assert.equal((await store.history('p00')).length, 31);
    const pages: number[] = [];
    for await (const page of store.listMetadataPages()) {
      pages.push(page.length);
      // A consumer slower than the timeout (the sweep refreshing a page) does not abort the next page.
      await new Promise((r) => setTimeout(r, 300));
    }
    kv.setLatency({});
    assert.deepEqual(pages, [25, 5]);
    const c = kv.counters();
    assert.deepEqual([c.list, c.listVersions], [4, 2], 'two pages each, no restart');
  });

  void test('a second page slower than timeoutMs restarts the listing (listMetadata and listMetadataPages)', async () => {
    for (let i = 0; i < 30; i++) await storeFor().store.put(sampleRecord(`s${String(i).padStart(2, '0')}`));
    kv.resetCounters();
    const all = await storeFor({
      timeoutMs: 150,
      secretClientOptions: faultAfterFirstPage({ delayMs: 700 }),
    }).store.listMetadata();
    assert.equal(all.length, 30);
    assert.equal(kv.counters().list, 4, 'page 1, slow page 2 abandoned, then both again');

    kv.resetCounters();
    const paged = storeFor({
      timeoutMs: 150,
      secretClientOptions: faultAfterFirstPage({ delayMs: 700 }),
    }).store;
    const seenConnections: string[] = [];
    for await (const page of paged.listMetadataPages())
      seenConnections.push(...page.map((m) => m.connection));
    assert.equal(seenConnections.length, 30);
    assert.equal(kv.counters().list, 4);
  });

  void test('a listing keeps failing transiently: bounded attempts, then store_unavailable', async () => {
    const { store } = storeFor({ retry: { maxAttempts: 3 } });
    kv.failNext(100, { status: 503 }, ['list']);
    const iterate = async () => {
      for await (const page of store.listMetadataPages())
        assert.fail(`unexpected page ${JSON.stringify(page)}`);
    };
    const err = await caught(iterate());
    assert.equal(err.detail, 'list failed after 3 attempt(s): HTTP 503 ServiceUnavailable');
    assert.equal(kv.counters().list, 3);
  });

  void test('no timer is left running once a call has finished', async () => {
    const { store } = storeFor({ timeoutMs: 60_000 });
    await store.put(sampleRecord('timers'));
    await store.listMetadata();
    const before = activeTimers();
    await store.listMetadata();
    for await (const page of store.listMetadataPages()) assert.equal(page.length, 1);
    await store.history('timers');
    assert.equal(activeTimers(), before);
  });
});

void describe('Key Vault store: delete and recover details', () => {
  void test('invalid names never reach the vault', async () => {
    const { store } = storeFor();
    await rejectsWith(store.get('Bad Name'), 'invalid_request');
    await rejectsWith(store.delete('Bad Name'), 'invalid_request');
    await rejectsWith(store.history('Bad Name'), 'invalid_request');
    assert.equal(kv.counters().total, 0);
  });

  void test('an instant delete is confirmed by the DELETE itself: no extra read', async () => {
    const { store } = storeFor();
    await store.put(sampleRecord('instant'));
    kv.resetCounters();
    assert.equal(await store.delete('instant'), true);
    // The SDK's own first poll (inside beginDeleteSecret) already saw it deleted.
    assert.deepEqual([kv.counters().delete, kv.counters().getDeleted], [1, 1]);
  });

  void test('a DELETE slower than timeoutMs is abandoned and retried', async () => {
    kv.setTiming({ deleteMs: 100 });
    const { store } = storeFor({ timeoutMs: 150, deleteSettleMs: 5000 });
    await store.put(sampleRecord('slowdel'));
    kv.failNext(1, { delayMs: 700 }, ['delete']);
    assert.equal(await store.delete('slowdel'), true);
    assert.equal(kv.counters().delete, 2);
  });

  void test('a refused DELETE, first or retried, and a refused wait are store_unavailable', async () => {
    const { store } = storeFor({ deleteSettleMs: 200 });
    await store.put(sampleRecord('refused'));
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['delete']);
    assert.equal((await caught(store.delete('refused'))).detail, 'delete: HTTP 403 Forbidden');
    kv.failNext(1, { status: 503 }, ['delete']);
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['delete']);
    assert.equal((await caught(store.delete('refused'))).detail, 'delete: HTTP 403 Forbidden');
    await store.put(sampleRecord('refused'));
    // The SDK's poll inside the DELETE still sees 404; the store's own wait is then refused.
    kv.failNext(1, { status: 404, code: 'SecretNotFound' }, ['getDeleted']);
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['getDeleted']);
    assert.equal((await caught(store.delete('refused'))).detail, 'delete: HTTP 403 Forbidden');
  });

  void test('the wait for the soft delete reads with the attempt timeout and stops at deleteSettleMs', async () => {
    const { store } = storeFor({ timeoutMs: 150, deleteSettleMs: 5000, pollIntervalMs: 20 });
    await store.put(sampleRecord('slowread'));
    kv.resetCounters();
    kv.failNext(1, { status: 404, code: 'SecretNotFound' }, ['getDeleted']);
    kv.failNext(1, { delayMs: 700 }, ['getDeleted']);
    assert.equal(await store.delete('slowread'), true);
    assert.equal(
      kv.counters().getDeleted,
      3,
      "the SDK's poll, the slow read abandoned, the read that found it",
    );

    kv.setTiming({ deleteMs: 5000 });
    const { store: short, logs } = storeFor({ deleteSettleMs: 200, pollIntervalMs: 150 });
    await short.put(sampleRecord('window'));
    kv.resetCounters();
    assert.equal(await short.delete('window'), true);
    // The SDK's poll, then reads at ~0 and ~150 ms; one at ~300 ms would be past the 200 ms window.
    const reads = kv.counters().getDeleted;
    assert.ok(reads >= 2 && reads <= 3, `${reads} reads`);
    assert.equal(logs.filter((l) => l.startsWith('store.delete_unsettled')).length, 1);
  });

  void test('no unsettled warning when a lost DELETE turns out never to have deleted anything', async () => {
    const { store, logs } = storeFor({ deleteSettleMs: 40, pollIntervalMs: 10 });
    kv.failNext(1, { status: 503 }, ['delete']);
    assert.equal(await store.delete('ghost'), false);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('store.delete_unsettled')),
      [],
    );
  });

  void test('recovering polls at pollIntervalMs; a secret someone else recovered meanwhile is written over', async () => {
    kv.setTiming({ deleteMs: 0, recoverMs: 200 });
    const { store } = storeFor({ pollIntervalMs: 10 });
    await store.put(sampleRecord('rec'));
    await store.delete('rec');
    kv.resetCounters();
    await store.put(sampleRecord('rec', { revision: 2 }));
    assert.ok(kv.counters().get >= 5, `recover poller polled ${kv.counters().get} times in 200 ms`);
    assert.equal((await store.get('rec'))?.revision, 2);

    kv.setTiming({ deleteMs: 0 });
    await store.delete('rec');
    const other = raw();
    const racer: PipelinePolicy = {
      name: 'recover-first',
      sendRequest: async (request, next) => {
        if (request.method === 'POST' && request.url.includes('/recover')) {
          await (await other.beginRecoverDeletedSecret(secretNameOf('rec'))).pollUntilDone();
        }
        return next(request);
      },
    };
    const { store: late, logs } = storeFor({
      secretClientOptions: kv.secretClientOptions({
        additionalPolicies: [{ policy: racer, position: 'perCall' }],
      }),
    });
    await late.put(sampleRecord('rec', { revision: 3 }));
    assert.equal((await late.get('rec'))?.revision, 3);
    assert.ok(logs.includes('store.recover_deleted store=keyvault connection=rec'));
  });

  void test('a refused recovery fails the write with that refusal (not the conflict after it)', async () => {
    const { store } = storeFor();
    await store.put(sampleRecord('norecover'));
    await store.delete('norecover');
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['recover']);
    const err = await caught(store.put(sampleRecord('norecover', { revision: 2 })));
    assert.equal(err.detail, 'set: HTTP 403 Forbidden');
  });

  void test('a conn- secret without any tags is skipped with a warning', async () => {
    const { store, logs } = storeFor();
    await raw().setSecret('conn-untagged', 'x');
    assert.deepEqual(await store.listMetadata(), []);
    assert.equal(logs.filter((l) => l.startsWith('store.record_unreadable')).length, 1);
  });
});

void describe('Key Vault store: history details', () => {
  void test('versions with equal times are ordered by revision, newest first; untagged ones sort after', async () => {
    const { store } = storeFor();
    const client = raw();
    const name = secretNameOf('ties');
    for (const revision of [2, 5, 1, 4, 3])
      await client.setSecret(name, String(revision), {
        tags: { ...toTags(sampleRecord('ties', { revision })), writtenAt: '7' },
      });
    await client.setSecret(name, 'foreign', { tags: { writtenAt: '7', foreign: 'x' } });
    await client.setSecret(name, 'foreign2', { tags: { writtenAt: '7' } });
    await client.setSecret(name, 'bare');
    const history = await store.history('ties');
    assert.deepEqual(
      history.slice(1).map((h) => h.metadata?.revision),
      [5, 4, 3, 2, 1, undefined, undefined],
    );
    assert.equal(history[0]?.createdAt, (await client.getSecret(name)).properties.createdOn?.getTime());
    for (const h of history.slice(6)) assert.equal('metadata' in h, false);
  });

  void test('history: 404 from the version list is an empty history; other errors are store_unavailable', async () => {
    const { store } = storeFor();
    kv.failNext(1, { status: 404, code: 'SecretNotFound' }, ['listVersions']);
    assert.deepEqual(await store.history('missing'), []);
    kv.failNext(1, { status: 403, code: 'Forbidden' }, ['listVersions']);
    const err = await caught(store.history('missing'));
    assert.equal(err.detail, 'history: HTTP 403 Forbidden');
    assert.deepEqual(err.fields, { store: 'keyvault', connection: 'missing', httpStatus: 403 });
  });
});

void describe('Key Vault store: history without a creation time', () => {
  void test('a version listed without a creation time or writtenAt counts as time 0 (oldest)', async () => {
    const stripCreated: PipelinePolicy = {
      name: 'strip-created',
      sendRequest: async (request, next) => {
        const response = await next(request);
        if (new URL(request.url).pathname.endsWith('/versions') && response.bodyAsText) {
          const body = JSON.parse(response.bodyAsText) as { value?: { attributes?: { created?: number } }[] };
          for (const item of body.value ?? []) delete item.attributes?.created;
          response.bodyAsText = JSON.stringify(body);
        }
        return response;
      },
    };
    const { store } = storeFor({
      secretClientOptions: kv.secretClientOptions({
        additionalPolicies: [{ policy: stripCreated, position: 'perCall' }],
      }),
    });
    await store.put(sampleRecord('nocreated'));
    await raw().setSecret(secretNameOf('nocreated'), 'hand-made');
    const history = await store.history('nocreated');
    assert.deepEqual(
      history.map((h) => [h.createdAt > 0, h.metadata?.revision]),
      [
        [true, 1],
        [false, undefined],
      ],
    );
    assert.equal(history[1]?.createdAt, 0);
  });
});

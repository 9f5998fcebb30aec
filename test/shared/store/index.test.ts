import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isBrokerError } from '../../../shared/errors.ts';
import { createLogger } from '../../../shared/log.ts';
import {
  createTokenStore,
  staticTokenCredential,
  type StoreConfig,
  type TokenStoreOptions,
} from '../../../shared/store/index.ts';
import { startKeyVaultDouble, type KeyVaultDouble } from '../../support/keyVaultDouble.ts';
import { rejectsWith, sampleRecord } from './contract.ts';

let kv: KeyVaultDouble;
let dataDir: string;
before(async () => {
  kv = await startKeyVaultDouble({ throttle: false, timing: { deleteMs: 0 } });
  dataDir = await mkdtemp(join(tmpdir(), 'store-factory-'));
});
after(async () => {
  await kv.close();
  await rm(dataDir, { recursive: true, force: true });
});
beforeEach(() => {
  kv.reset();
  kv.setTiming({ deleteMs: 0 });
});

function capture() {
  const logs: string[] = [];
  return { logs, logger: createLogger({}, (_level, line) => logs.push(line)) };
}

/** The double as another process reaches it: test-only settings plus the CA, nothing else. */
function vault(extra: Partial<Extract<StoreConfig, { kind: 'keyvault' }>> = {}): StoreConfig {
  return {
    kind: 'keyvault',
    vaultUrl: kv.vaultUrl,
    disableChallengeResourceVerification: true,
    staticBearerToken: kv.token,
    ...extra,
  };
}

function viaFactory(
  opts: TokenStoreOptions = {},
  extra: Partial<Extract<StoreConfig, { kind: 'keyvault' }>> = {},
) {
  return createTokenStore(vault(extra), {
    secretClientOptions: { tlsOptions: { ca: kv.ca } },
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    logger: capture().logger,
    ...opts,
  });
}

void describe('token store factory', () => {
  void test('kind file builds the file store on dataDir, logging to the given logger', async () => {
    const { logs, logger } = capture();
    const store = createTokenStore({ kind: 'file', dataDir }, { logger });
    assert.equal(store.kind, 'file');
    const record = sampleRecord('on-disk');
    await store.put(record);
    assert.deepEqual(await createTokenStore({ kind: 'file', dataDir }).get('on-disk'), record);
    await mkdir(join(dataDir, 'connections'), { recursive: true });
    await writeFile(join(dataDir, 'connections', 'broken.json.enc'), 'not sealed');
    assert.deepEqual(
      (await store.listMetadata()).map((m) => m.connection),
      ['on-disk'],
    );
    assert.ok(logs.some((l) => l.startsWith('store.record_unreadable') && l.includes('connection=broken')));
  });

  void test('kind keyvault builds the Key Vault store', () => {
    const store = createTokenStore({ kind: 'keyvault', vaultUrl: 'https://contoso.vault.azure.net' });
    assert.equal(store.kind, 'keyvault');
  });

  void test('each test-only setting alone is refused for a non-loopback vault, naming the settings', () => {
    for (const extra of [
      { disableChallengeResourceVerification: true },
      { staticBearerToken: 'x' },
      { staticBearerToken: '' },
    ]) {
      assert.throws(
        () => createTokenStore({ kind: 'keyvault', vaultUrl: 'https://contoso.vault.azure.net', ...extra }),
        (err: unknown) => {
          assert.ok(isBrokerError(err));
          assert.equal(err.code, 'config_error');
          assert.match(err.detail ?? '', /KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION/);
          assert.match(err.detail ?? '', /KEY_VAULT_TEST_BEARER_TOKEN/);
          return true;
        },
        JSON.stringify(extra),
      );
    }
    // false is the same as not set
    const plain = createTokenStore({
      kind: 'keyvault',
      vaultUrl: 'https://contoso.vault.azure.net',
      disableChallengeResourceVerification: false,
    });
    assert.equal(plain.kind, 'keyvault');
  });

  void test('test-only settings are accepted for 127.0.0.1, localhost and [::1]', () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const store = createTokenStore({
        kind: 'keyvault',
        vaultUrl: `https://${host}:8443`,
        disableChallengeResourceVerification: true,
        staticBearerToken: 't',
      });
      assert.equal(store.kind, 'keyvault', host);
    }
  });

  void test('the static bearer token is what reaches the vault; a given credential takes precedence', async () => {
    const store = viaFactory();
    const record = sampleRecord('bearer');
    await store.put(record);
    assert.deepEqual(await store.get('bearer'), record);
    assert.deepEqual(kv.tokenRequests(), [], 'the double credential was not used');

    const withCredential = viaFactory({ credential: kv.credential }, { staticBearerToken: 'wrong-token' });
    assert.deepEqual(await withCredential.get('bearer'), record);
    assert.equal(kv.tokenRequests().length, 1);

    const wrong = viaFactory({ retry: { maxAttempts: 1 } }, { staticBearerToken: 'wrong-token' });
    await rejectsWith(wrong.get('bearer'), 'store_unavailable');
  });

  void test('a static credential answers its token, valid for about an hour from each call', async () => {
    const before = Date.now();
    const token = await staticTokenCredential('abc').getToken('https://vault.azure.net/.default');
    assert.equal(token?.token, 'abc');
    assert.ok(token.expiresOnTimestamp >= before + 3600_000);
    assert.ok(token.expiresOnTimestamp <= Date.now() + 3600_000);
  });

  void test('retry and timeout options reach the store', async () => {
    const store = viaFactory({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 }, timeoutMs: 150 });
    kv.failNext(5, { status: 503 }, ['get']);
    await rejectsWith(store.get('opts'), 'store_unavailable');
    assert.equal(kv.counters().get, 2);
    kv.clearFaults();
    kv.failNext(1, { delayMs: 700 }, ['get']);
    assert.equal(await store.get('opts'), undefined);
    assert.equal(kv.counters().get, 4, 'the slow answer was abandoned after timeoutMs');
  });

  void test('delete settle, poll interval, logger and pacer options reach the store', async () => {
    const { logs, logger } = capture();
    let clockReads = 0;
    const store = viaFactory({
      deleteSettleMs: 60,
      pollIntervalMs: 10,
      logger,
      pacer: {
        clock: {
          now: () => (clockReads++, Date.now()),
          sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        },
      },
    });
    await store.put(sampleRecord('settle'));
    assert.ok(clockReads > 0, 'the pacer ran on the given clock');
    kv.setTiming({ deleteMs: 5000 });
    assert.equal(await store.delete('settle'), true);
    assert.ok(kv.counters().getDeleted >= 3, 'polled every 10 ms within the 60 ms window');
    assert.ok(
      logs.some((l) => l.startsWith('store.delete_unsettled') && l.includes('durationMs=60')),
      logs.join('\n'),
    );
  });
});

void describe('token store factory: managed identity', () => {
  void test('with a client id and no credential the vault is reached with that user-assigned identity', async () => {
    // App Service / Functions managed identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER, api-version
    // 2019-08-01: https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
    const asked: URLSearchParams[] = [];
    const endpoint = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      asked.push(url.searchParams);
      res.writeHead(req.headers['x-identity-header'] === 'h6-header' ? 200 : 401, {
        'content-type': 'application/json',
      });
      res.end(
        JSON.stringify({
          access_token: kv.token,
          expires_on: String(Math.floor(Date.now() / 1000) + 3600),
          resource: url.searchParams.get('resource'),
          token_type: 'Bearer',
          client_id: url.searchParams.get('client_id'),
        }),
      );
    });
    endpoint.listen(0, '127.0.0.1');
    await once(endpoint, 'listening');
    const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = 'h6-header';
    try {
      const store = createTokenStore(
        { kind: 'keyvault', vaultUrl: kv.vaultUrl, clientId: 'c1d2e3f4-0000-4000-8000-000000000001' },
        {
          secretClientOptions: kv.secretClientOptions(),
          logger: capture().logger,
          retry: { maxAttempts: 1 },
        },
      );
      assert.equal(await store.get('identity'), undefined);
    } finally {
      process.env.IDENTITY_ENDPOINT = saved.endpoint;
      process.env.IDENTITY_HEADER = saved.header;
      if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
      if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
      endpoint.close();
      endpoint.closeAllConnections();
    }
    assert.ok(asked.length >= 1);
    assert.equal(asked[0]?.get('client_id'), 'c1d2e3f4-0000-4000-8000-000000000001');
    assert.equal(asked[0]?.get('resource'), 'https://vault.azure.net');
  });
});

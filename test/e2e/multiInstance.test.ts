import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createTokenStore } from '../../shared/store/index.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { type DemoIdp, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { type AzuriteHandle, startAzurite } from '../support/azurite.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from '../support/brokerHost.ts';
import { type KeyVaultDouble, startKeyVaultDouble } from '../support/keyVaultDouble.ts';

// Two dev-host processes = two Functions instances of one deployment: same Key Vault (the HTTPS double, via
// the real SDK), same storage account (Azurite, blob leases), same BROKER_KEYS, one public hostname.
let kv: KeyVaultDouble;
let azurite: AzuriteHandle;
let idp: DemoIdp;
let store: TokenStore;
let a: BrokerHost;
let b: BrokerHost;
let tmp: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'multi-'));
  kv = await startKeyVaultDouble();
  azurite = await startAzurite();
  const caFile = join(tmp, 'kv-ca.pem');
  await writeFile(caFile, kv.ca);
  const [portA, portB] = [await freePort(), await freePort()];
  const publicBaseUrl = `http://localhost:${portA}`;
  const clientSecret = randomBytes(24).toString('base64url');
  idp = await startDemoIdp({
    quiet: true,
    accessTokenTtlSeconds: 304,
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${publicBaseUrl}/api/callback`] }],
  });
  store = createTokenStore(
    { kind: 'keyvault', vaultUrl: kv.vaultUrl },
    { credential: kv.credential, secretClientOptions: kv.secretClientOptions() },
  );
  const env = {
    KEY_VAULT_URL: kv.vaultUrl,
    KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
    KEY_VAULT_TEST_BEARER_TOKEN: kv.token,
    NODE_EXTRA_CA_CERTS: caFile,
    AzureWebJobsStorage: azurite.connectionString,
  };
  const brokerKey = randomBytes(32);
  const shared = { sharedIdp: { idp, clientSecret }, env, store, publicBaseUrl, brokerKey };
  [a, b] = await Promise.all([
    startBrokerHost({ ...shared, port: portA }),
    startBrokerHost({ ...shared, port: portB }),
  ]);
});

after(async () => {
  await a?.assertNoSecretsInLogs();
  await b?.assertNoSecretsInLogs();
  await Promise.all([a?.close(), b?.close()]);
  await idp?.close();
  await azurite?.stop();
  await kv?.close();
  await rm(tmp, { recursive: true, force: true });
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

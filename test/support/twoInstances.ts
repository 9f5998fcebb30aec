/**
 * Two dev-host processes = two Functions instances of one deployment: same Key Vault (the HTTPS double, via the
 * real SDK), same storage account (Azurite, blob leases), same BROKER_KEYS, one public hostname, one demo IdP.
 * Used by the multi-instance test and the stampede benchmark.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenStore } from '../../shared/store/index.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { type DemoIdp, type StartDemoIdpOptions, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { type AzuriteHandle, startAzurite } from './azurite.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from './brokerHost.ts';
import { type KeyVaultDouble, startKeyVaultDouble } from './keyVaultDouble.ts';

export interface TwoInstances {
  kv: KeyVaultDouble;
  azurite: AzuriteHandle;
  idp: DemoIdp;
  /** The shared Key Vault store, read directly (as an admin inspecting the vault would). */
  store: TokenStore;
  a: BrokerHost;
  b: BrokerHost;
  close(): Promise<void>;
}

export async function startTwoInstances(
  idpOptions: Partial<Omit<StartDemoIdpOptions, 'clients'>> = {},
): Promise<TwoInstances> {
  const tmp = await mkdtemp(join(tmpdir(), 'two-instances-'));
  const kv = await startKeyVaultDouble();
  const azurite = await startAzurite();
  const caFile = join(tmp, 'kv-ca.pem');
  await writeFile(caFile, kv.ca);
  const [portA, portB] = [await freePort(), await freePort()];
  const publicBaseUrl = `http://localhost:${portA}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    ...idpOptions,
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${publicBaseUrl}/api/callback`] }],
  });
  const store = createTokenStore(
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
  const shared = { sharedIdp: { idp, clientSecret }, env, store, publicBaseUrl, brokerKey: randomBytes(32) };
  const [a, b] = await Promise.all([
    startBrokerHost({ ...shared, port: portA }),
    startBrokerHost({ ...shared, port: portB }),
  ]);
  return {
    kv,
    azurite,
    idp,
    store,
    a,
    b,
    async close() {
      await Promise.all([a.close(), b.close()]);
      await idp.close();
      await azurite.stop();
      await kv.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

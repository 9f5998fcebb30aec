/**
 * One deployment as Flex Consumption runs it: two dev-host processes in instance group `http`
 * (FUNCTIONS_TARGET_GROUP=http: they serve every HTTP function and fire no timer) and one in group
 * `function:refresh` (it runs the sweep and serves no HTTP route), all sharing one Key Vault (the HTTPS double,
 * via the real SDK), one storage account (Azurite, blob leases), one BROKER_KEYS, one public hostname and one demo
 * IdP. Used by the multi-instance tests and the stampede benchmark.
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
  /** The two instances of group `http`. */
  a: BrokerHost;
  b: BrokerHost;
  /** The instance of group `function:refresh` (the sweep), when started. */
  timer: BrokerHost | undefined;
  /** Runs the sweep once on the timer instance and resolves when it finished (the host's admin API). */
  runSweep(): Promise<void>;
  close(): Promise<void>;
}

export interface InstancesOptions {
  /** Settings for every instance (win over the defaults). */
  env?: Record<string, string>;
  /** Extra settings for the timer instance only (e.g. a skewed test clock). */
  timerEnv?: Record<string, string>;
  /** Start the `function:refresh` instance (default true). */
  withTimer?: boolean;
}

export async function startTwoInstances(
  idpOptions: Partial<Omit<StartDemoIdpOptions, 'clients'>> = {},
  options: InstancesOptions = {},
): Promise<TwoInstances> {
  const tmp = await mkdtemp(join(tmpdir(), 'two-instances-'));
  const kv = await startKeyVaultDouble();
  const azurite = await startAzurite();
  const caFile = join(tmp, 'kv-ca.pem');
  await writeFile(caFile, kv.ca);
  const [portA, portB, portTimer] = [await freePort(), await freePort(), await freePort()];
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
    ...options.env,
  };
  const shared = { sharedIdp: { idp, clientSecret }, store, publicBaseUrl, brokerKey: randomBytes(32) };
  const httpEnv = { ...env, FUNCTIONS_TARGET_GROUP: 'http' };
  const started = await Promise.allSettled([
    startBrokerHost({ ...shared, env: httpEnv, port: portA }),
    startBrokerHost({ ...shared, env: httpEnv, port: portB }),
    options.withTimer === false
      ? undefined
      : startBrokerHost({
          ...shared,
          port: portTimer,
          env: {
            ...env,
            FUNCTIONS_TARGET_GROUP: 'function:refresh',
            // the listener runs as on Flex, on a schedule that never comes during a test: tests run the sweep
            // through the admin API and wait for it
            DEVHOST_TIMERS: 'on',
            BROKER_REFRESH_SCHEDULE: '0 0 0 1 1 *',
            ...options.timerEnv,
          },
        }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // close what did start, so a failed start-up leaves no process or server behind
    for (const r of started) if (r.status === 'fulfilled') await r.value?.close();
    await idp.close();
    await azurite.stop();
    await kv.close();
    await rm(tmp, { recursive: true, force: true });
    throw failed.reason;
  }
  const [a, b, timer] = started.map((r) => (r as PromiseFulfilledResult<BrokerHost | undefined>).value) as [
    BrokerHost,
    BrokerHost,
    BrokerHost | undefined,
  ];
  return {
    kv,
    azurite,
    idp,
    store,
    a,
    b,
    timer,
    async runSweep() {
      if (!timer) throw new Error('started without the timer instance');
      const res = await fetch(`${timer.baseUrl}/admin/functions/refresh`, {
        method: 'POST',
        headers: {
          'x-functions-key': timer.functionKey,
          'x-devhost-wait': 'true',
          'content-type': 'application/json',
        },
        body: '{}',
      });
      if (res.status !== 202) {
        const tail = timer.host.logs().split('\n').slice(-15).join('\n');
        throw new Error(`sweep: ${res.status}\n${tail}`);
      }
    },
    async close() {
      await Promise.all([a.close(), b.close(), timer?.close()]);
      await idp.close();
      await azurite.stop();
      await kv.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker } from '../../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { BrokerError } from '../../shared/errors.ts';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createFileStore } from '../../shared/store/fileStore.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { startDemoIdp } from '../../tools/demo-idp/server.ts';
import { sign } from '../support/entraTokens.ts';
import {
  MSA_TENANT,
  type RogueProvider,
  startRogueProvider,
  tokenResponse,
} from '../support/rogueProvider.ts';

// Microsoft's issuers as its discovery publishes them (https://learn.microsoft.com/en-us/entra/identity-platform/
// access-tokens#validate-the-issuer): the `{tenantid}` template only for common/organizations, `consumers` → the
// MSA tenant's concrete issuer, each key's own `issuer` checked, and an authority alias host that serves the same
// documents works because the issuer is read from them.
const CLIENT = 'ms-issuers-client';
const SECRET = randomBytes(24).toString('base64url');
const OTHER_TENANT = '33333333-cccc-4ccc-8ccc-333333333333';

let rogue: RogueProvider;
let dir: string;
let store: TokenStore;
const transport = createTransport({ timeoutMs: 3000 });

function brokerFor(tenant: string, authorityHost: string, clientId = CLIENT, secret = SECRET): Broker {
  const config = parseConfig({
    MICROSOFT_CLIENT_ID: clientId,
    MICROSOFT_CLIENT_SECRET: secret,
    MICROSOFT_TENANT: tenant,
    MICROSOFT_AUTHORITY_HOST: authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: 'https://broker.test',
  });
  const providerConfig = config.providers.microsoft;
  assert.ok(providerConfig);
  const key = randomBytes(32);
  return new Broker({
    store,
    lock: createMemoryLock(),
    providers: new Map([
      [
        'microsoft',
        createProviderClient(providerConfig, {
          fetch: transport.fetch,
          redirectUri: config.redirectUri,
          allowInsecureHttp: true,
          timeoutMs: 3000,
        }),
      ],
    ]),
    keyring: new Keyring([{ kid: keyIdOf(key), key }]),
    log: createLogger({}, () => {}),
    publicBaseUrl: 'https://broker.test',
    linkTtlSeconds: 900,
    policy: { marginMs: 300_000, keepAliveMs: 7 * 24 * 3600_000 },
    sweepConcurrency: 2,
  });
}

/** One sign-in at the rogue provider answered with an id_token for `tid`; resolves to 'connected' or the code. */
async function signIn(broker: Broker, tid: string): Promise<string> {
  const name = `c-${randomUUID().slice(0, 8)}`;
  await broker.upsertConnection(name, {
    provider: 'microsoft',
    scopes: ['https://graph.microsoft.com/Mail.Send'],
  });
  const { url } = await broker.createLink(name);
  const start = await broker.beginConnect(name, new URL(url).searchParams.get('link') ?? '');
  const authorize = new URL(start.redirectUrl);
  const nonce = authorize.searchParams.get('nonce') ?? '';
  const now = Math.floor(Date.now() / 1000);
  const idToken = await sign(
    {
      iss: `${rogue.origin}/${tid}/v2.0`,
      aud: CLIENT,
      sub: randomUUID(),
      tid,
      nonce,
      iat: now,
      nbf: now,
      exp: now + 3600,
      ver: '2.0',
    },
    rogue.key,
  );
  rogue.answerWith(() => ({ body: tokenResponse(idToken) }));
  const params = new URLSearchParams({
    code: `code-${randomUUID()}`,
    state: authorize.searchParams.get('state') ?? '',
  });
  try {
    await broker.completeCallback(params, start.cookie.value);
    return 'connected';
  } catch (err) {
    if (err instanceof BrokerError) return err.code;
    throw err;
  }
}

before(async () => {
  rogue = await startRogueProvider();
  dir = await mkdtemp(join(tmpdir(), 'ms-issuers-'));
  store = createFileStore({ dataDir: dir });
});

after(async () => {
  await rogue.close();
  await transport.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Microsoft issuers from discovery', () => {
  it('consumers: only the personal-account tenant is accepted (no template for consumers)', async () => {
    const broker = brokerFor('consumers', rogue.origin);
    assert.equal(await signIn(broker, MSA_TENANT), 'connected');
    assert.notEqual(await signIn(broker, OTHER_TENANT), 'connected');
  });

  it('common: the template accepts any tenant, filled from the token’s tid', async () => {
    const broker = brokerFor('common', rogue.origin);
    assert.equal(await signIn(broker, OTHER_TENANT), 'connected');
    assert.equal(await signIn(broker, MSA_TENANT), 'connected');
  });

  it('the issuer Microsoft lists on a signing key is checked', async () => {
    const broker = brokerFor('common', rogue.origin);
    try {
      rogue.keyIssuer = `${rogue.origin}/${MSA_TENANT}/v2.0`; // this key signs for the MSA tenant only
      assert.equal(await signIn(broker, MSA_TENANT), 'connected');
      assert.notEqual(await signIn(broker, OTHER_TENANT), 'connected');
      rogue.keyIssuer = `${rogue.origin}/{tenantid}/v2.0`; // a templated key signs for any tenant
      // A new broker: the first one holds the key set it fetched (cached like Microsoft's, up to 24 h).
      assert.equal(await signIn(brokerFor('common', rogue.origin), OTHER_TENANT), 'connected');
    } finally {
      rogue.keyIssuer = undefined;
    }
  });

  it('a tenant Microsoft does not know is a configuration mistake naming MICROSOFT_TENANT, not a session error', async () => {
    const idp = await startDemoIdp({
      quiet: true,
      clients: [{ clientId: 'c', clientSecret: SECRET, redirectUris: ['https://broker.test/api/callback'] }],
    });
    try {
      const broker = brokerFor('nosuch.example', idp.origin, 'c', SECRET);
      await broker.upsertConnection('unknown-tenant', { provider: 'microsoft', scopes: [] });
      const { url } = await broker.createLink('unknown-tenant');
      await assert.rejects(
        broker.beginConnect('unknown-tenant', new URL(url).searchParams.get('link') ?? ''),
        (e) => {
          assert.ok(e instanceof BrokerError);
          assert.equal(e.code, 'provider_misconfigured');
          assert.match(e.message, /MICROSOFT_TENANT/);
          return true;
        },
      );
    } finally {
      await idp.close();
    }
  });

  it('an authority alias host works: the issuer comes from the document, not from the host configured', async () => {
    const secret = randomBytes(24).toString('base64url');
    const idp = await startDemoIdp({
      quiet: true,
      clients: [
        {
          clientId: 'alias-client',
          clientSecret: secret,
          redirectUris: ['https://broker.test/api/callback'],
        },
      ],
    });
    try {
      // The demo IdP's issuer names 127.0.0.1; the broker is configured with its other name, localhost.
      const alias = idp.origin.replace('127.0.0.1', 'localhost');
      const broker = brokerFor('common', alias, 'alias-client', secret);
      await broker.upsertConnection('alias', { provider: 'microsoft', scopes: [] });
      const { url } = await broker.createLink('alias');
      const start = await broker.beginConnect('alias', new URL(url).searchParams.get('link') ?? '');
      assert.equal(new URL(start.redirectUrl).hostname, 'localhost');
      const drive = await driveAuthorization(start.redirectUrl, {
        username: 'adele@demo.example',
        password: 'demo',
      });
      await broker.completeCallback(drive.params, start.cookie.value);
      const record = await store.get('alias');
      assert.equal(record?.identity?.issuer, idp.issuer);
    } finally {
      await idp.close();
    }
  });
});

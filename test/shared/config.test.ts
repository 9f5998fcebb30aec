import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../shared/config.ts';

const key = () => randomBytes(32).toString('base64url');
const TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe('parseConfig', () => {
  it('gives the embedded defaults with no environment', () => {
    const c = parseConfig({});
    assert.equal(c.store.kind, 'file');
    assert.equal(c.lock.kind, 'memory');
    assert.equal(c.redirectUri, 'http://localhost:7071/api/callback');
    assert.equal(c.refreshMarginMs, 300_000);
    assert.equal(c.keepAliveMs, 7 * 24 * 3600_000);
    assert.deepEqual(Object.keys(c.providers), []);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.store) && Object.isFrozen(c.providers));
  });

  it('builds the Microsoft provider with a secret credential and national-cloud authority', () => {
    const c = parseConfig({
      MICROSOFT_CLIENT_ID: 'app',
      MICROSOFT_CLIENT_SECRET: 's3cr3t-value',
      MICROSOFT_TENANT: 'contoso.onmicrosoft.com',
      MICROSOFT_AUTHORITY_HOST: 'https://login.microsoftonline.us/',
    });
    const p = c.providers.microsoft;
    assert.equal(p?.kind, 'microsoft');
    assert.equal(p?.kind === 'microsoft' && p.authorityHost, 'https://login.microsoftonline.us');
    assert.equal(p?.credential.kind, 'secret');
  });

  it('uses the federated managed identity audience of the cloud', () => {
    const c = parseConfig({
      MICROSOFT_CLIENT_ID: 'app',
      MICROSOFT_CREDENTIAL: 'managed_identity',
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi-client',
      MICROSOFT_AUTHORITY_HOST: 'https://login.partner.microsoftonline.cn',
    });
    const cred = c.providers.microsoft?.credential;
    assert.deepEqual(cred, {
      kind: 'managed_identity',
      clientId: 'mi-client',
      audience: 'api://AzureADTokenExchangeChina',
    });
  });

  it('selects Key Vault and the blob lease when KEY_VAULT_URL is set, and then requires BROKER_KEYS', () => {
    const c = parseConfig({
      KEY_VAULT_URL: 'https://kv.vault.azure.net/',
      BROKER_KEYS: `${key()},${key()}`,
      AzureWebJobsStorage__blobServiceUri: 'https://st.blob.core.windows.net',
      AzureWebJobsStorage__clientId: 'mi',
    });
    assert.equal(c.store.kind, 'keyvault');
    assert.equal(c.lock.kind, 'blob');
    assert.equal(c.keys?.length, 2);
    assert.throws(
      () =>
        parseConfig({
          KEY_VAULT_URL: 'https://kv.vault.azure.net/',
          AzureWebJobsStorage__blobServiceUri: 'https://st.blob.core.windows.net',
        }),
      (err: unknown) => err instanceof ConfigError && err.variables.includes('BROKER_KEYS'),
    );
  });

  it('names the bad variable and never echoes its value', () => {
    const secretish = 'not-a-number-SECRET-12345';
    assert.throws(
      () => parseConfig({ BROKER_REFRESH_MARGIN_SECONDS: secretish }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('BROKER_REFRESH_MARGIN_SECONDS') &&
        !err.message.includes(secretish),
    );
    const weakKey = 'c2hvcnQ';
    assert.throws(
      () => parseConfig({ BROKER_KEYS: weakKey }),
      (err: unknown) =>
        err instanceof ConfigError && err.variables.includes('BROKER_KEYS') && !err.message.includes(weakKey),
    );
  });

  it('rejects plain http outside localhost unless the insecure flag is set', () => {
    assert.throws(() => parseConfig({ BROKER_PUBLIC_BASE_URL: 'http://broker.example.com' }), ConfigError);
    assert.throws(
      () => parseConfig({ MICROSOFT_CLIENT_ID: 'a', MICROSOFT_AUTHORITY_HOST: 'http://127.0.0.1:9' }),
      ConfigError,
    );
    const ok = parseConfig({
      MICROSOFT_CLIENT_ID: 'a',
      MICROSOFT_AUTHORITY_HOST: 'http://127.0.0.1:9',
      BROKER_ALLOW_INSECURE_HTTP: 'true',
    });
    assert.equal(ok.allowInsecureHttp, true);
  });

  it('parses generic providers whose secret lives in a named variable', () => {
    const c = parseConfig({
      BROKER_PROVIDERS: JSON.stringify({
        acme: {
          kind: 'oauth2',
          authorizationUrl: 'https://id.acme.test/authorize',
          tokenUrl: 'https://id.acme.test/token',
          clientId: 'x',
          clientSecretSetting: 'ACME_SECRET',
          clientAuthMethod: 'client_secret_basic',
        },
      }),
      ACME_SECRET: 'shh',
    });
    assert.deepEqual(c.providers.acme?.credential, {
      kind: 'secret',
      secret: 'shh',
      method: 'client_secret_basic',
    });
    assert.throws(
      () => parseConfig({ BROKER_PROVIDERS: JSON.stringify({ acme: { kind: 'oauth2', bogus: 1 } }) }),
      (err: unknown) => err instanceof ConfigError && err.variables.includes('BROKER_PROVIDERS'),
    );
  });

  it('treats empty strings as unset (Functions app settings cannot be removed easily)', () => {
    const c = parseConfig({ KEY_VAULT_URL: '', MICROSOFT_CLIENT_ID: '' });
    assert.equal(c.store.kind, 'file');
    assert.equal(c.providers.microsoft, undefined);
  });

  it('requires audience and tenant for entra caller auth and accepts v1 and v2 issuers', () => {
    assert.throws(
      () => parseConfig({ BROKER_AUTH_MODE: 'entra' }),
      (e: unknown) => e instanceof ConfigError && e.variables.includes('BROKER_AUTH_AUDIENCE'),
    );
    const c = parseConfig({
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'api://broker',
      BROKER_AUTH_TENANT_ID: TID,
    });
    assert.deepEqual(c.auth.issuers, [
      `https://login.microsoftonline.com/${TID}/v2.0`,
      `https://sts.windows.net/${TID}/`,
    ]);
    assert.equal(c.auth.jwksUrl, `https://login.microsoftonline.com/${TID}/discovery/v2.0/keys`);
  });
});

describe('parseConfig and Azure app settings', () => {
  it('names an unresolved Key Vault reference instead of using its text as a secret', () => {
    assert.throws(
      () =>
        parseConfig({
          MICROSOFT_CLIENT_ID: 'a',
          MICROSOFT_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x/)',
        }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.variables.includes('MICROSOFT_CLIENT_SECRET') &&
        err.message.includes('Key Vault reference'),
    );
  });
  it('accepts MICROSOFT_CREDENTIAL=auto and derives the credential kind', () => {
    const c = parseConfig({
      MICROSOFT_CLIENT_ID: 'a',
      MICROSOFT_CREDENTIAL: 'auto',
      MICROSOFT_CLIENT_SECRET: 'x',
    });
    assert.equal(c.providers.microsoft?.credential.kind, 'secret');
  });
});

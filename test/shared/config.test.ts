import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, getConfig, keyIdOf, parseConfig, resetConfigForTests } from '../../shared/config.ts';

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

/** The ConfigError a parse throws (fails the test when it does not throw). */
function problemsOf(env: Record<string, string>): { variables: string[]; message: string } {
  try {
    parseConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return { variables: err.variables, message: err.message };
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig: settings in detail', () => {
  it('names every problem in one error, each with its reason', () => {
    const { variables, message } = problemsOf({
      BROKER_PUBLIC_BASE_URL: 'https://broker.example/base',
      MICROSOFT_CLIENT_ID: 'app',
      MICROSOFT_CREDENTIAL: 'secret',
    });
    assert.deepEqual(variables, ['BROKER_PUBLIC_BASE_URL', 'MICROSOFT_CLIENT_SECRET']);
    assert.equal(
      message,
      'Invalid configuration: BROKER_PUBLIC_BASE_URL (must be scheme://host[:port] only, without path, query, fragment or user); MICROSOFT_CLIENT_SECRET (required when MICROSOFT_CREDENTIAL=secret)',
    );
  });

  it('names every unresolved Key Vault reference at once, before anything else is checked', () => {
    const ref = '@Microsoft.KeyVault(VaultName=kv;SecretName=x)';
    const { variables } = problemsOf({
      BROKER_KEYS: ref,
      MICROSOFT_CLIENT_SECRET: ref,
      BROKER_LINK_TTL_SECONDS: 'not a number',
    });
    assert.deepEqual(variables, ['BROKER_KEYS', 'MICROSOFT_CLIENT_SECRET']);
  });

  it('names the setting a schema check failed on', () => {
    assert.deepEqual(problemsOf({ BROKER_LINK_TTL_SECONDS: '10' }).variables, ['BROKER_LINK_TTL_SECONDS']);
  });

  it('turns the numeric settings into the durations the broker uses', () => {
    const c = parseConfig({
      BROKER_LINK_TTL_SECONDS: '120',
      BROKER_REFRESH_MARGIN_SECONDS: '60',
      BROKER_KEEPALIVE_DAYS: '2',
      BROKER_IDLE_AFTER_HOURS: '3',
      BROKER_SWEEP_CONCURRENCY: '4',
      BROKER_CACHE_COHERENCE_SECONDS: '5',
      BROKER_HTTP_TIMEOUT_MS: '2000',
    });
    assert.deepEqual(
      [
        c.linkTtlSeconds,
        c.refreshMarginMs,
        c.keepAliveMs,
        c.idleAfterMs,
        c.sweepConcurrency,
        c.cacheCoherenceMs,
        c.httpTimeoutMs,
      ],
      [120, 60_000, 2 * 24 * 3600_000, 3 * 3600_000, 4, 5000, 2000],
    );
    assert.equal(c.publicBaseUrl, 'http://localhost:7071');
    assert.equal(c.allowInsecureHttp, false);
    assert.equal(c.keys, undefined);
    assert.deepEqual(c.store, { kind: 'file', dataDir: '.data' });
  });

  it('reads BROKER_KEYS as comma-separated base64url keys, each with its short id', () => {
    const a = randomBytes(32);
    const b = randomBytes(48);
    const c = parseConfig({ BROKER_KEYS: ` ${a.toString('base64url')} ,, ${b.toString('base64url')},` });
    assert.deepEqual(
      c.keys?.map((k) => k.kid),
      [keyIdOf(a), keyIdOf(b)],
    );
    assert.ok(c.keys?.[0]?.key.equals(a) && c.keys[1]?.key.equals(b));
    assert.equal(keyIdOf(a), createHash('sha256').update(a).digest('base64url').slice(0, 8));
  });

  it('refuses short keys, standard-base64 keys and an empty key list', () => {
    assert.deepEqual(problemsOf({ BROKER_KEYS: randomBytes(31).toString('base64url') }).variables, [
      'BROKER_KEYS',
    ]);
    // 32 bytes, but written with the standard alphabet (+ and /), which base64url decoding would silently skip.
    const standard = Buffer.alloc(33, 0xfb).toString('base64');
    assert.match(standard, /[+/]/);
    assert.deepEqual(problemsOf({ BROKER_KEYS: standard }).variables, ['BROKER_KEYS']);
    assert.equal(
      problemsOf({ BROKER_KEYS: ' , ' }).message,
      'Invalid configuration: BROKER_KEYS (must list at least one key)',
    );
    // One bad key fails the whole list (reported once).
    assert.deepEqual(problemsOf({ BROKER_KEYS: `${key()},short` }).variables, ['BROKER_KEYS']);
  });

  it('builds the Key Vault store with only the options that are set', () => {
    const base = { KEY_VAULT_URL: 'https://kv.vault.azure.net', BROKER_KEYS: key(), BROKER_LOCK: 'memory' };
    assert.deepEqual(parseConfig(base).store, { kind: 'keyvault', vaultUrl: 'https://kv.vault.azure.net' });
    assert.deepEqual(
      parseConfig({
        ...base,
        AZURE_CLIENT_ID: 'uami',
        KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
        KEY_VAULT_TEST_BEARER_TOKEN: 'bearer',
      }).store,
      {
        kind: 'keyvault',
        vaultUrl: 'https://kv.vault.azure.net',
        clientId: 'uami',
        disableChallengeResourceVerification: true,
        staticBearerToken: 'bearer',
      },
    );
    assert.equal(parseConfig(base).lock.kind, 'memory');
  });

  it('refuses a public base URL with a path, query, fragment or user part', () => {
    for (const url of [
      'https://broker.example/api',
      'https://broker.example/?x=1',
      'https://broker.example/#top',
      'https://user@broker.example',
      'https://:pw@broker.example',
    ]) {
      assert.deepEqual(
        problemsOf({ BROKER_PUBLIC_BASE_URL: url }).variables,
        ['BROKER_PUBLIC_BASE_URL'],
        url,
      );
    }
    const c = parseConfig({ BROKER_PUBLIC_BASE_URL: 'https://broker.example:8443/' });
    assert.equal(c.publicBaseUrl, 'https://broker.example:8443');
    assert.equal(c.redirectUri, 'https://broker.example:8443/api/callback');
  });

  it('allows a plain-http public base URL only on loopback or with the insecure flag', () => {
    for (const host of ['localhost', '127.0.0.1', '[::1]'])
      assert.equal(
        parseConfig({ BROKER_PUBLIC_BASE_URL: `http://${host}:7071` }).redirectUri,
        `http://${host}:7071/api/callback`,
      );
    assert.equal(
      problemsOf({ BROKER_PUBLIC_BASE_URL: 'http://broker.example' }).message,
      'Invalid configuration: BROKER_PUBLIC_BASE_URL (must be https (http only for localhost))',
    );
    assert.equal(
      parseConfig({ BROKER_PUBLIC_BASE_URL: 'http://broker.example', BROKER_ALLOW_INSECURE_HTTP: '1' })
        .publicBaseUrl,
      'http://broker.example',
    );
  });

  it('builds the Microsoft provider from its settings, scopes split on spaces and commas', () => {
    const c = parseConfig({
      MICROSOFT_CLIENT_ID: 'app',
      MICROSOFT_TENANT: 'contoso.example',
      MICROSOFT_DEFAULT_SCOPES: 'User.Read, Mail.Send  offline_access',
    });
    assert.deepEqual(c.providers.microsoft, {
      kind: 'microsoft',
      name: 'microsoft',
      clientId: 'app',
      tenant: 'contoso.example',
      authorityHost: 'https://login.microsoftonline.com',
      credential: { kind: 'none' },
      defaultScopes: ['User.Read', 'Mail.Send', 'offline_access'],
    });
    assert.deepEqual(parseConfig({ MICROSOFT_CLIENT_ID: 'app' }).providers.microsoft?.defaultScopes, [
      'https://graph.microsoft.com/Mail.Send',
    ]);
  });

  it('keeps the Microsoft provider beside the generic ones', () => {
    const c = parseConfig({
      MICROSOFT_CLIENT_ID: 'app',
      BROKER_PROVIDERS: JSON.stringify({
        g: { kind: 'oauth2', preset: 'google', clientId: 'c', clientAuthMethod: 'none' },
      }),
    });
    assert.deepEqual(Object.keys(c.providers).sort(), ['g', 'microsoft']);
  });

  it('refuses a plain-http authority host or caller key set unless insecure http is allowed', () => {
    assert.equal(
      problemsOf({ MICROSOFT_AUTHORITY_HOST: 'http://127.0.0.1:9' }).message,
      'Invalid configuration: MICROSOFT_AUTHORITY_HOST (must be https unless BROKER_ALLOW_INSECURE_HTTP)',
    );
    const entra = { BROKER_AUTH_MODE: 'entra', BROKER_AUTH_AUDIENCE: 'api://b', BROKER_AUTH_TENANT_ID: TID };
    assert.equal(
      problemsOf({ ...entra, BROKER_AUTH_JWKS_URL: 'http://127.0.0.1:9/keys' }).message,
      'Invalid configuration: BROKER_AUTH_JWKS_URL (must be https unless BROKER_ALLOW_INSECURE_HTTP)',
    );
    const ok = parseConfig({
      ...entra,
      BROKER_AUTH_JWKS_URL: 'http://127.0.0.1:9/keys',
      BROKER_ALLOW_INSECURE_HTTP: 'true',
    });
    assert.equal(ok.auth.jwksUrl, 'http://127.0.0.1:9/keys');
  });

  it('picks the blob lease lock beside Key Vault or on request, from a connection string or a service URI', () => {
    assert.deepEqual(
      parseConfig({
        BROKER_LOCK: 'blob',
        AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=st',
      }).lock,
      { kind: 'blob', connectionString: 'DefaultEndpointsProtocol=https;AccountName=st' },
    );
    assert.deepEqual(
      parseConfig({
        BROKER_LOCK: 'blob',
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        AzureWebJobsStorage__blobServiceUri: 'http://127.0.0.1:10000/devstoreaccount1',
        AzureWebJobsStorage__clientId: 'mi',
      }).lock,
      { kind: 'blob', blobServiceUri: 'http://127.0.0.1:10000/devstoreaccount1', clientId: 'mi' },
    );
    // The development-storage shortcut is not a connection string the lease can use.
    assert.deepEqual(
      problemsOf({ BROKER_LOCK: 'blob', AzureWebJobsStorage: 'UseDevelopmentStorage=true' }).variables,
      ['AzureWebJobsStorage__blobServiceUri'],
    );
    assert.deepEqual(parseConfig({ BROKER_LOCK: 'memory' }).lock, { kind: 'memory' });
  });

  it('keeps function-key caller auth free of Entra settings, with the default role names', () => {
    assert.deepEqual(parseConfig({}).auth, {
      mode: 'function_key',
      issuers: [],
      callerRole: 'Tokens.Read',
      adminRole: 'Connections.Manage',
    });
  });

  it('takes an explicit issuer and key set for Entra caller auth from any OpenID issuer', () => {
    const c = parseConfig({
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'api://broker',
      BROKER_AUTH_ISSUER: 'https://issuer.example/',
      BROKER_AUTH_JWKS_URL: 'https://issuer.example/keys',
      BROKER_AUTH_CALLER_ROLE: 'Read',
      BROKER_AUTH_ADMIN_ROLE: 'Admin',
    });
    assert.deepEqual(c.auth, {
      mode: 'entra',
      issuers: ['https://issuer.example/'],
      audience: 'api://broker',
      jwksUrl: 'https://issuer.example/keys',
      callerRole: 'Read',
      adminRole: 'Admin',
    });
  });

  it('asks for the key set with an explicit issuer, and for a tenant or issuer otherwise', () => {
    assert.deepEqual(
      problemsOf({
        BROKER_AUTH_MODE: 'entra',
        BROKER_AUTH_AUDIENCE: 'a',
        BROKER_AUTH_ISSUER: 'https://i.example',
      }).variables,
      ['BROKER_AUTH_JWKS_URL'],
    );
    assert.deepEqual(problemsOf({ BROKER_AUTH_MODE: 'entra', BROKER_AUTH_AUDIENCE: 'a' }).variables, [
      'BROKER_AUTH_TENANT_ID',
      'BROKER_AUTH_JWKS_URL',
    ]);
  });

  it('derives Entra issuers and key set from the tenant on the configured authority host', () => {
    const c = parseConfig({
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'api://broker',
      BROKER_AUTH_TENANT_ID: TID,
      MICROSOFT_AUTHORITY_HOST: 'https://login.microsoftonline.us',
    });
    assert.deepEqual(c.auth.issuers, [
      `https://login.microsoftonline.us/${TID}/v2.0`,
      `https://sts.windows.net/${TID}/`,
    ]);
    assert.equal(c.auth.jwksUrl, `https://login.microsoftonline.us/${TID}/discovery/v2.0/keys`);
  });

  it('adds notifications only when configured, with the outbox beside the file store', () => {
    assert.equal('notify' in parseConfig({}), false);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const c = parseConfig({
      BROKER_DATA_DIR: '/srv/data',
      BROKER_WEBHOOK_URL: 'https://hooks.example/x',
      BROKER_WEBHOOK_SECRET: secret,
    });
    assert.deepEqual(c.notify, {
      webhook: { url: 'https://hooks.example/x', secret },
      outbox: { kind: 'file', dataDir: '/srv/data' },
    });
  });

  it('freezes the whole configuration, nested parts included, but not the key bytes', () => {
    const c = parseConfig({
      BROKER_KEYS: key(),
      MICROSOFT_CLIENT_ID: 'app',
      MICROSOFT_CLIENT_SECRET: 'x',
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'a',
      BROKER_AUTH_TENANT_ID: TID,
    });
    for (const part of [
      c,
      c.keys,
      c.keys?.[0],
      c.lock,
      c.auth,
      c.auth.issuers,
      c.providers.microsoft?.credential,
    ])
      assert.ok(Object.isFrozen(part));
    assert.equal(Object.isFrozen(c.keys?.[0]?.key), false);
  });
});

describe('parseConfig: what it does not read', () => {
  it('ignores variables that are not its settings, even unresolved references', () => {
    const c = parseConfig({
      SOME_OTHER_APP_SETTING: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)',
    });
    assert.equal(c.store.kind, 'file');
  });

  it('gives the console no settings without a tenant to sign admins in to', () => {
    const c = parseConfig({
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'api://broker',
      BROKER_AUTH_ISSUER: 'https://issuer.example/',
      BROKER_AUTH_JWKS_URL: 'https://issuer.example/keys',
      BROKER_CONSOLE_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
    });
    assert.equal(c.console, undefined);
  });
});

describe('parseConfig: value formats', () => {
  it('accepts only an https Key Vault URL', () => {
    for (const url of [
      'http://kv.vault.azure.net',
      'xhttps://kv.vault.azure.net',
      'httpsx://kv.vault.azure.net',
    ])
      assert.deepEqual(
        problemsOf({ KEY_VAULT_URL: url, BROKER_KEYS: key() }).variables,
        ['KEY_VAULT_URL'],
        url,
      );
  });

  it('trims the Microsoft client id and tenant, and treats a blank client id as unset', () => {
    const c = parseConfig({ MICROSOFT_CLIENT_ID: ' app ', MICROSOFT_TENANT: ' contoso.example ' });
    assert.equal(c.providers.microsoft?.clientId, 'app');
    assert.equal(
      c.providers.microsoft?.kind === 'microsoft' && c.providers.microsoft.tenant,
      'contoso.example',
    );
    assert.equal(parseConfig({ MICROSOFT_CLIENT_ID: '   ' }).providers.microsoft, undefined);
  });

  it('refuses a tenant with characters a tenant name cannot have, anywhere in it', () => {
    for (const tenant of ['!contoso', 'contoso!', 'con toso'])
      assert.deepEqual(problemsOf({ MICROSOFT_TENANT: tenant }).variables, ['MICROSOFT_TENANT'], tenant);
  });

  it('allows connect links of up to seven days', () => {
    assert.equal(parseConfig({ BROKER_LINK_TTL_SECONDS: String(7 * 24 * 3600) }).linkTtlSeconds, 604_800);
    assert.deepEqual(problemsOf({ BROKER_LINK_TTL_SECONDS: String(7 * 24 * 3600 + 1) }).variables, [
      'BROKER_LINK_TTL_SECONDS',
    ]);
  });

  it('trims the console client id and refuses one with anything around the GUID', () => {
    const entra = {
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_AUDIENCE: 'api://a , api://b',
      BROKER_AUTH_TENANT_ID: TID,
    };
    const guid = '00000000-0000-0000-0000-0000000000c1';
    const c = parseConfig({ ...entra, BROKER_CONSOLE_CLIENT_ID: ` ${guid} ` });
    // The first audience, trimmed, names the API scope.
    assert.deepEqual(c.console, {
      clientId: guid,
      authority: `https://login.microsoftonline.com/${TID}`,
      scope: 'api://a/.default',
    });
    for (const id of [`x${guid}`, `${guid}x`])
      assert.deepEqual(
        problemsOf({ ...entra, BROKER_CONSOLE_CLIENT_ID: id }).variables,
        ['BROKER_CONSOLE_CLIENT_ID'],
        id,
      );
  });

  it('refuses a key with characters outside base64url after valid ones', () => {
    for (const bad of [`${key()}.`, `${key()}==x`, `${key()}===`])
      assert.deepEqual(problemsOf({ BROKER_KEYS: bad }).variables, ['BROKER_KEYS'], bad);
    assert.equal(parseConfig({ BROKER_KEYS: `${key()}==` }).keys?.length, 1);
  });

  it('keeps notifications in a storage queue beside Key Vault', () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const c = parseConfig({
      KEY_VAULT_URL: 'https://kv.vault.azure.net',
      BROKER_KEYS: key(),
      BROKER_LOCK: 'memory',
      BROKER_WEBHOOK_URL: 'https://hooks.example/x',
      BROKER_WEBHOOK_SECRET: secret,
      AzureWebJobsStorage__queueServiceUri: 'https://st.queue.core.windows.net',
    });
    assert.equal(c.notify?.outbox.kind, 'queue');
  });
});

describe('getConfig', () => {
  it('parses process.env once and again only after a reset', () => {
    resetConfigForTests();
    const first = getConfig();
    assert.equal(getConfig(), first);
    resetConfigForTests();
    assert.notEqual(getConfig(), first);
    resetConfigForTests();
  });
});
